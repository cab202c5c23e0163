"""Meteosat SEVIRI netCDF: our writer -> satpy's seviri_l1b_nc reader and our reader agree with the fields put in.

Slots are written at resolution_factor 32 (116 × 116 pixels of 96 km) for Meteosat-11 (0°) and Meteosat-8
(41.5° E). Tolerances: satpy and our reader agree to 2e-3 K / 2e-3 % (satpy computes in float32); both give back
the field put in to half a 10-bit count (SEVIRI's own quantisation): ≤ 0.1 K for IR_108 above 260 K, ≤ 0.25 K
above 215 K, and ≤ 0.1 % reflectance for VIS006.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from app.data.errors import GranuleError, UserInputError
from app.data.geo_seviri import effective_radiance, parse_seviri_name, read_seviri
from app.sample.geo import seviri as writer

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

SLOT = dt.datetime(2021, 4, 12, 12, 0)
FACTOR = 32
N = 3712 // FACTOR
PLATFORMS = {"MSG4": ("Meteosat-11", 0.0, 324), "MSG1": ("Meteosat-8", 41.5, 321)}


def synthetic_fields(lon: np.ndarray, lat: np.ndarray, sub_lon: float) -> dict[str, np.ndarray]:
    """Smooth fields for all twelve channels, inside the count ranges; NaN off the disk."""
    c = np.cos(np.radians(lat)) * np.cos(np.radians(lon - sub_lon))
    wave = np.sin(np.radians(3 * lon)) * np.cos(np.radians(2 * lat))
    bt = 215.0 + 85.0 * c + 5.0 * wave
    return {
        "vis_06": 85.0 * c + 5.0 * wave + 6.0, "nir_08": 70.0 * c + 4.0, "nir_16": 40.0 * c + 2.0, "hrv": 60.0 * c,
        "ir_39": bt + 5.0, "wv_62": 205.0 + 30.0 * c, "wv_73": 215.0 + 40.0 * c, "ir_87": bt - 2.0,
        "ir_96": 215.0 + 45.0 * c, "ir_108": bt, "ir_120": bt - 1.0 + wave, "ir_133": 215.0 + 40.0 * c,
    }


@pytest.fixture(scope="module", params=sorted(PLATFORMS))
def slot(request, tmp_path_factory):
    platform = request.param
    out = tmp_path_factory.mktemp(platform)
    grid = writer.seviri_grid(platform, FACTOR)
    lon, lat = grid.lonlat()
    fields = synthetic_fields(lon, lat, grid.sub_lon)
    (path,) = writer.write_seviri_fields(fields, platform, SLOT, out, resolution_factor=FACTOR)
    return {"platform": platform, "path": path, "fields": fields, "lon": lon, "lat": lat}


@pytest.fixture(scope="module")
def scene(slot):
    satpy = pytest.importorskip("satpy")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*orbit polynomial.*")
        scn = satpy.Scene(reader="seviri_l1b_nc", filenames=[str(slot["path"])])
        scn.load(["IR_108", "VIS006", "IR_120"])
    return scn


@pytest.fixture(scope="module")
def ours(slot):
    return read_seviri(slot["path"])  # the eleven VIS/IR channels (satpy's seviri_l1b_nc has no HRV)


def test_file_is_named_as_eumetsat_netcdf(slot):
    name = slot["path"].name
    assert name == (f"W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{slot['platform']}+SEVIRI_C_EUMG_"
                    "20210412120009.nc")
    assert parse_seviri_name(name) == {"satellite": slot["platform"], "time": SLOT + dt.timedelta(seconds=9)}
    with netCDF4.Dataset(slot["path"]) as nc:
        assert nc.dimensions["num_rows_vis_ir"].size == N
        assert nc.dimensions["num_rows_hrv"].size == 3 * N
        assert nc.satellite_id == PLATFORMS[slot["platform"]][2]
        assert nc.vis_ir_column_dir_grid_step == pytest.approx(3.0004031658 * FACTOR)
        assert nc.west_most_pixel - nc.east_most_pixel + 1 == N


def test_canonical_geoscene(slot, ours):
    name, sub_lon, _ = PLATFORMS[slot["platform"]]
    assert ours["ir_108"].dims == ("y", "x") and ours["ir_108"].shape == (N, N)
    assert ours["ir_108"].attrs["units"] == "K" and ours["vis_06"].attrs["units"] == "%"
    assert ours.attrs["platform"] == name and ours.attrs["sensor"] == "seviri"
    assert ours.attrs["sub_lon"] == sub_lon == ours.attrs["lon_0"]
    assert ours.attrs["start_time"] == "2021-04-12T12:00:00.000Z"
    assert ours.attrs["end_time"] == "2021-04-12T12:15:00.000Z"
    assert ours.attrs["observation_start_time"] == "2021-04-12T12:00:09.500Z"
    assert ours.attrs["h"] == 35785831.0 and ours.attrs["a"] == 6378169.0
    assert np.all(np.diff(ours.x) > 0) and np.all(np.diff(ours.y) < 0)
    # the sub-satellite point is the centre of pixel (N/2, N/2)
    assert ours.x[N // 2] == pytest.approx(0.0, abs=1e-6) and ours.y[N // 2] == pytest.approx(0.0, abs=1e-6)


def test_our_reader_gives_back_every_field_to_half_a_count(slot, ours):
    sat_id = PLATFORMS[slot["platform"]][2]
    assert list(ours.data_vars) == list(writer.l15.VISIR_GENERIC)
    for generic in writer.l15.VISIR_GENERIC:
        number = writer.l15.GENERIC_SEVIRI[generic]
        channel = writer.l15.SEVIRI_CHANNELS[number][0]
        field, got = slot["fields"][generic], ours[generic].values
        assert np.array_equal(np.isnan(field), np.isnan(got)), generic
        on = np.isfinite(field)
        half = 0.5 * writer.GAIN[channel]
        if channel in writer.l15.SOLAR_CHANNELS:
            half *= writer.l15.reflectance_factor(sat_id, channel, SLOT + dt.timedelta(seconds=9.5))
            err = np.abs(got[on] - field[on])
        else:
            err = np.abs(effective_radiance(got[on], sat_id, channel) - effective_radiance(field[on], sat_id, channel))
        assert err.max() <= 1.02 * half, generic  # half a count (+ float32 rounding of the output)


def test_satpy_calibrates_to_the_field_and_to_our_reader(slot, scene, ours):
    for channel, generic in (("IR_108", "ir_108"), ("IR_120", "ir_120"), ("VIS006", "vis_06")):
        sat = scene[channel].values
        both = np.isfinite(sat) & np.isfinite(ours[generic].values)
        assert both.sum() > 0.7 * N * N
        np.testing.assert_allclose(sat[both], ours[generic].values[both], atol=2e-3, err_msg=channel)
        field = slot["fields"][generic]
        if channel == "VIS006":
            np.testing.assert_allclose(sat[both], field[both], atol=0.1)
        else:
            warm, mild = both & (field >= 260), both & (field >= 215)
            np.testing.assert_allclose(sat[warm], field[warm], atol=0.1, err_msg=channel)
            np.testing.assert_allclose(sat[mild], field[mild], atol=0.25, err_msg=channel)
    name, sub_lon, _ = PLATFORMS[slot["platform"]]
    attrs = scene["IR_108"].attrs
    assert attrs["platform_name"] == name and attrs["start_time"] == SLOT
    assert attrs["orbital_parameters"]["satellite_actual_longitude"] == pytest.approx(sub_lon, abs=1e-6)
    assert attrs["orbital_parameters"]["projection_longitude"] == sub_lon


def test_satpy_area_matches_ours(slot, scene, ours):
    area = scene["IR_108"].attrs["area"]
    assert area.shape == (N, N)
    px, py = area.get_proj_coords()
    np.testing.assert_allclose(px[0], ours.x.values, atol=1.0)
    np.testing.assert_allclose(py[:, 0], ours.y.values, atol=1.0)
    for row, col in ((N // 4, N // 3), (3 * N // 4, 2 * N // 3), (N // 2, N // 10), (N // 10, N // 2)):
        lon, lat = area.get_lonlat(row, col)
        assert lon == pytest.approx(slot["lon"][row, col], abs=0.02)
        assert lat == pytest.approx(slot["lat"][row, col], abs=0.02)
    lon, lat = area.get_lonlat(N // 2, N // 2)
    assert lon == pytest.approx(PLATFORMS[slot["platform"]][1], abs=1e-6) and lat == pytest.approx(0.0, abs=1e-6)


def test_write_slot_from_the_scene_model(tmp_path):
    from app.sample.scenario import get_scenario

    (path,) = writer.write_seviri_slot(get_scenario("soufriere-tiny"), "MSG4", dt.datetime(2021, 4, 12, 14, 20),
                                       tmp_path, resolution_factor=FACTOR)
    assert "_C_EUMG_20210412141509.nc" in path.name
    ds = read_seviri(path, channels=["ir_108", "ir_120", "vis_06"])
    assert 190 < np.nanmin(ds["ir_108"].values) < np.nanmax(ds["ir_108"].values) < 330
    assert np.nanmax(ds["vis_06"].values) > 10


# ---------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def one_file(tmp_path_factory):
    grid = writer.seviri_grid("MSG4", FACTOR)
    lon, lat = grid.lonlat()
    fields = synthetic_fields(lon, lat, 0.0)
    return writer.write_seviri_fields({"ir_108": fields["ir_108"]}, "MSG4", SLOT, tmp_path_factory.mktemp("one"),
                                      resolution_factor=FACTOR)[0]


def test_truncated_file_names_the_file(one_file, tmp_path):
    bad = tmp_path / one_file.name
    data = one_file.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GranuleError, match=r"SEVIRI_C_EUMG_20210412120009\.nc: cannot be read as netCDF4") as err:
        read_seviri(bad, channels=["ir_108"])
    assert err.value.path == str(bad)


def test_foreign_files(one_file, tmp_path):
    junk = tmp_path / one_file.name
    junk.write_bytes(b"not a netCDF file" * 100)
    with pytest.raises(GranuleError, match="cannot be read as netCDF4"):
        read_seviri(junk)
    other = tmp_path / "other.nc"
    with netCDF4.Dataset(other, "w") as nc:
        nc.createDimension("num_rows_vis_ir", 4)
        nc.createDimension("num_columns_vis_ir", 4)
        nc.satellite_id = 324
    with pytest.raises(GranuleError, match="global attribute longitude_of_SSP, .* missing"):
        read_seviri(other)
    with pytest.raises(GranuleError, match="no such file"):
        read_seviri(tmp_path / "missing.nc")


def test_channel_errors(one_file):
    with pytest.raises(UserInputError, match="unknown SEVIRI channel 'ir_105'"):
        read_seviri(one_file, channels=["ir_105"])
    with pytest.raises(UserInputError, match="one slot file at a time"):
        read_seviri([one_file, one_file])
    with pytest.raises(UserInputError, match="seviri_l1b_nc reader does not implement the HRV channel"):
        read_seviri(one_file, channels=["ir_108", "hrv"])
    ds = read_seviri(one_file, channels=["ir_120"])  # written as no data
    assert np.isnan(ds["ir_120"].values).all()


def test_the_satpy_reader_is_chosen_by_file_name():
    from app.data.geo_seviri import _hrit_files, seviri_format

    assert seviri_format("W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,MSG4+SEVIRI_C_EUMG_20210412120009.nc") \
        == "seviri_l1b_nc"
    assert seviri_format("MSG4-SEVI-MSG15-0100-NA-20210412121243.106000000Z-NA.nat") == "seviri_l1b_native"
    names = ["H-000-MSG4__-MSG4________-_________-PRO______-202104121200-__",
             "H-000-MSG4__-MSG4________-_________-EPI______-202104121200-__",
             "H-000-MSG4__-MSG4________-IR_108___-000001___-202104121200-C_",
             "H-000-MSG4__-MSG4________-IR_120___-000001___-202104121200-C_",
             "H-000-MSG4__-MSG4________-VIS006___-000008___-202104121200-__.bz2"]
    assert {seviri_format(n) for n in names} == {"seviri_l1b_hrit"}
    kept = [p.name for p in _hrit_files([Path(n) for n in names], ["ir_108", "vis_06"])]
    assert kept == [names[0], names[1], names[2], names[4]]  # prologue, epilogue and the channels asked for
