"""Our GEO readers (satpy underneath) read ABI L1b and AHI HSD files laid out as the real products are.

The fixtures (``abi_l1b.build``, ``ahi_hsd.build``) follow the GOES-R PUG L1b volume 3 and JMA's HSD User's Guide
1.3, with header values as satpy's own reader tests use them, for current platforms (GOES-18, GOES-19,
Himawari-9). Expected values are computed by hand in the builders from what they wrote: radiance -> brightness
temperature with the file's Planck coefficients, reflectance with the file's esun and Sun–Earth distance (ABI) or
albedo coefficient and updated gain (AHI), x/y from the scan angles times the satellite height.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.data.errors import GranuleError
from app.data.geo_abi import read_abi
from app.data.geo_ahi import read_ahi, read_hsd_segment

from . import abi_l1b, ahi_hsd

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    n = a.shape[0] // k
    return a.reshape(n, k, n, k).mean(axis=(1, 3))


def _assert_values(got: np.ndarray, expected: np.ndarray, atol: float) -> None:
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isfinite(expected).sum() > 0.5 * expected.size
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0, equal_nan=True)


# ------------------------------------------------------------------------------------------------------- ABI


@pytest.fixture(scope="module")
def goes18(tmp_path_factory):
    out = tmp_path_factory.mktemp("g18")
    return abi_l1b.build(out, "G18", 13), abi_l1b.build(out, "G18", 2)


def test_abi_g18_brightness_temperature_and_reflectance_by_hand(goes18):
    c13, c02 = goes18
    ds = read_abi([c13.path, c02.path], ["ir_105", "vis_06"])
    assert ds.sizes == {"y": abi_l1b.N, "x": abi_l1b.N}
    _assert_values(ds["ir_105"].values, c13.expected(), atol=2e-3)
    # C02 (0.5 km, 48 × 48) is averaged over 4 × 4 blocks onto the 2 km grid of C13
    _assert_values(ds["vis_06"].values, _block_mean(c02.expected(), 4), atol=2e-3)
    # a radiance below zero has no temperature; the fill value is off the disk
    assert np.isnan(ds["ir_105"].values[abi_l1b.N // 2, abi_l1b.N // 3])
    assert np.isnan(ds["ir_105"].values[0, 0]) and np.isfinite(ds["ir_105"].values[abi_l1b.N // 2, 1])
    assert ds["ir_105"].attrs["units"] == "K" and ds["vis_06"].attrs["units"] == "%"
    assert ds["ir_105"].attrs["band"] == "C13" and ds["vis_06"].attrs["band"] == "C02"


def test_abi_g18_geolocation_is_scan_angle_times_height(goes18):
    c13, c02 = goes18
    ds = read_abi([c13.path], ["ir_105"])
    np.testing.assert_allclose(ds.x.values, c13.x_m, atol=1.0, rtol=0)
    np.testing.assert_allclose(ds.y.values, c13.y_m, atol=1.0, rtol=0)
    assert ds.x.values[0] == pytest.approx((-0.151844 + 5.6e-05 * 226) * 35786023.0, abs=1.0)
    # the 0.5 km band's 4 × 4 blocks are centred on the 2 km pixels
    np.testing.assert_allclose(_block_mean(np.tile(c02.x_m, (c02.x_m.size, 1)), 4)[0], c13.x_m, atol=1.0)


def test_abi_g18_attributes(goes18):
    c13, _ = goes18
    ds = read_abi([c13.path])
    assert list(ds.data_vars) == ["ir_105"]
    a = ds.attrs
    assert (a["platform"], a["platform_id"], a["sensor"]) == ("GOES-18", "G18", "abi")
    assert a["sub_lon"] == -137.0 and a["lon_0"] == -137.0 and a["sweep"] == "x"
    assert a["h"] == 35786023.0 and a["a"] == 6378137.0 and a["b"] == pytest.approx(6356752.31414, abs=1e-3)
    assert a["start_time"] == "2025-04-12T12:00:00.000Z" and a["end_time"] == "2025-04-12T12:10:00.000Z"
    assert a["observation_start_time"] == "2025-04-12T12:00:21.100Z"
    assert a["source"] == [str(c13.path)]
    assert "+proj=geos" in a["crs_proj4"] and "+lon_0=-137" in a["crs_proj4"] and "+sweep=x" in a["crs_proj4"]


def test_abi_g19_uses_its_own_files_coefficients(tmp_path, goes18):
    c13 = abi_l1b.build(tmp_path, "G19", 13)
    assert np.array_equal(c13.counts, goes18[0].counts)  # the same counts, other Planck coefficients
    ds = read_abi([c13.path], ["ir_105"])
    _assert_values(ds["ir_105"].values, c13.expected(), atol=2e-3)
    assert np.nanmax(np.abs(c13.expected() - goes18[0].expected())) > 0.05  # the test tells them apart
    assert ds.attrs["platform"] == "GOES-19" and ds.attrs["platform_id"] == "G19"
    assert ds.attrs["sub_lon"] == pytest.approx(-75.2) and ds.attrs["lon_0"] == -75.0


def test_abi_file_without_its_planck_coefficients_is_named(tmp_path):
    import netCDF4

    c13 = abi_l1b.build(tmp_path, "G18", 13)
    with netCDF4.Dataset(c13.path, "a") as nc:
        nc.renameVariable("planck_fk2", "planck_fk2_missing")
    with pytest.raises(GranuleError, match="has no variable 'planck_fk2'") as err:
        read_abi([c13.path], ["ir_105"])
    assert err.value.path == str(c13.path)


# ------------------------------------------------------------------------------------------------------- AHI


@pytest.fixture(scope="module")
def himawari9(tmp_path_factory):
    out = tmp_path_factory.mktemp("h09")
    return ahi_hsd.build(out, 13), ahi_hsd.build(out, 3)


def test_hsd_fixture_is_read_by_satpy_without_header_warnings(himawari9):
    satpy = pytest.importorskip("satpy")
    b13, _ = himawari9
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*header size does not match.*")
        scn = satpy.Scene(reader="ahi_hsd", filenames=[str(p) for p in b13.paths],
                          reader_kwargs={"mask_space": False})
        scn.load(["B13"])
    assert scn["B13"].shape == b13.counts.shape and scn["B13"].attrs["platform_name"] == "Himawari-9"
    seg = read_hsd_segment(b13.paths[1])  # our header checks take it too
    np.testing.assert_array_equal(seg.counts, b13.counts[11:])


def test_ahi_h09_brightness_temperature_and_reflectance_by_hand(himawari9):
    b13, b03 = himawari9
    ds = read_ahi(b13.paths + b03.paths, ["ir_105", "vis_06"])
    n = b13.counts.shape[0]
    assert ds.sizes == {"y": n, "x": n}
    _assert_values(ds["ir_105"].values, b13.expected(), atol=2e-3)
    # B03 (0.5 km) with the updated calibration of block 5, averaged over 4 × 4 blocks onto the 2 km grid
    _assert_values(ds["vis_06"].values, _block_mean(b03.expected(), 4), atol=2e-3)
    assert np.isnan(ds["ir_105"].values[n // 2, n // 3])  # the error count
    assert ds["ir_105"].attrs["band"] == "B13" and ds["vis_06"].attrs["units"] == "%"


def test_ahi_h09_geolocation_and_attributes(himawari9):
    b13, _ = himawari9
    ds = read_ahi(b13.paths)
    x, y = b13.xy_m()
    np.testing.assert_allclose(ds.x.values, x, atol=1.0, rtol=0)
    np.testing.assert_allclose(ds.y.values, y, atol=1.0, rtol=0)
    a = ds.attrs
    assert (a["platform"], a["platform_id"], a["sensor"]) == ("Himawari-9", "H09", "ahi")
    assert a["sub_lon"] == 140.7 and a["lon_0"] == 140.7 and a["sweep"] == "y"
    assert a["h"] == pytest.approx(ahi_hsd.H_M) and a["a"] == 6378137.0 and a["b"] == pytest.approx(6356752.3)
    assert a["start_time"] == "2025-04-12T03:00:00.000Z" and a["end_time"] == "2025-04-12T03:10:00.000Z"
    assert a["observation_start_time"] == "2025-04-12T03:00:20.400Z"
    assert a["source"] == [str(p) for p in b13.paths]


def test_ahi_missing_segment_is_nan_and_a_mislabelled_one_is_named(himawari9, tmp_path):
    b13, _ = himawari9
    ds = read_ahi(b13.paths[1:], ["ir_105"])
    half = b13.counts.shape[0] // 2
    assert np.isnan(ds["ir_105"].values[:half]).all()
    _assert_values(ds["ir_105"].values[half:], b13.expected()[half:], atol=2e-3)
    other = ahi_hsd.build(tmp_path, 3)  # a B03 segment renamed as B13
    bad = tmp_path / b13.paths[0].name
    bad.write_bytes(other.paths[0].read_bytes())
    with pytest.raises(GranuleError, match="is named as band B13 but its header \\(block 5\\) holds band B03"):
        read_ahi([bad, b13.paths[1]])
