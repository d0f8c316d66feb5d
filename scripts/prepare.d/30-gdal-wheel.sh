#!/usr/bin/env bash
# A second venv, .venv-gdal, holding the newest GDAL Python bindings PyPI has as a binary wheel
# for Linux (the self-contained "gdal-wheel" build of the newest GDAL; it has wheels for
# CPython >= 3.12 only, so the venv uses a Python >= 3.12 found here) and sharklib (editable).
# The main venv's bindings are built against Debian's GDAL (20-gdal-python.sh), the oldest
# supported; the library-patch tests run against both. Idempotent: does nothing once osgeo
# imports there. Without a Python >= 3.12, or if the install fails, those tests skip with the
# reason printed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$here/.venv-gdal"
"$venv/bin/python" -c "from osgeo import gdal, ogr" >/dev/null 2>&1 && exit 0
py=""
for cand in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
  if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
    py="$cand"
    break
  fi
done
if [ -z "$py" ]; then
  echo "prepare: no Python >= 3.12 here for the newest GDAL wheel; its tests will be skipped" >&2
  exit 0
fi
echo "prepare: a venv with the newest GDAL wheel in .venv-gdal ($("$py" --version), once)"
rm -rf "$venv"
if ! { "$py" -m venv "$venv" &&
       "$venv/bin/python" -m pip install -q --disable-pip-version-check gdal-wheel numpy -e "$here"; }
then
  echo "prepare: the newest GDAL wheel did not install; its tests will be skipped" >&2
fi
exit 0
