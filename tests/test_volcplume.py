"""The VolcPlume state without a browser: orbits, filters, zones, circles, exports."""

import io

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from app.data.archive import Archive
from app.views.volcplume import VolcPlume


@pytest.fixture(scope="module")
def vp_archive(tiny_archive_path):
    return Archive("tiny")


@pytest.fixture
def vp(vp_archive):
    return VolcPlume(archive=vp_archive)


def test_orbits_of_the_sample_day_over_the_caribbean(vp):
    assert str(vp.date) == "2021-04-12"
    # the three afternoon orbits that cross the Caribbean zone, with their times in the zone
    assert [o.split(":")[0] for o in vp.orbits] == ["#18121", "#18122", "#18123"]
    assert vp.orbits[0].startswith("#18121: 16:") and " → 16:" in vp.orbits[0]
    vp.zone = "World"
    assert len(vp.orbits) == 15


def test_filters_change_pixel_counts_as_expected(vp):
    base = vp.pixel_counts()
    vp.qa_min = 0.9
    strict = vp.pixel_counts()
    assert all(strict[o] < base[o] for o in base)
    vp.qa_min = 0.5
    assert vp.pixel_counts() == base
    # 45 of 450 edge pixels on each side = 5 of the tiny file's 50 (ground_pixel_step 9): 10 of 50 columns go
    vp.edge_pixels = 45
    edge = vp.pixel_counts()
    for lay in vp.layers:
        assert np.isnan(lay.values[:, :5]).all() and np.isnan(lay.values[:, -5:]).all()
        assert np.isfinite(lay.values[:, 5:-5]).any(axis=0).all()
    assert all(edge[o] < base[o] for o in base)
    vp.edge_pixels = 0
    vp.sza_max = 30.0
    assert sum(vp.pixel_counts().values()) < sum(base.values())
    vp.sza_max = 1.0  # S5P passes at 13:30 local time: the Sun is never that near the zenith under it
    assert sum(vp.pixel_counts().values()) == 0


def test_choosing_orbits_and_levels(vp):
    vp.orbits = vp.orbits[:1]
    assert len(vp.layers) == 1
    v7 = np.nanmax(vp.layers[0].values)
    vp.level = "PBL"
    assert len(vp.layers) == 3  # a new level reloads the day and shows every orbit of the zone again
    assert vp.variable == "so2_pbl"
    # the plume is high: the PBL box (smaller air-mass factor) gives larger columns than the 7 km box
    assert np.nanmax(vp.layers[0].values) > v7


def test_empty_zone_says_why(vp):
    vp.zone = "Iceland"
    vp.date = __import__("datetime").date(2021, 4, 20)
    assert vp.layers == []
    assert "no TROPOMI orbit crosses this zone (Iceland) on 2021-04-20" in vp.status
    assert any("2021-04-20" in m for m in vp.log.messages("warning"))


def test_antimeridian_zone_has_no_smeared_pixels(vp):
    vp.zone = "World (Pacific-centred)"
    assert len(vp.layers) == 15
    for lay in vp.layers:
        # continuous longitudes: away from the poles (where meridians converge) neighbouring pixels are a few
        # degrees apart at most, and no pixel anywhere spans half the globe
        low = np.abs(lay.lat[:, :-1]) < 70
        assert np.nanmax(np.abs(np.diff(lay.lon, axis=1))[low]) < 5
        low = np.abs(lay.lat[:-1]) < 70
        assert np.nanmax(np.abs(np.diff(lay.lon, axis=0))[low]) < 5
        assert np.nanmax(np.abs(np.diff(lay.lon, axis=1))) < 180
        # the frame is [0, 360): the swath's median is inside it
        assert 0 <= np.nanmedian(lay.lon) < 360


def test_pixel_readout(vp):
    lay = vp.layers[0]
    i, j = lay.lat.shape[0] // 2, lay.lat.shape[1] // 2
    info = vp.pixel_info(float(lay.lon[i, j]), float(lay.lat[i, j]))
    assert info["orbit"] == lay.orbit
    assert info["qa"] == pytest.approx(float(lay.qa[i, j]))
    assert str(info["time"])[:16] == str(lay.time[i])[:16].replace("T", " ")


def test_exports(vp):
    png = Image.open(io.BytesIO(vp.export_png().getvalue()))
    assert png.size[0] >= 1000
    ds = xr.open_dataset(vp.export_netcdf(), engine="h5netcdf")
    assert set(np.unique(ds["orbit"].values)) == {18121, 18122, 18123}
    assert ds["so2_7km"].attrs["units"] == "DU"
    assert float(ds.attrs["qa_min"]) == 0.5
    assert np.all(ds["qa_value"].values >= 0.5)


def test_auto_range_uses_what_is_shown(vp):
    vp.so2_min, vp.so2_max = 0.0, 100.0
    vp.auto_range()
    assert 0 <= vp.so2_min < vp.so2_max < 100


def test_caliop_granules_of_the_zone_and_curtain(vp):
    # CALIOP tracks of the day that cross the Caribbean zone; the first is selected for the curtain
    assert vp.param.caliop_granule.objects
    assert vp.caliop_granule == vp.param.caliop_granule.objects[0]
    vp.secondary = "CALIOP 532 nm total backscatter"
    curtain = vp._current_curtain()
    assert curtain.sizes["altitude"] == 583
    assert "total_attenuated_backscatter_532" in curtain


def test_tap_near_a_track_selects_it_on_the_curtain(vp):
    label = vp.param.caliop_granule.objects[-1]
    from app.data.archive import read_track_cached

    tr = read_track_cached(vp._caliop_labels[label])
    k = tr.sizes["profile"] // 2
    vp._on_tap(x=float(tr["longitude"][k]) + 0.05, y=float(tr["latitude"][k]))
    assert vp.caliop_granule == label
    assert abs(vp.curtain_focus - k) <= 3
    assert vp.secondary.startswith("CALIOP")


def test_circles_around_the_selected_volcano(vp):
    from app.science.geodesy import great_circle_distance_km

    vp.radii = [100, 500]
    xy = vp._circles().data[0]
    xy = xy[["x", "y"]].to_numpy() if hasattr(xy, "columns") else np.asarray(xy)
    rings = np.split(xy, np.flatnonzero(np.isnan(xy[:, 0])))
    rings = [r[~np.isnan(r[:, 0])] for r in rings if np.isfinite(r[:, 0]).any()]
    assert len(rings) == 2
    d = [great_circle_distance_km(13.33, -61.18, r[:, 1], r[:, 0]) for r in rings]
    assert np.allclose(d[0], 100, atol=0.5) and np.allclose(d[1], 500, atol=0.5)
