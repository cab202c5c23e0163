"""The kiosk's playlist checks, its frames (decoded PNGs), its loop on an injected clock, and the last good frame."""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from app.paths import CATALOGS, REPO
from app.services import kiosk, so2map
from tests.conftest import archive_over

GOOD = {"title": "A title", "caption": "Plain words.", "product": "so2_map", "date": "2021-04-12",
        "zone": "Caribbean", "seconds": 10}


@pytest.fixture(scope="module")
def tiny(tiny_archive_path):
    from app.data.archive import get_archive

    archive = get_archive(str(REPO / "catalogs" / "tiny.yaml"))
    archive.refresh(lambda *_: None)
    return archive


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------------------------------------- playlist


@pytest.mark.parametrize("change,key,words", [
    ({"title": None}, "title", "is missing"),
    ({"title": "x" * 61}, "title", "at most 60"),
    ({"caption": "<b>bold</b>"}, "caption", "plain words"),
    ({"caption": "costs $5"}, "caption", "plain words"),
    ({"product": "radar"}, "product", "is not one of geo, mosaic"),
    ({"seconds": 0}, "seconds", "from 1 to 600"),
    ({"seconds": "ten"}, "seconds", "from 1 to 600"),
    ({"date": "2021-13-40"}, "date", "is not a date"),
    ({"date": None, "start": "2021-04-10"}, "end", "is missing"),
    ({"date": None, "start": "2021-04-12", "end": "2021-04-10"}, "end", "is not after the start"),
    ({"date": None, "start": "2021-01-01", "end": "2021-06-01"}, "end", "at most 31"),
    ({"step": "often"}, "step", "is not a duration"),
    ({"zone": "Atlantis"}, "zone", "is not a zone"),
    ({"zone": None, "bbox": [10, 50, 20]}, "bbox", "lon_min, lat_min"),
    ({"zone": None, "bbox": [10, 50, 20, 40]}, "bbox", "south < north"),
    ({"level": "9km"}, "level", "is not one of PBL"),
    ({"volcano": "Mount Nowhere At All"}, "volcano", "Mount Nowhere"),
    ({"product": "geo"}, "satellite", "is missing"),
    ({"product": "geo", "satellite": "GOES-99"}, "satellite", "unknown geostationary satellite"),
    ({"product": "geo", "satellite": "G16", "geo_product": "fire"}, "geo_product", "is not one of ash"),
    ({"product": "caliop_curtain", "granule": "../../etc/passwd"}, "granule", "no folder"),
    ({"product": "caliop_curtain", "variable": "temperature"}, "variable", "is not one of"),
    ({"product": "so2_mass"}, "volcano", "is missing"),
    ({"product": "so2_mass", "volcano": "Soufriere St. Vincent", "radii_km": [-5]}, "radii_km", ""),
    ({"max_frames": 100}, "max_frames", "from 1 to 24"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"id": "two words"}, "id", "letters, digits"),
])
def test_a_bad_key_is_named_with_its_event(change, key, words):
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    event, problems = kiosk.check_event(raw, 2)
    assert event is None
    label = f'event 3 ("{raw["title"]}")' if "title" in raw and len(raw["title"]) <= 60 else "event 3"
    assert any(p.startswith(label) and repr(key) in p and words in p for p in problems), problems


def test_a_good_event_is_read_with_its_values():
    raw = {**GOOD, "date": None, "start": "2021-04-10", "end": "2021-04-12", "volcano": "Soufriere St Vincent"}
    event, problems = kiosk.check_event({k: v for k, v in raw.items() if v is not None}, 0)
    assert problems == []
    assert event.start == pd.Timestamp("2021-04-10") and event.end == pd.Timestamp("2021-04-13")  # end day included
    assert event.zone.name == "Caribbean" and event.level == "7km" and event.seconds == 10.0
    assert event.volcano == "Soufriere St. Vincent" and event.id == "a-title"


def test_a_bad_event_is_skipped_and_logged_the_others_play(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path))
    path = tmp_path / "kiosk.yaml"
    path.write_text(yaml.safe_dump({"events": [GOOD, {**GOOD, "title": "Broken", "zone": "Atlantis"},
                                               {**GOOD, "title": "Third"}]}))
    with caplog.at_level(logging.WARNING, logger="app.services.kiosk"):
        playlist = kiosk.load_playlist(str(path))
    assert [e.title for e in playlist.events] == ["A title", "Third"]
    assert [e.index for e in playlist.events] == [0, 2]
    assert playlist.problems == ["event 2 (\"Broken\"): key 'zone' 'Atlantis' is not a zone; zones are "
                                 + ", ".join(so2map.ZONES)]
    assert "event 2 (\"Broken\"): key 'zone'" in caplog.text


def test_the_playlist_file_must_be_in_catalogs_or_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(yaml.safe_dump({"events": [GOOD]}))
    with pytest.raises(kiosk.UserInputError, match="outside .*catalogs.* and the state folder"):
        kiosk.load_playlist(str(outside))
    with pytest.raises(kiosk.UserInputError, match="outside"):
        kiosk.playlist_path("../pyproject.toml")  # relative: inside catalogs/, resolved, refused
    monkeypatch.setenv("FUMAROLE_KIOSK_PLAYLIST", str(outside))
    with pytest.raises(kiosk.UserInputError, match="elsewhere.yaml"):
        kiosk.load_playlist()
    monkeypatch.delenv("FUMAROLE_KIOSK_PLAYLIST")
    assert kiosk.playlist_path() == (CATALOGS / "kiosk.playlist.yaml").resolve()


def test_the_default_playlist_tells_the_story_in_five_events(tiny):
    playlist = kiosk.load_playlist()
    assert playlist.problems == []
    assert [e.product for e in playlist.events] == ["geo", "so2_map", "caliop_curtain", "mosaic", "so2_mass"]
    assert all(e.title and e.caption and e.seconds >= 10 for e in playlist.events)
    times = {e.id: kiosk.frame_times(tiny, e) for e in playlist.events}
    # the tiny archive holds 2021-04-12 only: the eruption animates its two GOES-16 slots, the plume its one day
    assert times["eruption"] == [pd.Timestamp("2021-04-12 12:00"), pd.Timestamp("2021-04-12 15:00")]
    assert times["plume"] == [pd.Timestamp("2021-04-12")]


# ------------------------------------------------------------------------------------------------- frames


def _event(**keys) -> kiosk.KioskEvent:
    raw = {k: v for k, v in {**GOOD, **keys}.items() if v is not None}
    event, problems = kiosk.check_event(raw, 0)
    assert not problems, problems
    return event


def _texts(png: bytes) -> tuple[Image.Image, dict]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image, dict(image.text)


def test_an_so2_frame_shows_the_plume_in_the_scale_colours(tiny):
    from app.render.swath import aggregate

    event = _event(title="The plume", volcano="Soufriere St. Vincent")
    frame = kiosk.render_frame(tiny, event, pd.Timestamp("2021-04-12"), "landscape", "http://kiosk.test")
    image, text = _texts(frame.png)
    assert image.size == (1920, 1080)
    assert text["Title"] == "The plume" and text["Caption"] == "Plain words."
    assert text["Colour bar"] == "SO2 7 km column (DU)" and text["Time"] == "12 April 2021 (UTC)"
    assert text["URL"] == "http://kiosk.test/volcplume?zone=Caribbean&date=2021-04-12&level=7km"
    assert "ESA–Copernicus (TROPOMI)" in text["Credits"]
    # the strongest column of the day's grid, found from the data, is drawn in the scale's darkest colour
    req = so2map.So2Request(t0=pd.Timestamp("2021-04-12"), t1=pd.Timestamp("2021-04-13"), zone=event.zone)
    layers = so2map.so2_layers(tiny, req, so2map.plan(tiny, req).rows)
    grid = kiosk._grid_for(event, (1920, 1080))
    agg = aggregate(layers.layers, event.zone.x_range, event.zone.y_range, *grid)
    values = agg.transpose("y", "x").to_numpy()
    iy, ix = np.unravel_index(np.nanargmax(values), values.shape)
    assert values[iy, ix] > 20.0  # above the colour range: the end colour
    box, extent = text["Map box"].split(";")
    x0, y0, x1, y1 = (float(v) for v in box.split(","))
    lon0, lon1, lat0, lat1 = (float(v) for v in extent.split(","))
    lon, lat = float(agg["x"][ix]), float(agg["y"][iy])
    px = int(x0 + (lon - lon0) / (lon1 - lon0) * (x1 - x0))
    py = int(y0 + (lat1 - lat) / (lat1 - lat0) * (y1 - y0))
    assert lon > -61.5 and 10 < lat < 20  # east of the volcano, in the plume
    colour = np.asarray(image.convert("RGB"))[py, px].astype(int)
    darkest = np.array([int(kiosk.SO2[-1][i:i + 2], 16) for i in (1, 3, 5)])
    assert np.abs(colour - darkest).max() <= 3, (colour, darkest)
    # the title is drawn in the band at the top: light text on the dark background
    band = np.asarray(image.convert("L"))[20:130, 44:900]
    assert (band > 200).sum() > 3000 and (band < 30).sum() > 10000
    rows = np.flatnonzero((band > 200).sum(axis=1) > 3)
    assert rows.max() - rows.min() >= 40  # "A title": capitals at least 40 px tall (a 60 px font) on 1080 rows


def test_frames_are_drawn_at_the_size_class_and_cached(tiny):
    event = _event(title="Portrait")
    t = pd.Timestamp("2021-04-12")
    portrait = kiosk.render_frame(tiny, event, t, "portrait", "http://kiosk.test")
    assert _texts(portrait.png)[0].size == (1080, 1920)
    assert kiosk.render_frame(tiny, event, t, "portrait", "http://kiosk.test") is portrait  # the cache's
    with pytest.raises(kiosk.UserInputError, match="size class 'square'"):
        kiosk.render_frame(tiny, event, t, "square")


def test_a_geo_animation_has_one_frame_per_slot(tiny):
    event = _event(title="Ash", product="geo", satellite="GOES-East", geo_product="ash", date=None,
                   start="2021-04-12T00:00", end="2021-04-12T23:00")
    times = kiosk.frame_times(tiny, event)
    assert times == [pd.Timestamp("2021-04-12 12:00"), pd.Timestamp("2021-04-12 15:00")]
    frames = [kiosk.render_frame(tiny, event, t, "landscape", "http://k") for t in times]
    texts = [_texts(f.png)[1] for f in frames]
    assert [t["Time"] for t in texts] == ["12 April 2021, 12:00 UTC", "12 April 2021, 15:00 UTC"]
    assert texts[1]["URL"] == "http://k/georing?mode=satellite&satellite=G16&date=2021-04-12&time=15%3A00&product=ash"
    pictures = [np.asarray(_texts(f.png)[0].convert("RGB")) for f in frames]
    assert (pictures[0] != pictures[1]).any(axis=2).sum() > 1000  # the two slots differ


def test_the_qr_code_encodes_the_permalink(tiny):
    import segno

    frame = kiosk.render_frame(tiny, _event(title="QR"), pd.Timestamp("2021-04-12"), "landscape", "http://q.test")
    image, text = _texts(frame.png)
    x0, y0, module, n = (int(v) for v in text["QR box"].split(","))
    grey = np.asarray(image.convert("L"))
    centres = np.arange(n) * module + module // 2
    seen = grey[y0 + centres[:, None], x0 + centres[None, :]] < 128
    expected = np.array([list(r) for r in segno.make(text["URL"], error="m", micro=False).matrix], dtype=bool)
    assert n == expected.shape[0] and module >= 4  # at least 4 pixels a module: readable from a phone
    assert (seen == expected).all()
    assert (grey[y0 - 4 * module: y0 - 1, x0: x0 + n * module] == 255).all()  # the quiet zone is white


# ------------------------------------------------------------------------------------------------- loop


def test_the_loop_plays_each_frame_for_its_time_in_order():
    clock = FakeClock()
    loop = kiosk.KioskLoop([[5.0], [3.0, 3.0], [4.0]], clock)
    seen = []
    for step in range(0, 30):
        clock.t = 1000.0 + step * 1.0
        seen.append(loop.at())
    assert seen[:15] == [(0, 0)] * 5 + [(1, 0)] * 3 + [(1, 1)] * 3 + [(2, 0)] * 4
    assert seen[15:20] == [(0, 0)] * 5  # and again from the first
    assert loop.after((1, 0)) == (1, 1) and loop.after((1, 1)) == (2, 0) and loop.after((2, 0)) == (0, 0)
    with pytest.raises(ValueError):
        kiosk.KioskLoop([], clock)


def _view(archive, events, clock, wall=None):
    from app.views.kiosk import KioskView

    playlist = kiosk.parse_playlist(yaml.safe_dump({"events": events}))
    assert playlist.problems == []
    source = kiosk.FrameSource(archive, playlist, "http://kiosk.test", clock)
    return source, KioskView(source, clock, wall or (lambda: dt.datetime(2026, 1, 2, 9, 41, tzinfo=dt.UTC)))


def _settle(view, source) -> None:
    """Tick until the frame the loop wants has been dealt with (waiting on its render, not on a timer)."""
    for _ in range(3):
        source.future(view.loop.at(), view.size_class()).exception(timeout=120)
        view.tick()


def test_the_view_advances_by_the_clock_and_swaps_ready_frames(tiny):
    clock = FakeClock()
    events = [{**GOOD, "title": "First", "seconds": 6},
              {**GOOD, "title": "Second", "product": "caliop_curtain", "volcano": "Soufriere St. Vincent",
               "seconds": 4}]
    source, view = _view(tiny, events, clock)
    assert source.durations() == [[6.0], [4.0]]
    _settle(view, source)
    assert (view.screen.event, view.screen.title, view.swaps) == ("first", "First", 1)
    clock.t += 5.9
    _settle(view, source)
    assert view.screen.event == "first" and view.swaps == 1  # not yet
    clock.t += 0.2
    _settle(view, source)
    assert view.screen.event == "second" and view.swaps == 2
    assert "caliop_granule=CAL_LID_L1-Standard-V4-51.2021-04-12T16-56-33ZD.hdf" in view.screen.url
    clock.t += 4.0
    _settle(view, source)
    assert view.screen.event == "first" and view.swaps == 3 and view.screen.note == ""
    view.screen.portrait = True
    _settle(view, source)
    assert view.swaps == 4 and _texts(view.source.future((0, 0), "portrait").result().png)[0].size == (1080, 1920)


def test_a_damaged_granule_keeps_the_last_good_frame_with_its_age(tiny_copy, tmp_path, caplog):
    archive = archive_over(tiny_copy, tmp_path)
    name = "CAL_LID_L1-Standard-V4-51.2021-04-12T16-56-33ZD.hdf"
    path = next(Path(tiny_copy).rglob(name))
    path.write_bytes(b"\x0e\x03\x13\x01" + b"not an HDF4 file" * 64)  # damaged after the index was made
    clock = FakeClock()
    events = [{**GOOD, "title": "Plume", "seconds": 5},
              {**GOOD, "title": "Curtain", "product": "caliop_curtain", "granule": name, "seconds": 5}]
    source, view = _view(archive, events, clock)
    _settle(view, source)
    good_src = view.screen.src
    assert view.screen.event == "plume" and good_src.startswith("data:image/png;base64,")
    clock.t += 5.0
    with caplog.at_level(logging.WARNING, logger="app.services.kiosk"):
        _settle(view, source)
    assert view.screen.src == good_src and view.screen.event == "plume"  # the last good frame stays
    note = view.screen.note
    assert note.startswith("Shown since 09:41 UTC — the data for “Curtain” could not be read: ")
    assert name in note and "Traceback" not in note
    assert name in caplog.text
    clock.t += 5.0
    _settle(view, source)
    assert view.screen.note == "" and view.screen.event == "plume"  # back to good data: the note goes
