"""Damaged granules: every reader answers a GranuleError naming the file and the reason, and nothing else.

For the TROPOMI reader (``read_swath`` and the index's geolocation) and the CALIOP reader (``read_curtain``,
``read_track`` and the index's geolocation): truncated files (several cut points, and Hypothesis over all of them),
zero-byte files, garbage bytes, valid netCDF/HDF4 files holding other variables, variables in the wrong dimension
order or of the wrong shape. The index skips and names them (relative to the archive root) and indexes the rest;
VolcPlume's reads skip them and its log says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pyhdf.VS  # noqa: F401  (HDF.vstart() needs the VS module loaded)
import pytest
import xarray as xr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyhdf.HDF import HC, HDF
from pyhdf.SD import SD, SDC

from app.data import index as gi
from app.data.archive import Archive
from app.data.caliop import read_curtain, read_track
from app.data.errors import GranuleError
from app.data.filenames import caliop_filename, tropomi_filename
from app.data.tropomi import read_swath

REPO = Path(__file__).resolve().parents[1]
DAY = dt.datetime(2021, 4, 12)

TROPOMI_READERS = {
    "read_swath": lambda p: read_swath(p, ("so2_7km", "qa_value")),
    "index geolocation": lambda p: gi.tropomi_geolocation(str(p)),
}
CALIOP_READERS = {
    "read_curtain": lambda p: read_curtain(p),
    "read_track": lambda p: read_track(p),
    "index geolocation": lambda p: gi.caliop_geolocation(str(p)),
}
READERS = {"tropomi": TROPOMI_READERS, "caliop": CALIOP_READERS}


@pytest.fixture(scope="module")
def originals(tiny_archive_path) -> dict[str, Path]:
    """One real granule of each instrument from the tiny archive (never modified)."""
    return {
        "tropomi": sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))[0],
        "caliop": sorted((tiny_archive_path / "caliop").rglob("CAL_LID_*.hdf"))[0],
    }


def _granule_error(read, path: Path) -> GranuleError:
    """The GranuleError ``read(path)`` raises; any other outcome (a value, another exception) fails the test."""
    with pytest.raises(GranuleError) as info:
        read(path)
    err = info.value
    assert err.path == str(path), f"the error names {err.path}, not the file read"
    assert err.problem and str(path) not in err.problem  # the reason does not repeat the absolute path
    return err


# --- truncated, empty and garbage files ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tropomi", "caliop"])
@pytest.mark.parametrize("fraction", [0.0, 0.0005, 0.02, 0.25, 0.5, 0.75, 0.98, 0.9995])
def test_truncated_granules_are_granule_errors(originals, tmp_path, kind, fraction):
    data = originals[kind].read_bytes()
    path = tmp_path / originals[kind].name
    path.write_bytes(data[: int(len(data) * fraction)])
    for name, read in READERS[kind].items():
        err = _granule_error(read, path)
        if fraction == 0.0:  # zero bytes
            assert "cannot be opened as" in err.problem, (name, err.problem)
        else:
            assert "truncated" in err.problem or "corrupt" in err.problem, (name, err.problem)


def _same(a, b) -> bool:
    """Whether two reader results are equal: datasets, dicts, dataclasses of arrays (NaN equal to NaN).

    The file's own name (``source``) differs between the cut copy and the original and is left out.
    """
    if isinstance(a, xr.Dataset):
        return a.equals(b) and _same({k: v for k, v in a.attrs.items() if k != "source"},
                                     {k: v for k, v in b.attrs.items() if k != "source"})
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a if k != "source")
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0, exclude_max=True), kind=st.sampled_from(["tropomi", "caliop"]))
@example(cut=0.9999999999999998, kind="caliop")  # the last byte of an HDF4 file: it still reads, the same
@example(cut=0.9999999999999998, kind="tropomi")
def test_any_truncation_is_a_granule_error_or_harmless(originals, tmp_path, cut, kind):
    """A cut file is a GranuleError naming it, or (the last bytes of an HDF4 file hold nothing a reader needs) it
    reads exactly as the whole file: never a wrong value, never another exception."""
    data = originals[kind].read_bytes()
    path = tmp_path / f"cut-{kind}" / originals[kind].name
    path.parent.mkdir(exist_ok=True)
    # at least one byte goes: a cut of 0.9999999999999998 of a file would otherwise keep it whole
    path.write_bytes(data[: min(int(len(data) * cut), len(data) - 1)])
    for name, read in READERS[kind].items():
        try:
            got = read(path)
        except GranuleError as err:
            assert err.path == str(path) and err.problem and str(path) not in err.problem
            continue
        assert _same(got, read(originals[kind])), f"{name} read a cut file ({cut:.6f}) without error but not the same"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from([b"", b"\x89HDF\r\n\x1a\n", b"\x0e\x03\x13\x01", b"CDF\x01"]),
       body=st.binary(min_size=0, max_size=4096), kind=st.sampled_from(["tropomi", "caliop"]))
def test_garbage_bytes_are_granule_errors(originals, tmp_path, head, body, kind):
    """Random bytes, also behind the magic numbers of HDF5, HDF4 and netCDF-3 files."""
    path = tmp_path / f"garbage-{kind}" / originals[kind].name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(head + body)
    for read in READERS[kind].values():
        _granule_error(read, path)


# --- valid files that are not what they should be --------------------------------------------------------------


def _tropomi_like(path: Path, dims=("time", "scanline", "ground_pixel"), shapes=None, groups=True) -> Path:
    """A netCDF-4 file laid out like a TROPOMI L2 file, with chosen dimension orders and shapes."""
    n_scan, n_pix = 12, 12  # square on purpose: only the dimension names tell the order apart
    shapes = shapes or {}
    with netCDF4.Dataset(path, "w") as nc:
        nc.orbit = np.int32(18112)
        nc.time_coverage_start, nc.time_coverage_end = "2021-04-12T16:59:31Z", "2021-04-12T17:49:31Z"
        if not groups:
            nc.createDimension("x", 3)
            nc.createVariable("something_else", "f4", ("x",))[:] = [1, 2, 3]
            return path
        g = nc.createGroup("PRODUCT")
        for d, n in (("time", 1), ("scanline", n_scan), ("ground_pixel", n_pix), ("corner", 4), ("other", 7)):
            g.createDimension(d, n)
        g.createVariable("time", "i4", ("time",))[:] = [0]
        g["time"].units = "seconds since 2010-01-01 00:00:00"
        dt_var = g.createVariable("delta_time", "i4", ("time", "scanline"))
        dt_var[:] = np.arange(n_scan)[None] * 1000
        dt_var.units = "milliseconds since 2021-04-12 00:00:00"
        lat = np.linspace(10, 20, n_scan)[:, None] + np.zeros(n_pix)
        lon = np.linspace(-65, -55, n_pix)[None, :] + np.zeros((n_scan, 1))
        for name, values in (("latitude", lat), ("longitude", lon), ("qa_value", np.full_like(lat, 100))):
            var_dims = shapes.get(name, dims)
            v = g.createVariable(name, "f4", var_dims)
            v[:] = np.broadcast_to(values[None], [g.dimensions[d].size for d in var_dims]) if var_dims == dims \
                else np.zeros([g.dimensions[d].size for d in var_dims])
        g["qa_value"].scale_factor = 0.01
        sub = g.createGroup("SUPPORT_DATA")
        geo = sub.createGroup("GEOLOCATIONS")
        for name in ("latitude_bounds", "longitude_bounds"):
            geo.createVariable(name, "f4", ("time", "scanline", "ground_pixel", "corner"))[:] = 0.0
        det = sub.createGroup("DETAILED_RESULTS")
        if "so2_pixels" in shapes:  # a ground_pixel dimension of its own, of another length: same names, wrong shape
            det.createDimension("ground_pixel", shapes["so2_pixels"])
        so2 = det.createVariable("sulfurdioxide_total_vertical_column_7km", "f4", shapes.get("so2", dims))
        so2[:] = 1e-4
        so2.multiplication_factor_to_convert_to_DU = 2241.15
    return path


def test_tropomi_file_with_other_variables(tmp_path):
    name = tropomi_filename(DAY, DAY + dt.timedelta(minutes=50), 18112)
    path = _tropomi_like(tmp_path / name, groups=False)
    err = _granule_error(TROPOMI_READERS["read_swath"], path)
    assert err.problem == "group PRODUCT is missing (needed for the pixel latitudes)"
    err = _granule_error(TROPOMI_READERS["index geolocation"], path)
    assert err.problem == "has no PRODUCT group: not a TROPOMI L2 file"


def test_tropomi_the_control_file_reads(tmp_path):
    """The hand-made file the next tests spoil is read as it should be when nothing is wrong with it."""
    path = _tropomi_like(tmp_path / tropomi_filename(DAY, DAY + dt.timedelta(minutes=50), 18112))
    ds = read_swath(path, ("so2_7km", "qa_value"))
    assert ds.sizes == {"scanline": 12, "ground_pixel": 12, "corner": 4}
    assert float(ds["so2_7km"][0, 0]) == pytest.approx(1e-4 * 2241.15, rel=1e-5)
    assert float(ds["latitude"][-1, 0]) == pytest.approx(20.0) and float(ds["longitude"][0, -1]) == pytest.approx(-55)
    assert float(ds["qa_value"][0, 0]) == pytest.approx(1.0)
    geo = gi.tropomi_geolocation(str(path))
    assert np.nanmax(geo.latitude) == pytest.approx(20.0) and geo.orbit == 18112


def test_tropomi_wrong_dimension_order(tmp_path):
    path = _tropomi_like(tmp_path / tropomi_filename(DAY, DAY + dt.timedelta(minutes=50), 18112),
                         dims=("time", "ground_pixel", "scanline"))
    expected = ("variable PRODUCT/latitude has dimensions (time, ground_pixel, scanline), expected (time, "
                "scanline, ground_pixel) first")
    for read in TROPOMI_READERS.values():
        assert _granule_error(read, path).problem == expected


def test_tropomi_one_variable_in_the_wrong_order(tmp_path):
    path = _tropomi_like(tmp_path / tropomi_filename(DAY, DAY + dt.timedelta(minutes=50), 18112),
                         shapes={"so2": ("time", "ground_pixel", "scanline")})
    err = _granule_error(TROPOMI_READERS["read_swath"], path)
    assert "variable PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_7km has dimensions " \
           "(time, ground_pixel, scanline)" in err.problem


@pytest.mark.parametrize("shapes, reader, expected", [
    ({"latitude": ("scanline", "ground_pixel")}, "read_swath",
     "variable PRODUCT/latitude has 2 dimensions, expected 3"),
    ({"latitude": ("scanline", "ground_pixel")}, "index geolocation",
     "variable PRODUCT/latitude has dimensions (scanline, ground_pixel), expected (time, scanline, ground_pixel) "
     "first"),
    ({"longitude": ("time", "scanline", "other")}, "read_swath",
     "variable PRODUCT/longitude has dimensions (time, scanline, other), expected (time, scanline, ground_pixel) "
     "first"),
    ({"longitude": ("time", "scanline", "other")}, "index geolocation",
     "variable PRODUCT/longitude has dimensions (time, scanline, other), expected (time, scanline, ground_pixel) "
     "first"),
    ({"so2_pixels": 7}, "read_swath",
     "variable PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_7km has shape (12, 7), "
     "expected (12, 12) first"),
])
def test_tropomi_wrong_shapes(tmp_path, shapes, reader, expected):
    path = _tropomi_like(tmp_path / tropomi_filename(DAY, DAY + dt.timedelta(minutes=50), 18112), shapes=shapes)
    assert _granule_error(TROPOMI_READERS[reader], path).problem == expected


def _caliop_like(path: Path, n: int = 6, per_profile=None, curtain=None, names=None, n_alt: int = 583) -> Path:
    """An HDF4 file laid out like a CALIOP L1B granule, with chosen SDS shapes (and the metadata Vdata)."""
    per_profile = per_profile or (n, 1)
    curtain = curtain or (n, n_alt)
    names = names or ["Latitude", "Longitude", "Profile_Time", "Surface_Elevation",
                      "Total_Attenuated_Backscatter_532"]
    sd = SD(str(path), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    t0 = (DAY - dt.datetime(1993, 1, 1)).total_seconds() + 37.0
    for name in names:
        shape = curtain if "Backscatter" in name else per_profile
        is_time = name == "Profile_Time"
        sds = sd.create(name, SDC.FLOAT64 if is_time else SDC.FLOAT32, shape)
        size = int(np.prod(shape))
        values = (t0 + np.arange(size) * 1.5) if is_time else np.linspace(-10, 10, size)
        sds[:] = values.reshape(shape).astype(np.float64 if is_time else np.float32)
        sds.endaccess()
    sd.end()
    hdf = HDF(str(path), HC.WRITE)
    vs = hdf.vstart()
    vd = vs.create("metadata", (("Lidar_Data_Altitudes", HC.FLOAT32, n_alt),))
    vd.write([[list(np.linspace(40.0, -0.5, n_alt).astype(float))]])
    vd.detach()
    vs.end()
    hdf.close()
    return path


def test_caliop_the_control_file_reads(tmp_path):
    path = _caliop_like(tmp_path / caliop_filename(DAY, "D"))
    ds = read_curtain(path)
    assert ds.sizes == {"profile": 6, "altitude": 583}
    assert float(ds["latitude"][0]) == pytest.approx(-10.0) and float(ds["latitude"][-1]) == pytest.approx(10.0)
    assert read_track(path).sizes == {"profile": 6}
    assert gi.caliop_geolocation(str(path)).duration_s == pytest.approx(7.5)


def test_caliop_file_with_other_variables(tmp_path):
    path = _caliop_like(tmp_path / caliop_filename(DAY, "D"), names=["Something_Else"])
    for name, read in CALIOP_READERS.items():
        problem = _granule_error(read, path).problem
        expected = "has no Latitude data set: not a CALIOP L1B file" if name == "index geolocation" else \
            "has no SDS 'Latitude', so it is not a CALIOP L1B granule."
        assert problem == expected, name


def test_caliop_wrong_dimension_order(tmp_path):
    """Per-profile SDSs stored (1, profiles) and the curtain (583, profiles): transposed."""
    path = _caliop_like(tmp_path / caliop_filename(DAY, "D"), per_profile=(1, 6), curtain=(583, 6))
    for read in CALIOP_READERS.values():
        problem = _granule_error(read, path).problem
        assert problem.startswith("SDS 'Latitude' has shape (1, 6), not (profiles, 1) = (1, 1)"), problem


def test_caliop_curtain_of_the_wrong_shape(tmp_path):
    path = _caliop_like(tmp_path / caliop_filename(DAY, "D"), curtain=(6, 100))
    problem = _granule_error(CALIOP_READERS["read_curtain"], path).problem
    assert problem == ("SDS 'Total_Attenuated_Backscatter_532' has shape (6, 100), not (profiles, altitude bins) = "
                       "(6, 583): wrong dimension order or not a CALIOP L1B granule.")
    assert read_track(path).sizes == {"profile": 6}  # the track alone is sound
    path = _caliop_like(tmp_path / caliop_filename(DAY, "N"), curtain=(583, 583), n=583)
    assert read_curtain(path).sizes == {"profile": 583, "altitude": 583}  # square: the shape is right


def test_caliop_per_profile_sds_of_another_length(tmp_path):
    path = _caliop_like(tmp_path / caliop_filename(DAY, "D"), names=["Latitude", "Longitude", "Profile_Time"])
    sd = SD(str(path), SDC.WRITE)
    sds = sd.create("Surface_Elevation", SDC.FLOAT32, (4, 1))
    sds[:] = np.zeros((4, 1), np.float32)
    sds.endaccess()
    sd.end()
    for name in ("read_curtain", "read_track", "index geolocation"):
        problem = _granule_error(CALIOP_READERS[name], path).problem
        assert problem.startswith("SDS 'Surface_Elevation' has shape (4, 1), not (profiles, 1) = (6, 1)"), name


# --- the index and VolcPlume skip them, name them and go on ----------------------------------------------------


def _catalogue_for(root: Path, where: Path) -> Path:
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root))
    path = where / "tiny-copy.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def damaged_copy(tiny_copy, tmp_path):
    """The tiny archive with damaged granules added under valid names; returns (root, catalogue, damaged names)."""
    t_src = sorted((tiny_copy / "tropomi").rglob("S5P_*.nc"))[0]
    c_src = sorted((tiny_copy / "caliop").rglob("CAL_LID_*.hdf"))[0]
    data_t, data_c = t_src.read_bytes(), c_src.read_bytes()
    folder_t, folder_c = t_src.parent, c_src.parent
    damaged = {
        folder_t / tropomi_filename(DAY.replace(hour=23), DAY.replace(hour=23, minute=50), 18200): data_t[:5000],
        folder_t / tropomi_filename(DAY.replace(hour=22), DAY.replace(hour=22, minute=50), 18201): b"",
        folder_c / caliop_filename(DAY.replace(hour=23), "N"): data_c[: len(data_c) // 2],
        folder_c / caliop_filename(DAY.replace(hour=22), "N"): b"\x0e\x03\x13\x01" + bytes(range(256)) * 4,
    }
    for path, data in damaged.items():
        path.write_bytes(data)
    names = {str(p.relative_to(tiny_copy)) for p in damaged}
    return tiny_copy, _catalogue_for(tiny_copy, tmp_path), names


def test_the_index_skips_and_names_damaged_granules(damaged_copy, tiny_archive_path):
    root, catalogue, names = damaged_copy
    index = gi.open_index(str(catalogue), products=["tropomi_so2", "caliop_l1b"])
    reasons = dict(index.last_report.skipped)
    assert set(reasons) == names  # relative to the archive root
    assert all("truncated" in r or "corrupt" in r or "cannot be opened" in r for r in reasons.values()), reasons
    assert str(root) not in str(index.last_report)
    n_good = len(list((tiny_archive_path / "tropomi").rglob("*.nc"))) + len(
        list((tiny_archive_path / "caliop").rglob("*.hdf")))
    assert len(index) == n_good


def test_volcplume_skips_a_granule_damaged_after_indexing_and_says_so(tiny_copy, tmp_path):
    from app.views.log_console import LogConsole
    from app.views.volcplume import VolcPlume

    archive = Archive(str(_catalogue_for(tiny_copy, tmp_path)))
    archive.refresh()
    rows = archive.granules("tropomi_so2", "2021-04-12", "2021-04-13", (-90.0, 5.0, -55.0, 30.0))
    assert len(rows) >= 2
    victim = Path(rows["path"].iloc[0])
    victim.write_bytes(victim.read_bytes()[:3000])  # damaged after the index saw it whole
    log = LogConsole()
    vp = VolcPlume(archive=archive, log=log, date=dt.date(2021, 4, 12), zone="Caribbean")
    name = str(victim.relative_to(tiny_copy))
    warnings = log.messages("warning")
    said = [m for m in warnings if name in m]
    assert len(said) == 1 and said[0].startswith(f"skipped {name}: cannot be opened as a netCDF-4 file"), warnings
    assert all(str(tiny_copy) not in m for m in log.messages())
    # the other orbits are shown, with SO2 pixels
    assert len(vp.layers) >= 1 and sum(vp.pixel_counts().values()) > 0
    assert int(rows["orbit"].iloc[0]) not in vp.pixel_counts()


# --- read_many: any reader failure is one skipped granule, named with its reason -------------------------------


def _damaged_kinds(folder: Path, original: Path) -> dict[str, Path]:
    """Damaged TROPOMI granules of several kinds under valid names, in ``folder``."""
    def name(hour: int, orbit: int) -> Path:
        return folder / tropomi_filename(DAY.replace(hour=hour), DAY.replace(hour=hour, minute=50), orbit)

    truncated = name(23, 18300)
    truncated.write_bytes(original.read_bytes()[:5000])
    wrong_dims = _tropomi_like(name(22, 18301), dims=("time", "ground_pixel", "scanline"))
    wrong_dtype = _tropomi_like(name(21, 18302))
    with netCDF4.Dataset(wrong_dtype, "a") as nc:  # the column as text: a variable of the wrong dtype
        det = nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"]
        det.renameVariable("sulfurdioxide_total_vertical_column_7km", "old")
        text = det.createVariable("sulfurdioxide_total_vertical_column_7km", str, ("time", "scanline", "ground_pixel"))
        text[0, 0, 0] = "a lot of SO2"
    not_netcdf = name(20, 18303)
    import h5py

    with h5py.File(not_netcdf, "w") as h5:  # HDF5 with the right names but no netCDF dimensions
        grp = h5.create_group("PRODUCT")
        grp.create_dataset("latitude", data=np.zeros((1, 12, 12), "f4"))
        grp.create_dataset("time", data=np.zeros(1, "i4"))
        h5.attrs["time_coverage_start"] = "2021-04-12T20:00:00"
    return {"truncated": truncated, "wrong dimensions": wrong_dims, "wrong dtype": wrong_dtype,
            "HDF5 not netCDF": not_netcdf}


def test_read_many_skips_any_reader_failure_and_names_it(tiny_copy, tmp_path):
    from app.data.archive import read_swath_cached

    archive = Archive(str(_catalogue_for(tiny_copy, tmp_path)))
    good = sorted((tiny_copy / "tropomi").rglob("S5P_*.nc"))[:2]
    damaged = _damaged_kinds(good[0].parent, good[0])
    surprise = good[1]  # a good file whose reader fails in a way no one planned: still one skipped granule

    def reader(path):
        if Path(path) == surprise:
            raise ZeroDivisionError("division by zero")
        return read_swath_cached(path, ("so2_7km", "qa_value"))

    said = []
    result = archive.read_many([good[0], *damaged.values(), surprise], reader, lambda lvl, msg: said.append(msg))
    assert [ds.attrs["source"] for ds in result.datasets] == [str(good[0])]  # the rest is read
    reasons = dict(result.skipped)
    rel = {kind: str(p.relative_to(tiny_copy)) for kind, p in damaged.items()}
    assert set(reasons) == {*rel.values(), str(surprise.relative_to(tiny_copy))}
    assert reasons[rel["truncated"]].startswith(f"{rel['truncated']}: cannot be opened as a netCDF-4 file")
    assert reasons[rel["wrong dimensions"]] == (
        f"{rel['wrong dimensions']}: variable PRODUCT/latitude has dimensions (time, ground_pixel, scanline), "
        "expected (time, scanline, ground_pixel) first")
    assert reasons[rel["wrong dtype"]] == (f"{rel['wrong dtype']}: cannot be read (truncated or corrupt file?): "
                                           "ValueError: could not convert string to float: 'a lot of SO2'")
    assert reasons[rel["HDF5 not netCDF"]] == (  # HDF5 without dimension scales: netCDF4 sees phony dimensions
        f"{rel['HDF5 not netCDF']}: variable PRODUCT/latitude has dimensions (phony_dim_0, phony_dim_1, phony_dim_2), "
        "expected (time, scanline, ground_pixel) first")
    assert reasons[str(surprise.relative_to(tiny_copy))] == (
        f"{surprise.relative_to(tiny_copy)}: cannot be read (ZeroDivisionError: division by zero)")
    assert len(said) == 5 and all(m.startswith("skipped ") for m in said)
    assert all(str(tiny_copy) not in m for m in said)  # named relative to the archive root, never the server path


def test_volcplume_draws_the_rest_when_a_reader_raises_anything(tiny_copy, tmp_path, monkeypatch):
    import app.views.volcplume as view
    from app.views.log_console import LogConsole

    archive = Archive(str(_catalogue_for(tiny_copy, tmp_path)))
    rows = archive.granules("tropomi_so2", "2021-04-12", "2021-04-13", (-90.0, 5.0, -55.0, 30.0))
    victim = str(rows["path"].iloc[0])
    real = view.read_swath_cached

    def flaky(path, variables, with_bounds=False, reader="tropomi_l2_so2"):
        if str(path) == victim:
            raise KeyError("sulfurdioxide_total_vertical_column_7km")  # a reader's own bug, not a GranuleError
        return real(path, variables, with_bounds, reader)

    monkeypatch.setattr(view, "read_swath_cached", flaky)
    log = LogConsole()
    vp = view.VolcPlume(archive=archive, log=log, date=dt.date(2021, 4, 12), zone="Caribbean")
    name = str(Path(victim).relative_to(tiny_copy))
    errors = [m for m in log.messages("error") if name in m]
    assert errors == [f"skipped {name}: cannot be read (KeyError: 'sulfurdioxide_total_vertical_column_7km')"]
    assert int(rows["orbit"].iloc[0]) not in vp.pixel_counts()
    assert len(vp.layers) == len(rows) - 1 and sum(vp.pixel_counts().values()) > 0
