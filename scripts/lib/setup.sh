# Shared setup for scripts/: system packages and the project's virtual environment.
# Sourced, not run. Idempotent: a second run installs nothing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${NOTIONFS_VENV:-$ROOT/.venv}"

_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root to run: $*" >&2; return 1; fi
}

_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# ensure_system_packages PKG... : apt-get install what is missing (Debian/Ubuntu).
# "libfuse2" is mapped to libfuse2t64 where that is the name (Ubuntu 24.04+), and the `fuse`
# package (fusermount for libfuse 2) is skipped where fuse3 is installed, since they conflict.
ensure_system_packages() {
  if ! command -v apt-get >/dev/null; then
    echo "setup: not a Debian/Ubuntu machine; install by hand: $*" >&2
    return 0
  fi
  local want=() pkg
  for pkg in "$@"; do
    case "$pkg" in
      libfuse2)
        if apt-cache show libfuse2t64 >/dev/null 2>&1 && ! apt-cache show libfuse2 2>/dev/null | grep -q '^Version'; then
          pkg=libfuse2t64
        fi ;;
      fuse)
        if _installed fuse3 && ! _installed fuse; then
          echo "setup: fuse3 is installed; using its fusermount3 (not replacing it with fuse)" >&2
          continue
        fi ;;
    esac
    _installed "$pkg" || want+=("$pkg")
  done
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then want+=(python3-venv); fi
  [ ${#want[@]} -eq 0 ] && return 0
  echo "setup: installing system packages: ${want[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  _sudo apt-get update -qq
  _sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

# ensure_venv EXTRAS : the project installed (editable) with its extras, redone when
# pyproject.toml changes.
ensure_venv() {
  local extras="${1:-}" stamp
  if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating virtual environment $VENV" >&2
    python3 -m venv "$VENV"
  fi
  stamp="$VENV/.notionfs-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-${extras:-base}"
  if [ ! -f "$stamp" ]; then
    echo "setup: installing notionfs${extras:+[$extras]} into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  fi
}
