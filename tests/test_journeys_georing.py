"""Random journeys through the GEO ring in a real browser (Debian's chromium), checked against one state.

A Hypothesis ``RuleBasedStateMachine`` takes random sequences of what a user does — satellite, product, date, slot,
``<``, ``>``, ``<<<``, ``>>>``, play/pause, mode, reopening the URL — on a served GEO ring over three days of GEO
files (:func:`tests.test_georing.multiday_geo`), and keeps its own model of the slot that must be shown. After each
step it checks that the picture, the title, the slot list, the page's state (``.georing-state``'s ``data-*``
attributes) and the URL name that same slot. The picture is not trusted from an attribute: the image data of the
stamp drawn in the frame (satellite, product, UTC time), read from the page's Bokeh document, must be byte for byte
the stamp :func:`app.render.geo.stamp_rgba` renders here for the model's slot (SHA-256 of both). The canvas must not
be blank where the slot exists; reopening the URL in a new page gives the same canvas (pixel hash).

Short run (``make test``): a fixed seed, 2 journeys of 6 steps (no shrinking: a browser journey is too slow to
shrink; the failing sequence is printed as it ran). Long run, with its results in docs/testing.md::

    FUMAROLE_JOURNEYS=long .venv/bin/pytest tests/test_journeys_georing.py -p no:randomly -q

(``FUMAROLE_JOURNEYS_EXAMPLES`` and ``FUMAROLE_JOURNEYS_STEPS`` override the counts.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import time
import urllib.parse

import numpy as np
import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from PIL import Image

from app.render import geo as render
from tests.conftest import served
from tests.test_georing import MULTIDAY, multiday_geo

pytestmark = pytest.mark.browser

LONG = os.environ.get("FUMAROLE_JOURNEYS") == "long"
EXAMPLES = int(os.environ.get("FUMAROLE_JOURNEYS_EXAMPLES", 25 if LONG else 2))
STEPS = int(os.environ.get("FUMAROLE_JOURNEYS_STEPS", 20 if LONG else 6))

#: The model of the archive: the slots of each day (every ring satellite has them but Meteosat-8's 15:00 on the 12th).
TIMES = {"2021-04-11": ["00:00", "18:00"], "2021-04-12": ["12:00", "15:00"], "2021-04-13": ["00:00", "18:00"]}
MISSING = {("MSG1", "2021-04-12", "15:00")}
SATELLITES = {"G17": "GOES-17", "G16": "GOES-16", "MSG4": "Meteosat-11", "MSG1": "Meteosat-8", "H08": "Himawari-8"}
PRODUCTS = ("ash", "dust", "cloud_top_height")
WAIT_S = 30.0


@pytest.fixture(scope="module")
def multiday_server(tmp_path_factory):
    """`fumarole serve` over three days of GEO files (the tiny archive has one: ``<<<``/``>>>`` could not move)."""
    root = tmp_path_factory.getbasetemp() / "multiday-geo"
    multiday_geo(root)
    with served(root / "cat" / "catalogs" / "tiny.yaml", quiet=True) as url:
        yield url


# ------------------------------------------------------------------------------------------- reading the page
def _until(what: str, predicate, timeout_s: float = WAIT_S):
    """The predicate's first true value, looked at again as soon as the last look is done; fails naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last is not None and last is not False:
            return last
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def image_box(page):
    """The box of the GEO image's canvas (the biggest canvas of the page), or None before it is drawn."""
    boxes = [c.bounding_box() for c in page.locator(".georing-image canvas").all()]
    boxes = [b for b in boxes if b and b["width"] > 100 and b["height"] > 100]
    return max(boxes, key=lambda b: b["width"] * b["height"]) if boxes else None


def canvas_pixels(page) -> np.ndarray | None:
    box = image_box(page)
    if box is None:
        return None
    return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB"))


def canvas_digest(page) -> str | None:
    """SHA-256 of the image's pixels on screen; None while the page has no image box (still laying out)."""
    pixels = canvas_pixels(page)
    return None if pixels is None else hashlib.sha256(pixels.tobytes()).hexdigest()


#: SHA-256 of the image data of the newest stamp renderer (``georing-stamp``) in the page's Bokeh documents.
STAMP_JS = """async () => {
  let best = null;
  for (const d of Bokeh.documents) for (const m of d._all_models.values()) {
    if (m.name !== 'georing-stamp' || !m.data_source) continue;
    const n = parseInt(String(m.id).replace(/\\D/g, '')) || 0;
    if (!best || n > best.n) best = {n, m};
  }
  if (!best) return null;
  const img = best.m.data_source.data.image[0];
  const bytes = new Uint8Array(img.buffer, img.byteOffset, img.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest).map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def shown_stamp(page) -> str | None:
    """The SHA-256 of the stamp's image data the page draws (None before it is drawn)."""
    try:
        return page.evaluate(STAMP_JS)
    except Exception:  # noqa: BLE001 - the page is between two documents (a reload): looked at again
        return None


def stamp_text(state: dict) -> str:
    """The words the frame of a slot is stamped with, as the model says."""
    who = "Mosaic" if state["mode"] == "mosaic" else SATELLITES[state["satellite"]]
    return f"{who} · {render.product_title(state['product'])} · {state['date']} {state['time']} UTC"


def stamp_digests(text: str) -> set[str]:
    """SHA-256 of the stamp rendered here for ``text``, as Bokeh carries it (rows bottom first; either size)."""
    return {hashlib.sha256(np.ascontiguousarray(render.stamp_rgba(text, small)[::-1]).tobytes()).hexdigest()
            for small in (False, True)}


def player(page) -> dict | None:
    """The page's frame player (``assets/georing_player.js``): the slot it shows, the frames it was sent for the view
    shown, and its log of frames shown (slot, time in ms, why: ``step``, ``play``, ``state``, ``sent``)."""
    return page.evaluate("""() => { const p = window.fumaroleGeoPlayer;
        return p ? {shown: p.shown, frames: p.frames ? p.frames() : [], log: p.log} : null }""")


def page_state(page) -> dict:
    """The ``data-*`` attributes of the page's ``.georing-state`` element (the state the page shows)."""
    return page.locator(".georing-state").first.evaluate(
        "e => Object.fromEntries(Object.entries(e.dataset))")


def painted(px: np.ndarray) -> float:
    """Fraction of the canvas that is not its most common colour (space, or the mosaic's background)."""
    flat = px.reshape(-1, 3).astype(int)
    values, counts = np.unique(flat // 8, axis=0, return_counts=True)
    modal = values[counts.argmax()] * 8
    return float((np.abs(flat - modal).sum(axis=1) > 30).mean())


def url_state(page) -> dict:
    """The query of the page's URL as the browser has it now (``location.href``: history changes included)."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.evaluate("location.href")).query))


def _choose(page, text: str, exact: bool = False) -> None:
    """Pick, in the select that offers it, the option whose label is (or contains) ``text``."""
    select = page.locator("select").filter(has=page.locator("option", has_text=text)).first
    labels = select.locator("option").all_inner_texts()
    select.select_option(label=next(x for x in labels if (x == text if exact else text in x)))


def title(page) -> str:
    return page.locator(".georing-title").first.inner_text()


def slot_value(page) -> str:
    return page.locator(".georing-slot select").first.input_value()


# ------------------------------------------------------------------------------------------- the machine
class GeoRingJourney(RuleBasedStateMachine):
    """A user on the GEO ring; the model is the slot (mode, satellite, date, time, product) that must be shown."""

    base = ""
    browser = None

    @initialize(satellite=st.sampled_from(sorted(SATELLITES)), day=st.sampled_from(MULTIDAY),
                product=st.sampled_from(PRODUCTS), mode=st.sampled_from(["satellite", "mosaic"]))
    def open(self, satellite, day, product, mode):
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.state = {"mode": mode, "satellite": satellite, "date": day, "time": TIMES[day][-1], "product": product}
        query = urllib.parse.urlencode({**self.state, "playing": "false"})
        self.page.goto(f"{self.base}/georing?{query}")

    def teardown(self):
        if hasattr(self, "context"):
            self.context.close()

    # --- what the model says
    def _settled(self) -> None:
        """Wait until the picture is the model's slot (the stamp's pixels in the page), then the texts around it."""
        text = stamp_text(self.state)
        want = stamp_digests(text)
        _until(f"the frame to be stamped {text!r} (its image data as rendered here)",
               lambda: shown_stamp(self.page) in want)

    # --- rules
    @rule(satellite=st.sampled_from(sorted(SATELLITES)))
    def choose_satellite(self, satellite):
        _choose(self.page, f"— {SATELLITES[satellite]} (")
        self.state["satellite"] = satellite
        self._settled()

    @rule(product=st.sampled_from(PRODUCTS))
    def choose_product(self, product):
        _choose(self.page, render.product_title(product), exact=True)
        self.state["product"] = product
        self._settled()

    @rule(data=st.data())
    def choose_slot(self, data):
        hhmm = data.draw(st.sampled_from(TIMES[self.state["date"]]))
        self.page.locator(".georing-slot select").first.select_option(value=hhmm)
        self.state["time"] = hhmm
        self._settled()

    @rule(day=st.sampled_from(MULTIDAY))
    def choose_date(self, day):
        """The date picker: the day's cell in the calendar (the archive's days only are enabled)."""
        self.page.locator(".georing-date input.form-control").first.click()
        label = dt.date.fromisoformat(day).strftime("%B %-d, %Y")
        self.page.locator(f".flatpickr-calendar.open .flatpickr-day[aria-label='{label}']").first.click()
        old = self.state["time"]
        times = TIMES[day]
        self.state.update(date=day, time=old if old in times else _nearest(times, old))
        self._settled()

    @rule(step=st.sampled_from(["<", ">", "<<<", ">>>"]))
    def step(self, step):
        self.page.get_by_role("button", name=step, exact=True).first.click()
        self.state.update(_stepped(self.state["date"], self.state["time"], step))
        self._settled()

    @rule()
    def play_then_pause(self):
        """Play at 10 fps until the picture has moved, then pause: the state is the frame shown at the pause."""
        before = shown_stamp(self.page)
        self.page.locator(".georing-play-toggle button").first.click()
        _until("the status to say Playing", lambda: "Playing" in self.page.locator(".georing-play").inner_text())
        _until("playing=true in the URL", lambda: url_state(self.page).get("playing") == "true")
        _until("the picture to move", lambda: shown_stamp(self.page) not in (None, before))
        self.page.locator(".georing-play-toggle button").first.click()
        status = _until("the status to say Paused", lambda: (lambda t: t if "Paused on" in t else None)(
            self.page.locator(".georing-play").inner_text()))
        self.state["time"] = status.rsplit(" ", 1)[-1]
        assert self.state["time"] in TIMES[self.state["date"]], status
        self._settled()

    @rule(mode=st.sampled_from(["One satellite", "Mosaic"]))
    def choose_mode(self, mode):
        self.page.get_by_role("button", name=mode, exact=True).first.click()
        self.state["mode"] = "mosaic" if mode == "Mosaic" else "satellite"
        self._settled()

    @rule()
    def reopen_the_url(self):
        """The URL reopened in a new page gives the same picture, pixel for pixel."""
        self._settled()
        here = _until("the image on this page", lambda: canvas_digest(self.page))
        other = self.context.new_page()
        try:
            other.goto(self.page.url)
            want = stamp_digests(stamp_text(self.state))
            _until("the reopened page to show the same slot", lambda: shown_stamp(other) in want)
            there = _until("the same canvas in the reopened page",
                           lambda: (lambda h: h if h == here else None)(canvas_digest(other)))
            assert there == here
        finally:
            other.close()

    # --- invariants
    @invariant()
    def one_slot_everywhere(self):
        if not hasattr(self, "page"):
            return
        self._settled()
        s = self.state
        when = f"{s['date']} {s['time']} UTC"
        _until(f"the title to name {when}", lambda: when in title(self.page))
        heading = title(self.page)
        assert render.product_title(s["product"]) in heading
        if s["mode"] == "satellite":
            assert heading.startswith(SATELLITES[s["satellite"]]), heading
        else:
            assert heading.startswith("Global mosaic"), heading
        _until(f"the slot list to say {s['time']}", lambda: slot_value(self.page) == s["time"])
        query = _until("the URL to name the slot", lambda: (lambda q: q if (q.get("date"), q.get("time")) == (
            s["date"], s["time"]) else None)(url_state(self.page)))
        assert (query["mode"], query["satellite"], query["product"]) == (s["mode"], s["satellite"], s["product"])
        assert query.get("playing", "").lower() == "false"
        assert f"Paused on {s['time']}" in self.page.locator(".georing-play").inner_text()
        shown = page_state(self.page)
        assert (shown["mode"], shown["slot"], shown["product"], shown["playing"]) == (
            s["mode"], f"{s['date']}T{s['time']}", s["product"], "false"), shown
        assert shown["satellite"] == ("" if s["mode"] == "mosaic" else s["satellite"]), shown
        assert shown["stamp"] == stamp_text(s), shown
        if s["mode"] == "satellite":  # the page's player (frames sent ahead) is on the state's slot too
            assert player(self.page)["shown"] == f"{s['date']}T{s['time']}", player(self.page)["shown"]
        if s["mode"] == "mosaic" or (s["satellite"], s["date"], s["time"]) not in MISSING:
            assert painted(canvas_pixels(self.page)) > 0.25, "the canvas is blank where the slot exists"
        assert not self.errors, self.errors


def _nearest(times: list[str], hhmm: str) -> str:
    minutes = [int(t[:2]) * 60 + int(t[3:]) for t in times]
    want = int(hhmm[:2]) * 60 + int(hhmm[3:])
    return times[int(np.argmin([abs(m - want) for m in minutes]))]


def _stepped(day: str, hhmm: str, step: str) -> dict:
    """The model's slot after ``<``, ``>``, ``<<<`` or ``>>>`` (at the archive's ends: unchanged)."""
    days = list(MULTIDAY)
    i = days.index(day)
    times = TIMES[day]
    if step in ("<<<", ">>>"):
        j = i + (1 if step == ">>>" else -1)
        if not 0 <= j < len(days):
            return {}
        return {"date": days[j], "time": _nearest(TIMES[days[j]], hhmm)}
    k = times.index(hhmm) + (1 if step == ">" else -1)
    if 0 <= k < len(times):
        return {"time": times[k]}
    j = i + (1 if step == ">" else -1)
    if not 0 <= j < len(days):
        return {}
    return {"date": days[j], "time": TIMES[days[j]][0 if step == ">" else -1]}


def test_random_journeys(multiday_server, browser):
    GeoRingJourney.base = multiday_server
    GeoRingJourney.browser = browser
    run_state_machine_as_test(GeoRingJourney, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=not LONG, deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate)))


# ------------------------------------------------------------------------------------------- the defects
def _journey(multiday_server, browser, **start) -> GeoRingJourney:
    GeoRingJourney.base = multiday_server
    GeoRingJourney.browser = browser
    machine = GeoRingJourney()
    machine.open(**{"satellite": "G16", "day": "2021-04-12", "product": "ash", "mode": "satellite", **start})
    machine.one_slot_everywhere()
    return machine


def test_day_steps_keep_image_title_list_and_url_one(multiday_server, browser, shots):
    """Issue 11: after >>> the slot list and URL said 18:00 while the image and title showed 00:00, and the next >
    stepped from 00:00. Here: 12th 15:00, >>> (13th 18:00), < (13th 00:00), <<< (12th 12:00), < (11th 18:00)."""
    machine = _journey(multiday_server, browser)
    try:
        for step, want in ((">>>", ("2021-04-13", "18:00")), ("<", ("2021-04-13", "00:00")),
                           ("<<<", ("2021-04-12", "12:00")), ("<", ("2021-04-11", "18:00")),
                           (">", ("2021-04-12", "12:00"))):
            machine.step(step)
            assert (machine.state["date"], machine.state["time"]) == want
            machine.one_slot_everywhere()
        machine.choose_mode("Mosaic")  # the mosaic steps like the one-satellite view
        machine.one_slot_everywhere()
        machine.step(">")
        machine.one_slot_everywhere()
        assert (machine.state["date"], machine.state["time"]) == ("2021-04-12", "15:00")
    finally:
        machine.teardown()


def test_play_at_10_fps_shows_its_rate_and_pauses_on_the_frame_shown(multiday_server, browser):
    """Issue 11: at 10 fps the time label was blank, the rate 4-5 fps, and Play ran 1-2 frames past Pause.

    With the frames sent ahead to the page (its player): a ``>`` over a frame sent is swapped in the page (not drawn
    again by the server) and the picture is the server's own drawing of that slot, pixel for pixel (the URL
    reopened); playing, every frame is the page's, stamped with its slot, at a rate measured in the page and said;
    Pause stops on the last frame the page showed."""
    GeoRingJourney.base = multiday_server
    GeoRingJourney.browser = browser
    machine = GeoRingJourney()
    machine.state = {"mode": "satellite", "satellite": "G16", "date": "2021-04-12", "time": "12:00", "product": "ash"}
    machine.context = browser.new_context(viewport={"width": 1400, "height": 1000})
    machine.page = page = machine.context.new_page()
    machine.errors = []
    day = [f"2021-04-12T{hhmm}" for hhmm in TIMES["2021-04-12"]]
    try:
        page.goto(f"{multiday_server}/georing?mode=satellite&satellite=G16&date=2021-04-12&time=12:00&speed=10.0")
        machine.one_slot_everywhere()
        _until("both frames of the day sent to the page", lambda: set(player(page)["frames"]) >= set(day))
        machine.step(">")
        last = player(page)["log"][-1]
        assert (last[0], last[2]) == ("2021-04-12T15:00", "step"), last  # swapped in the page at the click
        machine.one_slot_everywhere()
        machine.reopen_the_url()  # the swapped picture is the server's drawing of 15:00, pixel for pixel
        page.locator(".georing-play-toggle button").first.click()
        # the play state and the speed in the URL while playing, and the real rate said next to the asked one
        _until("playing=true in the URL", lambda: url_state(page).get("playing") == "true")
        assert url_state(page)["speed"] == "10.0"
        _until("the page's state to say playing", lambda: page_state(page)["playing"] == "true")
        played = _until("20 frames played by the page", lambda: (lambda log: log if len(log) >= 20 else None)(
            [e for e in player(page)["log"] if e[2] == "play"]))
        assert all(a[0] != b[0] and b[0] in day for a, b in zip(played[:-1], played[1:], strict=True)), played
        measured = (len(played) - 1) / ((played[-1][1] - played[0][1]) / 1000)

        def rate_said():
            text = page.locator(".georing-play").inner_text()
            return text if "shown" in text and float(text.split("shown ")[1].split(" fps")[0]) > 0 else None

        # the asked rate is met, or the real one said (a busy 2-core test machine does not always reach 10 fps;
        # benchmarks/bench_georing_ui.py measures it)
        status = _until("the real rate said while playing at 10 fps", rate_said)
        assert "asked 10 fps" in status, status
        said = float(status.split("shown ")[1].split(" fps")[0])
        assert abs(said - measured) < 3, (said, measured)  # the page's own measure, not the server's
        # every frame shown while playing is stamped with its own slot (its pixels as rendered here)
        slots = {d: hhmm for hhmm in TIMES["2021-04-12"]
                 for d in stamp_digests(stamp_text({**machine.state, "time": hhmm}))}
        seen = set()

        def two_slots_seen():
            seen.add(shown_stamp(page))
            return len(seen - {None}) >= 2

        _until("two slots seen while playing", two_slots_seen)
        assert seen - {None} <= set(slots), "a frame shown while playing is stamped with no slot of the day"
        page.locator(".georing-play-toggle button").first.click()
        status = _until("the status to say Paused", lambda: (lambda t: t if "Paused on" in t else None)(
            page.locator(".georing-play").inner_text()))
        machine.state["time"] = status.rsplit(" ", 1)[-1]
        assert player(page)["log"][-1][0] == f"2021-04-12T{machine.state['time']}"  # the last frame shown
        machine.one_slot_everywhere()  # picture, title, list and URL (playing=false): the frame at the pause
    finally:
        machine.teardown()


def test_a_link_with_playing_opens_playing_at_its_speed(multiday_server, browser):
    """Issue 11: the play state was not in the URL; a link with playing=true&speed=4 now opens playing at 4 fps."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{multiday_server}/georing?mode=satellite&satellite=H08&date=2021-04-12&time=12:00&product=dust"
                  f"&playing=true&speed=4")
        status = _until("the status to say Playing at 4 fps", lambda: (lambda t: t if "Playing" in t else None)(
            page.locator(".georing-play").inner_text()))
        assert "asked 4 fps" in status, status
        query = url_state(page)
        assert (query["playing"], query["speed"]) == ("true", "4.0")
        state = {"mode": "satellite", "satellite": "H08", "date": "2021-04-12", "product": "dust"}
        digests = {hhmm: stamp_digests(stamp_text({**state, "time": hhmm})) for hhmm in TIMES["2021-04-12"]}
        seen = set()

        def both_slots_shown():
            shown = shown_stamp(page)
            seen.update(h for h, d in digests.items() if shown in d)
            return seen == set(digests)

        _until("both slots of the day shown while playing", both_slots_shown)
        page.locator(".georing-play-toggle button").first.click()
        _until("playing=false in the URL after Pause", lambda: url_state(page).get("playing") == "false")
        # "Pausing…" until the page has said which frame it stopped on, then the slot of that frame
        status = _until("the status to say Paused", lambda: (lambda t: t if "Paused on" in t else None)(
            page.locator(".georing-play").inner_text()))
        assert player(page)["shown"] == f"2021-04-12T{status.rsplit(' ', 1)[-1]}"  # the frame on the screen
    finally:
        context.close()
