#!/usr/bin/env bash
# Create .venv and install sharklib into it (editable). Extra pip extras may be passed: setup.sh test
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
py="${PYTHON:-python3}"
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3-venv >/dev/null
  else
    echo "setup: python3 cannot create virtual environments; install python3-venv" >&2; exit 1
  fi
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
