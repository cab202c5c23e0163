"""FCI L1c sample slots: the real chunked layout, read by satpy's ``fci_l1c_nc`` and by ``read_fci`` as written."""

from __future__ import annotations

import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from app.data.errors import GranuleError
from app.data.filenames import parse_filename
from app.data.geo_bands import FCI_BANDS
from app.data.geo_fci import read_fci
from app.sample.geo.fci import fci_chunk_rows, fci_grid, radiance_from_bt, write_fci_slot
from app.sample.geo.scene import grid_cloud_top, simulate_channels
from app.sample.scenario import get_scenario

pytest_plugins = ["tests.remote_servers"]  # the local S3 server (moto), for the slot read over S3

#: Every test here shares one written slot (40 files of 16 channels: ~10 s on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("satpy_one_thread")]  # satpy in one thread: conftest

SLOT = "2025-07-07T06:00"  # daylight over the Meteosat disk: reflectances are not all zero
RES_KM = 48.0  # 232 × 232


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("lewotobi-2025-tiny")


@pytest.fixture(scope="module")
def slot(tmp_path_factory, scenario):
    return write_fci_slot(scenario, "MTI1", SLOT, tmp_path_factory.mktemp("fci"), resolution_km=RES_KM)


@pytest.fixture(scope="module")
def truth(scenario):
    """What the scene model puts in, north up (the GeoGrid's orientation)."""
    grid = fci_grid("MTI1", RES_KM)
    t = np.datetime64(SLOT)
    lat, lon = grid.lonlat()
    p = grid.projection
    return simulate_channels(scenario, lat, lon, t, 0.0, ["ir_105", "ir_120", "ir_87", "vis_06", "nir_16"],
                             sat_height_m=p.h, cloud_tops=grid_cloud_top(scenario, grid, t))


@pytest.fixture(scope="module")
def ours(slot):
    return read_fci(slot, ["ir_105", "ir_120", "ir_87", "vis_06", "nir_16"])


def test_a_slot_is_40_body_chunks_with_real_names(slot):
    assert len(slot) == 40
    assert slot[0].parent.as_posix().endswith("fci/MTI1/2025/07/07")
    assert slot[0].name == ("W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_"
                            "20250707060421_IDPFI_OPE_20250707060007_20250707060021_N__O_0037_0001.nc")
    fields = [parse_filename(p) for p in slot]
    assert [f["chunk"] for f in fields] == list(range(1, 41))
    assert {f["product"] for f in fields} == {"geo_fci_l1c"} and {f["platform"] for f in fields} == {"MTI1"}
    assert {f["slot"].isoformat() for f in fields} == {"2025-07-07T06:00:00"}


def test_chunk_layout_is_the_pugs(slot):
    rows = fci_chunk_rows(232)
    assert rows[0] == (1, 6) and rows[-1][1] == 232 and sum(b - a + 1 for a, b in rows) == 232
    with netCDF4.Dataset(slot[0]) as nc:
        assert nc.getncattr("platform") == "MTI1"
        assert set(nc["data"].groups) == {b.band_id for b in FCI_BANDS.values()}
        proj = nc["data/mtg_geos_projection"]
        assert proj.perspective_point_height == 35786400.0 and proj.semi_major_axis == 6378137.0
        assert proj.inverse_flattening == pytest.approx(298.257223563, rel=1e-9) and proj.sweep_angle_axis == "y"
        g = nc["data/ir_105/measured"]
        assert g["effective_radiance"].dimensions == ("y", "x") and g["effective_radiance"].shape == (6, 232)
        assert g["effective_radiance"].dtype == np.uint16 and g["effective_radiance"].ancillary_variables == \
            "pixel_quality"
        assert int(g["start_position_row"][...]) == 1 and int(g["end_position_row"][...]) == 6
        x, y = g["x"], g["y"]
        step = 5.58871526031607e-05 * 24
        assert x.scale_factor == pytest.approx(-step) and x.add_offset == pytest.approx(step * 233 / 2)
        y.set_auto_scale(False)
        assert list(np.asarray(y[:])[:2]) == [1, 2] and y.dtype == np.uint16  # pixel numbers from the south
        assert y.scale_factor == pytest.approx(step) and y.add_offset == pytest.approx(-step * 233 / 2)
        assert float(g["radiance_to_bt_conversion_coefficient_wavenumber"][...]) == pytest.approx(951.8)
        vis = nc["data/vis_06/measured"]
        assert float(vis["channel_effective_solar_irradiance"][...]) == pytest.approx(66.8)
        assert nc["state/celestial/earth_sun_distance"][:].mean() > 1.5e8  # early July: aphelion, ~1.0167 AU
        assert nc["index"].shape == nc["time"].shape == (2,)


def test_radiance_inverts_the_pug_formula():
    band = next(b for b in FCI_BANDS.values() if b.band_id == "ir_105")
    cal = band.calibration
    radiance = radiance_from_bt(np.array([200.0, 290.0]), band)
    from app.sample.geo.fci import C1, C2

    bt = C2 * cal["wavenumber"] / (cal["a"] * np.log1p(C1 * cal["wavenumber"] ** 3 / radiance)) - cal["b"] / cal["a"]
    np.testing.assert_allclose(bt, [200.0, 290.0], atol=1e-6)


def test_satpy_reads_the_scenarios_values(slot, truth):
    from satpy import Scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scn = Scene([str(p) for p in slot], reader="fci_l1c_nc")
        scn.load(["ir_105", "ir_123", "vis_06"])
        theirs = {name: scn[name].values[::-1] for name in ("ir_105", "ir_123", "vis_06")}  # south up -> north up
        assert scn["ir_105"].attrs["platform_name"] == "Meteosat-12"
    # one count is 0.045 mW m-2 sr-1 (cm-1)-1 at 10.5 µm: half of it is < 0.15 K down to 190 K; 0.008 % at 0.64 µm
    for fci_name, generic, tol in (("ir_105", "ir_105", 0.15), ("ir_123", "ir_120", 0.15), ("vis_06", "vis_06", 0.05)):
        got, want = theirs[fci_name], truth[generic]
        assert np.array_equal(np.isfinite(got), np.isfinite(want)), fci_name
        ok = np.isfinite(want)
        assert ok.sum() > 30_000
        assert np.nanmax(np.abs(got[ok] - want[ok])) < tol, fci_name
        assert np.median(np.abs(got[ok] - want[ok])) < 0.02, fci_name
    assert np.nanmax(theirs["vis_06"]) > 20.0  # daylight


def test_read_fci_is_the_canonical_scene(ours, truth):
    assert ours.attrs["platform_id"] == "MTI1" and ours.attrs["platform"] == "Meteosat-12"
    assert ours.attrs["sensor"] == "fci" and ours.attrs["start_time"] == "2025-07-07T06:00:00.000Z"
    grid = fci_grid("MTI1", RES_KM)
    np.testing.assert_allclose(ours.x.values, grid.x_m, atol=1.0)
    np.testing.assert_allclose(ours.y.values, grid.y_m, atol=1.0)
    for name in ("ir_105", "ir_120", "ir_87", "vis_06", "nir_16"):
        np.testing.assert_allclose(ours[name].values, truth[name], atol=0.15, err_msg=name)


def test_a_truncated_chunk_is_named(slot, tmp_path):
    import shutil

    copies = [shutil.copy(p, tmp_path / p.name) for p in slot]
    bad = tmp_path / slot[17].name
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(GranuleError) as err:
        read_fci(copies, ["ir_105"])
    assert bad.name in str(err.value) and "truncated" in str(err.value)


def test_the_same_chunk_twice_is_refused(slot, tmp_path):
    import shutil

    twin = tmp_path / slot[3].name.replace("_C_EUMT_2025", "_C_EUMT_2024")  # another processing, same chunk 4
    shutil.copy(slot[3], twin)
    with pytest.raises(GranuleError, match="is chunk 4 of its repeat cycle"):
        read_fci([slot[3], twin], ["ir_105"])


def test_unknown_channel_is_named(slot):
    from app.data.errors import UserInputError

    with pytest.raises(UserInputError, match="FCI has no channel ir_108"):
        read_fci(slot, ["ir_108"])


def test_the_ctth_of_the_slot_is_v2025_on_the_fci_grid(scenario, ours, tmp_path):
    from app.data.nwcsaf import read_ctth
    from app.sample.geo.ctth import write_ctth_slot

    path = write_ctth_slot(scenario, "MTI1", SLOT, tmp_path, fci_grid("MTI1", RES_KM))
    assert path.name == "S_NWC_CTTH_MTI1_FULL-DISK_20250707T060000Z.nc"
    with netCDF4.Dataset(path) as nc:
        assert nc["ctth_alti"].dimensions == ("time", "ny", "nx")  # a 2025 slot: the NWC/GEO v2025 layout
    ct = read_ctth(path)
    assert ct.attrs["platform_id"] == "MTI1" and ct.attrs["start_time"] == ours.attrs["start_time"]
    np.testing.assert_allclose(ct.x.values, ours.x.values, atol=1.0)
    np.testing.assert_allclose(ct.y.values, ours.y.values, atol=1.0)
    # opaque high cloud: the window channel sees the cloud-top temperature
    opaque = (ct.effective_cloudiness.values > 0.98) & (ct.cloud_top_height.values > 8000)
    assert opaque.sum() > 50
    diff = ours.ir_105.values[opaque] - ct.cloud_top_temperature.values[opaque]
    assert np.median(np.abs(diff)) < 3.0


def test_a_slot_on_s3_is_read_by_byte_ranges_and_equals_the_local_read(slot, ours, s3_server, monkeypatch,
                                                                       tmp_path):
    """satpy's FCI reader on storage's file objects (FSFile): the chunks stay on the server, read by ranges."""
    from app.data import storage

    monkeypatch.setenv("FUMAROLE_CACHE_DIR", str(tmp_path / "cache"))  # a kept copy would show up here
    admin = s3_server.filesystem()
    bucket = "fumarole-fci"
    if not admin.exists(bucket):
        admin.mkdir(bucket)
    local = [Path(p) for p in slot]
    admin.put([str(p) for p in local], [f"{bucket}/mtg/{p.name}" for p in local])
    root = f"s3://{bucket}/mtg"
    storage.register(root, s3_server.reader_options)  # the read-only user, as a catalogue would say
    storage.reset_transfer_stats()
    remote = read_fci([f"{root}/{p.name}" for p in local], ["ir_105", "ir_120", "ir_87", "vis_06", "nir_16"])
    fetched = storage.transfer_stats()
    for name in ("ir_105", "ir_120", "ir_87", "vis_06", "nir_16"):
        np.testing.assert_array_equal(remote[name].values, ours[name].values, err_msg=name)
    assert remote.attrs["platform_id"] == "MTI1" and remote.attrs["start_time"] == ours.attrs["start_time"]
    # by byte ranges through storage (every chunk file opened there), no copy kept in the per-user cache
    assert {u.rsplit("/", 1)[-1] for u in fetched} == {p.name for p in local}
    assert sum(fetched.values()) <= sum(p.stat().st_size for p in local)
    assert not any((tmp_path / "cache").rglob("*.nc"))
