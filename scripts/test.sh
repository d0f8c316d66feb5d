#!/usr/bin/env bash
# Install everything the tests need, start what must run, and run the whole suite.
# As root it installs Debian packages (scripts/apt-packages.txt) and mounts tracefs; otherwise the
# tests that need them are skipped with the reason printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  mapfile -t pkgs < <(grep -v '^\s*#' scripts/apt-packages.txt | sed '/^\s*$/d')
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing Debian packages: ${missing[*]}"
    # wait for another apt/dpkg (unattended-upgrades, a parallel install) instead of failing at once
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || echo "test.sh: could not mount tracefs"
  fi
fi
bash scripts/setup.sh test
for hook in scripts/prepare.d/*.sh; do
  [ -e "$hook" ] && bash "$hook"
done
exec .venv/bin/python -m pytest "$@"
