#!/usr/bin/env bash
# Build GDAL's Python bindings (osgeo) against the system libgdal (Debian libgdal-dev, listed in
# scripts/apt-packages.txt) for the library-patch tests. The PyPI "GDAL" package must match the
# C library's version exactly, which pyproject.toml cannot express, so it is built here with
# --no-build-isolation so that numpy (test extra) enables osgeo.gdal_array. Idempotent: does
# nothing when osgeo already imports. Without gdal-config, or if the build fails, the GDAL tests
# skip with the reason printed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$here/.venv/bin/python"
command -v gdal-config >/dev/null || exit 0
"$py" -c "from osgeo import gdal, gdal_array" >/dev/null 2>&1 && exit 0
version="$(gdal-config --version)"
echo "prepare: building GDAL $version Python bindings (a few minutes, once)"
"$py" -m pip install -q --disable-pip-version-check setuptools wheel >/dev/null 2>&1
# --no-cache-dir: a wheel cached from a build without numpy would lack gdal_array
if ! "$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-cache-dir \
    --force-reinstall --no-deps "GDAL==$version"; then
  echo "prepare: GDAL $version Python bindings did not build; GDAL tests will be skipped" >&2
fi
exit 0
