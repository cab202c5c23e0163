"""What an archive holds: granules per product and day, and the files skipped with the reason.

Files are named relative to the archive root, the catalogue by its name: the page never shows a server path.

"Rescan archive" re-reads the archive's files into the granule index. It is an admin action: it is offered only
when the operator started the server with ``fumarole serve --admin`` (``FUMAROLE_ADMIN=1``; until the pages have
logins, the operator decides for every visitor), and at most once every ``FUMAROLE_RESCAN_INTERVAL_S`` seconds
(default 60) per server process, whoever asks. A rescan runs in a thread, off the server's event loop, and the page
says it is running and then what it found.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import pandas as pd
import panel as pn
import param

from app.data import geo
from app.data.archive import Archive, get_archive
from app.data.errors import FumaroleError
from app.data.index import without_root

#: Environment variable the operator sets (``fumarole serve --admin``) to allow admin actions.
ADMIN_ENV = "FUMAROLE_ADMIN"
INTERVAL_ENV = "FUMAROLE_RESCAN_INTERVAL_S"
DEFAULT_INTERVAL_S = 60.0
#: Days of each geostationary satellite the table shows (the newest): their folders are listed, not the archive's.
GEO_DAYS_SHOWN = 7


def admin_allowed() -> bool:
    """Whether the operator allowed admin actions (``FUMAROLE_ADMIN=1``, set by ``fumarole serve --admin``)."""
    return os.environ.get(ADMIN_ENV, "").strip().lower() in ("1", "true", "yes")


def rescan_interval_s() -> float:
    """The least time between two rescans of one server process (``FUMAROLE_RESCAN_INTERVAL_S``, default 60 s)."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


class RescanGate:
    """One rescan at a time per process, and at most one every ``interval`` seconds (whoever asks)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = False
        self._last: float | None = None

    def acquire(self, interval_s: float, now: float | None = None) -> str | None:
        """Take the gate; returns None when taken, else a sentence saying why not and when to try again."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._running:
                return "A rescan is running already; its result will show here."
            if self._last is not None and now - self._last < interval_s:
                wait = interval_s - (now - self._last)
                return (f"The archive was rescanned {now - self._last:.0f} s ago; rescans are allowed once every "
                        f"{interval_s:.0f} s: try again in {wait:.0f} s.")
            self._running = True
            self._last = now
            return None

    def release(self) -> None:
        """The rescan ended (the interval counts from its start)."""
        with self._lock:
            self._running = False

    def reset(self) -> None:
        """Forget the last rescan (tests)."""
        with self._lock:
            self._running = False
            self._last = None


#: The gate of this server process.
RESCAN_GATE = RescanGate()


def catalog_label(source: str) -> str:
    """The catalogue as users see it: its name for one shipped with Fumarole, else its file name (never a path)."""
    from app.paths import CATALOGS

    text = str(source)
    if "://" in text or "::" in text:
        return text.rstrip("/").rsplit("/", 1)[-1]
    path = Path(text)
    if path.parent.resolve() == CATALOGS.resolve() and path.suffix == ".yaml":
        return path.stem
    return path.name


class ArchiveOverview(pn.viewable.Viewer):
    """A table of the archive's granules by product and day, and the log of files the index skipped."""

    archive = param.ClassSelector(class_=Archive, doc="the archive shown (default: the served catalogue)")
    refreshes = param.Integer(default=0, doc="how many times the index was refreshed from this page")
    rescanning = param.Boolean(default=False, doc="a rescan started from this page is running")
    status = param.String(default="", doc="what the last press of Rescan archive did, in a sentence")

    def __init__(self, **params):
        if params.get("archive") is None:
            params["archive"] = get_archive()
        super().__init__(**params)
        self._refresh_button = pn.widgets.Button(label="Rescan archive", color="primary", width=160,
                                                 disabled=not admin_allowed())
        self._refresh_button.on_click(self._on_refresh)
        self._thread: threading.Thread | None = None

    def _on_refresh(self, _event=None) -> None:
        """Start a rescan in a thread when this visitor may and the process's gate allows it; say why not else."""
        if not admin_allowed():
            self.status = ("Rescanning the archive is an admin action; the operator allows it with "
                           "`fumarole serve --admin`.")
            return
        refused = RESCAN_GATE.acquire(rescan_interval_s())
        if refused:
            self.status = refused
            return
        self.rescanning = True
        self._refresh_button.disabled = True
        self.status = f"Rescanning the archive (started {time.strftime('%H:%M:%S', time.gmtime())} UTC)…"
        doc = pn.state.curdoc if pn.state.curdoc and pn.state.curdoc.session_context else None
        self._thread = threading.Thread(target=self._rescan, args=(doc,), name="archive-rescan", daemon=True)
        self._thread.start()

    def _rescan(self, doc) -> None:
        t0 = time.perf_counter()
        try:
            rep = self.archive.refresh()
            n_new = len(rep.added) + len(rep.updated)
            text = (f"Rescanned in {time.perf_counter() - t0:.1f} s: {len(self.archive.index)} granules "
                    f"({n_new} new or changed, {len(rep.removed)} removed, {rep.unchanged} unchanged), "
                    f"{len(rep.skipped)} file(s) skipped.")
        except Exception as exc:  # a failed rescan is said on the page; the server goes on
            text = f"The rescan failed: {self.archive.describe(exc)}"
        finally:
            RESCAN_GATE.release()
        if doc is not None:
            doc.add_next_tick_callback(lambda: self._done(text))
        else:
            self._done(text)

    def _done(self, text: str) -> None:
        self.status = text
        self.rescanning = False
        self._refresh_button.disabled = not admin_allowed()
        self.refreshes += 1

    def wait_rescan(self, timeout: float | None = None) -> bool:
        """Wait for the rescan thread started from this page (tests, scripts); True when none is running."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def summary_table(self) -> pd.DataFrame:
        """One row per product and day: granules, first start, last end, orbits (TROPOMI); GEO: slots per day."""
        self.archive.granules(self.archive.products()[0])  # the index is built on first use
        t = self.archive.index.table
        rows = []
        if not t.empty:
            t = t.assign(day=t["start"].dt.strftime("%Y-%m-%d"))  # a copy: the index's table is shared
            for (product, day), g in t.groupby(["product", "day"], sort=True):
                orbits = g["orbit"].dropna()
                rows.append(self._row(product, day, len(g), g["start"].min(), g["end"].max(),
                                      f"{int(orbits.min())}–{int(orbits.max())}" if len(orbits) else ""))
        rows += self.geo_rows()
        columns = ["product", "day", "granules", "first start (UTC)", "last end (UTC)", "orbits"]
        return pd.DataFrame(rows, columns=columns)

    @staticmethod
    def _row(product: str, day: str, n: int, first: pd.Timestamp, last: pd.Timestamp, orbits: str = "") -> dict:
        return {"product": product, "day": day, "granules": n, "first start (UTC)": first.strftime("%H:%M"),
                "last end (UTC)": last.strftime("%m-%d %H:%M"), "orbits": orbits}

    def geo_rows(self) -> list[dict]:
        """The newest :data:`GEO_DAYS_SHOWN` days of each satellite of a time-partitioned GEO product, as slots.

        Those products are not in the granule index (app.data.geo_slots lists their folders around the times
        asked for): the days come from folder names, the slots from those days' folders only. A satellite whose
        folders cannot be listed is logged and left out; the rest is shown.
        """
        products = set(self.archive.products())
        rows = []
        for plat in geo.constellation(self.archive).platforms.values():
            product = geo.IMAGER_PRODUCTS.get(plat.instrument)
            if product not in products or not self.archive.product_info(product).partition:
                continue
            try:
                for day in geo.days(self.archive, plat.key)[-GEO_DAYS_SHOWN:]:
                    t0 = pd.Timestamp(day)
                    found = geo.slots(self.archive, plat.key, t0, t0 + pd.Timedelta(days=1))
                    if len(found):
                        times = found["time"]
                        rows.append(self._row(f"{product} {plat.key} (slots)", f"{t0:%Y-%m-%d}", len(found),
                                              times.min(), times.max()))
            except FumaroleError as exc:
                self.log_line(f"{plat.name}: its folders cannot be listed: {exc}")
        return rows

    def log_line(self, text: str) -> None:
        """A problem met while building the table, said in the page's status line (and the server log)."""
        logging.getLogger(__name__).warning("%s", text)
        self.status = text

    def skipped_lines(self) -> list[str]:
        """The files the last index refresh skipped, named relative to the archive root, with the reason."""
        rep = self.archive.last_report
        if rep is None:
            return []
        return [f"{self.archive.name_of(p)}: {without_root(str(r), self.archive.root)}" for p, r in rep.skipped]

    @param.depends("refreshes")
    def _table(self):
        df = self.summary_table()
        if df.empty:
            return pn.pane.Alert(
                f"The archive of the catalogue {catalog_label(self.archive.catalog_source)} holds no granule yet. "
                "Write the sample archive with `fumarole sample`.", alert_type="warning",
            )
        return pn.widgets.Tabulator(df, show_index=False, disabled=True, sizing_mode="stretch_width")

    def empty_lines(self) -> list[str]:
        """The product folders of the last refresh that hold no granule (named relative to the archive root)."""
        rep = self.archive.last_report
        if rep is None:
            return []
        return [f"{self.archive.name_of(p)}: {without_root(str(r), self.archive.root)}" for p, r in rep.empty]

    @param.depends("refreshes")
    def _skipped(self):
        lines = self.skipped_lines()
        text = "No file was skipped."
        if lines:
            items = "\n".join(f"- `{line}`" for line in lines)
            text = f"**Skipped files**\n\n{items}"
        empty = self.empty_lines()
        if empty:
            text += "\n\n**Product folders with no granule**\n\n" + "\n".join(f"- `{line}`" for line in empty)
        return pn.pane.Markdown(text, name="skipped")

    @param.depends("status", "rescanning")
    def _status(self):
        note = self.status or ("" if admin_allowed() else
                               "Rescanning the archive is an admin action, off on this server.")
        return pn.Row(
            pn.indicators.LoadingSpinner(value=True, size=20, visible=self.rescanning),
            pn.pane.Markdown(note, name="rescan status", margin=(0, 10)),
        )

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(f"## {self.archive.title}\n\nCatalogue: `{catalog_label(self.archive.catalog_source)}`"),
            pn.Row(self._refresh_button, self._status),
            self._table,
            self._skipped,
            sizing_mode="stretch_width",
        )
