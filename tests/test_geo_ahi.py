"""Himawari-8 AHI HSD: our writer -> satpy's ahi_hsd reader and our reader agree with the fields put in.

The slot is written at resolution_factor 50 (110 × 110 pixels, 11 lines per segment) to keep the tests fast.
Tolerances: satpy and our reader agree to 2e-3 K / 2e-3 % (satpy computes in float32); both give back the field
put in to half a count (see app.sample.geo.ahi), i.e. within 0.1 K for B13/B14 and 0.1 % for B03.
"""

from __future__ import annotations

import bz2
import datetime as dt
import shutil
import warnings

import numpy as np
import pytest

from app.data.errors import GranuleError, UserInputError
from app.data.geo_ahi import parse_hsd_name, read_ahi, read_hsd_segment
from app.sample.geo import ahi as writer

# satpy computes its arrays in the calling thread here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("satpy_one_thread")

SLOT = dt.datetime(2021, 4, 12, 3, 0)  # local noon at 140.7° E: the visible bands see the sun
FACTOR = 50
N = 5500 // FACTOR
CHANNELS = ("vis_06", "nir_16", "ir_39", "wv_62", "ir_105", "ir_112")


def synthetic_fields(lon: np.ndarray, lat: np.ndarray) -> dict[str, np.ndarray]:
    """Smooth fields with structure in both directions, inside every band's count range; NaN off the disk."""
    c = np.cos(np.radians(lat)) * np.cos(np.radians(lon - writer.SUB_LON))
    wave = np.sin(np.radians(3 * lon)) * np.cos(np.radians(2 * lat))
    bt = 205.0 + 95.0 * c + 5.0 * wave
    return {
        "vis_06": 90.0 * c + 5.0 * wave + 5.0,
        "nir_16": 40.0 * c + 3.0,
        "ir_39": bt + 8.0,
        "wv_62": 200.0 + 40.0 * c,
        "ir_105": bt,
        "ir_112": bt - 1.5 + wave,
    }


@pytest.fixture(scope="module")
def slot(tmp_path_factory):
    out = tmp_path_factory.mktemp("ahi")
    grid = writer.ahi_grid(FACTOR)
    lon, lat = grid.lonlat()
    fields = synthetic_fields(lon, lat)
    paths = writer.write_ahi_fields({c: fields[c] for c in CHANNELS}, SLOT, out, resolution_factor=FACTOR)
    return {"paths": paths, "fields": fields, "lon": lon, "lat": lat, "dir": out}


@pytest.fixture(scope="module")
def scene(slot):
    satpy = pytest.importorskip("satpy")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*header size does not match.*")
        scn = satpy.Scene(reader="ahi_hsd", filenames=[str(p) for p in slot["paths"]])
        scn.load(["B03", "B13", "B14"])
    return scn


@pytest.fixture(scope="module")
def ours(slot):
    return read_ahi(slot["paths"])


def test_files_are_named_and_segmented_as_real_hsd(slot):
    names = sorted(p.name for p in slot["paths"])
    assert len(names) == len(CHANNELS) * 10
    assert "HS_H08_20210412_0300_B03_FLDK_R05_S0110.DAT" in names
    assert "HS_H08_20210412_0300_B13_FLDK_R20_S1010.DAT" in names
    info = parse_hsd_name(slot["paths"][0])
    assert info["time"] == SLOT and info["total_segments"] == 10
    seg = read_hsd_segment(slot["dir"] / "HS_H08_20210412_0300_B13_FLDK_R20_S0310.DAT")
    assert seg.counts.shape == (N // 10, N)
    assert int(seg.segment["first_line_number_of_image_segment"]) == 2 * N // 10 + 1
    assert float(seg.proj["sub_lon"]) == 140.7
    assert int(seg.proj["CFAC"]) == round(20466275 / FACTOR)
    assert float(seg.proj["COFF"]) == float(seg.proj["LOFF"]) == (N + 1) / 2


def test_canonical_geoscene(ours):
    assert ours["ir_105"].dims == ("y", "x") and ours["ir_105"].shape == (N, N)
    assert ours["ir_105"].dtype == np.float32
    assert ours["ir_105"].attrs["units"] == "K" and ours["vis_06"].attrs["units"] == "%"
    assert ours.attrs["platform"] == "Himawari-8" and ours.attrs["sensor"] == "ahi"
    assert ours.attrs["sub_lon"] == 140.7 and ours.attrs["lon_0"] == 140.7
    assert ours.attrs["start_time"] == "2021-04-12T03:00:00.000Z"
    assert ours.attrs["end_time"] == "2021-04-12T03:10:00.000Z"
    assert ours.attrs["h"] == pytest.approx(35785863.0) and ours.attrs["a"] == 6378137.0
    assert len(ours.attrs["source"]) == len(CHANNELS) * 10
    # x grows east, y grows north, row 0 at the north; the disk centre is between the two central pixels
    assert np.all(np.diff(ours.x) > 0) and np.all(np.diff(ours.y) < 0)
    assert ours.x[N // 2 - 1] == pytest.approx(-ours.x[N // 2]) and ours.y[N // 2 - 1] == pytest.approx(-ours.y[N // 2])


def test_our_reader_gives_back_every_field_to_half_a_count(slot, ours):
    for name in CHANNELS:
        cal = writer.band_calibration(writer.hsd.GENERIC_AHI[name])
        field, got = slot["fields"][name], ours[name].values
        assert np.array_equal(np.isnan(field), np.isnan(got)), name
        on = np.isfinite(field)
        rad_err = np.abs(cal.radiance(got[on]) - cal.radiance(field[on]))
        assert rad_err.max() <= 0.51 * cal.gain, name  # half a count (+ float32 rounding of the output)


def test_satpy_calibrates_to_the_field_and_to_our_reader(slot, scene, ours):
    for band, name, tol in (("B13", "ir_105", 0.1), ("B14", "ir_112", 0.1), ("B03", "vis_06", 0.1)):
        sat = scene[band].values
        both = np.isfinite(sat) & np.isfinite(ours[name].values)
        assert both.sum() > 0.7 * N * N
        np.testing.assert_allclose(sat[both], ours[name].values[both], atol=2e-3, err_msg=band)
        np.testing.assert_allclose(sat[both], slot["fields"][name][both], atol=tol, err_msg=band)
    assert scene["B13"].attrs["units"] == "K" and scene["B03"].attrs["units"] == "%"
    assert scene["B13"].attrs["start_time"] == SLOT


def test_satpy_area_matches_ours(slot, scene, ours):
    area = scene["B13"].attrs["area"]
    assert area.shape == (N, N)
    px, py = area.get_proj_coords()
    np.testing.assert_allclose(px[0], ours.x.values, atol=1.0)
    np.testing.assert_allclose(py[:, 0], ours.y.values, atol=1.0)
    for row, col in ((N // 2, N // 2), (N // 4, N // 3), (3 * N // 4, 2 * N // 3), (N // 2, N // 10)):
        lon, lat = area.get_lonlat(row, col)
        assert lon == pytest.approx(slot["lon"][row, col], abs=0.02)
        assert lat == pytest.approx(slot["lat"][row, col], abs=0.02)
    # the sub-satellite point is the common corner of the four central pixels
    lons, lats = area.get_lonlats()
    c = N // 2
    assert (lons[c - 1, c - 1] + lons[c, c]) / 2 == pytest.approx(140.7, abs=1e-6)
    assert (lats[c - 1, c - 1] + lats[c, c]) / 2 == pytest.approx(0.0, abs=1e-6)


def test_missing_segments_are_nan(slot, tmp_path):
    paths = [p for p in slot["paths"] if "_B13_" in p.name and "_S0310" not in p.name]
    ds = read_ahi(paths, channels=["ir_105"])
    rows = slice(2 * N // 10, 3 * N // 10)
    assert ds["ir_105"].shape == (N, N)
    assert np.isnan(ds["ir_105"].values[rows]).all()
    assert np.isfinite(ds["ir_105"].values[N // 2]).any()


def test_bz2_archives_read_too(slot, tmp_path):
    for p in [p for p in slot["paths"] if "_B14_" in p.name]:
        (tmp_path / (p.name + ".bz2")).write_bytes(bz2.compress(p.read_bytes(), compresslevel=1))
    ds = read_ahi(sorted(tmp_path.glob("*.bz2")))
    assert list(ds.data_vars) == ["ir_112"]
    np.testing.assert_array_equal(ds["ir_112"].values, read_ahi(
        [p for p in slot["paths"] if "_B14_" in p.name])["ir_112"].values)


def test_finer_bands_are_averaged_onto_the_coarsest_grid(tmp_path):
    fine, coarse = writer.ahi_grid(FACTOR // 2), writer.ahi_grid(FACTOR)
    lon, lat = fine.lonlat()
    refl = synthetic_fields(lon, lat)["vis_06"]
    paths = writer.write_ahi_fields({"vis_06": refl}, SLOT, tmp_path, resolution_factor=FACTOR // 2)
    lon, lat = coarse.lonlat()
    paths += writer.write_ahi_fields({"ir_105": synthetic_fields(lon, lat)["ir_105"]}, SLOT, tmp_path,
                                     resolution_factor=FACTOR)
    ds = read_ahi(paths)
    assert ds["vis_06"].shape == ds["ir_105"].shape == (N, N)
    expected = refl.reshape(N, 2, N, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(ds["vis_06"].values, expected, atol=0.05)


def test_write_slot_from_the_scene_model(tmp_path):
    from app.sample.scenario import get_scenario

    paths = writer.write_ahi_slot(get_scenario("soufriere-tiny"), dt.datetime(2021, 4, 12, 3, 7), tmp_path,
                                  resolution_factor=FACTOR, bands=(3, "B13", "ir_120"))
    assert len(paths) == 30 and all("_0300_" in p.name for p in paths)
    ds = read_ahi(paths)
    assert set(ds.data_vars) == {"vis_06", "ir_105", "ir_120"}
    bt = ds["ir_105"].values
    assert 180 < np.nanmin(bt) < np.nanmax(bt) < 330
    assert 0 <= np.nanmin(ds["vis_06"].values) and np.nanmax(ds["vis_06"].values) > 10


# ---------------------------------------------------------------------------------------------- bad input


def test_truncated_file_names_the_file(slot, tmp_path):
    src = slot["dir"] / "HS_H08_20210412_0300_B13_FLDK_R20_S0510.DAT"
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:-100])
    with pytest.raises(GranuleError, match=r"S0510\.DAT: is truncated: .* lines .* need \d+ bytes"):
        read_hsd_segment(bad)
    others = [p for p in slot["paths"] if "_B13_" in p.name and p.name != src.name]
    with pytest.raises(GranuleError) as err:
        read_ahi([*others, bad])
    assert err.value.path == str(bad)


def test_file_cut_inside_the_header(slot, tmp_path):
    src = slot["dir"] / "HS_H08_20210412_0300_B13_FLDK_R20_S0110.DAT"
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:600])
    with pytest.raises(GranuleError, match=r"is truncated: header block \d+ needs bytes"):
        read_ahi([bad])


def test_not_an_hsd_file(tmp_path):
    bad = tmp_path / "HS_H08_20210412_0300_B13_FLDK_R20_S0110.DAT"
    bad.write_bytes(b"\x07" + bytes(5000))
    with pytest.raises(GranuleError, match="not a valid HSD file: header block 1 expected"):
        read_ahi([bad])
    with pytest.raises(GranuleError, match="no such file"):
        read_ahi([tmp_path / "HS_H08_20210412_0300_B14_FLDK_R20_S0110.DAT"])


def test_channel_errors(slot):
    with pytest.raises(UserInputError, match="unknown AHI channel 'ir_108'"):
        read_ahi(slot["paths"], channels=["ir_108"])
    with pytest.raises(GranuleError, match="no file of this slot holds channel ir_133"):
        read_ahi(slot["paths"], channels=["ir_105", "ir_133"])


def test_segments_of_two_slots_do_not_mix(slot, tmp_path):
    later = writer.write_ahi_fields({"ir_105": slot["fields"]["ir_105"]}, SLOT + dt.timedelta(minutes=10),
                                    tmp_path, resolution_factor=FACTOR)
    mixed = [p for p in slot["paths"] if "_B14_" in p.name] + later
    with pytest.raises(GranuleError, match="another slot"):
        read_ahi(mixed)
    shutil.rmtree(tmp_path)
