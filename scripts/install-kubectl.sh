#!/usr/bin/env bash
# Makes sure `kubectl kustomize` can render deploy/k8s (tests/unit/test_deploy_k8s.py). Idempotent:
# does nothing when a kubectl with kustomize v4 or later is on PATH (this machine's image has one).
# Otherwise installs Debian's `kubernetes-client`; where that kubectl's built-in kustomize is too old
# for components, it says so and exits 1 (install kubectl >= 1.21 from the Kubernetes project).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

kustomize_major() {
  kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p'
}

if command -v kubectl >/dev/null 2>&1 && [ "$(kustomize_major || echo 0)" -ge 4 ] 2>/dev/null; then
  exit 0
fi

if ! have_apt; then
  echo "error: kubectl is missing and apt-get is not available; install kubectl >= 1.21 by hand" >&2
  exit 1
fi
apt_install "'kubernetes-client' (kubectl)" kubernetes-client
if [ "$(kustomize_major || echo 0)" -lt 4 ] 2>/dev/null; then
  echo "error: Debian's kubectl bundles a kustomize older than v4, which cannot render deploy/k8s;" >&2
  echo "       install kubectl >= 1.21 from the Kubernetes project" >&2
  exit 1
fi
