"""The GEO ring without a browser: regridding to the screen, frames, coastlines, the mosaic, the ring, stepping,
playing, the hover readout, the export, and the messages for bad input (missing slot, truncated file, absent
channel) on the tiny archive."""

from __future__ import annotations

import io
import shutil

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer

from app.data import geo
from app.data.archive import Archive
from app.paths import REPO
from app.render import geo as render
from app.science import rgb as rgbmod
from app.services import geo as services
from app.views.georing import GeoRing
from app.views.log_console import LogConsole

DAY = "2021-04-12"
T12, T15 = pd.Timestamp(f"{DAY}T12:00"), pd.Timestamp(f"{DAY}T15:00")


@pytest.fixture(scope="module")
def archive(tiny_archive_path) -> Archive:
    a = Archive("tiny")
    a.refresh()
    return a


@pytest.fixture(scope="module")
def damaged(tiny_archive_path, tmp_path_factory) -> Archive:
    """A copy of the tiny archive's GEO files with damage: GOES-16's 15:00 C13 truncated, its 12:00 C11 deleted,
    GOES-17's 15:00 slot deleted (so GOES-West is stale too)."""
    root = tmp_path_factory.mktemp("geo-damaged")
    (root / "catalogs").mkdir()
    shutil.copy(REPO / "catalogs" / "tiny.yaml", root / "catalogs" / "tiny.yaml")
    for folder in ("abi", "ahi", "seviri", "nwcsaf_ctth"):
        shutil.copytree(tiny_archive_path / folder, root / "data" / "tiny" / folder)
    abi = root / "data" / "tiny" / "abi"
    c13 = next(abi.glob("G16/*/*/*/OR_ABI-L1b-RadF-M6C13_G16_s2021102150*.nc"))
    c13.write_bytes(c13.read_bytes()[: c13.stat().st_size // 2])
    next(abi.glob("G16/*/*/*/OR_ABI-L1b-RadF-M6C11_G16_s2021102120*.nc")).unlink()
    for path in abi.glob("G17/*/*/*/OR_ABI-L1b-RadF-M6C*_G17_s2021102150*.nc"):
        path.unlink()
    a = Archive(str(root / "catalogs" / "tiny.yaml"))
    a.refresh(lambda *_: None)
    return a


def _scene(values: np.ndarray, step: float = 1000.0) -> xr.Dataset:
    ny, nx = values.shape
    x = (np.arange(nx) - (nx - 1) / 2) * step
    y = ((ny - 1) / 2 - np.arange(ny)) * step
    return xr.Dataset({"ir_105": (("y", "x"), values.astype(np.float32), {"units": "K"})},
                      coords={"y": y, "x": x}, attrs={"sensor": "abi"})


# --- regrid to the screen ---------------------------------------------------------------------------------------


def test_view_of_block_averages_to_the_screen():
    values = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    small = render.view_of(_scene(values), width=10)
    assert small.sizes == {"y": 10, "x": 10} and small.attrs["view_factor"] == 4
    expected = values.reshape(10, 4, 10, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(small["ir_105"].values, expected, rtol=1e-6)
    # centres of the blocks, in the scene's metres; y still north first
    np.testing.assert_allclose(small.x.values[:2], [-18000.0, -14000.0])
    assert small.y.values[0] == 18000.0 and small.y.values[1] < small.y.values[0]
    # a NaN pixel spoils only its block
    values[0, 0] = np.nan
    small = render.view_of(_scene(values), width=10)
    assert np.isnan(small["ir_105"].values[0, 0]) and np.isfinite(small["ir_105"].values[0, 1:]).all()


def test_view_of_cuts_the_view_and_keeps_scene_pixels_when_zoomed_in():
    values = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    small = render.view_of(_scene(values), x_range=(0, 10_000), y_range=(-5_000, 5_000), width=800)
    assert small.attrs["view_factor"] == 1
    assert small.sizes["x"] == 10  # the cells within 0 … 10 km, at the scene's resolution
    assert small.x.values[0] == pytest.approx(500.0) and small.x.values[-1] == pytest.approx(9_500.0)
    # wider than the screen by a non-whole factor: block mean by 2, then sampled to 45 columns
    small = render.view_of(_scene(values), width=45)
    assert small.sizes["x"] == 45 and small.attrs["view_factor"] == 2


def test_geos_forward_agrees_with_proj(archive):
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-180, 180, 5000), rng.uniform(-85, 85, 5000)
    for platform in ("G16", "MSG4", "H08"):
        scene = geo.read_scene(archive, platform, T12, ["ir_120"])
        x, y = render.geos_forward(lon, lat, *render._geometry(scene))
        px, py = Transformer.from_crs("EPSG:4326", scene.attrs["crs_proj4"], always_xy=True).transform(
            lon, lat, errcheck=False)
        seen = np.abs(np.asarray(px)) < 1e12
        assert (np.isfinite(x) == seen).all(), platform
        np.testing.assert_allclose(x[seen], np.asarray(px)[seen], atol=1e-3)
        np.testing.assert_allclose(y[seen], np.asarray(py)[seen], atol=1e-3)


# --- frames -----------------------------------------------------------------------------------------------------


def test_frame_at_native_size_is_the_composite(archive):
    scene = services.load_product(archive, "G16", T15, "ash")
    assert sorted(scene.data_vars) == ["ir_105", "ir_112", "ir_120", "ir_87"]  # only what the recipe reads
    frame = render.frame(scene, "ash", width=scene.sizes["x"], cache=False)
    assert frame.attrs["kind"] == "rgb" and frame.attrs["view_factor"] == 1
    np.testing.assert_array_equal(frame.values, rgbmod.to_rgba_uint8(rgbmod.compose(scene, "ash")))
    element = render.rgb_element(frame)
    assert isinstance(element, hv.RGB)
    left, bottom, right, top = element.bounds.lbrt()
    assert left < -5.3e6 and right > 5.3e6 and bottom < -5.3e6 and top > 5.3e6


def test_frames_are_cached(archive):
    scene = services.load_product(archive, "H08", T12, "dust")
    first = render.frame(scene, "dust", width=100)
    hits = render.FRAMES.hits
    again = render.frame(scene, "dust", width=100)
    assert again is first and render.FRAMES.hits == hits + 1


def test_composites_change_the_picture(archive):
    pictures = {}
    for product in ("ash", "dust", "natural_color", "so2"):
        scene = services.load_product(archive, "G16", T15, product)
        pictures[product] = render.frame(scene, product, width=200).values.astype(int)
    names = list(pictures)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(pictures[a] - pictures[b]).mean() > 5, (a, b)


def test_cloud_top_frame_has_units_and_a_colour_bar(archive):
    data = services.load_product(archive, "G16", T15, "cloud_top_height")
    frame = render.frame(data, "cloud_top_height", width=200)
    assert frame.attrs["kind"] == "field" and frame.attrs["units"] == "km"
    values = frame.values[np.isfinite(frame.values)]
    assert values.size > 100 and 0.0 < values.min() and values.max() < 20.0  # km, not m
    image = render.field_element(frame, "cloud_top_height")
    opts = image.opts.get().kwargs
    assert opts["colorbar"] and opts["clabel"] == "Cloud-top height (km)" and opts["clim"] == (0.0, 16.0)
    rgba = render.frame_rgba(frame)
    clear = frame["on_disk"].values & np.isnan(frame.values)
    assert clear.sum() > 100 and (rgba[clear] == render.CLEAR_SKY).all()  # clear sky on the disk: grey
    assert rgba[0, 0, 3] == 0  # space is transparent


def test_coastlines_are_projected_per_satellite(archive):
    goes = geo.read_scene(archive, "G16", T15, ["ir_105"])
    x, y = render.coastline_xy(goes)
    assert np.isfinite(x).sum() > 1000 and np.nanmax(np.abs(x)) < 5.5e6
    # St Vincent's coast is where PROJ puts it
    px, _ = Transformer.from_crs("EPSG:4326", goes.attrs["crs_proj4"], always_xy=True).transform(-61.2, 13.25)
    assert np.nanmin(np.abs(x - px)) < 20_000
    # another sub-longitude, another projection: Himawari sees Australia, not the Caribbean
    himawari = geo.read_scene(archive, "H08", T15, ["ir_105"])
    hx, _ = render.coastline_xy(himawari)
    assert np.isfinite(hx).sum() > 1000 and np.isfinite(hx).sum() != np.isfinite(x).sum()
    assert np.isnan(render.geos_forward(np.array([-61.2]), np.array([13.25]), *render._geometry(himawari))[0][0])
    path = render.coastline_path(goes)
    assert isinstance(path, hv.Path) and len(path.split()) == 1  # one glyph


# --- the mosaic -------------------------------------------------------------------------------------------------


def _ring_scenes(archive, t, product="ash"):
    out = {}
    for pos in geo.ring_at(DAY, archive):
        try:
            out[pos.platform] = services.load_product(archive, pos.platform, t, product)
        except geo.MissingSlotError:
            out[pos.platform] = None
    return out


def test_mosaic_has_no_gaps_within_60_degrees(archive):
    scenes = _ring_scenes(archive, T12)
    assert all(s is not None for s in scenes.values())
    m = render.mosaic(scenes, (-180, 180), (-80, 80), 720, 320, "ash")
    band = np.abs(m["y"].values) <= 60
    assert (m["source"].values[band] >= 0).all()
    assert (m["rgba"].values[band][..., 3] == 255).all()
    # each cell from the satellite nearest overhead
    lat, lon = m["y"].values, m["x"].values

    def source_at(la, lo):
        return m.attrs["platforms"][int(m["source"].values[np.abs(lat - la).argmin(), np.abs(lon - lo).argmin()])]

    assert [source_at(0, lo) for lo in (-140, -75, 0, 42, 140)] == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert source_at(0, 20) == "MSG4" and source_at(0, 22) == "MSG1"  # the boundary is half-way, 20.75° E


def test_mosaic_falls_back_when_a_slot_is_missing(archive):
    scenes = _ring_scenes(archive, T15)
    assert scenes["MSG1"] is None  # Meteosat-8's 15:00 is missing in the tiny archive
    m = render.mosaic(scenes, (-180, 180), (-70, 70), 720, 280, "ash")
    assert m.attrs["skipped"] == {"MSG1": "no slot"}
    lat, lon = np.meshgrid(m["y"].values, m["x"].values, indexing="ij")
    src = np.array(m.attrs["platforms"])[np.maximum(m["source"].values, 0)]
    indian_ocean = (np.abs(lon - 41.5) < 15) & (np.abs(lat) < 50)
    assert set(src[indian_ocean]) <= {"MSG4", "H08"} and (m["source"].values[indian_ocean] >= 0).all()
    # no gap where an available satellite sees the ground well (viewing zenith angle below 75°)
    seen = np.zeros(lat.shape, bool)
    for pos in geo.ring_at(DAY, archive):
        if scenes[pos.platform] is not None:
            seen |= render.viewing_zenith(pos.sub_lon, lon, lat) < 75
    assert seen.sum() > 0.8 * seen.size
    assert (m["source"].values[seen] >= 0).all()


def test_mosaic_of_cloud_tops_and_source_colours(archive):
    scenes = _ring_scenes(archive, T12, "cloud_top_height")
    m = render.mosaic(scenes, (-180, 180), (-60, 60), 360, 120, "cloud_top_height")
    values = m["value"].values
    assert np.isfinite(values).mean() > 0.1 and np.nanmax(values) < 20.0
    rgba = render.source_rgba(m["source"].values)
    colours = {tuple(c) for c in rgba.reshape(-1, 4)[:, :3]}
    assert {(0x1F, 0x77, 0xB4), (0x94, 0x67, 0xBD)} <= colours


# --- the dashboard's state --------------------------------------------------------------------------------------


def test_the_ring_lists_five_satellites_with_times_and_flags_stale_ones(archive, damaged):
    app = GeoRing(archive=archive, log=LogConsole())
    table = app.ring_table()
    assert list(table["name"]) == ["GOES-West", "GOES-East", "Meteosat", "Meteosat IODC", "Himawari"]
    assert list(table["time"].dt.strftime("%H:%M")) == ["15:00", "15:00", "15:00", "12:00", "15:00"]
    assert list(table["stale"]) == [False, False, False, True, False]
    view = app.ring_view()
    text = " ".join(str(p.object) for p in view.select(pn.pane.HTML))
    # the thumbnails are PNG bytes (no Bokeh plot each): GOES-East's is its 15:00 frame with coastlines drawn in
    import base64
    import re

    thumbs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(thumbs) == 5 and not view.select(pn.pane.HoloViews)
    png = base64.b64decode(thumbs[1])
    frame, product, note = app.ring_frame("G16", T15)
    assert (product, note) == ("ash", "") and png == render.thumbnail_png(frame, coastlines=True)
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert picture.shape[0] == picture.shape[1] >= 180 and (picture.std(axis=-1) > 12).mean() > 0.25
    yellow = (np.abs(picture - [242, 227, 76]).sum(axis=-1) < 10).mean()
    assert 0.001 < yellow < 0.1  # the coastlines, in the composite's yellow
    assert 'alt="GOES-16 Ash RGB 2021-04-12 15:00 UTC, full disk seen from 75.2° W"' in text
    text = re.sub(r"<img[^>]*>", "", text)  # the cards' own words (the thumbnails' alt texts name times too)
    assert text.count("STALE") == 1 and "STALE — 3 h behind" in text
    assert text.count("15:00 UTC") == 4 and text.count("12:00 UTC") == 1
    # GOES-17's 15:00 deleted: GOES-West is stale too
    table = GeoRing(archive=damaged, log=LogConsole()).ring_table()
    assert list(table["stale"]) == [True, False, False, True, False]


def test_stepping_changes_the_time_and_the_picture(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G16")
    assert (str(app.date), app.time, app.param.time.objects) == (DAY, "15:00", ["12:00", "15:00"])
    before = app.current_frame(width=200)
    app.step_slot(-1)
    assert app.time == "12:00" and app.slot_time == T12
    after = app.current_frame(width=200)
    assert np.abs(after.values.astype(int) - before.values.astype(int)).mean() > 1
    app.step_slot(1)
    assert app.time == "15:00"
    app.step_slot(1)  # the last slot of the archive: said, not moved
    assert app.time == "15:00" and "last GOES-16 slot" in app.log.messages()[-1]
    app.step_day(1)
    assert str(app.date) == DAY and app.alert.startswith("no GOES-16 slot on 2021-04-13; days with slots: 2021-04-12")
    assert app.title() == "GOES-16 (GOES-East, 75.2° W) — Ash RGB — 2021-04-12 15:00 UTC"


def test_a_missing_slot_is_said_and_play_skips_it(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="MSG1")
    assert app.param.time.objects == ["12:00", "15:00"]  # 15:00: the ring has it, Meteosat-8 does not
    app.time = "15:00"
    assert app.current_frame() is None
    assert app.alert == ("Meteosat-8 2021-04-12 15:00 UTC Ash RGB cannot be shown: no Meteosat-8 slot at "
                         "2021-04-12 15:00 UTC; nearest: 12:00")
    assert app.log.messages("error")[-1] == app.alert
    app.time = "12:00"
    assert app.play_step() == T12  # 15:00 skipped, back to 12:00
    assert app.skipped == ["animation skipped 15:00: no Meteosat-8 slot at 2021-04-12 15:00 UTC; nearest: 12:00"]
    # where neighbouring slots exist, play moves on
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="H08", time="12:00")
    assert app.play_step() == T15 and app.time == "15:00" and not app.skipped


def test_a_truncated_file_and_an_absent_channel_are_said(damaged):
    app = GeoRing(archive=damaged, log=LogConsole(), mode="satellite", satellite="G16", time="15:00")
    assert app.current_frame() is None
    assert "OR_ABI-L1b-RadF-M6C13_G16_s20211021500204" in app.alert and "truncated" in app.alert
    # named relative to the archive root, in the alert and in the log console: no server path on the page
    assert "abi/G16/" in app.alert and damaged.root not in app.alert and "/tmp" not in app.alert
    assert app.log.messages() and not any(damaged.root in m for m in app.log.messages())
    app.product = "natural_color"  # needs no C13: shown
    assert app.current_frame() is not None and app.alert == ""
    app.param.update(product="ash", time="12:00")
    assert app.current_frame() is None
    assert "the Ash RGB needs channel ir_87 (C11, 8.5 µm), which this GOES-16 scene lacks" in app.alert
    # playing: the Day Microphysics needs neither C11 nor C13, so it plays; the Ash RGB cannot play either slot
    app.product = "day_microphysics"
    assert app.play_step() == T15  # C07, C03, C14 are there
    app.product = "ash"
    assert app.play_step() is None and len(app.skipped) == 2


def test_hover_readout_gives_the_channels_of_the_composite(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G16")
    text = app.readout_text(0.0, 0.0)
    for band in ("C15", "C13", "C14", "C11"):
        assert f"**{band}**" in text
    assert " K" in text and "(0.2" in text
    assert app.readout_text(None, None).startswith("Hover or click the image")
    app.product = "cloud_top_temperature"
    info = app.values_at(0.0, 0.0)
    assert list(info["values"]) == ["cloud_top_temperature"]
    assert "Cloud-top temperature" in app.readout_text(0.0, 0.0)
    assert app.readout_text(9e6, 9e6).startswith("Hover or click the image")  # off the grid


def test_legend_and_export(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="H08", product="true_color")
    lines = app.legend_lines()
    assert lines[0] == "True Colour RGB (no Rayleigh correction)" and "Not Rayleigh-corrected" in lines[1]
    assert lines[2].startswith("R: B03")
    app.product = "ash"
    png = app.export_png().getvalue()
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape == (800, 1200, 3)
    assert (image.std(axis=2) > 20).sum() > 50_000  # a coloured picture, not a blank page
    assert app.export_filename() == "fumarole_H08_20210412T1500_ash.png"


def test_mosaic_mode_says_which_satellite_is_missing(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="mosaic", time="15:00")
    m = app.mosaic_at(width=360, height=160)
    assert m is not None and "Meteosat IODC: no Meteosat-8 slot at 2021-04-12 15:00 UTC" in app.alert
    assert app.check() is False
    app.time = "12:00"
    assert app.mosaic_at(width=360, height=160) is not None and app.alert == "" and app.check()


# --- the ring of the date viewed -----------------------------------------------------------------------------------


def test_the_satellite_list_is_the_ring_of_the_date(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G16")
    assert list(app.param.satellite.objects) == ["G17", "G16", "MSG4", "MSG1", "H08"]
    assert list(app.param.satellite.names) == [
        "GOES-West — GOES-17 (137.2° W)", "GOES-East — GOES-16 (75.2° W)", "Meteosat — Meteosat-11 (0°)",
        "Meteosat IODC — Meteosat-8 (41.5° E)", "Himawari — Himawari-8 (140.7° E)"]
    # a date after the handovers: the list names that date's satellites, and the position shown is followed
    app.date = pd.Timestamp("2025-07-08").date()
    assert app.satellite == "G19"  # GOES-East then
    assert list(app.param.satellite.names)[:2] == ["GOES-West — GOES-18 (137.2° W)", "GOES-East — GOES-19 (75.2° W)"]
    assert list(app.param.satellite.objects) == ["G18", "G19", "MTI1", "MSG2", "H09"]
    assert app.title() == "GOES-19 (GOES-East, 75.2° W) — Ash RGB — 2025-07-08 15:00 UTC"
    assert app.current_frame() is None
    assert app.alert.startswith("GOES-19 2025-07-08 15:00 UTC Ash RGB cannot be shown: no GOES-19 slot at 2025-07-08 "
                                "15:00 UTC: the archive has no GOES-19 (GOES-East from 2025-04-07) slot at all")
    app.date = pd.Timestamp(DAY).date()
    assert app.satellite == "G16"


def test_a_permalink_may_name_a_position_or_a_satellite_outside_the_ring(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="Meteosat IODC", date=T15.date())
    assert app.satellite == "MSG1" and app.position.name == "Meteosat IODC"
    # set later, as the URL does: the name becomes the platform id of the date shown
    app.satellite = "GOES-East"
    assert app.satellite == "G16" and app.title().startswith("GOES-16 (GOES-East, 75.2° W)")
    app.satellite = "Himawari-8"
    assert app.satellite == "H08"
    # Meteosat-8 on a day it no longer served: kept, labelled by name, and the list still offers that day's ring
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="MSG1",
                  date=pd.Timestamp("2023-01-10").date(), time="12:00")
    assert app.satellite == "MSG1"
    assert list(app.param.satellite.objects) == ["G18", "G16", "MSG4", "MSG2", "H09", "MSG1"]
    assert app.title() == "Meteosat-8 (41.5° E) — Ash RGB — 2023-01-10 12:00 UTC"  # in no ring position then


def test_the_ring_view_is_the_ring_of_the_time_viewed(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="ring", date=pd.Timestamp("2025-07-08").date(),
                  time="12:00")
    table = app.ring_table()
    assert list(table["platform"]) == ["G18", "G19", "MTI1", "MSG2", "H09"]
    assert list(table["satellite"]) == ["GOES-18", "GOES-19", "Meteosat-12", "Meteosat-9", "Himawari-9"]
    assert table["stale"].all() and table["time"].isna().all()  # the 2021 archive has none of them
    assert table["note"].iloc[0] == "the archive has no GOES-18 slot at or before 2025-07-08 12:00 UTC"
    text = " ".join(str(getattr(c, "object", "")) for card in [app._ring_card(r) for r in table.itertuples()]
                    for c in card)
    assert "GOES-19" in text and "Meteosat-12" in text and "GOES-16" not in text
    # a day when nobody we read held GOES-West: the card says so, nothing breaks
    old = GeoRing(archive=archive, log=LogConsole(), mode="ring", date=pd.Timestamp("2016-06-01").date(),
                  time="12:00").ring_table()
    assert old["platform"].iloc[0] == "" and old["note"].iloc[0].startswith("no satellite we read held GOES-West "
                                                                          "on 2016-06-01")


def test_an_unknown_satellite_in_the_url_is_said_and_replaced(archive):
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G16")
    app.satellite = "G99"
    assert app.satellite == "G16"
    assert app.alert.startswith("unknown geostationary satellite 'G99'; the ring today has G18 (GOES-18, GOES-West)")
    app = GeoRing(archive=archive, log=LogConsole(), mode="satellite", satellite="G99", date=T15.date(), time="15:00")
    assert app.satellite == "G16" and "unknown geostationary satellite 'G99'" in app.alert


# --- issue 11: one state, stamped frames, animation you can trust -----------------------------------------------

MULTIDAY = ("2021-04-11", "2021-04-12", "2021-04-13")


def multiday_geo(root) -> Archive:
    """The GEO files of three days (11 and 13 April: 00:00 and 18:00; 12 April: 12:00 and 15:00, as the tiny
    archive), written once under ``root``, and an indexed archive over them (catalogue under ``root/cat``).

    The tiny archive has one GEO day, where ``<<<``/``>>>`` cannot move; the defect of issue 11 (list and URL at
    18:00, image and title at 00:00) needs days whose slot lists differ.
    """
    import dataclasses

    from app.sample import archive as sample
    from tests.conftest import archive_over

    data = root / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    if not sample.is_complete(data):
        saved = sample.RESOLUTIONS["tiny"]
        sample.RESOLUTIONS["tiny"] = dataclasses.replace(saved, geo_other_times=("00:00", "18:00"))
        try:
            sample.write_archive(data, scenario="soufriere", resolution="tiny", products=["geo"], days=MULTIDAY,
                                 workers=1)
        finally:
            sample.RESOLUTIONS["tiny"] = saved
    return archive_over(data, root / "cat")


@pytest.fixture(scope="module")
def days3(tmp_path_factory) -> Archive:
    return multiday_geo(tmp_path_factory.getbasetemp() / "multiday-geo")


def test_day_steps_keep_list_title_and_time_one(days3):
    """Issue 11: after >>> the slot list and URL said 18:00, the image and title 00:00, and > stepped from 00:00."""
    app = GeoRing(archive=days3, mode="satellite", satellite="G16", date=pd.Timestamp("2021-04-12").date(),
                  time="15:00")
    ours = app.slot_select()
    panels = pn.widgets.Select.from_param(app.param.time)  # Panel's own link: must agree too
    assert (ours.value, ours.options) == ("15:00", ["12:00", "15:00"])
    app.step_day(1)  # 15:00 -> the nearest slot of the 13th: 18:00 (its list: 00:00, 18:00)
    assert (str(app.date), app.time) == ("2021-04-13", "18:00")
    assert ours.value == panels.value == "18:00" and ours.options == ["00:00", "18:00"]
    assert "2021-04-13 18:00 UTC" in app.title() and app.stamp_text().endswith("2021-04-13 18:00 UTC")
    app.step_slot(-1)  # < steps from the slot shown
    assert (str(app.date), app.time, ours.value, panels.value) == ("2021-04-13", "00:00", "00:00", "00:00")
    app.step_day(-1)
    assert (str(app.date), app.time, ours.value) == ("2021-04-12", "12:00", "12:00")
    app.step_slot(-1)  # into the previous day, its last slot
    assert (str(app.date), app.time, ours.value, ours.options) == ("2021-04-11", "18:00", "18:00", ["00:00", "18:00"])
    app.step_day(-1)  # no day before: said, not moved
    assert (str(app.date), app.time) == ("2021-04-11", "18:00") and "days with slots: 2021-04-11" in app.alert
    # a choice in the list moves the state
    ours.value = "00:00"
    assert app.time == "00:00" and "2021-04-11 00:00 UTC" in app.title()


def test_the_date_picker_offers_only_the_archives_days(days3):
    app = GeoRing(archive=days3, mode="satellite", satellite="G16")
    column = app.date_picker()
    picker, note = column.objects
    assert [str(d) for d in picker.enabled_dates] == list(MULTIDAY)
    assert "3 days in the archive: 2021-04-11, 2021-04-12, 2021-04-13" in note.object


def test_every_frame_is_stamped_with_time_satellite_and_product(archive):
    app = GeoRing(archive=archive, mode="satellite", satellite="G16", time="12:00")
    (x_range, y_range) = app.disk_ranges()
    stamp = app._stamp_layer(x_range, y_range, 400, 400)
    assert stamp.data.shape[1] < 400 and stamp.data.shape[0] < 40  # only the stamp's pixels are sent
    left, _, _, top = stamp.bounds.lbrt()
    assert (left, top) == (x_range[0], y_range[1])  # at the top left of the view
    assert app.stamp_text() == "GOES-16 · Ash RGB · 2021-04-12 12:00 UTC"
    assert np.array_equal(stamp.data, render.stamp_rgba(app.stamp_text(), small=True))
    # words only: no machine-readable strip (issue 11); white text on the dark box, nothing else
    rgb = stamp.data[..., :3].astype(int)
    assert set(np.unique(rgb.std(axis=-1) > 1)) == {False}  # greys only: no coloured marker
    assert (rgb.min(axis=-1) > 200).mean() > 0.03  # the text is drawn
    other = render.stamp_rgba("GOES-16 · Ash RGB · 2021-04-12 15:00 UTC", small=True)
    assert other.shape == stamp.data.shape and not np.array_equal(other, stamp.data)  # another slot, other pixels
    # the picture under it is the slot's frame
    image = app._image(x_range, y_range, 400, 400, kind="rgb", ranges=(x_range, y_range))
    assert np.array_equal(image.data, app.frame_at(T12, x_range, y_range, 400, 400).values)
    # the page's state says the slot too (a hidden element's data-* attributes)
    assert app.state_attributes() == {"mode": "satellite", "satellite": "G16", "slot": "2021-04-12T12:00",
                                      "product": "ash", "playing": "false", "speed": "2",
                                      "stamp": "GOES-16 · Ash RGB · 2021-04-12 12:00 UTC"}
    # the mosaic's frames are stamped too
    app.mode = "mosaic"
    stamp = app._stamp_layer(None, None, 900, 400, mosaic=True, default=((-180, 180), (-80, 80)))
    assert np.array_equal(stamp.data, render.stamp_rgba("Mosaic · Ash RGB · 2021-04-12 12:00 UTC"))
    assert app.stamp_text() == "Mosaic · Ash RGB · 2021-04-12 12:00 UTC"


def test_the_mosaic_reads_values_and_exports_like_one_satellite(archive):
    """Issue 11: the mosaic's readout names the satellite a pixel comes from and its values; its export draws
    title, time, legend and credits."""
    app = GeoRing(archive=archive, log=LogConsole(), mode="mosaic", time="12:00")
    assert app.mosaic_at() is not None
    text = app.mosaic_readout_text(-75.0, 10.0)  # under GOES-East
    assert text.startswith("**GOES-16** (GOES-East)") and "**C13** (10.35 µm):" in text and " K" in text
    info = app.mosaic_values_at(-75.0, 10.0)
    scene = services.load_product(archive, "G16", T12, "ash")
    direct = render.pixel_values(scene, lat=10.0, lon=-75.0, channels=["ir_105"])
    assert info["values"]["ir_105"]["value"] == direct["values"]["ir_105"]["value"]
    assert app.mosaic_readout_text(140.0, 0.0).startswith("**Himawari-8** (Himawari)")
    app.product = "cloud_top_height"
    text = app.mosaic_readout_text(-60.0, 10.0)
    assert "**Cloud-top height:**" in text and (" km" in text or "clear sky" in text)
    png = app.export_png().getvalue()
    picture = Image.open(io.BytesIO(png))
    assert picture.size == (1600, 650)
    assert app.export_filename() == "fumarole_mosaic_20210412T1200_cloud_top_height.png"
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    assert (rgb.std(axis=-1) > 12).mean() > 0.1  # the colour-mapped field is drawn


def test_pause_stops_on_the_frame_shown(archive):
    """A step queued before Pause (the periodic callback's) does not move the picture past the frame shown."""
    app = GeoRing(archive=archive, mode="satellite", satellite="G16", time="12:00")
    app._callback = object()  # as when playing: a periodic callback exists
    app.playing = False
    assert app.play_step() is None and app.time == "12:00"
    app._callback = None
    assert app.play_step() == T15 and app.time == "15:00"


def test_frames_are_prefetched_ahead(archive):
    import time as clock

    app = GeoRing(archive=archive, mode="satellite", satellite="H08", time="12:00", product="dust")
    x_range, y_range = app.disk_ranges()
    app._last_view = (x_range, y_range, 333, 333)
    assert app.prefetch([T15]) == 1
    deadline = clock.monotonic() + 60
    while services._PENDING and clock.monotonic() < deadline:  # the background job: wait for it to finish
        clock.sleep(0.05)
    data = services.load_product(archive, "H08", T15, "dust")
    key = render._frame_key(data, "dust", x_range, y_range, 333, 333)
    assert render.FRAMES.get(key) is not None


def test_a_bad_permalink_is_said_value_by_value(archive):
    app = GeoRing.from_query({"satellite": "Atlantis", "product": "sulphur", "date": "2021-13-45", "time": "25:99",
                              "speed": "99", "playing": "maybe", "mode": "satellite"}, archive=archive)
    for said in ("satellite='Atlantis'", "product='sulphur'", "date='2021-13-45'", "time='25:99'", "speed='99'",
                 "playing='maybe'"):
        assert said in app.alert, said
    assert (app.satellite, app.product, app.mode, app.speed, app.playing) == ("G16", "ash", "satellite", 2.0, False)
    assert "showing GOES-16, Ash RGB, 2021-04-12 15:00 UTC" in app.alert
    # a good time that is not a slot: the nearest slot, said
    app = GeoRing.from_query({"satellite": "H08", "time": "13:10"}, archive=archive)
    assert app.time == "12:00" and "time=13:10 is not a slot of that day" in app.alert
    # a good link: nothing said
    app = GeoRing.from_query({"satellite": "H08", "time": "15:00", "playing": "false", "speed": "10.0"},
                             archive=archive)
    assert app.alert == "" and app.speed == 10.0


# ------------------------------------------------------------------------------------------- the page's player
def test_the_frames_sent_ahead_are_the_columns_holoviews_sends(archive):
    """Issue 11's speed: a page swaps frames sent ahead into its image and stamp sources; they must be byte for
    byte what HoloViews would have sent for that slot (else the swapped picture and a redraw would differ)."""
    import base64
    import zlib

    app = GeoRing(archive=archive, mode="satellite", satellite="G16", time="15:00")
    x_range, y_range = app.disk_ranges()
    for product in ("ash", "cloud_top_height"):
        frame = app.frame_at(T15, x_range, y_range, 300, 300, product=product)
        for element in (render.image_element(frame),
                        render.stamp_element(300, 300, x_range, y_range, app._stamp_words("G16", product, T15))):
            sent = hv.renderer("bokeh").get_plot(element).handles["source"].data
            wire = render.wire_columns(element)
            image = np.frombuffer(zlib.decompress(base64.b64decode(wire["b64"])), dtype=wire["dtype"])
            assert image.tobytes() == np.ascontiguousarray(sent["image"][0]).tobytes()
            assert list(sent["image"][0].shape) == wire["shape"]
            for name in ("x", "y", "dw", "dh"):
                assert float(np.asarray(sent[name])[0]) == wire[name], name
    assert app._stamp_words("G16", "ash", T15) == app.stamp_text()  # the words of the slot shown


def _live_player(app):
    """A view whose page's player said it is ready (no page here: the frames are 'sent' by hand)."""
    player = app.player()
    app._live = True
    x_range, y_range = app.disk_ranges()
    app._last_view = (x_range, y_range, 300, 300)
    app._new_view()
    return player


def test_a_step_to_a_frame_sent_ahead_is_not_drawn_again_by_the_server(archive):
    app = GeoRing(archive=archive, mode="satellite", satellite="G16", time="12:00", product="dust")
    player = _live_player(app)
    assert player.order == ["2021-04-12T12:00", "2021-04-12T15:00"] and player.slot == "2021-04-12T12:00"
    before = app.redraw
    app.step_slot(1)  # 15:00 not sent yet: the server draws it
    assert app.redraw == before + 1 and player.slot == "2021-04-12T15:00"
    payload = app._payload("G16", "dust", T12, app._last_view)
    app._send_frame(app._view_key, "2021-04-12T12:00", payload)
    assert (app._view_key, "2021-04-12T12:00") in app._delivered
    app.step_slot(-1)  # 12:00 was sent: the page swaps it, the server only moves the state
    assert app.redraw == before + 1 and player.slot == "2021-04-12T12:00" and app.time == "12:00"
    # the frame sent is the one a redraw would send (the same element the DynamicMap returns)
    drawn = app._image(app._last_view[0], app._last_view[1], 300, 300, kind="rgb", ranges=app.disk_ranges())
    assert render.wire_columns(drawn) == payload["image"]
    # another view (a zoom): the frames sent for the old one do not count any more
    x_range, y_range = app.disk_ranges()
    app._last_view = ((x_range[0] / 2, x_range[1] / 2), (y_range[0] / 2, y_range[1] / 2), 300, 300)
    app._new_view()
    assert not app._delivered and player.view == app._view_key
    app.step_slot(1)
    assert app.redraw == before + 2


def test_pause_in_the_page_stops_on_the_frame_the_page_shows(archive):
    """Playing with the page's player: the timer runs in the page; on Pause the state takes the slot of the frame
    the page stopped on (said by the page), and the status says "Pausing…" until then."""
    app = GeoRing(archive=archive, mode="satellite", satellite="G16", time="12:00", product="dust", speed=10.0)
    player = _live_player(app)
    app.playing = True
    assert player.playing and player.fps == 10.0 and app._callback is None  # no server timer
    player.rate = 9.8  # measured in the page
    assert app.rate == 9.8 and app.play_text() == "▶ Playing — asked 10 fps, shown 9.8 fps"
    player.slot = "2021-04-12T15:00"  # the page says what it shows: the state, list, title and URL follow
    assert app.time == "15:00"
    app.playing = False
    assert not player.playing and app.pausing and app.play_text() == "❚❚ Pausing…"
    player.stopped = "2021-04-12T12:00 4711.5"  # the page stopped on the 12:00 frame
    assert (app.time, app.pausing, app.play_text()) == ("12:00", False, "❚❚ Paused on 12:00")
