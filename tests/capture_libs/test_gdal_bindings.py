"""The GDAL/OGR patch against the shape of current bindings, not one release's.

From GDAL 3.8 the Python bindings define ``osgeo.ogr.Driver`` only once ``osgeo.gdal`` has
finished importing (``ogr`` is imported by ``gdal`` part-way through), and later releases
add or drop methods. The real bindings are run at both ends: Debian's GDAL and the newest
GDAL wheel on PyPI (``test_datasets.py::test_gdal_and_ogr`` and the GDAL combine step of
``tests/capture/test_worker_temporaries.py``, through ``.venv-gdal``). Here a small stand-in
``osgeo`` package whose datasets are plain files pins the two shapes no single release shows
on demand: a class defined late, and a symbol a release dropped.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from capture_libs_support import run_captured

OSGEO = {
    "__init__.py": "",
    # like GDAL >= 3.8: gdal imports ogr before it defines Driver, then hands Driver to ogr
    "gdal.py": '''
        from osgeo import ogr
        OF_UPDATE = 1
        class Dataset:
            def __init__(self, path):
                self.path = path
            def GetFileList(self):
                return [self.path]
            def ReadAll(self):
                with open(self.path) as f:
                    return f.read()
        def Open(path, eAccess=0):
            return Dataset(path)
        def OpenEx(path, nOpenFlags=0):
            return Dataset(path)
        class Driver:
            def Create(self, path, *args):
                open(path, "w").close()
                return Dataset(path)
            def Open(self, path, update=0):
                return Dataset(path)
        ogr.Driver = Driver
        ogr.DataSource = Dataset
        ''',
    "ogr.py": '''
        def Open(path, update=0):
            from osgeo import gdal
            return gdal.Dataset(path)
        def GetDriverByName(name):
            return Driver()
        ''',
}


def _install(root: Path) -> Path:
    pkg = root / "fakegdal" / "osgeo"
    pkg.mkdir(parents=True)
    for name, text in OSGEO.items():
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg.parent


def test_a_driver_class_defined_late_is_still_patched(tmp_path: Path) -> None:
    libs = _install(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.shp").write_text("a")
    (work / "b.shp").write_text("b")
    c = run_captured(work, f"""
        import sys
        sys.path.insert(0, {str(libs)!r})
        from osgeo import gdal, ogr
        ogr.Open("a.shp").ReadAll()
        ogr.GetDriverByName("x").Open("b.shp").ReadAll()
        gdal.Driver().Create("out.tif")
        """, shim=False)
    assert c.proc.returncode == 0, c.proc.stderr
    assert "could not patch" not in c.proc.stderr, c.proc.stderr
    assert "warning" not in c.proc.stderr, c.proc.stderr
    read = {Path(p).name for p in c.inputs()}
    assert {"a.shp", "b.shp"} <= read, read
    assert "out.tif" in {Path(p).name for p in c.outputs()}


def test_a_missing_symbol_skips_only_that_wrapper(tmp_path: Path) -> None:
    libs = _install(tmp_path)
    gdal = libs / "osgeo" / "gdal.py"
    gdal.write_text(gdal.read_text().replace("def OpenEx(", "def _gone_OpenEx("))
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.tif").write_text("a")
    c = run_captured(work, f"""
        import sys
        sys.path.insert(0, {str(libs)!r})
        from osgeo import gdal
        gdal.Open("a.tif").ReadAll()
        """, shim=False)
    assert c.proc.returncode == 0, c.proc.stderr
    assert "warning" not in c.proc.stderr, c.proc.stderr
    assert "a.tif" in {Path(p).name for p in c.inputs()}


#: rasterio and fiona as a release without some of the symbols the patches wrap: rasterio with
#: no ``BufferedDatasetWriter`` (nor ``rasterio.shutil.copy``), fiona with no ``Collection.close``.
#: Their ``open`` never touches the file (as the real ones read it in C): only the patch can
#: record the read.
STAND_INS = {
    "rasterio/__init__.py": '''
        from rasterio import io
        class Dataset:
            def __init__(self, path):
                self.name = path
                self.files = [path]
        def open(fp, mode="r"):
            return Dataset(fp)
        ''',
    "rasterio/io.py": '''
        class DatasetWriter:
            def close(self):
                pass
        ''',
    "rasterio/shutil.py": "",
    "fiona/__init__.py": '''
        class Collection:
            pass
        def open(fp, mode="r"):
            return Collection()
        collection = open
        ''',
}


def test_rasterio_and_fiona_without_a_symbol_skip_only_that_wrapper(tmp_path: Path) -> None:
    libs = tmp_path / "stand-ins"
    for name, text in STAND_INS.items():
        (libs / name).parent.mkdir(parents=True, exist_ok=True)
        (libs / name).write_text(textwrap.dedent(text))
    work = tmp_path / "work"
    work.mkdir()
    (work / "dem.tif").write_text("raster")
    (work / "sites.gpkg").write_text("vector")
    c = run_captured(work, f"""
        import sys
        sys.path.insert(0, {str(libs)!r})
        import rasterio, rasterio.shutil, fiona
        rasterio.open("dem.tif")
        fiona.open("sites.gpkg")
        """, shim=False)
    assert c.proc.returncode == 0, c.proc.stderr
    assert "warning" not in c.proc.stderr, c.proc.stderr
    assert {"dem.tif", "sites.gpkg"} <= {Path(p).name for p in c.inputs()}
