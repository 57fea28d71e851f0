"""Split a rendered overlay into the setup stage and the rollout, naming the setup Job by its spec.

`circulate setup` (migrations, queue topology) must finish before new pods start. Without Helm or
Argo hooks, the rollout is two applies:

    kubectl kustomize deploy/k8s/overlays/prod | python deploy/k8s/split_setup.py build/
    kubectl apply -f build/setup.yaml
    kubectl wait --for=condition=complete --timeout=15m job/$(cat build/setup-job-name)
    kubectl apply -f build/rollout.yaml

setup.yaml holds everything the Job needs and nothing that runs the new image otherwise (the
ConfigMap, ServiceAccount, NetworkPolicies, Services...) plus the Job; rollout.yaml everything but
the Job. A Job's pod template cannot change, so the Job is renamed `circulate-setup-<hash>`, the
hash of its spec: a new image or new settings make a new Job; re-applying the same release finds
the finished one and waits for nothing. Finished Jobs go after a day (ttlSecondsAfterFinished).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

#: What must not start before setup has finished: the workloads and what scales them.
ROLLOUT_ONLY = {"Deployment", "HorizontalPodAutoscaler", "ScaledObject"}
SETUP_JOB = "circulate-setup"


def split(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """(setup stage, rollout, the Job's new name) of the rendered objects."""
    jobs = [obj for obj in objects if obj["kind"] == "Job" and obj["metadata"]["name"] == SETUP_JOB]
    if len(jobs) != 1:
        raise SystemExit(f"expected one Job named {SETUP_JOB}, found {len(jobs)}")
    (job,) = jobs
    digest = hashlib.sha256(json.dumps(job["spec"], sort_keys=True).encode()).hexdigest()[:10]
    name = f"{SETUP_JOB}-{digest}"
    job["metadata"]["name"] = name
    setup = [obj for obj in objects if obj["kind"] not in ROLLOUT_ONLY]
    rollout = [obj for obj in objects if obj is not job]
    return setup, rollout, name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: kubectl kustomize OVERLAY | python deploy/k8s/split_setup.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    objects = [obj for obj in yaml.safe_load_all(sys.stdin) if obj]
    setup, rollout, name = split(objects)
    (out / "setup.yaml").write_text(yaml.safe_dump_all(setup, sort_keys=False))
    (out / "rollout.yaml").write_text(yaml.safe_dump_all(rollout, sort_keys=False))
    (out / "setup-job-name").write_text(name + "\n")
    print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
