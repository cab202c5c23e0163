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


# --- levels the day's files do not have, and the SO2 layer height -------------------------------------------------

REASON_3KM = "processor version 02.01.04 predates it (the 3 km box-profile column comes with processor 02.08.00)"
REASON_LH = "processor version 02.01.04 predates it (the SO2 layer height comes with processor 02.05.00)"


def test_level_selector_says_which_levels_the_day_lacks_and_why(vp):
    from app.views.volcplume import LEVELS

    assert list(LEVELS) == ["PBL", "1km", "3km", "7km", "15km"]
    # the 2021 files are processor 02.01.04: no 3 km box column, no layer height — in every orbit of the zone
    assert vp.unavailable == {"3km": {"missing": 3, "of": 3, "reason": REASON_3KM},
                              "layer_height": {"missing": 3, "of": 3, "reason": REASON_LH}}
    assert vp.level_note() == f"**3 km** unavailable: {REASON_3KM}\n\n**layer height** unavailable: {REASON_LH}"
    said = vp.log.messages("info")
    assert f"2021-04-12: SO2 3 km is unavailable: {REASON_3KM}" in said
    assert f"2021-04-12: SO2 layer height is unavailable: {REASON_LH}" in said
    assert vp.map_title() == "TROPOMI SO2 7 km — 2021-04-12" and vp.shown_unavailable is None


def test_choosing_an_unavailable_level_shows_the_reason_over_an_empty_map(vp):
    orbits = list(vp.orbits)
    vp.level = "3km"
    assert vp.orbits == orbits  # the orbits stay listed: nothing is skipped
    assert len(vp.layers) == 3 and vp.pixel_counts() == {18121: 0, 18122: 0, 18123: 0}
    assert vp.status == f"SO2 3 km is unavailable on 2021-04-12: {REASON_3KM}"
    assert vp.map_title() == "TROPOMI SO2 3 km — 2021-04-12 — unavailable in these files"  # the reason: above
    alert = vp._status()
    assert type(alert).__name__ == "Alert" and alert.object == vp.status
    vp.map_plot()  # builds, with its empty image
    assert not any("Traceback" in m for m in vp.log.messages())
    vp.level = "7km"  # back to a level the files have: drawn again
    assert sum(vp.pixel_counts().values()) > 0 and vp.shown_unavailable is None


def _real_layout_archive(tmp_path, processor_version="01.01.07", layer_height=None):
    """An archive holding one granule built from the real stripped file (tests/conformance), not our writer."""
    from conformance import s5p_so2 as fx

    from app.data.archive import Archive

    root = tmp_path / "real"
    folder = root / "tropomi" / "2020" / "03" / "03"
    g = fx.build(folder, processor_version=processor_version)
    if layer_height is not None:
        import netCDF4

        dims = ("time", "scanline", "ground_pixel")
        window = (0, g.window)
        with netCDF4.Dataset(g.path, "a") as nc:
            grp = nc["PRODUCT"].createGroup("SO2_LAYER_HEIGHT")
            v = grp.createVariable("sulfurdioxide_layer_height", "f4", dims, fill_value=fx.FLOAT_FILL)
            v.units = "m"
            v[window] = np.where(np.isfinite(layer_height[0]), layer_height[0], fx.FLOAT_FILL)
            q = grp.createVariable("qa_value_layer_height", "u1", dims, fill_value=np.uint8(255))
            q.set_auto_maskandscale(False)
            q.scale_factor = np.float32(0.01)
            q[window] = layer_height[1]
    for sub in ("caliop",):
        (root / sub).mkdir()
    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    text = (repo / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root))
    catalogue = tmp_path / "real.yaml"
    catalogue.write_text(text)
    return Archive(str(catalogue)), g, fx


def test_a_real_layout_granule_is_mapped(tmp_path):
    """A granule laid out as the real product (per-pixel delta_time, no Z, orbit 12367 across ±180°) is drawn."""
    import datetime as dt

    from app.render.swath import aggregate

    archive, g, fx = _real_layout_archive(tmp_path)
    vp = VolcPlume(archive=archive, date=dt.date(2020, 3, 3), zone="World (Pacific-centred)")
    # the times are those of the window's pixels: 01:57:22 + (2040 … 2099) × 0.84 s = 02:25:55.6 … 02:26:45.2
    assert vp.orbits == ["#12367: 02:25 → 02:26"]
    assert vp.unavailable["3km"]["reason"].startswith("processor version 01.01.07 predates it")
    (lay,) = vp.layers
    peak = (fx.WINDOW_START + fx.PEAK[0], fx.PEAK[1])
    assert float(lay.values[peak]) == pytest.approx(4.0e-3 * 2241.15, rel=1e-6)  # 8.9646 DU at the plume's peak
    window = lay.values[fx.WINDOW_START:fx.WINDOW_START + fx.WINDOW_ROWS]
    assert np.isnan(window[:, -10:]).all()  # qa_value 0.40 there: below the default QA > 0.5
    assert np.isfinite(window[1:, :-10]).all()  # qa 0.75, SZA 20-65°: every other pixel of the window shown
    assert np.isnan(np.delete(lay.values, np.s_[fx.WINDOW_START:fx.WINDOW_START + fx.WINDOW_ROWS], axis=0)).all()
    assert 0 <= np.nanmedian(lay.lon) < 360  # continuous across the antimeridian in the Pacific frame
    agg = aggregate(vp.layers, (170.0, 190.0), (-10.0, 10.0), 200, 200)
    assert np.nanmax(agg.values) == pytest.approx(8.9646, rel=0.05) and np.isfinite(agg.values).sum() > 100
    # by hand: 60 rows × 440 ground pixels (the last 10 fail QA), less pixel (0, 0) with fill
    assert vp.status == "1 orbits, 26,399 pixels pass the filters"
    exported = xr.open_dataset(vp.export_netcdf(), engine="h5netcdf")
    assert set(np.unique(exported["orbit"].values)) == {12367} and exported["so2_7km"].attrs["units"] == "DU"


def test_layer_height_layer_in_km_with_its_own_scale(tmp_path):
    import datetime as dt

    from conformance import s5p_so2 as fx

    from app.render.colormaps import LAYER_HEIGHT, SO2

    height = np.full((fx.WINDOW_ROWS, fx.N_GROUND_PIXELS), np.nan, dtype=np.float32)
    height[fx.PEAK] = 12500.0  # m
    height[fx.PEAK[0], fx.PEAK[1] + 1] = 9000.0
    height[fx.PEAK[0], fx.PEAK[1] + 2] = 15000.0
    qa = np.where(np.isfinite(height), 90, 0).astype(np.uint8)
    qa[fx.PEAK[0], fx.PEAK[1] + 2] = 50  # exactly 0.50: dropped by QA > 0.5
    archive, g, fx = _real_layout_archive(tmp_path, processor_version="02.05.00", layer_height=(height, qa))
    vp = VolcPlume(archive=archive, date=dt.date(2020, 3, 3), zone="World (Pacific-centred)")
    assert "layer_height" not in vp.unavailable and set(vp.unavailable) == {"3km"}
    vp.quantity = "layer_height"
    (lay,) = vp.layers
    row = fx.WINDOW_START + fx.PEAK[0]
    assert lay.values[row, fx.PEAK[1]] == pytest.approx(12.5)  # km
    assert lay.values[row, fx.PEAK[1] + 1] == pytest.approx(9.0)
    assert np.isnan(lay.values[row, fx.PEAK[1] + 2])  # its own QA, 0.50, is not > 0.5
    assert np.isfinite(lay.values).sum() == 2  # the columns are not mixed in
    assert lay.qa[row, fx.PEAK[1]] == pytest.approx(0.9)
    assert vp.colour_map() is LAYER_HEIGHT and vp.colour_range() == (0.0, 20.0)
    assert vp.map_title() == "TROPOMI SO2 layer height — 2020-03-03"
    image = vp._image(None, None, 300, 200, vp.layers)
    assert image.vdims[0].label == "SO2 layer height" and image.vdims[0].unit == "km"
    vp.quantity = "column"
    assert vp.colour_map() is SO2 and float(np.nanmax(vp.layers[0].values)) == pytest.approx(8.9646, rel=1e-6)


# --- one definition of the default filters ----------------------------------------------------------------------


def test_default_filters_are_one_definition(vp):
    import argparse

    from app.cli import build_parser
    from app.science.filters import DEFAULT_FILTERS, Filters

    assert Filters.default() == DEFAULT_FILTERS == Filters(qa_min=0.5, sza_max=80.0, edge_pixels=0, min_du=None)
    fresh = VolcPlume.param
    dashboard = Filters(qa_min=fresh.qa_min.default, sza_max=fresh.sza_max.default,
                        edge_pixels=fresh.edge_pixels.default)
    assert dashboard == DEFAULT_FILTERS and vp.filters() == DEFAULT_FILTERS
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cli = sub.choices["timeseries"]
    assert Filters(**{k: cli.get_default(k) for k in ("qa_min", "sza_max", "edge_pixels", "min_du")}) \
        == DEFAULT_FILTERS


def test_the_qa_filter_is_strict_as_the_s5p_recommendation():
    from app.science.filters import DEFAULT_FILTERS, valid_mask

    qa = np.array([[0.49, 0.50, 0.51, 1.0]], dtype=np.float32)
    qa = (np.round(qa * 100).astype(np.uint8) * np.float32(0.01)).astype(np.float32)  # decoded as the reader does
    swath = xr.Dataset({"so2_7km": (("scanline", "ground_pixel"), np.ones((1, 4), np.float32)),
                        "qa_value": (("scanline", "ground_pixel"), qa),
                        "solar_zenith_angle": (("scanline", "ground_pixel"), np.full((1, 4), 30.0, np.float32))})
    mask = valid_mask(swath, "so2_7km", **DEFAULT_FILTERS.as_dict()).values
    assert mask.tolist() == [[False, False, True, True]]  # qa_value > 0.5: 0.50 itself is dropped
