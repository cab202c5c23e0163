"""Our TROPOMI reader and the granule index read S5P L2 SO2 granules laid out as the real product is.

The fixtures (``s5p_so2.build``) start from a real OFFL granule (orbit 12367, processor 01.01.07) and add data
variables as HARP describes them; expected values are computed by hand from what the builder wrote.
"""

from __future__ import annotations

import logging
import shutil

import netCDF4
import numpy as np
import pytest

from app.data import index as gi
from app.data.catalog import ProductInfo
from app.data.errors import GranuleError
from app.data.filenames import PATTERNS
from app.data.tropomi import DU_PER_MOL_M2, LevelUnavailable, read_attrs, read_swath

from . import s5p_so2 as fx

WINDOW = slice(fx.WINDOW_START, fx.WINDOW_START + fx.WINDOW_ROWS)
ALL_COLUMNS = ["so2_pbl", "so2_1km", "so2_7km", "so2_15km"]


@pytest.fixture
def granule(tmp_path):
    """The SO2 layout of processor 01.01.07: per-pixel delta_time, PBL and 1/7/15 km columns."""
    return fx.build(tmp_path)


# --- attributes of the real file --------------------------------------------------------------------------------


def test_real_attributes_orbit_and_times_without_z():
    """The stripped real file itself: its own attributes, read as they are (no trailing Z, lon_min > lon_max)."""
    attrs = read_attrs(fx.REAL_GRANULE)
    assert attrs["orbit"] == 12367 and attrs["platform"] == "S5P" and attrs["processor_version"] == "01.01.07"
    assert attrs["time_coverage_start"] == "2020-03-03T01:57:22"
    assert attrs["start"] == np.datetime64("2020-03-03T01:57:22") and attrs["end"] == np.datetime64(
        "2020-03-03T02:55:45")
    assert (attrs["n_scanlines"], attrs["n_ground_pixels"]) == (4172, 450)
    # across the antimeridian: the real geospatial bounds are accepted as written
    assert attrs["lon_min"] == pytest.approx(179.99998) and attrs["lon_max"] == pytest.approx(-179.99994)
    assert attrs["lat_min"] == pytest.approx(-89.96963) and attrs["lat_max"] == pytest.approx(89.97301)
    assert attrs["footprint"].shape == (327, 2)
    assert attrs["footprint"][0].tolist() == pytest.approx([67.30902, 46.37023])  # (lat, lon) from the GML posList


def test_stripped_real_file_is_a_granule_error_naming_what_is_missing():
    with pytest.raises(GranuleError) as err:
        read_swath(fx.REAL_GRANULE, ["so2_pbl"])
    assert err.value.problem == "variable latitude is missing from group PRODUCT (needed for the pixel latitudes)"


def test_built_granule_attributes(granule):
    attrs = read_attrs(granule.path)
    assert attrs["orbit"] == 12367 and attrs["processor_version"] == "01.01.07"
    assert attrs["start"] == np.datetime64("2020-03-03T01:57:22")
    assert set(attrs["unavailable_levels"]) == {"3km"}
    assert "processor version 01.01.07 predates it" in attrs["unavailable_levels"]["3km"]
    assert "02.08.00" in attrs["unavailable_levels"]["3km"]


# --- scanline times ---------------------------------------------------------------------------------------------


def test_scanline_times_from_per_pixel_delta_time(granule):
    ds = read_swath(granule.path, ["so2_7km"], scanlines=WINDOW, with_bounds=False)
    times = ds["time"].values
    # by hand: 01:57:22 + (2040 + row) × 0.84 s; row 0 = 7042 s + 1713.6 s = 8755.6 s = 02:25:55.600
    assert times[0] == np.datetime64("2020-03-03T02:25:55.600")
    assert times[-1] == np.datetime64("2020-03-03T02:26:45.160")  # + 59 × 0.84 s
    assert list(times) == [granule.scanline_time(k) for k in range(fx.WINDOW_ROWS)]
    # row 0's first pixels hold fill: its time comes from its other pixels
    assert np.isnan(granule.delta_ms[0, : fx.FILL_TIME_PIXELS]).all()


def test_scanline_time_of_a_window_and_a_row_without_time(tmp_path):
    g = fx.build(tmp_path, blank_time_rows=(5,))
    ds = read_swath(g.path, ["so2_pbl"], scanlines=slice(fx.WINDOW_START + 3, fx.WINDOW_START + 8))
    times = ds["time"].values
    assert times.shape == (5,)
    assert np.isnat(times[2])  # window row 5: every pixel's delta_time is fill
    assert [times[i] for i in (0, 1, 3, 4)] == [g.scanline_time(k) for k in (3, 4, 6, 7)]
    assert times[0] == np.datetime64("2020-03-03T02:25:58.120")


def test_two_dimensional_delta_time_still_reads(tmp_path):
    """NO2/CO/CH4 write delta_time per scanline, (time, scanline): the same times come out."""
    g = fx.build(tmp_path, delta_time_dims=2)
    with netCDF4.Dataset(g.path) as nc:
        assert nc["PRODUCT/delta_time"].dimensions == ("time", "scanline")
    ds = read_swath(g.path, ["so2_7km"], scanlines=WINDOW, with_bounds=False)
    assert list(ds["time"].values) == [g.scanline_time(k) for k in range(fx.WINDOW_ROWS)]
    assert float(ds["so2_7km"][fx.PEAK]) == pytest.approx(4.0e-3 * 2241.15, rel=1e-6)


# --- values -----------------------------------------------------------------------------------------------------


def test_du_from_each_variables_attribute(granule):
    ds = read_swath(granule.path, [*ALL_COLUMNS, "so2_7km_precision"], scanlines=WINDOW, with_bounds=False)
    # by hand at the plume's peak: 4.0e-3 mol m-2 × 2241.15 = 8.9646 DU; the other boxes by their ratio
    assert float(ds["so2_7km"][fx.PEAK]) == pytest.approx(8.9646, rel=1e-6)
    assert float(ds["so2_pbl"][fx.PEAK]) == pytest.approx(2.5 * 8.9646, rel=1e-6)
    assert float(ds["so2_1km"][fx.PEAK]) == pytest.approx(1.6 * 8.9646, rel=1e-6)
    assert float(ds["so2_15km"][fx.PEAK]) == pytest.approx(0.8 * 8.9646, rel=1e-6)
    assert float(ds["so2_7km_precision"][3, 3]) == pytest.approx(3.0e-4 * 2241.15, rel=1e-6)
    for name, box in zip(ALL_COLUMNS, ("pbl", "1km", "7km", "15km"), strict=True):
        assert ds[name].attrs["units"] == "DU"
        np.testing.assert_allclose(ds[name].values, granule.columns[box] * np.float32(2241.15), rtol=1e-6)
    assert np.isnan(ds["so2_7km"].values[0, 0])  # the fill pixel

    # the factor is the variable's own: change it in one variable and only that one changes
    with netCDF4.Dataset(granule.path, "a") as nc:
        nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_7km"] \
            .multiplication_factor_to_convert_to_DU = np.float32(2000.0)
    ds = read_swath(granule.path, ["so2_7km", "so2_15km"], scanlines=WINDOW, with_bounds=False)
    assert float(ds["so2_7km"][fx.PEAK]) == pytest.approx(8.0, rel=1e-6)
    assert float(ds["so2_15km"][fx.PEAK]) == pytest.approx(0.8 * 8.9646, rel=1e-6)


def test_du_fallback_to_the_product_constant_says_so_once(tmp_path, caplog):
    g = fx.build(tmp_path, du_attribute=False)
    caplog.set_level(logging.INFO, logger="app.data.tropomi")
    ds = read_swath(g.path, ["so2_7km", "so2_pbl"], scanlines=WINDOW, with_bounds=False)
    assert DU_PER_MOL_M2 == 2241.15
    assert float(ds["so2_7km"][fx.PEAK]) == pytest.approx(4.0e-3 * 2241.15, rel=1e-6)
    assert float(ds["so2_pbl"][fx.PEAK]) == pytest.approx(2.5 * 4.0e-3 * 2241.15, rel=1e-6)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.data.tropomi"]
    assert len(lines) == 2
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "app.data.tropomi")
    seven = next(line for line in lines if "_7km" in line)
    assert seven == (f"{g.path.name}: variable PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/"
                     "sulfurdioxide_total_vertical_column_7km has no multiplication_factor_to_convert_to_DU "
                     "attribute; using the product constant 2241.15 DU per mol m-2 (1 DU = 4.4615e-4 mol m-2)")
    assert str(tmp_path) not in "".join(lines)  # the file by its name, never the server's folder
    caplog.clear()
    read_swath(g.path, ["so2_7km"], scanlines=WINDOW, with_bounds=False)
    assert [r for r in caplog.records if r.name == "app.data.tropomi"] == []  # said once per file and variable


def test_geolocation_qa_and_angles(granule):
    ds = read_swath(granule.path, ["qa_value", "solar_zenith_angle"], scanlines=WINDOW)
    assert ds.sizes == {"scanline": 60, "ground_pixel": 450, "corner": 4}
    np.testing.assert_allclose(ds["latitude"].values, granule.latitude, atol=1e-5)
    np.testing.assert_allclose(ds["longitude"].values, granule.longitude, atol=1e-4)
    # by hand: row 2070 (window 30), ground pixel 0: lat -85 + 170 × 2070 / 4171 - 0.449, lon 180 - 13.021 = 166.979
    assert float(ds["latitude"][30, 0]) == pytest.approx(-85 + 170 * 2070 / 4171 - 0.449, abs=1e-5)
    assert float(ds["longitude"][30, 0]) == pytest.approx(166.979, abs=1e-4)
    assert float(ds["longitude"][30, -1]) == pytest.approx(-180 + 13.021, abs=1e-4)  # across the antimeridian
    # qa_value: uint8 × 0.01; 255 is fill
    assert float(ds["qa_value"][1, 0]) == pytest.approx(0.75) and float(ds["qa_value"][1, -1]) == pytest.approx(0.40)
    assert np.isnan(ds["qa_value"].values[0, 0])
    assert float(ds["solar_zenith_angle"][10, 100]) == pytest.approx(20.0 + 10.0 + 0.1, abs=1e-5)
    # corners 0 bottom-left … 3 top-left, half a pixel from the centre
    lat_b = ds["latitude_bounds"].values[30, 100]
    assert lat_b[3] - lat_b[0] == pytest.approx(170 / 4171, abs=1e-5)
    assert lat_b[1] - lat_b[0] == pytest.approx(0.002, abs=1e-5)


# --- processor versions and box levels --------------------------------------------------------------------------


def test_older_processor_reads_and_names_the_missing_level(tmp_path):
    g = fx.build(tmp_path, processor_version="01.00.02")
    assert "_010002_" in g.path.name
    ds = read_swath(g.path, ["so2_pbl", "qa_value"], scanlines=WINDOW, with_bounds=False)
    assert float(ds["so2_pbl"][fx.PEAK]) == pytest.approx(2.5 * 8.9646, rel=1e-6)
    assert list(ds["time"].values[:2]) == [g.scanline_time(0), g.scanline_time(1)]
    attrs = read_attrs(g.path)
    assert attrs["processor_version"] == "01.00.02"
    assert set(attrs["unavailable_levels"]) == {"1km", "3km", "7km", "15km"}
    with pytest.raises(LevelUnavailable) as err:
        read_swath(g.path, ["so2_pbl", "so2_7km"], scanlines=WINDOW)
    exc = err.value
    assert isinstance(exc, GranuleError) and exc.path == str(g.path)
    assert exc.level == "7km" and exc.variable == "so2_7km"
    assert exc.reason == ("processor version 01.00.02 predates it (the 7 km box-profile column comes with processor "
                          "01.01.01)")
    assert exc.problem == f"the SO2 column of the 7 km box profile (level 7km) is unavailable: {exc.reason}"
    with pytest.raises(LevelUnavailable, match=r"level 1km\) is unavailable: processor version 01\.00\.02"):
        read_swath(g.path, ["so2_1km_precision"])


def test_three_km_box_from_processor_02_08_00(tmp_path):
    g = fx.build(tmp_path, processor_version="02.08.00")
    assert read_attrs(g.path)["unavailable_levels"] == {}
    ds = read_swath(g.path, ["so2_3km", "so2_7km"], scanlines=WINDOW, with_bounds=False)
    assert float(ds["so2_3km"][fx.PEAK]) == pytest.approx(1.25 * 8.9646, rel=1e-6)
    assert ds["so2_3km"].attrs["source_variable"] == (
        "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS/sulfurdioxide_total_vertical_column_3km")


def test_a_missing_box_column_in_a_recent_processor_is_named(granule, tmp_path):
    bad = tmp_path / "bad" / granule.path.name
    bad.parent.mkdir()
    shutil.copy(granule.path, bad)
    with netCDF4.Dataset(bad, "a") as nc:
        nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"].renameVariable("sulfurdioxide_total_vertical_column_15km", "x")
    with pytest.raises(LevelUnavailable) as err:
        read_swath(bad, ["so2_15km"])
    assert err.value.reason == ("variable sulfurdioxide_total_vertical_column_15km is missing from group "
                                "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS (the file is from processor version 01.01.07)")


# --- the granule index ------------------------------------------------------------------------------------------


def test_index_geolocation_across_the_antimeridian(granule, tmp_path):
    root = tmp_path / "archive"
    day_dir = root / "tropomi" / "2020" / "03" / "03"
    day_dir.mkdir(parents=True)
    shutil.move(granule.path, day_dir / granule.path.name)
    geo = gi.tropomi_geolocation(str(day_dir / granule.path.name))
    assert geo.orbit == 12367
    # every 16th scanline is sampled: in the window, 2048 … 2096; the lowest sample is scanline 2048, pixel 0
    assert np.nanmin(geo.latitude) == pytest.approx(-85 + 170 * 2048 / 4171 - 0.449, abs=1e-5)
    assert np.isfinite(geo.latitude).sum(axis=0).max() == 4  # rows 2048, 2064, 2080, 2096; the rest is fill

    index = gi.GranuleIndex(path=tmp_path / gi.INDEX_FILENAME)
    source = ProductInfo(product="tropomi_so2", title="S5P SO2", platform="", instrument="",
                         root_url=str(root / "tropomi"), glob="*/*/*/S5P_*_L2__SO2____*.nc",
                         pattern=PATTERNS["tropomi_so2"].pattern, reader="", entry="tropomi_so2")
    report = index.refresh([source])
    assert report.skipped == [] and len(report.added) == 1
    row = index.table.iloc[0]
    assert row["orbit"] == 12367 and row["processor"] == 10107 and row["collection"] == 1
    assert bool(row["crosses_antimeridian"])
    assert row["lon_min"] > row["lon_max"]  # the interval wraps across ±180
    assert len(index.query("tropomi_so2", "2020-03-03", "2020-03-04", bbox=(170.0, -10.0, -170.0, 10.0))) == 1
    assert len(index.query("tropomi_so2", bbox=(-180.0, -10.0, -170.0, 10.0))) == 1
    assert index.query("tropomi_so2", bbox=(100.0, -10.0, 120.0, 10.0)).empty


# --- the SO2 layer height (processor 02.05.00 on), hand-built -----------------------------------------------------

#: The layer height written at the plume's peak and around it (m, as the real product's units), and its QA.
LH_PEAK_M = np.float32(12500.0)


def _add_layer_height(g, units: str = "m") -> np.ndarray:
    """Add PRODUCT/SO2_LAYER_HEIGHT as HARP and ESA's announcement (30 May 2023) name it; returns the heights (m)."""
    height = np.full((fx.WINDOW_ROWS, fx.N_GROUND_PIXELS), np.nan, dtype=np.float32)
    height[fx.PEAK[0] - 2: fx.PEAK[0] + 3, fx.PEAK[1] - 2: fx.PEAK[1] + 3] = LH_PEAK_M - 500.0
    height[fx.PEAK] = LH_PEAK_M
    qa = np.where(np.isfinite(height), 90, 0).astype(np.uint8)
    qa[fx.PEAK[0] - 2, fx.PEAK[1] - 2] = 30  # one low-quality retrieval
    dims = ("time", "scanline", "ground_pixel")
    window = (0, slice(fx.WINDOW_START, fx.WINDOW_START + fx.WINDOW_ROWS))
    scale = 1000.0 if units == "km" else 1.0
    with netCDF4.Dataset(g.path, "a") as nc:
        lh = nc["PRODUCT"].createGroup("SO2_LAYER_HEIGHT")
        v = lh.createVariable("sulfurdioxide_layer_height", "f4", dims, fill_value=fx.FLOAT_FILL)
        v.units = units
        v[window] = np.where(np.isfinite(height), height / scale, fx.FLOAT_FILL)
        q = lh.createVariable("qa_value_layer_height", "u1", dims, fill_value=np.uint8(255))
        q.set_auto_maskandscale(False)
        q.scale_factor, q.add_offset = np.float32(0.01), np.float32(0.0)
        q[window] = qa
    return height


def test_layer_height_in_km_from_processor_02_05_00(tmp_path):
    g = fx.build(tmp_path, processor_version="02.05.00")
    height = _add_layer_height(g)
    attrs = read_attrs(g.path)
    assert attrs["unavailable_layers"] == {} and set(attrs["unavailable_levels"]) == {"3km"}
    ds = read_swath(g.path, ["so2_layer_height", "qa_value_layer_height"], scanlines=WINDOW, with_bounds=False)
    assert ds["so2_layer_height"].attrs["units"] == "km"
    assert float(ds["so2_layer_height"][fx.PEAK]) == pytest.approx(12.5)
    assert float(ds["so2_layer_height"][fx.PEAK[0] + 1, fx.PEAK[1]]) == pytest.approx(12.0)
    np.testing.assert_allclose(ds["so2_layer_height"].values, height / 1000.0, rtol=1e-6)  # NaN where fill
    assert float(ds["qa_value_layer_height"][fx.PEAK]) == pytest.approx(0.9)
    assert np.isfinite(ds["so2_layer_height"].values).sum() == 25


def test_layer_height_units_are_read_from_the_file(tmp_path):
    g = fx.build(tmp_path, processor_version="02.05.00")
    _add_layer_height(g, units="km")
    ds = read_swath(g.path, ["so2_layer_height"], scanlines=WINDOW, with_bounds=False)
    assert float(ds["so2_layer_height"][fx.PEAK]) == pytest.approx(12.5)
    with netCDF4.Dataset(g.path, "a") as nc:
        nc["PRODUCT/SO2_LAYER_HEIGHT/sulfurdioxide_layer_height"].units = "hPa"
    with pytest.raises(GranuleError, match=r"sulfurdioxide_layer_height has units 'hpa', expected a height in m or km"):
        read_swath(g.path, ["so2_layer_height"])


def test_no_layer_height_before_02_05_00_says_why(granule):
    assert read_attrs(granule.path)["unavailable_layers"] == {"layer_height": (
        "processor version 01.01.07 predates it (the SO2 layer height comes with processor 02.05.00)")}
    with pytest.raises(LevelUnavailable) as err:
        read_swath(granule.path, ["so2_layer_height"])
    assert err.value.level == "layer_height"
    assert err.value.problem.startswith("the SO2 layer height is unavailable: processor version 01.01.07 predates it")


# --- our sample writer's output has the real granule's layout ---------------------------------------------------

#: Global attributes of the real file that record the operational processor's own build and inputs: a synthetic
#: sample does not imitate them (everything else of the real root attributes, it writes).
PROCESSOR_PROVENANCE = {
    "cpp_compiler_version", "cpp_compiler_flags", "f90_compiler_version", "f90_compiler_flags", "exe_linker_flags",
    "build_date", "revision_control_identifier", "geolocation_grid_from_band", "identifier_product_doi",
    "identifier_product_doi_authority", "algorithm_version", "processing_status", "cloud_mode", "Status_MET_2D",
    "Status_NISE__", "Status_CTMFCT_CTMANA", "Status_BG", "Status_AER_AI", "Status_L2__CLOUD_",
    "Status_reference_spectrum", "Status_L2__O3____",
}
#: The real name of orbit 18121 (2021-04-12, OFFL): collection 01, processor 02.01.04 (issue 8).
REAL_2021_NAME = "S5P_OFFL_L2__SO2____20210412T151823_20210412T165953_18121_01_020104_20210414T175908.nc"
ISO_SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


@pytest.fixture(scope="module")
def sample_granule(tmp_path_factory):
    """One orbit of the La Soufrière scenario written by our sample writer (coarse: a second to write)."""
    from app.sample.tropomi import write_tropomi_orbit

    return write_tropomi_orbit("soufriere", 18121, tmp_path_factory.mktemp("sample"), scanline_step=32,
                               pixel_step=25)


def test_sample_name_is_the_real_collection_and_processor(sample_granule):
    from app.data.filenames import parse_filename

    ours, real = parse_filename(sample_granule.name, "tropomi_so2"), parse_filename(REAL_2021_NAME, "tropomi_so2")
    for key in ("mode", "orbit", "collection", "processor"):
        assert ours[key] == real[key], key
    assert "_18121_01_020104_" in sample_granule.name
    # the orbit's start in the name within a minute of the real one (our orbit model is not the flight dynamics')
    t = [np.datetime64(f"{n[:4]}-{n[4:6]}-{n[6:8]}T{n[9:11]}:{n[11:13]}:{n[13:15]}")
         for n in (sample_granule.name[20:35], REAL_2021_NAME[20:35])]
    assert abs(int((t[0] - t[1]).astype("timedelta64[s]").astype(int))) < 60


def test_sample_root_attributes_are_the_real_ones(sample_granule):
    import re

    with netCDF4.Dataset(fx.REAL_GRANULE) as real, netCDF4.Dataset(sample_granule) as ours:
        real_attrs, our_attrs = set(real.ncattrs()), set(ours.ncattrs())
        assert real_attrs - our_attrs <= PROCESSOR_PROVENANCE, sorted(real_attrs - our_attrs - PROCESSOR_PROVENANCE)
        assert our_attrs - real_attrs == {"comment"}  # ours says it is synthetic
        for key in ("time_coverage_start", "time_coverage_end", "time_reference", "date_created"):
            assert re.fullmatch(ISO_SECONDS, str(real.getncattr(key))), key  # the real form: no Z
            assert re.fullmatch(ISO_SECONDS, str(ours.getncattr(key))), (key, ours.getncattr(key))
        for key in our_attrs & real_attrs:  # the same types: int32 orbit, float32 bounds, strings
            assert type(ours.getncattr(key)) is type(real.getncattr(key)), key
        assert ours.processor_version == "02.01.04" and ours.title == real.title
        assert set(real["METADATA"].groups) <= set(ours["METADATA"].groups)


def test_sample_dimensions_and_delta_time_are_the_real_layout(sample_granule):
    with netCDF4.Dataset(fx.REAL_GRANULE) as real, netCDF4.Dataset(sample_granule) as ours:
        assert set(ours["PRODUCT"].dimensions) == set(real["PRODUCT"].dimensions)
        for dim in ("time", "corner", "layer"):
            assert len(ours["PRODUCT"].dimensions[dim]) == len(real["PRODUCT"].dimensions[dim])
        dvar = ours["PRODUCT/delta_time"]
        assert dvar.dimensions == ("time", "scanline", "ground_pixel")  # per pixel, as HARP's SO2 ingestion
        assert dvar.dtype == np.int32 and dvar.getncattr("_FillValue") == fx.INT32_FILL
        assert dvar.units == "milliseconds since 2021-04-12 00:00:00"  # the day of its time_reference
        assert ours.time_reference == "2021-04-12T00:00:00"  # in the real form, e.g. 2020-03-03T00:00:00
        raw = dvar[0]
        assert (raw == raw[:, :1]).all()  # the pixels of a scanline are measured together
        det = ours["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"].variables
        assert {"sulfurdioxide_total_vertical_column_1km", "sulfurdioxide_total_vertical_column_7km",
                "sulfurdioxide_total_vertical_column_15km"} <= set(det)
        assert "sulfurdioxide_total_vertical_column_3km" not in det  # 02.01.04 predates the 3 km box
        assert "SO2_LAYER_HEIGHT" not in ours["PRODUCT"].groups  # and the layer height
    attrs = read_attrs(sample_granule)
    assert attrs["start"] == np.datetime64(attrs["time_coverage_start"])
    assert set(attrs["unavailable_levels"]) == {"3km"} and set(attrs["unavailable_layers"]) == {"layer_height"}
    ds = read_swath(sample_granule, ["so2_7km"], with_bounds=False)
    assert not np.isnat(ds["time"].values).any()
    assert ds["time"].values[0] >= attrs["start"] - np.timedelta64(30, "s")


@pytest.mark.parametrize("day, collection, processor", [
    ("2020-03-03", 1, "010107"),  # the real stripped granule's day
    ("2021-04-12", 1, "020104"),  # the real granule of issue 8
    ("2021-12-06", 2, "020301"),
    ("2023-07-20", 3, "020500"),
    ("2025-07-05", 3, "020701"),  # the public NRTI granule of FORMATS.md (orbit 40035)
    ("2026-03-26", 3, "020800"),
])
def test_processing_baseline_of_a_day(day, collection, processor):
    from app.sample.tropomi import processing_baseline

    assert processing_baseline(day) == (collection, processor)


def test_sample_from_02_08_00_has_the_3km_column_and_the_layer_height(tmp_path):
    from app.sample.tropomi import simulate_orbit, write_tropomi_orbit

    path = write_tropomi_orbit("soufriere", 18121, tmp_path, scanline_step=32, pixel_step=25, processor="020800",
                               collection=3)
    assert "_18121_03_020800_" in path.name
    with netCDF4.Dataset(path) as nc:
        lh = nc["PRODUCT/SO2_LAYER_HEIGHT"]
        assert {"sulfurdioxide_layer_height", "sulfurdioxide_layer_height_precision", "sulfurdioxide_layer_pressure",
                "qa_value_layer_height"} <= set(lh.variables)
        assert lh["sulfurdioxide_layer_height"].units == "m"
        assert lh["sulfurdioxide_layer_height"].dimensions == ("time", "scanline", "ground_pixel")
    attrs = read_attrs(path)
    assert attrs["unavailable_levels"] == {} and attrs["unavailable_layers"] == {}
    ds = read_swath(path, ["so2_3km", "so2_7km", "so2_layer_height"], with_bounds=False)
    sim = simulate_orbit("soufriere", 18121, scanline_step=32, pixel_step=25)
    seen = np.isfinite(sim.layer_height_km)
    assert seen.any()
    np.testing.assert_allclose(ds["so2_layer_height"].values[seen], sim.layer_height_km[seen], atol=1e-3)  # km
    assert np.isnan(ds["so2_layer_height"].values[~seen]).all()
    np.testing.assert_allclose(ds["so2_3km"].values, sim.column_du["3km"], rtol=1e-3, atol=0.01)
