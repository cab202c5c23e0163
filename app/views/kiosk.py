"""The outreach kiosk's screen: full-screen frames of a playlist that advance and loop by themselves.

:class:`KioskScreen` is the browser part (a Panel ``JSComponent``): one ``<img>`` filling the window (the frame PNG,
drawn on the server at the screen's size class), the event's title and caption as text (shown in large type until
the first frame arrives, then kept for screen readers and tests), and a status line when a frame is stale. It has no
input, scroll bar or context menu; it tells the server whether the window is portrait.

:class:`KioskView` decides what is shown: on each tick (a periodic callback of the session, 4 per second) it asks
the loop (:class:`app.services.kiosk.KioskLoop`) which frame should be on screen, and swaps it in when the frame is
ready (rendered ahead on the service's thread); while a frame is being drawn the previous one stays. When a frame's
data cannot be read, the last good frame stays, with "shown since HH:MM UTC — the data for <event> could not be
read: <reason>" (the reason is also logged by the service).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import time
from collections.abc import Callable

import panel as pn
import param
from panel.custom import JSComponent

from app.data.archive import get_archive
from app.data.errors import FumaroleError
from app.services.kiosk import Frame, FrameSource, KioskLoop, load_playlist

log = logging.getLogger(__name__)

#: Large type, scaled by the viewport: at 1080 pixels on the short side the title is 59 px, the caption 35 px.
KIOSK_CSS = """
:host { display: block; }
.kiosk { position: fixed; inset: 0; background: #0d1117; color: #f5f5f5; overflow: hidden; cursor: none;
         user-select: none; -webkit-user-select: none; font-family: "DejaVu Sans", sans-serif; }
.kiosk-frame { position: absolute; inset: 0; width: 100vw; height: 100vh; object-fit: contain; display: none; }
.has-frame .kiosk-frame { display: block; }
.kiosk-text { position: absolute; left: 4vmin; right: 4vmin; top: 4vmin; }
.kiosk-title { font-size: max(48px, 5.5vmin); font-weight: bold; margin: 0 0 2vmin 0; line-height: 1.2; }
.kiosk-caption { font-size: max(28px, 3.2vmin); color: #b8c0cc; margin: 0; line-height: 1.3; }
.has-frame .kiosk-text { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
                         white-space: nowrap; }
.kiosk-note { position: absolute; left: 2vmin; right: 2vmin; bottom: 2vmin; padding: 1vmin 2vmin;
              font-size: max(22px, 2.2vmin); background: rgba(120, 72, 0, 0.92); color: #fff;
              border-radius: 1vmin; }
.kiosk-note[hidden] { display: none; }
"""


class KioskScreen(JSComponent):
    """The kiosk's page: the frame, the event's words, the stale note; reports whether the window is portrait."""

    src = param.String(default="", doc="the frame, a data: URL of its PNG")
    title = param.String(default="Fumarole")
    caption = param.String(default="")
    note = param.String(default="", doc="shown when the frame is stale (its age and why)")
    event = param.String(default="", doc="the id of the event whose frame is shown")
    frame = param.String(default="", doc="event and frame index shown, e.g. 2/1")
    url = param.String(default="", doc="the same view in the full dashboard")
    portrait = param.Boolean(default=False, doc="set by the browser: the window is taller than wide")

    _stylesheets = [KIOSK_CSS]

    _esm = """
export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "kiosk";
  const img = document.createElement("img");
  img.className = "kiosk-frame";
  img.draggable = false;
  const text = document.createElement("div");
  text.className = "kiosk-text";
  const h1 = document.createElement("h1");
  h1.className = "kiosk-title";
  const cap = document.createElement("p");
  cap.className = "kiosk-caption";
  const note = document.createElement("div");
  note.className = "kiosk-note";
  note.setAttribute("role", "status");
  text.append(h1, cap);
  root.append(img, text, note);
  function update() {
    h1.textContent = model.title;
    cap.textContent = model.caption;
    root.dataset.event = model.event;
    root.dataset.frame = model.frame;
    root.dataset.url = model.url;
    if (model.src) {
      if (img.src !== model.src) { img.src = model.src; }
      img.alt = model.title + ". " + model.caption;
      root.classList.add("has-frame");
    } else {
      root.classList.remove("has-frame");
    }
    note.textContent = model.note;
    note.hidden = !model.note;
  }
  for (const name of ["src", "title", "caption", "note", "event", "frame", "url"]) { model.on(name, update); }
  function orient() {
    const portrait = window.innerHeight > window.innerWidth;
    if (model.portrait !== portrait) { model.portrait = portrait; }
  }
  window.addEventListener("resize", orient);
  for (const node of [document.documentElement, document.body]) { node.style.overflow = "hidden"; }
  document.body.style.margin = "0";
  for (const kind of ["contextmenu", "dragstart", "selectstart"]) {
    document.addEventListener(kind, (e) => e.preventDefault());
  }
  orient();
  update();
  el.appendChild(root);
}
"""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class KioskView:
    """One session's kiosk: the screen and the loop over the frame source; :meth:`tick` advances it."""

    def __init__(self, source: FrameSource, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], dt.datetime] = _utc_now):
        self.source = source
        self.loop = KioskLoop(source.durations(), clock)
        self.wall = wall
        first = source.playlist.events[0]
        self.screen = KioskScreen(title=first.title, caption=first.caption, sizing_mode="stretch_both")
        self.shown: tuple | None = None  # ((event, frame), size) last dealt with
        self.good: tuple | None = None  # ((event, frame), size) of the frame on screen
        self.good_since: dt.datetime | None = None
        self.swaps = 0

    def size_class(self) -> str:
        """``portrait`` or ``landscape``, as the browser says."""
        return "portrait" if self.screen.portrait else "landscape"

    def tick(self) -> None:
        """Show the frame the loop wants now, if it is ready (and start drawing the next one)."""
        pos = self.loop.at()
        size = self.size_class()
        self.source.future(self.loop.after(pos), size)  # drawn ahead, so the next transition is a swap
        if (pos, size) == self.shown:
            return
        fut = self.source.future(pos, size)
        if not fut.done():
            return
        self.shown = (pos, size)
        exc = fut.exception()
        if exc is None:
            self._show(pos, fut.result())
        else:
            self._stale(pos, exc)

    def _show(self, pos: tuple[int, int], frame: Frame) -> None:
        event = self.source.event(pos)
        self.screen.param.update(src="data:image/png;base64," + base64.b64encode(frame.png).decode("ascii"),
                                 title=frame.title, caption=frame.caption, note="", event=event.id,
                                 frame=f"{pos[0]}/{pos[1]}", url=frame.url)
        self.good = (pos, self.size_class())
        self.good_since = self.wall()
        self.swaps += 1

    def _stale(self, pos: tuple[int, int], exc: BaseException) -> None:
        event = self.source.event(pos)
        reason = str(exc) or type(exc).__name__
        if self.good is None:  # nothing good yet: the event's own words, in large type
            self.screen.param.update(title=event.title, caption=event.caption, event=event.id,
                                     frame=f"{pos[0]}/{pos[1]}",
                                     note=f"The data for “{event.title}” could not be read: {reason}")
            return
        since = f"{self.good_since:%H:%M}" if self.good_since else "--:--"
        self.screen.note = f"Shown since {since} UTC — the data for “{event.title}” could not be read: {reason}"

    def start(self, period_ms: int = 250):
        """Tick on a periodic callback of this session, stopped when the session ends."""
        callback = pn.state.add_periodic_callback(self._safe_tick, period=period_ms)

        def stop(_context):
            callback.stop()

        pn.state.on_session_destroyed(stop)
        return callback

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except Exception:  # noqa: BLE001 - a kiosk never shows a traceback; the log has it
            log.exception("kiosk tick failed")

    def __panel__(self):
        """The screen."""
        return self.screen


def page_base(location) -> str:
    """The address of the dashboards as the browser reached this page (the QR codes' links by default)."""
    port = f":{location.port}" if location.port else ""
    path = (location.pathname or "/kiosk").rsplit("/kiosk", 1)[0]
    return f"{location.protocol or 'http:'}//{location.hostname or 'localhost'}{port}{path}"


def kiosk_page() -> pn.Column:
    """The served page: a placeholder at once; after the page has loaded, the playlist's loop (:class:`KioskView`).

    A playlist that cannot be read, or whose events are all refused, is said on the screen and in the log.
    """
    holder = pn.Column(KioskScreen(title="Fumarole", caption="Loading…", sizing_mode="stretch_both"),
                       sizing_mode="stretch_both", margin=0)

    def build():
        try:
            source = FrameSource(get_archive(), load_playlist(), page_base(pn.state.location))
            if not source.playlist.events:
                raise FumaroleError("; ".join(source.playlist.problems))
        except FumaroleError as exc:
            log.error("the kiosk cannot start: %s", exc)
            holder[:] = [KioskScreen(title="Fumarole", caption="This screen will be back soon.",
                                     note=f"The kiosk cannot start: {exc}", sizing_mode="stretch_both")]
            return
        view = KioskView(source)
        holder[:] = [view.screen]
        view.start()

    pn.state.onload(build)
    return holder
