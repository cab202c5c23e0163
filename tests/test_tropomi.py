"""TROPOMI L2 SO2: the sample writer (app.sample.tropomi) and the reader (app.data.tropomi), round trip."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import netCDF4
import numpy as np
import pytest

from app.data.errors import GranuleError
from app.data.filenames import parse_filename
from app.data.tropomi import VARIABLES, read_attrs, read_swath
from app.sample import tropomi as T
from app.sample.orbit import EARTH_RADIUS_KM, SENTINEL_5P

SCANLINE_STEP, PIXEL_STEP = 16, 9  # 226 x 50 pixels: fast
ORBIT = 18120  # 2021-04-12, daylit over the Caribbean: sees the La Soufrière plume
BOXES = ("so2_pbl", "so2_1km", "so2_7km", "so2_15km")
DU_QUANTUM = 2.0**-17 * T.DU_FACTOR  # least_significant_digit=5 on mol m-2 columns


def _km(lat1, lon1, lat2, lon2):
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.deg2rad(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def granule(tmp_path_factory):
    root = tmp_path_factory.mktemp("tropomi")
    path = T.write_tropomi_orbit(
        "soufriere-tiny", ORBIT, root, scanline_step=SCANLINE_STEP, pixel_step=PIXEL_STEP, rng_seed=7
    )
    sim = T.simulate_orbit("soufriere-tiny", ORBIT, scanline_step=SCANLINE_STEP, pixel_step=PIXEL_STEP, rng_seed=7)
    return path, sim


# --- orbits, names, geometry ---------------------------------------------------------------------------------


def test_orbits_of_the_seed_day_and_their_daylit_halves():
    day = np.datetime64("2021-04-12")
    orbits = SENTINEL_5P.orbits_between(day, day + 1)
    assert list(orbits) == list(range(18112, 18127))
    start, end = T.daylit_window(18112)
    assert abs(start - np.datetime64("2021-04-12T00:30")) < np.timedelta64(90, "s")
    assert abs(end - np.datetime64("2021-04-12T01:21")) < np.timedelta64(90, "s")


def test_file_name_folder_and_orbit(granule):
    path, _ = granule
    fields = parse_filename(path, "tropomi_so2")
    assert fields["mode"] == "OFFL" and fields["orbit"] == ORBIT
    # as the real OFFL granules of 2021-04-12 (e.g. orbit 18121: ..._18121_01_020104_...): collection 01
    assert fields["processor"] == 20104 and fields["collection"] == 1
    assert int(SENTINEL_5P.orbit_number(np.datetime64(fields["start"]) + np.timedelta64(1, "s"))) == ORBIT
    duration = (fields["end"] - fields["start"]).total_seconds()
    assert duration == pytest.approx(SENTINEL_5P.period_s, abs=2)
    assert fields["created"] > fields["end"]
    assert path.parent.parts[-4:] == ("tropomi", "2021", "04", "12")
    with netCDF4.Dataset(path) as nc:
        assert int(nc.orbit) == ORBIT
        assert nc.processor_version == "02.01.04"
        assert nc.sensor == "TROPOMI" and nc.platform == "S5P"
        assert "SYNTHETIC" in nc.comment


def test_full_resolution_swath_width_and_nadir_pixel():
    geo = T.swath_geometry(18112, scanline_step=1, pixel_step=1, scanlines=slice(1800, 1801))
    assert geo.shape == (1, 450)
    assert geo.n_scanlines_orbit == 3624  # 0.84 s scanlines over half a 101.5 min orbit
    lat_b, lon_b = geo.latitude_bounds[0], geo.longitude_bounds[0]
    width = _km(lat_b[0, 0], lon_b[0, 0], lat_b[-1, 1], lon_b[-1, 1])
    assert width == pytest.approx(2600, abs=100)
    across = _km(lat_b[:, 0], lon_b[:, 0], lat_b[:, 1], lon_b[:, 1])
    along = _km(lat_b[:, 0], lon_b[:, 0], lat_b[:, 3], lon_b[:, 3])
    assert across[224] == pytest.approx(3.5, abs=0.1) and across[225] == pytest.approx(3.5, abs=0.1)
    assert along[224] == pytest.approx(5.5, abs=0.1)
    assert across[0] > 4 * across[224]  # edge pixels are much wider
    assert geo.viewing_zenith_angle[0, 0] == pytest.approx(66.0, abs=1.0)


def test_daylit_half_runs_south_to_north_and_decimates():
    geo = T.swath_geometry(ORBIT, scanline_step=SCANLINE_STEP, pixel_step=PIXEL_STEP)
    assert geo.shape == (3624 // SCANLINE_STEP, 50)
    assert geo.satellite_latitude[0] < -80 and geo.satellite_latitude[-1] > 80
    assert np.all(np.diff(geo.time) > np.timedelta64(0))
    assert np.diff(geo.time)[0] == np.timedelta64(int(0.84 * SCANLINE_STEP * 1e9), "ns")
    mid = geo.shape[0] // 2
    assert geo.solar_zenith_angle[mid].max() < 60  # early afternoon at the equator
    # ground pixel 0 is on the left of the flight: west on the ascending (daylit) half
    assert geo.longitude[mid, 0] < geo.longitude[mid, -1]


def test_corners_enclose_centres_anticlockwise(granule):
    path, _ = granule
    ds = read_swath(path, ["qa_value"])
    lat, lon = ds.latitude.values, ds.longitude.values
    lat_b, lon_b = ds.latitude_bounds.values, ds.longitude_bounds.values
    ok = np.abs(lat) < 80
    coslat = np.cos(np.deg2rad(lat))[..., None]
    x = ((lon_b - lon[..., None] + 180) % 360 - 180) * coslat
    y = lat_b - lat[..., None]
    x1, y1 = x, y
    x2, y2 = np.roll(x, -1, axis=-1), np.roll(y, -1, axis=-1)
    cross = x1 * y2 - x2 * y1  # > 0: the centre is on the left of each edge, going 0 -> 1 -> 2 -> 3 -> 0
    assert ok.sum() > 0.8 * ok.size
    assert np.all(cross[ok] > 0)


# --- round trip and physics ----------------------------------------------------------------------------------


def test_round_trip_writer_to_reader(granule):
    path, sim = granule
    ds = read_swath(path, [*BOXES, "qa_value", "solar_zenith_angle", "viewing_zenith_angle", "so2_7km_precision"])
    boxes = {"so2_pbl": "pbl", "so2_1km": "1km", "so2_7km": "7km", "so2_15km": "15km"}
    for name, box in boxes.items():
        got, want = ds[name].values, sim.column_du[box]
        assert ds[name].attrs["units"] == "DU"
        np.testing.assert_array_equal(np.isnan(got), ~sim.valid)
        np.testing.assert_allclose(got[sim.valid], want[sim.valid], atol=DU_QUANTUM, rtol=1e-5)
    np.testing.assert_allclose(
        ds.so2_7km_precision.values[sim.valid], sim.precision_du["7km"][sim.valid], atol=DU_QUANTUM
    )
    np.testing.assert_allclose(ds.qa_value.values, sim.qa_value, atol=1e-6)
    np.testing.assert_allclose(ds.solar_zenith_angle.values, sim.geometry.solar_zenith_angle, atol=0.04)
    assert np.all(np.abs(ds.time.values - sim.geometry.time) <= np.timedelta64(500, "us"))  # stored in ms
    # the plume is there: the truth peaks over several DU near the volcano, and the file sees it
    peak = np.unravel_index(np.nanargmax(sim.true_column_du), sim.true_column_du.shape)
    assert sim.true_column_du[peak] > 3
    assert ds.so2_7km.values[peak] > 0.5 * sim.true_column_du[peak]
    assert ds.attrs["orbit"] == ORBIT and ds.attrs["platform"] == "S5P" and ds.attrs["source"] == str(path)
    assert ds.attrs["ground_pixel_step"] == PIXEL_STEP


def test_scanline_window_reads_the_same_values(granule):
    path, _ = granule
    full = read_swath(path, ["so2_7km", "qa_value"])
    part = read_swath(path, ["so2_7km", "qa_value"], scanlines=slice(100, 140))
    assert part.sizes["scanline"] == 40 and set(part.data_vars) == {"so2_7km", "qa_value"}
    for name in ("so2_7km", "qa_value", "latitude", "longitude_bounds", "time"):
        np.testing.assert_array_equal(part[name].values, full[name].values[100:140])
    nob = read_swath(path, "so2_pbl", with_bounds=False)
    assert "latitude_bounds" not in nob.coords and "so2_7km" not in nob


@dataclass
class _Uniform:
    """A stand-in scenario: the same plume column and height everywhere, clear sky, all sea."""

    column_du: float
    height_km: float
    name: str = "uniform"
    volcano = SimpleNamespace(latitude=13.33, longitude=-61.18)

    def so2_column_du(self, lat, lon, time, pixel_var_km2=0.0):
        return np.full(np.shape(lat), self.column_du)

    def so2_layer_height_km(self, lat, lon, time):
        return np.full(np.shape(lat), self.height_km)

    def clouds(self, lat, lon, time):
        zero = np.zeros(np.shape(lat))
        return SimpleNamespace(fraction=zero, top_km=np.full(np.shape(lat), np.nan), optical_depth=zero)

    def surface_is_land(self, lat, lon):
        return np.zeros(np.shape(lat), dtype=bool)


def test_orbit_written_in_blocks_equals_the_whole_simulation(tmp_path):
    truth = _Uniform(3.0, 10.0)
    path = T.write_tropomi_orbit(truth, ORBIT, tmp_path, scanline_step=4, pixel_step=25, rng_seed=11)
    sim = T.simulate_orbit(truth, ORBIT, scanline_step=4, pixel_step=25, rng_seed=11)
    assert sim.geometry.shape[0] > 3 * 256  # several blocks of scanlines
    ds = read_swath(path, ["so2_1km", "qa_value"])
    np.testing.assert_allclose(ds.so2_1km.values, sim.column_du["1km"], atol=DU_QUANTUM, equal_nan=True)
    np.testing.assert_allclose(ds.latitude_bounds.values, sim.geometry.latitude_bounds, atol=1e-3)
    window = T.simulate_orbit(truth, ORBIT, scanline_step=4, pixel_step=25, rng_seed=11, scanlines=slice(250, 270))
    np.testing.assert_array_equal(window.column_du["1km"], sim.column_du["1km"][250:270])  # same noise


@pytest.mark.parametrize("height_km, box", [(0.0, "so2_pbl"), (1.0, "so2_1km"), (7.0, "so2_7km"), (15.0, "so2_15km")])
def test_the_box_at_the_plume_height_returns_the_truth(tmp_path, height_km, box):
    path = T.write_tropomi_orbit(
        _Uniform(10.0, height_km), ORBIT, tmp_path, scanline_step=32, pixel_step=25, noise=False
    )
    ds = read_swath(path, BOXES, with_bounds=False)
    valid = np.isfinite(ds[box].values)
    assert valid.mean() > 0.8
    np.testing.assert_allclose(ds[box].values[valid], 10.0, atol=DU_QUANTUM)
    # one slant column, air-mass factors growing with height: PBL > 1 km > 7 km > 15 km
    cols = [ds[b].values[valid] for b in BOXES]
    for lower, higher in zip(cols, cols[1:], strict=False):
        assert np.all(lower > higher)


def test_amf_numbers_and_noise_levels(tmp_path):
    nadir = [float(T.air_mass_factor(h, 0.0, 0.0)) for h in (0.0, 1.0, 7.0, 15.0)]
    np.testing.assert_allclose(nadir, [0.355, 0.50, 1.05, 1.45], atol=0.01)
    assert T.air_mass_factor(1.0, 70.0) < T.air_mass_factor(1.0, 30.0)  # falls with SZA
    # a cloud below the plume raises the AMF, a cloud above it shields
    assert (
        T.air_mass_factor(10.0, 30, 0, 1.0, 5.0, 20.0)
        > T.air_mass_factor(10.0, 30)
        > T.air_mass_factor(2.0, 30, 0, 1.0, 5.0, 20.0)
    )

    truth = _Uniform(0.0, 7.0)
    sim = T.simulate_orbit(truth, ORBIT, scanline_step=4, pixel_step=9, rng_seed=3)
    sza = sim.geometry.solar_zenith_angle
    low = sim.valid & (sza < 40)
    high = sim.valid & (sza > 65) & (sza < 75)
    std = {box: np.std(sim.column_du[box][low]) for box in ("pbl", "1km", "7km", "15km")}
    assert 0.6 < std["pbl"] < 1.3 and 0.2 < std["7km"] < 0.45
    assert std["pbl"] > std["1km"] > std["7km"] > std["15km"]
    assert np.std(sim.column_du["pbl"][high]) > 1.5 * std["pbl"]  # grows with SZA
    # the stored precision is the noise actually added
    z = sim.column_du["7km"][low] / sim.precision_du["7km"][low]
    assert np.std(z) == pytest.approx(1.0, abs=0.05)


def test_qa_value_scale_and_invalid_pixels(granule):
    path, sim = granule
    with netCDF4.Dataset(path) as nc:
        var = nc["PRODUCT/qa_value"]
        var.set_auto_maskandscale(False)
        raw = var[:]
        assert raw.dtype == np.uint8 and raw.max() <= 100 and raw.max() >= 95
        assert var.scale_factor == pytest.approx(0.01) and var.add_offset == 0
        col = nc["PRODUCT/sulfurdioxide_total_vertical_column"]
        assert col.multiplication_factor_to_convert_to_DU == pytest.approx(2241.15)
        assert col.units == "mol m-2" and col._FillValue == np.float32(9.96921e36)
    ds = read_swath(path, ["qa_value", "so2_pbl", "solar_zenith_angle"])
    qa, sza = ds.qa_value.values, ds.solar_zenith_angle.values
    assert qa.min() >= 0 and qa.max() <= 1
    dark = sza > 88
    assert dark.any() and np.all(np.isnan(ds.so2_pbl.values[dark])) and np.all(qa[dark] == 0)
    assert np.all(qa[(sza > 80) & ~dark] < 0.5)
    clear = sim.valid & (sim.cloud_fraction == 0) & (sza < 60)
    cloudy = sim.valid & (sim.cloud_fraction > 0.5) & (sza < 60)
    assert np.all(qa[clear] == 1.0) and cloudy.any() and np.all(qa[cloudy] < 0.9)


# --- independent reader, cheap attributes, day writer ---------------------------------------------------------


def test_satpy_reads_our_file_like_our_reader(granule, tmp_path):
    """Satpy's ``tropomi_l2`` reads our data arrays as ours does.

    Its reader parses ``time_coverage_*`` with a trailing ``Z`` (``DATE_FMT`` in satpy/readers/tropomi_l2.py, 0.60
    and its main branch), which the real DLR files (and so ours) do not have: the copy it is given gets one.
    """
    satpy = pytest.importorskip("satpy")
    original, _ = granule
    path = tmp_path / original.name
    shutil.copy(original, path)
    with netCDF4.Dataset(path, "a") as nc:
        assert not nc.time_coverage_start.endswith("Z")  # the real form
        nc.time_coverage_start += "Z"
        nc.time_coverage_end += "Z"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = satpy.Scene(reader="tropomi_l2", filenames=[str(path)])
        names = set(scn.available_dataset_names())
        assert {"sulfurdioxide_total_vertical_column", "sulfurdioxide_total_vertical_column_7km", "qa_value"} <= names
        scn.load(["sulfurdioxide_total_vertical_column", "sulfurdioxide_total_vertical_column_7km", "qa_value"])
    ours = read_swath(path, ["so2_pbl", "so2_7km", "qa_value"])
    for satpy_name, name in (
        ("sulfurdioxide_total_vertical_column", "so2_pbl"),
        ("sulfurdioxide_total_vertical_column_7km", "so2_7km"),
    ):
        arr = scn[satpy_name]
        du = arr.values * arr.attrs["multiplication_factor_to_convert_to_DU"]
        np.testing.assert_allclose(du, ours[name].values, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(scn["qa_value"].values, ours.qa_value.values, atol=1e-6)
    assert scn["qa_value"].attrs["sensor"] == "tropomi"


def test_read_attrs_is_cheap_and_consistent(granule):
    path, sim = granule
    a = read_attrs(path)
    assert a["orbit"] == ORBIT and a["platform"] == "S5P" and a["product"] == "TROPOMI_L2_SO2"
    assert a["n_scanlines"] == sim.geometry.shape[0] and a["n_ground_pixels"] == sim.geometry.shape[1]
    assert abs(a["start"] - sim.geometry.scanline_start[0]) < np.timedelta64(1, "s")
    assert abs(a["end"] - sim.geometry.scanline_start[-1]) < np.timedelta64(1, "s")
    assert -90 <= a["lat_min"] < -80 and 80 < a["lat_max"] <= 90
    fp = a["footprint"]
    assert fp.ndim == 2 and fp.shape[1] == 2 and np.all(np.abs(fp[:, 0]) <= 90)
    np.testing.assert_allclose(fp[0], fp[-1], atol=1e-3)  # a closed ring


def test_write_day_over_a_region(tmp_path):
    region = (-90.0, -10.0, 0.0, 40.0)
    paths = T.write_tropomi_day(
        "soufriere-tiny", "2021-04-12", tmp_path, scanline_step=64, pixel_step=50, region=region
    )
    orbits = [parse_filename(p, "tropomi_so2")["orbit"] for p in paths]
    assert orbits == sorted(orbits) and 2 <= len(orbits) <= 6 and ORBIT in orbits
    assert all(18112 <= o <= 18126 for o in orbits)
    assert sorted(p.name for p in (tmp_path / "tropomi" / "2021" / "04" / "12").iterdir()) == sorted(
        p.name for p in paths
    )


# --- bad input -------------------------------------------------------------------------------------------------


def test_truncated_file_is_a_granule_error(granule, tmp_path):
    path, _ = granule
    bad = tmp_path / path.name
    data = path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GranuleError) as err:
        read_swath(bad, ["so2_7km"])
    assert str(bad) in str(err.value)
    (tmp_path / "empty.nc").write_bytes(b"")
    with pytest.raises(GranuleError, match="cannot be opened"):
        read_attrs(tmp_path / "empty.nc")
    with pytest.raises(GranuleError, match="does not exist"):
        read_swath(tmp_path / "nowhere.nc")


def test_missing_variable_or_group_is_a_granule_error(granule, tmp_path):
    path, _ = granule
    bad = tmp_path / path.name
    shutil.copy(path, bad)
    with netCDF4.Dataset(bad, "a") as nc:
        nc["PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"].renameVariable(
            "sulfurdioxide_total_vertical_column_7km", "something_else"
        )
    with pytest.raises(GranuleError) as err:
        read_swath(bad, ["so2_7km"])
    msg = str(err.value)
    assert str(bad) in msg and "sulfurdioxide_total_vertical_column_7km" in msg and "DETAILED_RESULTS" in msg
    read_swath(bad, ["so2_pbl"])  # the rest of the file still reads

    with netCDF4.Dataset(bad, "a") as nc:
        nc["PRODUCT/SUPPORT_DATA"].renameGroup("GEOLOCATIONS", "ELSEWHERE")
    with pytest.raises(GranuleError, match="group PRODUCT/SUPPORT_DATA/GEOLOCATIONS is missing"):
        read_swath(bad, ["so2_pbl"])
    assert read_swath(bad, ["so2_pbl"], with_bounds=False).so2_pbl.shape


def test_unknown_variable_is_a_granule_error(granule):
    path, _ = granule
    with pytest.raises(GranuleError, match="unknown TROPOMI variable 'so2_5km'") as err:
        read_swath(path, ["so2_7km", "so2_5km"])
    assert str(path) in str(err.value) and "so2_15km" in str(err.value)
    assert set(BOXES) <= set(VARIABLES)
