"""Library patches: what the audit hook cannot see, applied only to libraries the program imports.

Audit events cover Python's ``open``, renames, removals and sockets. They do not
cover bytes streaming out of HTTP clients (downloads must be hashed as the
program reads them), remote filesystems behind fsspec, or C libraries that
open files themselves (GDAL/OGR, rasterio, fiona, pyogrio, h5py, netCDF4,
sqlite3, pyarrow, polars). :func:`install` registers one post-import hook per library
(:mod:`~sharklib.capture.libs.import_hooks`, which does not even import
``wrapt``): nothing here imports any of them, and a patch is applied the moment
the program's own import of that library completes (at once if it is already
imported). Each patch lives in its own module, wraps only what it names, calls
through to the original with the same arguments, return value and exceptions,
and turns any failure of its own into one warning line.

The capture core calls :func:`install` once when capture starts and
:func:`flush` before it builds the Run at exit, so half-read downloads and
open SQLite connections are accounted for.
"""

from __future__ import annotations

import _thread  # not ``threading``: its import is ~1 ms of every captured script's start-up
import importlib
import sys
from collections.abc import Callable

# ``typing`` is not imported at run time: it costs every captured script ~2.5 ms of start-up
TYPE_CHECKING = False

if TYPE_CHECKING:
    from types import ModuleType

#: imported module name -> (patch module, function) applied when the program imports it
PATCHES: dict[str, tuple[str, str]] = {
    "requests.adapters": ("downloads_requests", "patch"),
    "urllib.request": ("downloads_urllib", "patch"),
    "httpx._models": ("downloads_httpx", "patch"),
    "fsspec.spec": ("fsspec_io", "patch"),
    "fsspec.implementations.http": ("fsspec_io", "patch_http"),
    "osgeo.gdal": ("gdal_io", "patch_gdal"),
    "osgeo.ogr": ("gdal_io", "patch_ogr"),
    "rasterio": ("rasterio_io", "patch"),
    "rasterio.shutil": ("rasterio_io", "patch_shutil"),
    "fiona": ("fiona_io", "patch"),
    "pyogrio": ("pyogrio_io", "patch"),
    "h5py": ("h5py_io", "patch"),
    "netCDF4": ("netcdf4_io", "patch"),
    "sqlite3": ("sqlite3_io", "patch"),
    "pyarrow": ("pyarrow_io", "patch_lib"),
    "pyarrow.parquet": ("pyarrow_io", "patch_parquet"),
    "pyarrow.dataset": ("pyarrow_io", "patch_dataset"),
    "pyarrow.feather": ("pyarrow_io", "patch_feather"),
    "pyarrow.csv": ("pyarrow_io", "patch_csv"),
    "pyarrow.json": ("pyarrow_io", "patch_json"),
    "pyarrow.ipc": ("pyarrow_io", "patch_ipc"),
    "polars": ("polars_io", "patch"),
    "multiprocessing.popen_fork": ("mp_terminate", "patch"),
}

_lock = _thread.allocate_lock()
_installed = False
#: library module names whose patch has been applied in this process
applied: set[str] = set()


def install() -> None:
    """Register the post-import hooks (idempotent). Imports none of the patched libraries."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    from sharklib.capture.libs.import_hooks import when_imported

    for name in PATCHES:
        when_imported(name, _hook(name))


def _hook(name: str) -> Callable[[ModuleType], None]:
    def apply(module: ModuleType) -> None:
        if name in applied:
            return
        rec = sys.modules.get("sharklib.capture.recorder")
        current = rec.current() if rec is not None else None
        # capture has ended (sharklib's own sqlite3 at exit): nothing left to record. Paused
        # (``active`` off while the reuse check opens the cache, which imports sqlite3) is not
        # ended: left unpatched then, the script's own sqlite3 went unrecorded
        if current is not None and current.ending:
            return
        applied.add(name)
        try:
            patch_module, function = PATCHES[name]
            patcher = importlib.import_module(f"{__name__}.{patch_module}")
            getattr(patcher, function)(module)
        except Exception as exc:
            from sharklib.capture.libs.recording import warn

            warn(f"could not patch {name}", exc)

    return apply


def flush() -> None:
    """Report what is still open: downloads never read to the end, SQLite connections never closed.

    Safe to call any number of times; the same also runs at interpreter exit.
    """
    for module_name, function in ((f"{__name__}.body_digest", "finish_all"),
                                  (f"{__name__}.sqlite3_io", "check_open")):
        module = sys.modules.get(module_name)
        if module is not None:
            try:
                getattr(module, function)()
            except Exception as exc:
                from sharklib.capture.libs.recording import warn

                warn("flushing library records", exc)
