"""The VolcPlume state without a browser: orbits, filters, zones, circles, exports."""

import io

import holoviews as hv
import numpy as np
import panel as pn
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
    assert image.vdims[0].label == "SO2 layer height, 2020-03-03" and image.vdims[0].unit == "km"  # the colour bar
    assert vp.colorbar_label() == "SO2 layer height, 2020-03-03 (km)"
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


# --- issue 11: one state, one picture ------------------------------------------------------------------------------

def _dmap_types(vp):
    """The element type each of the map's DynamicMap callbacks returns now."""
    return {name: type(getattr(vp, name)()) for name in ("_tracks", "_selected_track", "_circles", "_volcanoes",
                                                        "_selected_volcano")}


def test_a_zone_change_moves_the_map_to_the_zone(vp):
    assert (vp.x_range, vp.y_range) == ((-90.0, -40.0), (3.0, 28.0))  # the Caribbean's extent, in the state
    vp.x_range, vp.y_range = (-70.0, -55.0), (10.0, 18.0)  # a zoom
    for zone, extent in [("World", ((-180.0, 180.0), (-90.0, 90.0))), ("Mediterranean", ((-8.0, 42.0), (28.0, 48.0))),
                         ("Iceland", ((-32.0, -4.0), (58.0, 70.0))),
                         ("World (Pacific-centred)", ((0.0, 360.0), (-90.0, 90.0)))]:
        vp.zone = zone
        assert (vp.x_range, vp.y_range) == extent, zone
        assert vp.view_ranges() == extent
    fig = hv.render(vp.map_plot(), backend="bokeh")  # the figure the page gets: the Pacific World's extent
    assert ((fig.x_range.start, fig.x_range.end), (fig.y_range.start, fig.y_range.end)) == extent
    assert fig.match_aspect and fig.aspect_scale == 1  # circles in km stay round
    assert fig.toolbar.active_scroll is None  # the wheel scrolls the page until the map is clicked


def test_the_pacific_world_draws_coastlines_volcanoes_circles_and_swaths(vp):
    vp.zone = "World (Pacific-centred)"
    coast = vp._coast(None, None, False)
    assert len(coast.get(0).dimension_values(0)) > 1000  # the coastlines of the [0, 360) frame
    volcanoes = vp._volcanoes()
    assert len(volcanoes) > 100 and volcanoes.dimension_values("longitude").min() >= 0
    circle = vp._circles().dimension_values(0)
    assert np.nanmin(circle) > 280 and np.nanmax(circle) < 320  # around La Soufrière (-61.2° = 298.8°)
    image = vp._image(None, None, 400, 200, vp.layers)
    assert np.isfinite(image.dimension_values(2)).sum() > 1000


def test_every_map_callback_keeps_one_element_type_with_or_without_caliop(vp):
    with_tracks = _dmap_types(vp)
    assert vp.param.caliop_granule.objects and with_tracks["_tracks"] is hv.Path
    vp.zone = "Iceland"  # no CALIOP track crosses Iceland on 2021-04-12: the tracks are an empty Path, no Overlay
    assert vp.caliop_granule is None
    assert _dmap_types(vp) == with_tracks
    assert len(vp._tracks()) == 0 and len(vp._selected_track()) == 0


def test_a_drawing_failure_is_said_and_the_last_picture_stays(vp, monkeypatch):
    from app.render import overlays

    good = vp._coast(None, None, False)
    monkeypatch.setattr(overlays, "coastlines", lambda *a, **k: (_ for _ in ()).throw(OSError("coastline file gone")))
    kept = vp._coast(None, None, False)
    assert kept is good
    assert vp.draw_error == "The map's coastlines could not be drawn: OSError: coastline file gone"
    assert vp.draw_error in vp.log.messages("error")
    alert = vp._alerts()[0]
    assert alert.alert_type == "danger" and "coastline file gone" in alert.object
    monkeypatch.undo()
    vp._coast(None, None, False)
    assert vp.draw_error == ""


def test_title_and_colour_bar_follow_level_quantity_and_date(vp):
    assert vp.map_title() == "TROPOMI SO2 7 km — 2021-04-12"
    assert vp.colorbar_label() == "SO2 7 km, 2021-04-12 (DU)"
    vp.level = "PBL"
    fig = hv.render(vp.map_plot(), backend="bokeh")
    assert fig.title.text == "TROPOMI SO2 PBL — 2021-04-12"
    assert [r.title for r in fig.right if hasattr(r, "title")] == ["SO2 PBL, 2021-04-12 (DU)"]
    assert vp._image(None, None, 100, 100, vp.layers).vdims[0].pprint_label == "SO2 PBL, 2021-04-12 (DU)"
    vp.level = "15km"
    assert vp.map_title() == "TROPOMI SO2 15 km — 2021-04-12" and vp.colorbar_label() == "SO2 15 km, 2021-04-12 (DU)"


def test_a_zone_change_lists_the_new_zones_orbits_and_exports_its_extent(vp):
    caribbean = list(vp.orbits)
    vp.zone = "Iceland"
    assert vp.orbits and not set(vp.orbits) & set(caribbean)
    assert vp.orbits == vp.param.orbits.objects
    ds = xr.open_dataset(vp.export_netcdf(), engine="h5netcdf")
    assert list(ds.attrs["lon_range"]) == [-32.0, -4.0] and list(ds.attrs["lat_range"]) == [58.0, 70.0]
    assert ds.sizes["pixel"] > 0  # pixels of the new zone, not an empty box of the old one


def test_export_png_is_the_zoomed_view(vp, monkeypatch):
    import app.views.volcplume as module

    seen = {}
    real = module.aggregate
    monkeypatch.setattr(module, "aggregate",
                        lambda layers, x, y, w, h: seen.update(x=x, y=y) or real(layers, x, y, w, h))
    vp.x_range, vp.y_range = (-65.0, -55.0), (10.0, 16.0)
    png = Image.open(vp.export_png())
    assert seen == {"x": (-65.0, -55.0), "y": (10.0, 16.0)}
    # the picture says what it shows: the title and colour bar of the screen, the view's extent
    assert png.text["Title"] == "TROPOMI SO2 7 km — 2021-04-12"
    assert png.text["Colour bar"] == "SO2 7 km, 2021-04-12 (DU)"
    assert png.text["Extent"] == '{"x_range": [-65.0, -55.0], "y_range": [10.0, 16.0]}'


def test_a_permalink_zoom_is_kept_with_its_zone(vp):
    problems = vp.apply_query({"zone": "World", "x_range": "[-70.0, -50.0]", "y_range": "[5.0, 20.0]",
                               "level": "15km"})
    assert problems == []
    assert (vp.zone, vp.level, vp.x_range, vp.y_range) == ("World", "15km", (-70.0, -50.0), (5.0, 20.0))
    assert vp.view_ranges() == ((-70.0, -50.0), (5.0, 20.0))


def test_a_bad_permalink_is_said_value_by_value(vp):
    problems = vp.apply_query({"zone": "Atlantis", "level": "3km", "so2_max": "abc"})
    assert vp.zone == "Caribbean" and vp.level == "3km" and vp.so2_max == 20.0
    assert len(problems) == 2
    assert problems[0].startswith("zone=Atlantis: zone: ") and problems[0].endswith("; used Caribbean")
    assert problems[1].startswith("so2_max=abc: SO2 max: 'abc' cannot be read") and problems[1].endswith("; used 20.0")
    assert vp.url_problems == problems
    assert all(f"permalink: {p}" in vp.log.messages("warning") for p in problems)
    alert = vp._alerts()[0]
    assert "zone=Atlantis" in alert.object and "so2_max=abc" in alert.object
    # min > max in a link: both refused, and so is a negative max
    assert vp.apply_query({"so2_min": "30", "so2_max": "5"}) == [
        "so2_min=30, so2_max=5: SO2 min (30) must be less than SO2 max (5); used 0.2 and 20"]
    assert vp.apply_query({"so2_max": "-3"}) == ["so2_max=-3: SO2 max must not be negative; got -3; used 20.0"]
    assert (vp.so2_min, vp.so2_max) == (0.2, 20.0)
    assert vp.apply_query({"so2_min": "30", "so2_max": "50"}) == [] and (vp.so2_min, vp.so2_max) == (30.0, 50.0)


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("so2_min", 50.0, "SO2 min (50) must be less than SO2 max (20)"),
    ("so2_max", 0.1, "SO2 min (0.2) must be less than SO2 max (0.1)"),
    ("so2_max", -5.0, "SO2 max must not be negative; got -5"),
    ("so2_max", None, "SO2 max must be a number; got None"),
    ("height_min", 25.0, "Height min (25) must be less than Height max (20)"),
    ("volcano", "Mount Doom", "unknown volcano 'Mount Doom': choose a name from the GVP list"),
])
def test_bad_input_is_refused_with_the_reason(vp, name, value, reason):
    before = getattr(vp, name)
    assert vp.set_checked(name, value) is False
    assert getattr(vp, name) == before  # the state is unchanged
    assert vp.input_errors == {name: reason}
    assert f"refused: {reason}" in vp.log.messages("warning")
    assert vp.set_checked(name, before) is True and vp.input_errors == {}


def test_the_date_picker_offers_only_the_archives_days(vp):
    import datetime as dt

    assert vp._days == [dt.date(2021, 4, 12)]
    assert vp.check_value("date", dt.date(2021, 4, 13)) == (
        "the archive has no TROPOMI data on 2021-04-13: choose one of its days (1 day, 2021-04-12)")
    picker = next(w for w in vp.controls().select(pn.widgets.DatePicker))
    assert picker.enabled_dates == [dt.date(2021, 4, 12)]


def test_volcano_is_chosen_from_the_gvp_list(vp):
    (box,) = vp.controls().select(pn.widgets.AutocompleteInput)
    assert len(box.options) > 1000 and "Soufriere St. Vincent" in box.options and box.value == vp.volcano
    box.value = "Etna"
    assert vp.volcano == "Etna"
    box.value = "Mount Doom"  # refused beside it: the box goes back to the state's volcano
    assert vp.volcano == "Etna" and box.value == "Etna" and "Mount Doom" in vp.input_errors["volcano"]


def test_world_scale_thins_the_volcanoes_and_highlights_the_selected_one(vp):
    regional = len(vp._volcanoes())
    vp.zone = "World"
    world = vp._volcanoes()
    assert 100 < len(world) < regional / 2 or len(world) < 600
    assert len(world) < 600 and world.opts.get("plot").kwargs.get("size", world.opts.get().kwargs.get("size")) == 6
    (lon, lat), = vp._selected_volcano().array()
    assert (round(lat, 2), round(lon, 2)) == (13.33, -61.18)


def test_the_time_series_panel_follows_the_maps_level_and_says_what_it_uses(vp):
    from app.data.wind import PLUME_HEIGHT_KM
    from app.views.timeseries_panel import TimeSeriesPanel

    panel = TimeSeriesPanel(vp, cache_dir=False)
    assert panel.variables == ["so2_7km"]
    vp.level = "15km"  # the map at 15 km: the panel computes so2_15km with the wind taken at 15 km
    assert panel.variables == ["so2_15km"] and panel.plume_height_km == PLUME_HEIGHT_KM["so2_15km"]
    vp.level = "3km"
    assert panel.variables == ["so2_3km"]
    panel.wind_source, panel.wind_ms = "constant", 12.0
    assert panel.used_text().startswith(
        f"**Column:** so2_3km (the map's level 3km) · **wind:** constant 12 m/s at {PLUME_HEIGHT_KM['so2_3km']:g} km")


def test_a_link_changing_level_and_zone_together_keeps_every_orbits_so2(vp_archive):
    """Issue 11's long-journey find: the zone's watcher ran with the default level's swaths still held."""
    linked = VolcPlume(archive=vp_archive)
    assert linked.apply_query({"zone": "World (Pacific-centred)", "level": "PBL"}) == []
    fresh = VolcPlume(archive=vp_archive, zone="World (Pacific-centred)", level="PBL")
    assert linked.orbits == fresh.orbits
    assert linked.pixel_counts() == fresh.pixel_counts()
    # the Caribbean's orbits (read at 7 km by the default view first) have their PBL pixels
    assert all(linked.pixel_counts()[o] > 9000 for o in (18121, 18122, 18123))


def test_the_url_names_orbits_by_number_and_reads_older_label_links(vp):
    vp.orbits = vp.orbits[:2]
    assert vp.orbit_numbers == [18121, 18122]
    assert vp.param.orbit_numbers.serialize(vp.orbit_numbers) == "18121,18122"
    assert vp.param.orbit_numbers.deserialize("18121,18122") == [18121, 18122]
    # numbers map to the zone's labels (with its in-zone times), in the zone's order
    assert vp.apply_query({"orbits": "18123,18121"}) == []
    assert [o.split(":")[0] for o in vp.orbits] == ["#18121", "#18123"]
    assert vp.apply_query({"orbits": 18122}) == [] and vp.orbit_numbers == [18122]
    # an older link's labels: their numbers count, their times (of another zone, perhaps) do not
    assert vp.apply_query({"orbits": ["#18121: 00:00 → 00:01", "#18123: 23:00 → 23:59"]}) == []
    assert vp.orbit_numbers == [18121, 18123]
    assert vp.apply_query({"orbits": '["#18122: 16:00 → 16:10"]'}) == [] and vp.orbit_numbers == [18122]
    # an orbit that does not cross the zone, and a value that is no orbit, are said
    problems = vp.apply_query({"orbits": "18122,99999"})
    assert problems == ["orbits: 1 of the link's orbits (99999) do not cross Caribbean on 2021-04-12; shown: 1"]
    problems = vp.apply_query({"orbits": "abc"})
    assert problems == ["orbits=abc: orbits: 'abc' is not an orbit number; used 18122"]
    # setting the numbers (the URL's way in) sets the chips
    vp.orbit_numbers = [18121]
    assert [o.split(":")[0] for o in vp.orbits] == ["#18121"]


def _served_map(vp):
    """The page's Bokeh document of the map and the controls, as a server session builds it; the map's figure."""
    from bokeh.document import Document

    doc = Document()
    doc.add_root(pn.Column(vp, vp.controls()).get_root(doc))
    figures = [m for m in doc.models if getattr(m, "name", None) == "volcplume-map"]
    assert len(figures) == 1
    return doc, figures[0]


def _colour_bar_title(fig):
    from bokeh.models import ColorBar

    return [r.title for r in fig.right if isinstance(r, ColorBar)]


@pytest.mark.parametrize("action, recomputes", [
    ({"level": "PBL"}, {"layers": 1, "map": 1}),
    ({"zone": "Mediterranean"}, {"layers": 1, "map": 1}),
    ({"zone": "World (Pacific-centred)", "level": "15km"}, {"layers": 1, "map": 1}),  # a link: one action too
    ({"qa_min": 0.7}, {"layers": 1, "map": 1}),
    ({"volcano": "Etna"}, {}),  # circles and the highlighted volcano only: no layer, no new image
])
def test_one_recompute_per_user_action(vp, action, recomputes):
    """Issue 11's speed: each action makes the layers once and sends the map its new state once."""
    _served_map(vp)
    vp.recomputes.clear()
    vp.param.update(**action)
    assert dict(vp.recomputes) == recomputes


def test_a_control_change_updates_the_same_figure_in_place(vp):
    """The figure is never rebuilt: the title, colour-bar title and extent are set on it (issue 11's < 1 s)."""
    doc, fig = _served_map(vp)
    assert fig.title.text == "TROPOMI SO2 7 km — 2021-04-12"
    assert _colour_bar_title(fig) == ["SO2 7 km, 2021-04-12 (DU)"]
    vp.level = "PBL"
    vp.zone = "Mediterranean"
    same = [m for m in doc.models if getattr(m, "name", None) == "volcplume-map"]
    assert same == [fig]
    assert fig.title.text == "TROPOMI SO2 PBL — 2021-04-12"
    assert _colour_bar_title(fig) == ["SO2 PBL, 2021-04-12 (DU)"]
    assert (fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end) == (-8.0, 42.0, 28.0, 48.0)
    assert fig.aspect_ratio == pytest.approx(2.5)  # the Mediterranean's 50° × 20°: one degree as long both ways
    vp.zone = "World (Pacific-centred)"
    assert (fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end) == (0.0, 360.0, -90.0, 90.0)
    assert vp.pixel_counts() and all(n > 0 for n in vp.pixel_counts().values())  # the Pacific frame's SO2


def test_a_view_asked_again_is_not_aggregated_again(vp, monkeypatch):
    """7 km → PBL → 7 km: the 7 km grid is kept (per day, field, filters, zone, orbits, view, size)."""
    import app.views.volcplume as module

    calls = []
    real = module.aggregate
    monkeypatch.setattr(module, "aggregate", lambda *a: calls.append(a[1:]) or real(*a))
    first = vp._image(None, None, 300, 150, vp.layers).dimension_values(2)
    vp.level = "PBL"
    pbl = vp._image(None, None, 300, 150, vp.layers).dimension_values(2)
    vp.level = "7km"
    again = vp._image(None, None, 300, 150, vp.layers).dimension_values(2)
    assert len(calls) == 2  # 7 km and PBL; the second 7 km is the kept grid
    np.testing.assert_array_equal(again, first)
    assert not np.array_equal(np.nan_to_num(pbl), np.nan_to_num(first))  # not a grid of another level
    vp.qa_min = 0.75  # other filters: aggregated anew
    vp._image(None, None, 300, 150, vp.layers)
    assert len(calls) == 3


def test_a_pan_is_written_to_the_state_and_one_out_of_the_zone_is_moved_back(vp):
    doc, fig = _served_map(vp)
    vp.recomputes.clear()
    vp._on_range(x_range=(-80.0, -50.0), y_range=(5.0, 20.0))  # as the page writes a pan back (RangeXY)
    assert vp.view_ranges() == ((-80.0, -50.0), (5.0, 20.0))
    assert dict(vp.recomputes) == {}  # the page has redrawn for its pan: the server sends nothing more
    fig.x_range.update(start=500.0, end=560.0)  # the page's ranges, synchronised to the server's models
    fig.y_range.update(start=10.0, end=20.0)
    vp._on_range(x_range=(500.0, 560.0), y_range=(10.0, 20.0))  # out of the Caribbean's frame
    assert vp.view_ranges() == ((-90.0, -40.0), (3.0, 28.0))
    assert (fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end) == (-90.0, -40.0, 3.0, 28.0)
    assert vp.recomputes["map"] == 1
