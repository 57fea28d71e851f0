# Sourced by scripts/install-*.sh: installs Debian packages the same way for each of them.
#
#   have_apt                  true when apt-get is there (the caller decides what its absence means)
#   apt_install WHAT PKG...   apt-get update, then install PKG... quietly (no recommends), as root or
#                             through sudo. Apt's output is kept aside and shown only on failure;
#                             then, or when root is needed and there is no sudo, it prints one
#                             `error:` line naming WHAT and exits 1.

have_apt() {
  command -v apt-get >/dev/null 2>&1
}

apt_install() {
  local what=$1
  shift
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo_cmd=(sudo)
    else
      echo "error: installing $what needs root; run: apt-get install -y $*" >&2
      exit 1
    fi
  fi
  local log
  log=$(mktemp)
  if ! "${sudo_cmd[@]}" apt-get update -qq >"$log" 2>&1 \
    || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$@" >>"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: apt-get could not install $what; see apt's output above" >&2
    exit 1
  fi
  rm -f "$log"
}
