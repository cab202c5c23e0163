"""NWC SAF GEO CTTH sample files: real structure, satpy reads them as we do, and they agree with the imager."""

from __future__ import annotations

import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

from app.data.errors import GranuleError
from app.data.geo_abi import read_abi
from app.data.nwcsaf import read_ctth
from app.sample.geo.abi import write_abi_slot
from app.sample.geo.ctth import write_ctth_slot
from app.sample.geo.scene import GeoGrid, air_pressure_hpa, air_temperature_k
from app.sample.scenario import get_scenario

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

SLOT = "2021-04-12T15:00"
RES_KM = 32.0


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("soufriere-tiny")


@pytest.fixture(scope="module")
def goes(tmp_path_factory, scenario):
    out = tmp_path_factory.mktemp("ctth")
    grid = GeoGrid.full_disk("G16", RES_KM)
    path = write_ctth_slot(scenario, "GOES16", SLOT, out, grid)
    abi = read_abi(write_abi_slot(scenario, "G16", SLOT, out, resolution_km=RES_KM, channels=["ir_105"]))
    return path, read_ctth(path), abi


def test_file_has_the_real_name_and_structure(goes):
    path, _, _ = goes
    assert path.name == "S_NWC_CTTH_GOES16_FULL-DISK_20210412T150000Z.nc"
    with netCDF4.Dataset(path) as nc:
        assert nc.dimensions["nx"].size == nc.dimensions["ny"].size == 339
        for name in ("ctth_alti", "ctth_pres", "ctth_tempe", "ctth_effectiv", "ctth_method", "ctth_conditions",
                     "ctth_quality", "ctth_status_flag", "ctth_alti_pal", "ctth_pres_pal", "ctth_tempe_pal"):
            assert name in nc.variables, name
        alti = nc["ctth_alti"]
        assert alti.getncattr("add_offset") == -2000.0 and alti.getncattr("scale_factor") == 1.0
        assert list(alti.getncattr("valid_range")) == [0, 27000] and alti.getncattr("units") == "m"
        assert nc["ctth_pres"].getncattr("units") == "Pa" and nc["ctth_tempe"].getncattr("units") == "K"
        assert nc["ctth_alti_pal"].shape == (250, 3)
        assert nc.getncattr("satellite_identifier") == "GOES16"
        assert nc.getncattr("gdal_projection").startswith("+proj=geos +a=6378137.000")
        assert "+sweep=x" in nc.getncattr("gdal_projection")
        assert nc.getncattr("nominal_product_time") == "2021-04-12T15:00:00Z"


def test_reader_gives_a_canonical_cloudtop(goes):
    _, ds, abi = goes
    assert set(ds.data_vars) >= {"cloud_top_height", "cloud_top_temperature", "cloud_top_pressure"}
    assert ds["cloud_top_height"].dims == ("y", "x") and ds["cloud_top_height"].attrs["units"] == "m"
    assert ds["cloud_top_pressure"].attrs["units"] == "hPa"
    assert ds.attrs["platform"] == "GOES-16" and ds.attrs["sweep"] == "x"
    assert ds.attrs["start_time"] == abi.attrs["start_time"] == "2021-04-12T15:00:00.000Z"
    np.testing.assert_allclose(ds.x, abi.x, atol=1e-3)  # the imager's grid
    np.testing.assert_allclose(ds.y, abi.y, atol=1e-3)
    h = ds["cloud_top_height"].values
    cloudy = np.isfinite(h)
    assert 0.2 < cloudy.mean() < 0.8
    assert 300 < h[cloudy].min() and h[cloudy].max() < 17500
    t = ds["cloud_top_temperature"].values[cloudy]
    p = ds["cloud_top_pressure"].values[cloudy]
    assert 185 < t.min() and t.max() < 305 and 80 < p.min() and p.max() < 1000
    # temperature and pressure are the standard atmosphere's at the top height (to the stored precision: 1 m,
    # 0.01 K, 10 Pa)
    lat, _ = GeoGrid.full_disk("G16", RES_KM).lonlat()
    np.testing.assert_allclose(t, air_temperature_k(lat[cloudy], h[cloudy] / 1000.0), atol=0.02)
    np.testing.assert_allclose(p, air_pressure_hpa(lat[cloudy], h[cloudy] / 1000.0), atol=0.15)


def test_satpy_reads_the_same_heights_and_area(goes):
    satpy = pytest.importorskip("satpy")
    pytest.importorskip("h5py")  # satpy's nwcsaf-geo reader imports it
    path, ds, abi = goes
    scn = satpy.Scene(reader="nwcsaf-geo", filenames=[str(path)])
    scn.load(["ctth_alti", "ctth_tempe", "ctth_pres"])
    np.testing.assert_allclose(scn["ctth_alti"].values, ds["cloud_top_height"].values, atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(scn["ctth_tempe"].values, ds["cloud_top_temperature"].values, atol=1e-3,
                               equal_nan=True)
    np.testing.assert_allclose(scn["ctth_pres"].values / 100, ds["cloud_top_pressure"].values, atol=1e-3,
                               equal_nan=True)
    area = scn["ctth_alti"].attrs["area"]
    np.testing.assert_allclose(area.area_extent, (-5434894.885056,) * 2 + (5434894.885056,) * 2, atol=1e-3)
    abi_scn = satpy.Scene(reader="abi_l1b", filenames=abi.attrs["source"])
    abi_scn.load(["C13"])
    lon_a, lat_a = abi_scn["C13"].attrs["area"].get_lonlats()
    lon_c, lat_c = area.get_lonlats()
    on = np.isfinite(lat_a) & (np.abs(lat_a) < 90)
    np.testing.assert_allclose(lat_c[on], lat_a[on], atol=1e-6)


def test_ctth_temperature_is_the_window_temperature_of_opaque_clouds(goes):
    _, ds, abi = goes
    opaque = ds["effective_cloudiness"].values >= 0.995
    assert opaque.sum() > 100
    diff = abi["ir_105"].values[opaque] - ds["cloud_top_temperature"].values[opaque]
    assert np.abs(diff).max() < 2.0


def test_meteosat_region_on_a_sweep_y_grid(scenario, tmp_path):
    satpy = pytest.importorskip("satpy")
    pytest.importorskip("h5py")
    full = GeoGrid.full_disk("MSG4", 48.0)  # 232 x 232
    north = full.subset(slice(0, full.n_rows // 2), slice(None), name="MSG-N")
    path = write_ctth_slot(scenario, "MSG4", "2021-04-12T12:00", tmp_path, north)
    assert path.name == "S_NWC_CTTH_MSG4_MSG-N_20210412T120000Z.nc"
    ds = read_ctth(path)
    assert ds.sizes == {"y": 116, "x": 232} and ds.attrs["sweep"] == "y" and ds.attrs["platform"] == "Meteosat-11"
    assert ds.attrs["region"] == "MSG-N" and ds.attrs["end_time"] == "2021-04-12T12:15:00.000Z"
    scn = satpy.Scene(reader="nwcsaf-geo", filenames=[str(path)])
    scn.load(["ctth_alti"])
    np.testing.assert_allclose(scn["ctth_alti"].values, ds["cloud_top_height"].values, equal_nan=True)
    np.testing.assert_allclose(scn["ctth_alti"].attrs["area"].area_extent, north.area_extent_m, atol=1e-3)
    assert scn["ctth_alti"].attrs["platform_name"] == "Meteosat-11"


def test_truncated_file_raises_a_granule_error_naming_it(goes, tmp_path):
    path, _, _ = goes
    bad = tmp_path / path.name
    data = path.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(GranuleError, match=re.escape(bad.name)):
        read_ctth(bad)


def test_missing_variable_raises_a_granule_error(goes, tmp_path):
    path, _, _ = goes
    bad = tmp_path / path.name
    with xr.open_dataset(path, decode_cf=False, mask_and_scale=False) as ds:
        ds.drop_vars("ctth_tempe").to_netcdf(bad)
    with pytest.raises(GranuleError, match="ctth_tempe") as err:
        read_ctth(bad)
    assert bad.name in str(err.value)


def test_v2025_layout_has_a_time_dimension_and_reads_the_same(goes, scenario, tmp_path):
    """The NWC/GEO v2025 layout: (time, ny, nx) everywhere, no nominal_product_time; ours and satpy read it."""
    satpy = pytest.importorskip("satpy")
    _, v2018, _ = goes
    grid = GeoGrid.full_disk("G16", RES_KM)
    path = write_ctth_slot(scenario, "GOES16", SLOT, tmp_path, grid, version="v2025")
    with netCDF4.Dataset(path) as nc:
        assert nc["ctth_alti"].dimensions == ("time", "ny", "nx") and nc["ctth_alti"].shape == (1, 339, 339)
        assert nc["ctth_status_flag"].dimensions == ("time", "ny", "nx")
        assert "nominal_product_time" not in nc.ncattrs() and nc.getncattr("source").endswith("v2025.1")
    ds = read_ctth(path)
    assert ds.attrs["start_time"] == "2021-04-12T15:00:00.000Z"  # from the file name
    for name in ("cloud_top_height", "cloud_top_pressure", "cloud_top_temperature"):
        xr.testing.assert_identical(ds[name], v2018[name])
    scn = satpy.Scene([str(path)], reader="nwcsaf-geo")
    scn.load(["ctth_alti"])
    np.testing.assert_allclose(scn["ctth_alti"].values, ds.cloud_top_height.values, rtol=1e-6)


def test_default_version_follows_the_slot_year():
    from app.sample.geo.ctth import nwcsaf_version_for

    assert nwcsaf_version_for("2021-04-12T15:00") == "v2018"
    assert nwcsaf_version_for("2024-12-31T23:50") == "v2018"
    assert nwcsaf_version_for("2025-07-07T00:00") == "v2025"
