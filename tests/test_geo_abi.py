"""GOES ABI L1b sample slots: the scene model's physics, the real file structure, and satpy reading them as we do."""

from __future__ import annotations

import re
import shutil

import netCDF4
import numpy as np
import pyproj
import pytest
import xarray as xr

from app.data.errors import GranuleError, UserInputError
from app.data.geo_abi import parse_abi_name, read_abi
from app.data.geo_bands import ABI_BANDS, GEO_PLATFORMS, band_for_generic, window_channel
from app.sample.geo.abi import write_abi_slot
from app.sample.geo.scene import (
    GeoGrid,
    air_pressure_hpa,
    air_temperature_k,
    cloud_top,
    grid_cloud_top,
    scan_angles_to_lonlat,
    simulate_channels,
)
from app.sample.scenario import get_scenario

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

SLOT = "2021-04-12T15:00"  # 11:00 local solar time at La Soufrière; the western limb is in the night
RES_KM = 32.0  # 339 x 339 pixels
CHANNELS = ("vis_06", "nir_08", "ir_87", "ir_105", "ir_112", "ir_120")


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("soufriere-tiny")


@pytest.fixture(scope="module")
def slot(tmp_path_factory, scenario):
    out = tmp_path_factory.mktemp("abi")
    paths = write_abi_slot(scenario, "G16", SLOT, out, resolution_km=RES_KM, channels=CHANNELS)
    return paths, read_abi(paths)


@pytest.fixture(scope="module")
def grid():
    return GeoGrid.full_disk("G16", RES_KM)


@pytest.fixture(scope="module")
def truth(scenario, grid):
    """The scenario's ash and clouds at the pixel centres, and the solar zenith angle."""
    from pyorbital.astronomy import sun_zenith_angle

    lat, lon = grid.lonlat()
    ok = np.isfinite(lat)
    t = np.datetime64(SLOT)
    ash = np.zeros(lat.shape)
    ash[ok] = scenario.ash_loading_g_m2(lat[ok], lon[ok], t)
    sza = np.full(lat.shape, np.nan)
    sza[ok] = sun_zenith_angle(t.astype("datetime64[us]").item(), lon[ok], lat[ok])
    return {"lat": lat, "lon": lon, "ash": ash, "clouds": grid_cloud_top(scenario, grid, t), "sza": sza}


# ------------------------------------------------------------------------------------------ scene model


def test_scan_angles_to_lonlat_is_the_inverse_of_proj_geos():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-0.15, 0.15, (2, 2000))
    for key in ("G16", "MSG4", "H08"):
        p = GEO_PLATFORMS[key].projection
        lat, lon = scan_angles_to_lonlat(x, y, p)
        ref = pyproj.Proj(proj="geos", lon_0=p.lon_0, h=p.h, a=p.a, b=p.b, sweep=p.sweep)
        rlon, rlat = ref(x * p.h, y * p.h, inverse=True)
        on = np.isfinite(lat)
        assert np.array_equal(on, np.abs(rlat) <= 90), key  # the same points are off the disk
        assert np.allclose(lat[on], rlat[on], atol=1e-8) and np.allclose(lon[on], rlon[on], atol=1e-8), key


def test_full_disk_grids_have_the_real_sizes():
    assert GeoGrid.full_disk("G16").shape == (5424, 5424)
    assert GeoGrid.full_disk("G16", 0.5).shape == (21696, 21696)
    assert GeoGrid.full_disk("G17", 16).shape == (678, 678)
    assert GeoGrid.full_disk("H08").shape == (5500, 5500)
    assert GeoGrid.full_disk("MSG4").shape == (3712, 3712)
    g = GeoGrid.full_disk("G16")
    assert g.x_rad[0] == pytest.approx(-0.151844, abs=1e-9) and g.dx_rad == pytest.approx(56e-6)
    with pytest.raises(ValueError, match="whole pixels"):
        GeoGrid.full_disk("G16", 5.0)


def test_simulate_channels_is_nan_off_the_disk_and_names_unknown_channels(scenario):
    lat = np.array([[13.0, np.nan], [0.0, 40.0]])
    lon = np.array([[-61.0, np.nan], [-75.0, -100.0]])
    out = simulate_channels(scenario, lat, lon, np.datetime64(SLOT), -75.2, ["ir_105", "vis_06"])
    assert out["ir_105"].shape == (2, 2) and out["ir_105"].dtype == np.float32
    assert np.isnan(out["ir_105"][0, 1]) and np.isnan(out["vis_06"][0, 1])
    assert np.isfinite(out["ir_105"][[0, 1, 1], [0, 0, 1]]).all()
    with pytest.raises(ValueError, match="unknown generic channel 'ir_110'"):
        simulate_channels(scenario, lat, lon, np.datetime64(SLOT), -75.2, ["ir_110"])


def test_standard_atmosphere():
    assert air_temperature_k(0.0, 0.0) == pytest.approx(302.0)
    assert air_temperature_k(0.0, 10.0) == pytest.approx(237.0)
    assert air_temperature_k(0.0, 18.0) == pytest.approx(193.0)  # tropical tropopause
    assert air_temperature_k(45.0, 14.0) == pytest.approx(208.0)
    assert air_pressure_hpa(10.0, 0.0) == pytest.approx(1013.25)
    assert 95 < air_pressure_hpa(0.0, 16.0) < 125
    assert 240 < air_pressure_hpa(45.0, 10.0) < 290


def test_grid_cloud_tops_join_across_row_blocks_and_follow_the_scenario(scenario, grid):
    t = np.datetime64(SLOT)
    whole = grid_cloud_top(scenario, grid, t)
    parts = [grid_cloud_top(scenario, grid, t, rows) for rows in grid.row_blocks(20_000)]
    assert np.array_equal(np.vstack([p.fraction for p in parts]), whole.fraction)
    lat, lon = grid.lonlat()
    direct = cloud_top(scenario, lat, lon, t)
    on = np.isfinite(lat)
    assert (direct.cloudy == whole.cloudy)[on].mean() > 0.98
    both = direct.cloudy & whole.cloudy
    assert np.median(np.abs(direct.height_km - whole.height_km)[both]) < 0.1


# ------------------------------------------------------------------------------------------ the files


def test_files_have_real_names_and_structure(slot):
    paths, _ = slot
    assert len(paths) == len(CHANNELS)
    name = re.compile(r"^OR_ABI-L1b-RadF-M6C\d\d_G16_s2021102150\d{4}_e2021102150\d{4}_c2021102150\d{4}\.nc$")
    bands = []
    for path in paths:
        assert name.match(path.name), path.name
        info = parse_abi_name(path)
        bands.append(info["band"])
        with netCDF4.Dataset(path) as nc:
            for var in ("Rad", "DQF", "x", "y", "t", "time_bounds", "goes_imager_projection", "band_id",
                        "band_wavelength", "planck_fk1", "planck_fk2", "planck_bc1", "planck_bc2", "kappa0", "esun",
                        "earth_sun_distance_anomaly_in_AU", "nominal_satellite_subpoint_lon", "yaw_flip_flag"):
                assert var in nc.variables, (path.name, var)
            rad = nc["Rad"]
            assert rad.dtype == np.int16 and rad.getncattr("_Unsigned") == "true"
            assert rad.getncattr("_FillValue") == 2 ** ABI_BANDS[info["band"]].calibration["bit_depth"] - 1
            assert nc["x"].dtype == np.int16 and nc["x"].getncattr("units") == "rad"
            proj = nc["goes_imager_projection"]
            assert proj.getncattr("perspective_point_height") == 35786023.0
            assert proj.getncattr("sweep_angle_axis") == "x"
            assert proj.getncattr("longitude_of_projection_origin") == -75.0
            assert nc.getncattr("platform_ID") == "G16" and nc.getncattr("scene_id") == "Full Disk"
            assert nc.getncattr("spatial_resolution") == "32km at nadir"
            assert nc.getncattr("time_coverage_start") == "2021-04-12T15:00:20.4Z"
            assert float(nc["nominal_satellite_subpoint_lon"][...]) == pytest.approx(-75.2)
            if ABI_BANDS[info["band"]].is_solar:
                esd = float(nc["earth_sun_distance_anomaly_in_AU"][...])
                assert float(nc["kappa0"][...]) == pytest.approx(np.pi * esd**2 / float(nc["esun"][...]), rel=1e-6)
            else:
                assert float(nc["planck_fk1"][...]) == pytest.approx(ABI_BANDS[info["band"]].calibration["planck_fk1"])
    assert sorted(bands) == sorted(band_for_generic("abi", c).number for c in CHANNELS)


def test_reader_gives_a_canonical_geoscene(slot):
    _, ds = slot
    assert set(ds.data_vars) == set(CHANNELS) and ds["ir_105"].dims == ("y", "x")
    assert ds.sizes == {"y": 339, "x": 339}
    assert ds.attrs["platform"] == "GOES-16" and ds.attrs["sensor"] == "abi"
    assert ds.attrs["sub_lon"] == pytest.approx(-75.2) and ds.attrs["lon_0"] == -75.0
    assert ds.attrs["sweep"] == "x" and ds.attrs["h"] == 35786023.0
    assert ds.attrs["start_time"] == "2021-04-12T15:00:00.000Z"
    assert ds.attrs["observation_start_time"] == "2021-04-12T15:00:20.400Z"
    assert ds["ir_105"].attrs["units"] == "K" and ds["vis_06"].attrs["units"] == "%"
    assert ds["ir_105"].attrs["band"] == "C13"
    assert ds.x[0] < 0 < ds.x[-1] and ds.y[0] > 0 > ds.y[-1]  # x east, y north, row 0 at the north
    assert ds.x[-1] == pytest.approx(-ds.x[0]) and ds.x[-1] == pytest.approx(0.151424 * 35786023.0)
    only = read_abi(ds.attrs["source"], channels=["ir_120"])
    assert list(only.data_vars) == ["ir_120"]
    np.testing.assert_array_equal(only["ir_120"], ds["ir_120"])


def test_satpy_reads_the_same_values_and_area(slot):
    satpy = pytest.importorskip("satpy")
    paths, ds = slot
    scn = satpy.Scene(reader="abi_l1b", filenames=[str(p) for p in paths])
    scn.load(["C13", "C02"])
    for band, name in (("C13", "ir_105"), ("C02", "vis_06")):
        theirs, ours = scn[band].values, ds[name].values
        np.testing.assert_array_equal(np.isnan(theirs), np.isnan(ours))
        np.testing.assert_allclose(theirs, ours, atol=1e-3, equal_nan=True)
    area = scn["C13"].attrs["area"]
    assert area.shape == ds["ir_105"].shape
    dx = float(ds.x[1] - ds.x[0])
    ours = (float(ds.x[0]) - dx / 2, float(ds.y[-1]) - dx / 2, float(ds.x[-1]) + dx / 2, float(ds.y[0]) + dx / 2)
    np.testing.assert_allclose(area.area_extent, ours, atol=1.0)
    np.testing.assert_allclose(area.area_extent, (-5434894.885056,) * 2 + (5434894.885056,) * 2, atol=1e-3)
    proj = GEO_PLATFORMS["G16"].projection
    rows, cols = np.array([60, 150, 170, 200, 300]), np.array([80, 170, 200, 250, 150])
    lon_s, lat_s = np.array([area.get_lonlat(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]).T
    lat_o, lon_o = scan_angles_to_lonlat(ds.x.values[cols] / ds.attrs["h"], ds.y.values[rows] / ds.attrs["h"], proj)
    np.testing.assert_allclose(lat_o, lat_s, atol=0.01)
    np.testing.assert_allclose(lon_o, lon_s, atol=0.01)


# ------------------------------------------------------------------------------------------ physics


def test_brightness_temperatures_are_terrestrial(slot):
    _, ds = slot
    for name in ("ir_87", "ir_105", "ir_112", "ir_120"):
        v = ds[name].values
        on = np.isfinite(v)
        assert on.mean() > 0.7
        assert 180.0 < v[on].min() and v[on].max() < 330.0, name


def test_ash_shows_a_negative_split_window(slot, truth):
    _, ds = slot
    win = window_channel(ds.data_vars)
    assert win == "ir_105"
    split = (ds[win] - ds["ir_120"]).values  # T(10.35) − T(12.3): the split window
    ash = truth["ash"] >= 0.5
    assert ash.sum() >= 5
    assert (split[ash] < -0.5).all() and (split[ash] > -3.5).all()


class _StubScenario:
    """A clear tropical sea at noon with a uniform ash layer (or none) at 10 km, no SO2."""

    def __init__(self, ash_g_m2=0.0, cloud=None):
        self.ash, self.cloud = ash_g_m2, cloud

    def clouds(self, lat, lon, time):
        from app.sample.scenario import Clouds

        z = np.zeros(np.shape(lat))
        if self.cloud is None:
            return Clouds(z, z + np.nan, z + np.nan, z, z.astype(bool))
        top, tau, ice = self.cloud
        return Clouds(z + 1.0, z + top, z + top - 2.0, z + tau, z.astype(bool) | ice)

    def ash_loading_g_m2(self, lat, lon, time):
        return np.full(np.shape(lat), self.ash)

    def ash_height_km(self, lat, lon, time):
        return np.full(np.shape(lat), 10.0)

    def so2_column_du(self, lat, lon, time):
        return np.zeros(np.shape(lat))

    so2_layer_height_km = ash_height_km

    def surface_is_land(self, lat, lon):
        return np.zeros(np.shape(lat), bool)

    def surface_elevation_km(self, lat, lon):
        return np.zeros(np.shape(lat))


def _bts(scn, names=("ir_87", "ir_105", "ir_108", "ir_112", "ir_120", "vis_04", "vis_06", "nir_16")):
    lat, lon = np.array([10.0]), np.array([-45.0])
    out = simulate_channels(scn, lat, lon, np.datetime64("2021-04-12T15:00"), -75.2, names)
    return {k: float(v[0]) for k, v in out.items()}


def test_ash_signature_grows_with_loading_and_lowers_the_ash_rgb_green():
    clear = _bts(_StubScenario())
    assert 1.0 < clear["ir_108"] - clear["ir_120"] < 3.0  # clear tropical split window
    splits = []
    for load in (0.3, 1.0, 3.0, 10.0):
        b = _bts(_StubScenario(load))
        splits.append(b["ir_108"] - b["ir_120"])
        assert b["ir_108"] - b["ir_87"] < 0  # silicate absorbs less at 8.7 µm than at 10.8 µm: low Ash RGB green
        assert b["vis_04"] / b["vis_06"] < clear["vis_04"] / clear["vis_06"]  # brownish
    assert -3.0 <= min(splits) and max(splits) < -0.5
    assert all(a > b for a, b in zip(splits, splits[1:], strict=False))  # more negative with more ash


def test_ice_and_water_cloud_signatures():
    thin_ice = _bts(_StubScenario(cloud=(12.0, 2.0, True)))
    thick_ice = _bts(_StubScenario(cloud=(12.0, 60.0, True)))
    water = _bts(_StubScenario(cloud=(2.0, 30.0, False)))
    # opaque ice +1 K; thin cirrus more (Planck non-linearity of the radiance mixing: Inoue's arches)
    assert 1.0 <= thick_ice["ir_108"] - thick_ice["ir_120"] < 1.5
    assert 3.0 < thin_ice["ir_108"] - thin_ice["ir_120"] < 6.0
    assert thin_ice["ir_87"] > thin_ice["ir_108"]  # thin cirrus: 8.7 µm warmer than 10.8 µm
    assert water["ir_87"] < water["ir_108"]
    assert thick_ice["ir_108"] == pytest.approx(air_temperature_k(10.0, 12.0), abs=1.0)
    assert thick_ice["nir_16"] < water["nir_16"]  # ice absorbs at 1.6 µm (cyan in Natural Colour)


def test_ice_clouds_show_a_positive_split_window(slot, truth):
    _, ds = slot
    c = truth["clouds"]
    ice = c.is_ice & (c.fraction >= 0.5) & (truth["ash"] < 0.01)
    assert ice.sum() > 100
    split = (ds["ir_105"] - ds["ir_120"]).values[ice]
    assert (split > 0).all()
    assert 0.8 < np.median(split) < 3.5


def test_reflectance_is_zero_at_night_and_positive_by_day(slot, truth):
    _, ds = slot
    sza = truth["sza"]
    night, day = sza > 90.0, sza < 80.0
    assert night.sum() > 100 and day.sum() > 1000
    for name in ("vis_06", "nir_08"):
        v = ds[name].values
        # the lowest valid count is the first with a positive radiance: a tenth of a count above 0
        assert np.abs(v[night]).max() < 0.01, name
        assert (v[day] > 0.05).all() and np.nanmax(v) < 110, name
    lat, lon = truth["lat"], truth["lon"]
    model = simulate_channels(get_scenario("soufriere-tiny"), lat[night], lon[night], np.datetime64(SLOT), -75.2,
                              ["vis_06", "nir_16"])
    assert (model["vis_06"] == 0).all() and (model["nir_16"] == 0).all()


# ------------------------------------------------------------------------------------------ bad input


def test_truncated_file_raises_a_granule_error_naming_it(slot, tmp_path):
    paths, _ = slot
    bad = tmp_path / paths[0].name
    data = paths[0].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GranuleError, match=re.escape(bad.name)):
        read_abi([bad])


def test_missing_variable_raises_a_granule_error(slot, tmp_path):
    paths, _ = slot
    c13 = next(p for p in paths if "M6C13_" in p.name)
    bad = tmp_path / c13.name
    with xr.open_dataset(c13, decode_cf=False, mask_and_scale=False) as ds:
        ds.drop_vars("planck_fk1").to_netcdf(bad)
    with pytest.raises(GranuleError, match="planck_fk1") as err:
        read_abi([bad])
    assert bad.name in str(err.value)


def test_channels_asked_for_must_exist(slot, tmp_path):
    paths, _ = slot
    with pytest.raises(UserInputError, match="unknown ABI channel 'ir_108'"):
        read_abi(paths, channels=["ir_108"])
    with pytest.raises(GranuleError, match="wv_73"):
        read_abi(paths, channels=["wv_73"])
    copy = tmp_path / "x" / paths[0].name
    copy.parent.mkdir()
    shutil.copy(paths[0], copy)
    with pytest.raises(GranuleError, match="again"):
        read_abi([paths[0], copy])
