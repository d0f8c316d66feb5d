"""C-extension readers and writers that never call Python's ``open``.

Each test makes an input file with the library itself (outside capture), runs
an unmodified script under ``python -m sharklib run`` that reads it, writes an
output, closes it, and *then* reads an unrelated file. The Run must list
exactly the input(s) and the output(s), the output's digest must be of its
final bytes, and the output's own inputs must stop at the moment it was
closed (the unrelated later read is not in its lineage).
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from capture_libs_support import Captured, data_inputs, file_sha256, gdal_python, run_captured

LATE = "late.txt"


def _need(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:
        pytest.skip(f"{module} cannot be imported here: {type(exc).__name__}: {exc}")


def _late_read(tmp_path: Path) -> str:
    (tmp_path / LATE).write_text("read after the output was closed\n")
    return f'open({LATE!r}).read()\n'


def _check(c: Captured, inputs: list[Path], outputs: list[Path], listings: tuple[str, ...] = (),
           absent: tuple[Path, ...] = ()) -> None:
    """``absent``: files the run created in place (a database), whose absence is an input."""
    from sharklib.model import ABSENT_SHA256

    assert c.proc.returncode == 0, c.proc.stderr
    noise = [line for line in c.proc.stderr.splitlines()
             if not line.startswith("sharklib: created signing key")]
    assert noise == [], c.proc.stderr
    late = str(c.cwd / LATE)
    assert data_inputs(c) == {str(p) for p in (*inputs, *absent)} | {late} | set(listings)
    for p in inputs:
        assert c.inputs()[str(p)] == file_sha256(p)
    for p in absent:
        assert c.inputs()[str(p)] == ABSENT_SHA256
    assert set(c.outputs()) == {str(p) for p in outputs}, c.run.outputs
    for p in outputs:
        assert c.outputs()[str(p)] == file_sha256(p), f"{p} not hashed after its last write"
    for out in c.run.outputs:
        lineage = {a.path for a in c.run.inputs_of(out)} - {str(c.cwd / "script.py")}
        assert late not in lineage, f"{out.path} was closed before {LATE} was read"


def test_h5py(tmp_path: Path) -> None:
    h5py = _need("h5py")
    np = _need("numpy")
    src = tmp_path / "in.h5"
    with h5py.File(src, "w") as f:
        f["x"] = np.arange(1000, dtype="f8")
    c = run_captured(tmp_path, """
        import h5py
        from pathlib import Path
        with h5py.File(Path("in.h5"), "r") as f:
            x = f["x"][:]
        out = h5py.File(b"out.h5", "w")
        out["y"] = x * 2
        out.attrs["note"] = "doubled"
        out.close()
        """ + _late_read(tmp_path))
    _check(c, [src], [tmp_path / "out.h5"])


def test_h5py_append_mode_updates_in_place(tmp_path: Path) -> None:
    h5py = _need("h5py")
    target = tmp_path / "grow.h5"
    with h5py.File(target, "w") as f:
        f["a"] = [1, 2, 3]
    c = run_captured(tmp_path, """
        import h5py
        with h5py.File("grow.h5", "a") as f:
            f["b"] = f["a"][:] + 1
        """ + _late_read(tmp_path))
    assert c.proc.returncode == 0, c.proc.stderr
    assert set(c.outputs()) == {str(target)}
    assert c.outputs()[str(target)] == file_sha256(target)
    assert str(target) in c.inputs()


def test_netcdf4(tmp_path: Path) -> None:
    netCDF4 = _need("netCDF4")
    src = tmp_path / "in.nc"
    with netCDF4.Dataset(src, "w") as ds:
        ds.createDimension("t", 10)
        ds.createVariable("v", "f4", ("t",))[:] = range(10)
    c = run_captured(tmp_path, """
        import netCDF4
        src = netCDF4.Dataset("in.nc")
        assert isinstance(src, netCDF4.Dataset)
        v = src["v"][:]
        print(type(src).__name__, repr(type(src)))
        src.close()
        with netCDF4.Dataset("out.nc", "w", format="NETCDF4") as out:
            out.createDimension("t", len(v))
            out.createVariable("w", "f8", ("t",))[:] = v * 3
            grp = out.createGroup("g")
            assert isinstance(grp, netCDF4.Dataset) and issubclass(netCDF4.Group, netCDF4.Dataset)
        """ + _late_read(tmp_path))
    assert c.proc.stdout.strip() == "Dataset <class 'netCDF4._netCDF4.Dataset'>"
    _check(c, [src], [tmp_path / "out.nc"])


def test_netcdf4_mfdataset(tmp_path: Path) -> None:
    netCDF4 = _need("netCDF4")
    parts = []
    for i in range(2):
        p = tmp_path / f"part{i}.nc"
        with netCDF4.Dataset(p, "w", format="NETCDF4_CLASSIC") as ds:
            ds.createDimension("t", None)
            ds.createVariable("v", "f4", ("t",))[:] = [i, i + 0.5]
        parts.append(p)
    c = run_captured(tmp_path, """
        import netCDF4
        mf = netCDF4.MFDataset("part*.nc")
        total = float(mf["v"][:].sum())
        mf.close()
        with open("total.txt", "w") as f:
            f.write(str(total))
        """ + _late_read(tmp_path))
    # the glob lists the directory: which files match is an input too
    _check(c, parts, [tmp_path / "total.txt"], listings=(str(tmp_path) + "/",))


def test_rasterio(tmp_path: Path) -> None:
    rasterio = _need("rasterio")
    np = _need("numpy")
    from rasterio.transform import from_origin

    src = tmp_path / "in.tif"
    profile = {"driver": "GTiff", "width": 32, "height": 16, "count": 1, "dtype": "uint8",
               "crs": "EPSG:4326", "transform": from_origin(0, 16, 1, 1)}
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(np.arange(512, dtype="uint8").reshape(1, 16, 32))
    c = run_captured(tmp_path, """
        import rasterio
        with rasterio.open("in.tif") as src:
            band = src.read(1)
            profile = src.profile
        profile.update(dtype="uint16", compress="deflate")
        with rasterio.open("out.tif", "w", **profile) as dst:
            dst.write((band.astype("uint16") * 3)[None])
        """ + _late_read(tmp_path))
    _check(c, [src], [tmp_path / "out.tif"])


def test_rasterio_update_and_copy(tmp_path: Path) -> None:
    rasterio = _need("rasterio")
    np = _need("numpy")
    from rasterio.transform import from_origin

    src = tmp_path / "base.tif"
    with rasterio.open(src, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(0, 8, 1, 1)) as dst:
        dst.write(np.zeros((1, 8, 8), dtype="uint8"))
    c = run_captured(tmp_path, """
        import numpy as np, rasterio, rasterio.shutil
        rasterio.shutil.copy("base.tif", "copy.tif", driver="GTiff")
        with rasterio.open("copy.tif", "r+") as ds:
            ds.write(np.full((1, 8, 8), 7, dtype="uint8"))
        """ + _late_read(tmp_path))
    _check(c, [src], [tmp_path / "copy.tif"])


@pytest.mark.parametrize("bindings", ["debian", "newest"])
def test_gdal_and_ogr(tmp_path: Path, bindings: str) -> None:
    python = gdal_python(bindings)
    src = tmp_path / "dem.tif"
    subprocess.run([python, "-c", (
        "import sys; from osgeo import gdal; gdal.UseExceptions()\n"
        "ds = gdal.GetDriverByName('GTiff').Create(sys.argv[1], 20, 10, 1, gdal.GDT_Float32)\n"
        "ds.SetGeoTransform((0, 1, 0, 10, 0, -1)); ds.GetRasterBand(1).Fill(42.0); ds = None"),
        str(src)], check=True)
    c = run_captured(tmp_path, """
        from osgeo import gdal, ogr, osr
        gdal.UseExceptions()
        ogr.UseExceptions()
        src = gdal.Open("dem.tif")
        raw = src.GetRasterBand(1).ReadRaster()
        gdal.Translate("small.tif", src, width=10, height=5)
        gdal.Warp("warped.tif", "dem.tif", xRes=2, yRes=2)
        mem = gdal.GetDriverByName("GTiff").Create("burn.tif", 20, 10, 1, gdal.GDT_Byte)
        mem.SetGeoTransform(src.GetGeoTransform())
        vec = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource("pts.shp")
        layer = vec.CreateLayer("pts", osr.SpatialReference(), ogr.wkbPoint)
        feat = ogr.Feature(layer.GetLayerDefn())
        feat.SetGeometry(ogr.CreateGeometryFromWkt("POINT (3.5 4.5)"))
        layer.CreateFeature(feat)
        feat = None
        gdal.RasterizeLayer(mem, [1], layer, burn_values=[255])
        mem = None
        vec = None
        gdal.VectorTranslate("pts.geojson", "pts.shp", format="GeoJSON")
        copy = gdal.GetDriverByName("GTiff").CreateCopy("copy.tif", src)
        copy = None
        src = None
        print(len(raw))
        """ + _late_read(tmp_path), python=python)
    shp = [tmp_path / f"pts.{ext}" for ext in ("shp", "shx", "dbf", "prj")]
    shp = [p for p in shp if p.exists()]
    outputs = [tmp_path / n for n in ("small.tif", "warped.tif", "burn.tif", "pts.geojson",
                                      "copy.tif")] + shp
    # the shapefile is written by the script and read back by VectorTranslate: an output,
    # not a data input of the run
    _check(c, [src], outputs)


def test_fiona(tmp_path: Path) -> None:
    fiona = _need("fiona")
    src = tmp_path / "in.gpkg"
    schema = {"geometry": "Point", "properties": {"name": "str"}}
    with fiona.open(src, "w", driver="GPKG", schema=schema, crs="EPSG:4326") as dst:
        for i in range(5):
            dst.write({"geometry": {"type": "Point", "coordinates": (i, i)},
                       "properties": {"name": f"p{i}"}})
    c = run_captured(tmp_path, """
        import fiona
        with fiona.open("in.gpkg") as src:
            feats = list(src)
            schema, crs = src.schema, src.crs
        with fiona.open("out.shp", "w", driver="ESRI Shapefile", schema=schema, crs=crs) as dst:
            for f in feats[:3]:
                dst.write(f)
        """ + _late_read(tmp_path))
    shp = [p for p in (tmp_path / f"out.{e}" for e in ("shp", "shx", "dbf", "prj", "cpg"))
           if p.exists()]
    _check(c, [src], shp)


def test_pyogrio(tmp_path: Path) -> None:
    _need("pyogrio")
    gpd = _need("geopandas") if importlib.util.find_spec("geopandas") else None
    if gpd is None:
        pytest.skip("geopandas is not installed (pyogrio's dataframe functions need it)")
    from shapely.geometry import Point

    src = tmp_path / "in.gpkg"
    gpd.GeoDataFrame({"n": [1, 2, 3]}, geometry=[Point(i, i) for i in range(3)],
                     crs="EPSG:4326").to_file(src, driver="GPKG", engine="pyogrio")
    c = run_captured(tmp_path, """
        import pyogrio
        df = pyogrio.read_dataframe("in.gpkg")
        df["m"] = df["n"] * 2
        pyogrio.write_dataframe(df, "out.geojson", driver="GeoJSON")
        """ + _late_read(tmp_path))
    _check(c, [src], [tmp_path / "out.geojson"])


def test_sqlite3(tmp_path: Path) -> None:
    import sqlite3

    src = tmp_path / "in.db"
    with sqlite3.connect(src) as con:
        con.execute("create table obs (species text, n int)")
        con.executemany("insert into obs values (?, ?)", [("a", 1), ("b", 2), ("a", 3)])
    con.close()
    c = run_captured(tmp_path, """
        import sqlite3
        con = sqlite3.connect("in.db")
        rows = con.execute("select species, sum(n) from obs group by species").fetchall()
        con.close()
        out = sqlite3.connect("out.db")
        out.execute("create table totals (species text, n int)")
        out.executemany("insert into totals values (?, ?)", rows)
        out.commit()
        out.close()
        mem = sqlite3.connect(":memory:")
        mem.execute("create table t (x)")
        mem.close()
        """ + _late_read(tmp_path))
    # a database is written in place: that it did not exist is what the run started from
    _check(c, [src], [tmp_path / "out.db"], absent=(tmp_path / "out.db",))


def test_sqlite3_written_in_place_without_close(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "state.db"
    with sqlite3.connect(db) as con:
        con.execute("create table kv (k text, v text)")
    con.close()
    c = run_captured(tmp_path, """
        import sqlite3
        con = sqlite3.connect("state.db")
        with con:
            con.execute("insert into kv values ('run', 'done')")
        ro = sqlite3.connect("file:state.db?mode=ro", uri=True)
        print(ro.execute("select count(*) from kv").fetchone()[0])
        """)
    assert c.proc.returncode == 0, c.proc.stderr
    assert c.proc.stdout.strip() == "1"
    assert str(db) in c.inputs()
    assert set(c.outputs()) == {str(db)}
    assert c.outputs()[str(db)] == file_sha256(db)
