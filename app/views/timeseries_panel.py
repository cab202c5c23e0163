"""The VolcPlume panel "Satellite time series around a volcano": SO2 mass per orbit and radius, and the flux.

:class:`TimeSeriesPanel` holds the question and the answer as ``param`` parameters, so a test drives it without a
browser. It follows the map (:class:`app.views.volcplume.VolcPlume`) one way: the map's volcano, filters (QA,
SZA, edge pixels), level and date set the panel's, which the user may still edit. The work is split in steps so
cheap changes stay cheap:

1. :meth:`TimeSeriesPanel.compute` checks the question (volcano, period, radii, variables, filters) in the
   caller, then runs :func:`app.services.timeseries.compute_mass_timeseries` for each variable on a worker thread,
   with progress and a cancel ``Event``. The thread never touches a widget: its progress and its result are
   handed to the session's document with ``doc.add_next_tick_callback``, so every update happens on the
   server's event loop, under the document lock, and the page stays responsive. ``compute(sync=True)`` runs
   the same steps in the caller (tests, notebooks).
2. The variable shown picks its table of masses (one row per orbit and radius).
3. The table, the wind (the catalogue's wind entry -- a constant, a CSV or an ERA5 file, taken at the plume height
   over the volcano at each orbit's time, :mod:`app.data.wind` --, a constant, or an uploaded CSV) and the minimum
   coverage make the disk-method flux per orbit: changing the wind never recomputes a mass. Without a wind the
   flux is blank and says why, once, in the alert and the log (and in the flux CSV's header).
4. The plots: mass versus time (a line per radius), mass versus radius for one orbit with the fit
   M(r) = a·r + b·r², flux versus time with its 1-sigma error bars.

"Download CSV" writes the table with :func:`app.services.timeseries.write_timeseries_csv` and the same provenance
as ``fumarole timeseries`` (the CLI), so both give the same file for the same question, including the granules
that were skipped (named relative to the archive root, with the reason), which the alert and the log show too.

Where the computation runs is the operator's choice: the ``cluster`` selector offers the names of the clusters
configured in the operator's settings (:func:`app.core.settings.clusters`; ``local`` is this server's threads),
and the engine looks the address up on the server. No field, URL parameter or parameter of the panel holds an
address: a visitor cannot make the server connect anywhere (a Dask client unpickles what its scheduler sends).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from app.data.archive import TROPOMI, Archive, get_archive
from app.data.errors import FumaroleError, UserInputError
from app.data.wind import (
    DEFAULT_PLUME_HEIGHT_KM,
    PLUME_HEIGHT_KM,
    ConstantWind,
    CsvWind,
    WindError,
    WindSource,
    no_wind_reason,
    wind_from_catalog,
)
from app.science.filters import DEFAULT_FILTERS, Filters
from app.science.units import KG_PER_TONNE
from app.services.timeseries import (
    SO2_VARIABLES,
    TimeseriesReport,
    VolcanoRef,
    check_radii,
    check_variable,
    cluster_names,
    compute_flux_timeseries,
    compute_mass_timeseries,
    parse_period,
    resolve_volcano,
    write_timeseries_csv,
)
from app.views.log_console import LogConsole
from app.views.shell import WRAP_INLINE_CSS, labelled_checkbox
from app.views.volcplume import LEVELS, RADII_KM, VolcPlume

logger = logging.getLogger(__name__)

#: Radii ticked by default: the SCIENCE.md radii up to 500 km (1000 and 2000 km reach far from the volcano).
DEFAULT_RADII_KM = [r for r in RADII_KM if r <= 500]
#: Where the wind at plume height comes from (label shown: value kept): the catalogue's wind entry (a constant, a CSV
#: or an ERA5 file, :mod:`app.data.wind`), a constant speed, or an uploaded CSV.
WIND_SOURCES = {"Catalogue wind": "catalog", "Constant speed": "constant", "Wind CSV": "csv"}
#: Days before and after the map's day that the default period may span (within the archive's days).
PERIOD_HALF_WIDTH_DAYS = 3
PLOT_HEIGHT = 340

TIME = hv.Dimension("time", label="Time", unit="UTC")
MASS = hv.Dimension("mass_t", label="SO2 mass", unit="t")
RADIUS = hv.Dimension("radius_km", label="Radius", unit="km")
FLUX = hv.Dimension("flux_t_day", label="SO2 flux", unit="t/day")
FLUX_ERR = hv.Dimension("flux_err_t_day", label="1-sigma", unit="t/day")
COVERAGE = hv.Dimension("coverage", label="Disk covered", value_format=lambda v: f"{v:.0%}")
ORBIT = hv.Dimension("orbit", label="Orbit")
WIND = hv.Dimension("wind_ms", label="Wind at plume height", unit="m/s")


@dataclass(frozen=True)
class TimeSeriesJob:
    """One checked question: what :func:`compute_mass_timeseries` is asked, once per variable."""

    volcano: VolcanoRef
    start: pd.Timestamp
    end: pd.Timestamp  # excluded
    radii_km: tuple[float, ...]
    variables: tuple[str, ...]
    filters: Filters
    cluster: str  # the name of a configured cluster; its address stays in the operator's settings


def _radius_colours(radii: list[float]) -> dict[float, str]:
    """A colour per radius, dark blue (small) to orange (large): ordered like the radii, readable on white."""
    from bokeh.palettes import Plasma256

    n = len(radii)
    stops = np.linspace(0, 200, n).astype(int) if n > 1 else [0]
    return {r: Plasma256[i] for r, i in zip(sorted(radii), stops, strict=True)}


def _time_limits(times: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The time axis: the times and a margin (5 %, at least 30 min), so a lone orbit sits mid-plot, not on an edge."""
    t0, t1 = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    pad = max((t1 - t0) * 0.05, pd.Timedelta(minutes=30))
    return t0 - pad, t1 + pad


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "volcano"


class TimeSeriesPanel(pn.viewable.Viewer):
    """SO2 mass around a volcano for every orbit of a period, per radius, with the disk-method flux and a CSV."""

    volcplume = param.ClassSelector(class_=VolcPlume, allow_None=True, precedence=-1,
                                    doc="the map whose volcano, filters, level and date the panel follows")
    volcano = param.String(default="Soufriere St. Vincent",
                           doc="volcano at the centre of the disks (GVP name or number); follows the map's")
    start = param.CalendarDate(default=None, allow_None=True, doc="first day of the period (UTC)")
    end = param.CalendarDate(default=None, allow_None=True, doc="last day of the period (UTC), included")
    variables = param.ListSelector(default=["so2_7km"], objects=list(SO2_VARIABLES),
                                   doc="TROPOMI SO2 columns (box-profile heights) to compute, one table each")
    radii = param.ListSelector(default=DEFAULT_RADII_KM, objects=RADII_KM, doc="disk radii (km)")
    qa_min = param.Number(default=DEFAULT_FILTERS.qa_min, bounds=(0, 1),
                          doc="filter from the map: a pixel's qa_value must be above this")
    sza_max = param.Number(default=DEFAULT_FILTERS.sza_max, bounds=(0, 180), allow_None=True,
                           doc="filter from the map: maximum solar zenith angle (degrees); None for no limit")
    edge_pixels = param.Integer(default=DEFAULT_FILTERS.edge_pixels, bounds=(0, 225),
                                doc="filter from the map: ground pixels dropped on each swath edge (of 450)")
    min_du = param.Number(default=DEFAULT_FILTERS.min_du, allow_None=True,
                          doc="columns below this (DU) count as 0 (truncation); None for no truncation")
    wind_source = param.Selector(default="catalog", objects=WIND_SOURCES,
                                 doc="wind at plume height for the flux: the catalogue's wind entry, a constant or a "
                                     "CSV")
    plume_height_km = param.Number(default=DEFAULT_PLUME_HEIGHT_KM, bounds=(0, 32), step=0.5,
                                   doc="plume height (km) at which a gridded or profiled wind is taken; follows the "
                                       "level")
    wind_ms = param.Number(default=10.0, bounds=(0, None), softbounds=(0, 60), doc="constant wind speed (m/s)")
    wind_file = param.Bytes(default=None, allow_None=True, doc="uploaded wind CSV (columns time, wind_ms)")
    wind_filename = param.String(default="", doc="name of the uploaded wind CSV")
    min_coverage = param.Number(default=0.5, bounds=(0, 1), step=0.05,
                                doc="flux: fit only radii whose disk is covered by valid pixels at least this much")
    cluster = param.Selector(default="local", objects=["local"],
                             doc="where the computation runs: the name of a cluster the operator configured "
                                 "(local: this server's threads); never an address")
    shown_variable = param.Selector(default=None, objects=[], allow_None=True,
                                    doc="variable whose table, plots and CSV are shown")
    orbit = param.Selector(default=None, objects=[], allow_None=True, doc="orbit of the mass-versus-radius plot")
    log_mass = param.Boolean(default=False, doc="logarithmic mass axes (masses <= 0 are then not drawn)")

    results = param.Dict(default={}, precedence=-1,
                         doc="derived: {variable: (mass table, TimeseriesReport)} of the last computation")
    table = param.DataFrame(default=None, allow_None=True, precedence=-1,
                            doc="derived: the mass table of the variable shown (one row per orbit and radius)")
    flux = param.DataFrame(default=None, allow_None=True, precedence=-1,
                           doc="derived: the disk-method flux per orbit of the table shown")
    wind_label = param.String(default="", precedence=-1,
                              doc="derived: the wind used, as the flux CSV records it ('none: why' without one)")
    running = param.Boolean(default=False, precedence=-1, doc="derived: a computation is under way")
    progress_done = param.Integer(default=0, precedence=-1, doc="derived: granules done (all variables)")
    progress_total = param.Integer(default=0, precedence=-1, doc="derived: granules to do (all variables)")
    message = param.String(default="", precedence=-1, doc="derived: the last outcome or problem, as a sentence")
    message_type = param.Selector(default="info", objects=["info", "success", "warning", "danger"],
                                  precedence=-1, doc="derived: the alert's kind")

    def __init__(self, volcplume: VolcPlume | None = None, archive: Archive | None = None,
                 log: LogConsole | None = None, cache_dir: Any = None, **params):
        """Follow ``volcplume`` (if given); ``cache_dir`` is the engine's (None: default, False: none).

        The default cache is the archive's folder in the per-user state folder, never the archive.
        """
        self.archive = archive or (volcplume.archive if volcplume is not None else get_archive())
        self.log = log or (volcplume.log if volcplume is not None else LogConsole())
        self.cache_dir = cache_dir
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._watching_session = False
        self._catalog_wind: WindSource | None = None
        self._said: set[str] = set()  # the no-wind reasons already said (each once in the alert and the log)
        if volcplume is not None:
            params = {**self._from_map(volcplume), **params}
        if params.get("start") is None or params.get("end") is None:
            day = volcplume.date if volcplume is not None else None
            params = {**dict(zip(("start", "end"), self._period_around(day), strict=True)), **params}
        cluster = params.pop("cluster", None)
        super().__init__(volcplume=volcplume, **params)
        self.param.cluster.objects = self._configured_clusters()  # this instance's choices: the operator's now
        if cluster is not None:
            self.cluster = cluster  # a name that is not configured is refused (ValueError), as from the page

    def _configured_clusters(self) -> list[str]:
        try:
            return cluster_names()
        except UserInputError as exc:  # the operator's settings are broken: local threads only, and say why
            self.log.write("warning", f"time series: only local threads are offered: {exc}")
            return ["local"]

    # ------------------------------------------------------------------------------------- following the map
    @staticmethod
    def _from_map(vp: VolcPlume) -> dict[str, Any]:
        return {"volcano": vp.volcano, "qa_min": vp.qa_min, "sza_max": vp.sza_max, "edge_pixels": vp.edge_pixels,
                "variables": [vp.variable],
                "plume_height_km": PLUME_HEIGHT_KM.get(vp.variable, DEFAULT_PLUME_HEIGHT_KM)}

    def _period_around(self, day: dt.date | None) -> tuple[dt.date, dt.date]:
        """The archive's TROPOMI days within a few days of ``day`` (the middle archive day if None)."""
        days = [pd.Timestamp(d).date() for d in self.archive.days(TROPOMI)]
        if day is None:
            day = days[len(days) // 2] if days else dt.date.today()
        near = [d for d in days if abs((d - day).days) <= PERIOD_HALF_WIDTH_DAYS]
        return (min(near), max(near)) if near else (day, day)

    @param.depends("volcplume.volcano", watch=True)
    def _on_map_volcano(self) -> None:
        self.volcano = self.volcplume.volcano

    @param.depends("volcplume.qa_min", "volcplume.sza_max", "volcplume.edge_pixels", watch=True)
    def _on_map_filters(self) -> None:
        vp = self.volcplume
        self.param.update(qa_min=vp.qa_min, sza_max=vp.sza_max, edge_pixels=vp.edge_pixels)

    @param.depends("volcplume.level", watch=True)
    def _on_map_level(self) -> None:
        """The map's level sets the column computed and the height at which the wind is taken (one update)."""
        variable = LEVELS[self.volcplume.level]
        self.param.update(variables=[variable],
                          plume_height_km=PLUME_HEIGHT_KM.get(variable, DEFAULT_PLUME_HEIGHT_KM))

    def used_text(self) -> str:
        """Which column(s) and wind the panel uses: "Column so2_15km (the map's level 15km) · wind: … at 15 km"."""
        level = f" (the map's level {self.volcplume.level})" if self.volcplume is not None else ""
        if self.wind_source == "constant":
            wind = f"constant {self.wind_ms:g} m/s"
        elif self.wind_source == "csv":
            wind = f"uploaded CSV {self.wind_filename or '(none yet)'}"
        else:
            wind = "the catalogue's wind"
        return (f"**Column:** {', '.join(self.variables)}{level} · **wind:** {wind} at "
                f"{self.plume_height_km:g} km" + (f" ({self.wind_label})" if self.wind_label else ""))

    @param.depends("variables", "plume_height_km", "wind_source", "wind_ms", "wind_filename", "wind_label")
    def _used(self):
        return pn.pane.Markdown(self.used_text(), margin=(5, 10))

    @param.depends("volcplume.date", watch=True)
    def _on_map_date(self) -> None:
        self.start, self.end = self._period_around(self.volcplume.date)

    # ------------------------------------------------------------------------------------- the computation
    def filters(self) -> Filters:
        """The pixel filters of the question (a UserInputError names a bad value)."""
        return Filters(qa_min=self.qa_min, sza_max=self.sza_max, edge_pixels=self.edge_pixels, min_du=self.min_du)

    def job(self) -> TimeSeriesJob:
        """The question, checked: raises UserInputError with a sentence naming the value at fault."""
        volcano = resolve_volcano(self.volcano.strip())
        t0, t1 = parse_period(self.start, self.end)
        radii = check_radii(list(self.radii))
        if not self.variables:
            raise UserInputError(f"choose at least one SO2 column ({', '.join(SO2_VARIABLES)})")
        variables = tuple(check_variable(v) for v in SO2_VARIABLES if v in self.variables)
        if self.cluster not in cluster_names():
            raise UserInputError(f"the cluster {self.cluster!r} is not configured any more; choose one of "
                                 f"{', '.join(cluster_names())}")
        return TimeSeriesJob(volcano, t0, t1, radii, variables, self.filters(), self.cluster)

    def compute(self, sync: bool = False, cancel: threading.Event | None = None) -> bool:
        """Compute the time series of the current question; True when it started.

        In the background by default (a worker thread; progress and results reach the page through the
        session's event loop); ``sync=True`` computes in the caller. ``cancel`` is the Event that stops the run
        (a new one by default; :meth:`cancel` sets it). A bad question is a sentence in the alert and the log.
        """
        if self.running:
            self._say("warning", "a time series is already being computed: wait for it or cancel it")
            return False
        try:
            job = self.job()
        except FumaroleError as exc:
            self._say("error", str(exc))
            return False
        self._cancel = cancel if cancel is not None else threading.Event()
        self.param.update(running=True, progress_done=0, progress_total=0, message_type="info",
                          message=f"Computing the SO2 mass around {job.volcano.name}…")
        self.log.write("info", f"time series: {', '.join(job.variables)} around {job.volcano.label()}, "
                               f"radii {', '.join(f'{r:g}' for r in job.radii_km)} km, filters {job.filters.key()}")
        if sync:
            self._finish(self._run(job, self._cancel, self._apply_progress))
            return True
        doc = pn.state.curdoc if pn.state.curdoc is not None and pn.state.curdoc.session_context else None
        if doc is not None and not self._watching_session:
            doc.on_session_destroyed(self._on_session_destroyed)  # a closed page stops its computation
            self._watching_session = True
        self._thread = threading.Thread(target=self._work, args=(job, self._cancel, doc), daemon=True,
                                        name="fumarole-timeseries-panel")
        self._thread.start()
        return True

    def cancel(self, _event=None) -> None:
        """Ask the computation under way to stop: the table keeps the granules already done."""
        if self._cancel is not None and self.running:
            self._cancel.set()
            self.log.write("info", "time series: cancel asked; stopping after the granules in progress")

    def _on_session_destroyed(self, _session_context) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background computation (outside a server); True when none is running any more."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not (self._thread is not None and self._thread.is_alive())

    def _work(self, job: TimeSeriesJob, cancel: threading.Event, doc) -> None:
        """The worker thread: compute, then hand progress and outcome to the document's event loop."""
        def deliver(fn, *args):
            if doc is None:
                fn(*args)
            else:
                doc.add_next_tick_callback(lambda: fn(*args))

        try:
            outcome = self._run(job, cancel, lambda done, total: deliver(self._apply_progress, done, total))
        except Exception as exc:  # noqa: BLE001 - a bug must reach the page as a sentence, not kill the thread
            logger.exception("time series computation failed")
            outcome = {"results": {}, "error": f"the time series failed ({type(exc).__name__}: {exc})",
                       "level": "error"}
        deliver(self._finish, outcome)

    def _run(self, job: TimeSeriesJob, cancel: threading.Event, progress) -> dict[str, Any]:
        """Run the engine once per variable; returns ``{"results": {variable: (table, report)}, "error": ...}``."""
        results: dict[str, tuple[pd.DataFrame, TimeseriesReport]] = {}
        n = len(job.variables)
        for i, variable in enumerate(job.variables):
            def tick(done: int, total: int, i: int = i) -> None:
                progress(i * total + done, n * total)

            try:
                table, report = compute_mass_timeseries(
                    self.archive.catalog, job.volcano, job.start, job.end, job.radii_km, variable, job.filters,
                    cluster=job.cluster, cache_dir=self.cache_dir, progress=tick, cancel=cancel,
                )
            except FumaroleError as exc:
                return {"results": results, "error": str(exc), "level": "error",
                        "report": getattr(exc, "report", None)}
            results[variable] = (table, report)
            if report.cancelled:
                break
        return {"results": results, "error": None}

    def _apply_progress(self, done: int, total: int) -> None:
        self.param.update(progress_done=done, progress_total=total)

    def _finish(self, outcome: dict[str, Any]) -> None:
        """Show the outcome (on the event loop): results, the report in the log, a sentence in the alert.

        ``running`` turns False last, once the plots are made: the page says "done" when there is all to see.
        """
        results = outcome["results"]
        with pn.io.hold():
            for _, report in results.values():
                self._log_report(report)
            if outcome.get("report") is not None:
                self._log_report(outcome["report"])
            variables = list(results)
            shown = self.shown_variable if self.shown_variable in variables else (variables or [None])[0]
            self.param.shown_variable.objects = variables
            self.param.update(results=results, shown_variable=shown)
            if outcome["error"]:
                self._say(outcome.get("level", "error"), outcome["error"])
            else:
                level, text = self._summary(results)
                if self.wind_label.startswith("none: "):  # no wind: the flux is blank, and the alert says why once
                    self._said.add(f"no flux: {self.wind_label[len('none: '):]}")
                    level = "warning" if level == "success" else level
                    text += f" No flux: {self.wind_label[len('none: '):]}"
                self._say(level, text)
            self.param.update(running=False, progress_total=max(self.progress_total, self.progress_done))

    def _log_report(self, report: TimeseriesReport) -> None:
        for line in report.lines():
            level = "warning" if line.startswith("skipped ") else "info"
            self.log.write(level, f"time series: {line}")

    @staticmethod
    def _summary(results: dict[str, tuple[pd.DataFrame, TimeseriesReport]]) -> tuple[str, str]:
        """The outcome as (level, sentence): rows, orbits, skipped granules, cancel."""
        parts, level = [], "success"
        for variable, (table, report) in results.items():
            n_orbits = table["orbit"].nunique()
            parts.append(f"{variable}: {n_orbits} orbit{'s' * (n_orbits != 1)} × {len(report.radii_km)} radii "
                         f"from {report.n_granules} granule{'s' * (report.n_granules != 1)} "
                         f"({report.computed} read, {report.cache_hits} from the cache) in {report.seconds:.1f} s")
            skipped = report.skipped_granules()
            if skipped:
                level = "warning"
                names = ", ".join(name for name, _ in skipped[:3]) + (", …" if len(skipped) > 3 else "")
                parts.append(f"{len(skipped)} granule(s) could not be read and were skipped ({names}; "
                             "see the log and the CSV header)")
            if report.cancelled:
                level = "warning"
                done = report.computed + report.cache_hits
                parts.append("cancelled before any granule was computed" if done == 0 else
                             f"cancelled after {done} granule{'s' * (done != 1)}: the table holds what finished")
        return level, "SO2 mass " + "; ".join(parts) + "."

    def _say(self, level: str, message: str) -> None:
        """A sentence in the alert and the log console (level: info, success, warning or error)."""
        self.log.write("info" if level == "success" else level, f"time series: {message}")
        self.param.update(message=message[:1].upper() + message[1:],
                          message_type={"error": "danger"}.get(level, level))

    # ------------------------------------------------------------------------------------- derived: table, flux
    @param.depends("results", "shown_variable", watch=True)
    def _select_table(self) -> None:
        entry = self.results.get(self.shown_variable)
        table = entry[0] if entry is not None else None
        orbits: dict[str, int] = {}
        if table is not None:
            for orbit, rows in table.groupby("orbit", sort=False):
                orbits[f"#{orbit} — {pd.Timestamp(rows['time'].iloc[0]):%Y-%m-%d %H:%M} UTC"] = int(orbit)
        chosen = self.orbit if self.orbit in orbits.values() else self._default_orbit(table)
        self.param.orbit.objects = orbits
        flux, wind_label = self._flux_of(table)
        self.param.update(orbit=chosen, table=table, flux=flux, wind_label=wind_label)  # one event: one redraw

    @staticmethod
    def _default_orbit(table: pd.DataFrame | None) -> int | None:
        """The orbit whose largest disk holds the most valid pixels: the best-observed one."""
        if table is None or table.empty:
            return None
        largest = table[table["radius_km"] == table["radius_km"].max()]
        return int(largest.loc[largest["n_valid"].idxmax(), "orbit"])

    def wind_source_now(self) -> WindSource:
        """The wind source chosen (a UserInputError says why there is none, or why it cannot be used)."""
        if self.wind_source == "constant":
            if not self.wind_ms or self.wind_ms <= 0:
                raise UserInputError(f"the wind speed must be more than 0 m/s; got {self.wind_ms}")
            return ConstantWind("constant", float(self.wind_ms))
        if self.wind_source == "csv":
            if not self.wind_file:
                raise UserInputError("upload a wind CSV with the columns time (UTC) and speed_ms (m/s)")
            name = Path(self.wind_filename or "wind.csv").name
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / name
                path.write_bytes(self.wind_file)
                return CsvWind.from_file(path, name)  # errors name the upload, never the temporary path
        if self._catalog_wind is None:
            source = wind_from_catalog(self.archive.catalog)  # WindError/CatalogError name the entry or the file
            if source is None:
                name = (self.archive.catalog.metadata or {}).get("name") or "of this archive"
                raise UserInputError(no_wind_reason(str(name)))
            self._catalog_wind = source
        return self._catalog_wind

    def wind(self) -> tuple[WindSource, str]:
        """The wind source and its description at the plume height and volcano, as the flux CSV records it."""
        source = self.wind_source_now()
        report = self._report()
        volcano = report.volcano if report is not None else resolve_volcano(self.volcano.strip())
        return source, source.describe(self.plume_height_km, volcano.latitude, volcano.longitude)

    def _say_once(self, level: str, message: str) -> None:
        """A sentence in the alert and the log, the first time only (a no-wind reason is said once).

        While a computation finishes (``running``), the sentence is left to :meth:`_finish`, which adds it to the
        outcome's: the alert then holds both.
        """
        if message not in self._said and not self.running:
            self._said.add(message)
            self._say(level, message)

    def _flux_of(self, table: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str]:
        """The flux table of a mass table with the current wind, and the wind's description ("" if none)."""
        if table is None:
            return None, ""
        report = self._report()
        volcano = report.volcano if report is not None else None
        try:
            wind, label = self.wind()
        except (UserInputError, WindError, FumaroleError) as exc:
            self._say_once("warning", f"no flux: {exc}")
            flux = compute_flux_timeseries(table, None, min_coverage=self.min_coverage)
            no_wind = flux["reason"].str.startswith("no wind")
            flux.loc[no_wind, "reason"] = f"no wind: {exc}"
            return flux, f"none: {exc}"
        try:
            flux = compute_flux_timeseries(table, wind, plume_height_km=self.plume_height_km, volcano=volcano,
                                           min_coverage=self.min_coverage)
        except FumaroleError as exc:  # e.g. the volcano lies outside the ERA5 file's grid
            self._say_once("warning", f"no flux: {exc}")
            flux = compute_flux_timeseries(table, None, min_coverage=self.min_coverage)
            flux.loc[flux["reason"].str.startswith("no wind"), "reason"] = f"no wind: {exc}"
            return flux, f"none: {exc}"
        return flux, label

    @param.depends("wind_source", "plume_height_km", "wind_ms", "wind_file", "min_coverage", watch=True)
    def _update_flux(self) -> None:
        flux, wind_label = self._flux_of(self.table)
        self.param.update(flux=flux, wind_label=wind_label)

    # ------------------------------------------------------------------------------------- CSV
    def _report(self) -> TimeseriesReport | None:
        entry = self.results.get(self.shown_variable)
        return entry[1] if entry is not None else None

    def _provenance(self) -> dict[str, Any]:
        """The keywords of :func:`write_timeseries_csv`, as ``fumarole timeseries`` passes them."""
        report = self._report()
        if report is None:
            raise UserInputError("compute a time series first")
        return dict(volcano=report.volcano, start=report.start, end=report.end, variable=report.variable,
                    filters=report.filters, radii=report.radii_km, n_granules=report.n_granules,
                    scheduler=report.scheduler, skipped=report.skipped_granules())

    def mass_csv(self) -> io.StringIO:
        """The mass table of the variable shown as CSV with its provenance header (what "Download CSV" gives)."""
        buffer = io.StringIO()
        if self.table is None:
            buffer.write("# no time series computed yet\n")
        else:
            write_timeseries_csv(self.table, buffer, **self._provenance())
        buffer.seek(0)
        return buffer

    def flux_csv(self) -> io.StringIO:
        """The flux table as CSV, with the wind and minimum coverage in the header (as the CLI's ``--flux``)."""
        buffer = io.StringIO()
        if self.flux is None:
            buffer.write("# no flux computed yet\n")
        else:
            write_timeseries_csv(self.flux, buffer, **self._provenance(),
                                 extra={"wind": self.wind_label or "none", "plume_height_km": self.plume_height_km,
                                        "min_coverage": self.min_coverage})
        buffer.seek(0)
        return buffer

    def csv_filename(self, kind: str = "mass") -> str:
        """E.g. ``fumarole_soufriere-st-vincent_2021-04-12_2021-04-12_so2_7km.csv`` (``.flux.csv`` for the flux)."""
        report = self._report()
        if report is None:
            return f"fumarole_timeseries.{'flux.' if kind == 'flux' else ''}csv"
        last = report.end - pd.Timedelta(days=1) if report.end == report.end.normalize() else report.end
        stem = f"fumarole_{_slug(report.volcano.name)}_{report.start:%Y-%m-%d}_{last:%Y-%m-%d}_{report.variable}"
        return f"{stem}.flux.csv" if kind == "flux" else f"{stem}.csv"

    # ------------------------------------------------------------------------------------- plots
    def _title_volcano(self) -> str:
        report = self._report()
        return report.volcano.name if report is not None else self.volcano

    def mass_time_plot(self) -> hv.Overlay | None:
        """SO2 mass (t) versus time, a line with markers per radius (None before a computation)."""
        table = self.table
        if table is None or table.empty:
            return None
        colours = _radius_colours(sorted(table["radius_km"].unique()))
        layers = []
        for radius, rows in table.groupby("radius_km", sort=True):
            label, colour = f"{radius:g} km", colours[radius]
            data = rows[["time", "mass_t", "coverage", "orbit"]].astype({"orbit": "int64"})
            layers.append(hv.Curve(data, TIME, [MASS, COVERAGE, ORBIT], label=label).opts(color=colour,
                                                                                            line_width=2))
            layers.append(hv.Scatter(data, TIME, [MASS, COVERAGE, ORBIT], label=label).opts(
                color=colour, size=7, tools=["hover"]))
        return hv.Overlay(layers).opts(
            title=f"SO2 mass within each radius of {self._title_volcano()} ({self.shown_variable})",
            legend_position="right", legend_opts={"title": "Disk radius", "spacing": 0}, show_grid=True,
            responsive=True, height=PLOT_HEIGHT, xlim=_time_limits(table["time"]), logy=self.log_mass,
        )

    def _flux_row(self, orbit: int) -> pd.Series | None:
        if self.flux is None:
            return None
        rows = self.flux[self.flux["orbit"] == orbit]
        return rows.iloc[0] if len(rows) else None

    def flux_title(self, orbit: int | None = None) -> str:
        """"#18122 2021-04-12 17:53 UTC: flux 1,234 ± 56 t/day" or why there is no flux."""
        orbit = self.orbit if orbit is None else orbit
        row = self._flux_row(orbit) if orbit is not None else None
        if row is None:
            return f"Orbit #{orbit}: no flux"
        head = f"#{orbit} {pd.Timestamp(row['time']):%Y-%m-%d %H:%M} UTC"
        if np.isfinite(row["flux_t_day"]):
            return f"{head}: flux {row['flux_t_day']:,.0f} ± {row['flux_err_t_day']:,.0f} t/day"
        return f"{head}: no flux, {row['reason']}"

    def mass_radius_plot(self) -> hv.Overlay | None:
        """SO2 mass versus radius for the chosen orbit, with the fit M(r) = a·r + b·r² and the flux in the title."""
        table = self.table
        if table is None or table.empty or self.orbit is None:
            return None
        rows = table[table["orbit"] == self.orbit].sort_values("radius_km")
        used = (rows["coverage"] >= self.min_coverage) & np.isfinite(rows["mass_t"])
        vdims = [MASS, COVERAGE]
        layers = [
            hv.Scatter(rows[used], RADIUS, vdims, label="Masses").opts(color="black", size=9, tools=["hover"]),
        ]
        if (~used).any():
            layers.append(hv.Scatter(rows[~used], RADIUS, vdims,
                                     label=f"Not fitted (< {self.min_coverage:.0%} covered)")
                          .opts(color="white", line_color="#555555", size=9, tools=["hover"]))
        row = self._flux_row(self.orbit)
        if row is not None and np.isfinite(row["a_kg_m"]):
            r_km = np.linspace(0.0, float(rows["radius_km"].max()) * 1.05, 200)
            r_m = r_km * 1e3
            a, b = float(row["a_kg_m"]), float(row["b_kg_m2"])
            for values, label, colour in (
                ((a * r_m + b * r_m**2), "Fit a·r + b·r²", "#4c8c2b"),
                (a * r_m, f"Volcanic a·r, a = {a:.3g} kg/m", "#e0a526"),
                (b * r_m**2, "Noise b·r²", "#e4572e"),
            ):
                layers.append(hv.Curve((r_km, values / KG_PER_TONNE), RADIUS, MASS, label=label)
                              .opts(color=colour, line_width=3))
        return hv.Overlay(layers).opts(
            title=self.flux_title(), legend_position="bottom", legend_cols=2, show_grid=True, responsive=True,
            height=PLOT_HEIGHT + 40, xlim=(0, None), logy=self.log_mass,
        )

    def flux_time_plot(self) -> hv.Overlay | None:
        """The disk-method flux (t/day) versus time, with 1-sigma error bars (None without a finite flux)."""
        flux = self.flux
        if flux is None:
            return None
        ok = flux[np.isfinite(flux["flux_t_day"])][["time", "flux_t_day", "flux_err_t_day", "orbit", "wind_ms"]]
        if ok.empty:
            return None
        ok = ok.astype({"orbit": "int64"})
        lo, hi = ok["wind_ms"].min(), ok["wind_ms"].max()
        wind = f"u = {lo:.2f} m/s" if np.isclose(lo, hi) else f"u = {lo:.1f}–{hi:.1f} m/s"
        return (
            hv.ErrorBars(ok, TIME, [FLUX, FLUX_ERR]).opts(color="#6b1f2a", line_width=1.5)
            * hv.Scatter(ok, TIME, [FLUX, FLUX_ERR, ORBIT, WIND]).opts(color="#6b1f2a", size=8, tools=["hover"])
        ).opts(title=f"SO2 flux by the disk method ({self.shown_variable}, {wind})", show_grid=True,
               responsive=True, height=PLOT_HEIGHT, xlim=_time_limits(ok["time"]))

    def flux_notes(self) -> list[str]:
        """Orbits without a flux and why, one sentence each."""
        if self.flux is None:
            return []
        missing = self.flux[~np.isfinite(self.flux["flux_t_day"])]
        return [f"orbit #{r.orbit} ({pd.Timestamp(r.time):%Y-%m-%d %H:%M} UTC): {r.reason}"
                for r in missing.itertuples()]

    # ------------------------------------------------------------------------------------- layout
    @param.depends("table", "log_mass")
    def _mass_time_view(self):
        mass_time = self.mass_time_plot()
        if mass_time is None:
            text = ("No orbit in the table: nothing to plot." if self.table is not None else
                    "Choose the volcano, period, variables and radii, then press **Compute time series**.")
            return pn.pane.Markdown(text, margin=(5, 10))
        return pn.pane.HoloViews(mass_time, sizing_mode="stretch_width", height=PLOT_HEIGHT)

    @param.depends("orbit", "flux", "log_mass")
    def _mass_radius_view(self):
        plot = self.mass_radius_plot()
        if plot is None:
            return pn.layout.Spacer(height=0)
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width", height=PLOT_HEIGHT + 40, min_width=300)

    @param.depends("flux")
    def _flux_view(self):
        if self.flux is None or self.flux.empty:
            return pn.layout.Spacer(height=0)
        plot, notes = self.flux_time_plot(), self.flux_notes()
        if plot is None:
            return pn.pane.Alert("No orbit has a flux: " + "; ".join(notes[:5]), alert_type="warning",
                                 sizing_mode="stretch_width", min_width=300)
        return pn.Column(
            pn.pane.HoloViews(plot, sizing_mode="stretch_width", height=PLOT_HEIGHT),
            pn.pane.Markdown("**Orbits without a flux:** " + "; ".join(notes), margin=(0, 10)) if notes else
            pn.layout.Spacer(height=0),
            sizing_mode="stretch_width", min_width=300,
        )

    @param.depends("table")
    def _table_view(self):
        if self.table is None:
            return pn.pane.Markdown("No table yet.", margin=(5, 10))
        table = self.table.astype({"orbit": "int64"})
        return pn.widgets.Tabulator(table, disabled=True, show_index=False, pagination="local", page_size=12,
                                    sizing_mode="stretch_width", height=360)

    @param.depends("progress_done", "progress_total", "running")
    def _progress_text(self):
        if not self.progress_total:
            text = "Looking for granules…" if self.running else ""
        else:
            state = "" if self.running else " — done"
            text = f"{self.progress_done} of {self.progress_total} granules{state}"
        return pn.pane.Markdown(text, margin=(12, 10), css_classes=["fumarole-ts-progress"])

    @param.depends("qa_min", "sza_max", "edge_pixels")
    def _filters_text(self):
        try:  # the words the pictures and exports use (Filters.describe): "QA > 0.5, SZA ≤ 80°, 0 edge pixels dropped"
            text = self.filters().describe()
        except FumaroleError as exc:
            text = str(exc)
        return pn.pane.Markdown(f"**Filters (from the map):** {text}", margin=(5, 10))

    def _progress_value(self, done: int, total: int, running: bool) -> int:
        if total:
            return int(round(100 * done / total))
        return -1 if running else 0

    def _question_widgets(self) -> pn.Column:
        w = pn.widgets
        fill = {"sizing_mode": "stretch_width"}  # each widget fills its column: no overlap with the next one
        where = pn.Column(
            w.TextInput.from_param(self.param.volcano, label="Volcano (GVP name or number)", **fill),
            w.DatePicker.from_param(self.param.start, label="Period start (UTC)", **fill),
            w.DatePicker.from_param(self.param.end, label="Period end (UTC, included)", **fill),
            width=250,
        )
        what = pn.Column(
            w.MultiChoice.from_param(self.param.variables, label="TROPOMI SO2 column(s)", **fill),
            self._filters_text,
            w.FloatInput.from_param(self.param.min_du, label="Truncate columns below (DU, empty: none)", **fill),
            w.Select.from_param(self.param.cluster, label="Run on (cluster)", **fill),
            width=300,
        )
        upload = w.FileInput.from_param(self.param.wind_file, accept=".csv", label="Wind CSV (time, speed_ms)",
                                        **fill)
        upload.link(self, filename="wind_filename")
        wind = pn.Column(
            pn.pane.Markdown("**Wind at plume height (flux)**", margin=(5, 10, 0, 10)),
            w.RadioButtonGroup.from_param(self.param.wind_source, label="", color="light"),
            pn.Row(w.FloatInput.from_param(self.param.plume_height_km, label="Plume height (km)", width=120),
                   w.FloatInput.from_param(self.param.wind_ms, label="Constant wind (m/s)", width=120)),
            upload,
            w.FloatSlider.from_param(self.param.min_coverage, label="Fit radii covered at least", **fill),
            width=300,
        )
        radii = pn.FlexBox(  # wraps under its title on a narrow window (twelve boxes are wider than a phone)
            pn.pane.Markdown("**Radii of the disks (km):**", margin=(8, 10)),
            w.CheckBoxGroup.from_param(self.param.radii, label="Radii of the disks (km)", inline=True,
                                       stylesheets=[WRAP_INLINE_CSS], sizing_mode="stretch_width",
                                       margin=(12, 10)),
            sizing_mode="stretch_width",
        )
        return pn.Column(pn.FlexBox(where, what, wind), radii, sizing_mode="stretch_width")

    def _action_widgets(self) -> pn.FlexBox:
        compute = pn.widgets.Button(label="Compute time series", color="primary", width=200,
                                    disabled=self.param.running)
        compute.on_click(lambda _event: self.compute())
        cancel = pn.widgets.Button(label="Cancel", color="light", width=90,
                                   disabled=pn.bind(lambda running: not running, self.param.running))
        cancel.on_click(self.cancel)
        progress = pn.indicators.Progress(
            value=pn.bind(self._progress_value, self.param.progress_done, self.param.progress_total,
                          self.param.running),
            max=100, bar_color="primary", width=240, margin=(18, 10), css_classes=["fumarole-ts-progressbar"])
        # a FlexBox: the buttons, the bar and the text wrap on a narrow window instead of overflowing it
        return pn.FlexBox(compute, cancel, progress, self._progress_text, sizing_mode="stretch_width")

    def _result_widgets(self) -> pn.FlexBox:
        no_table = pn.bind(lambda table: table is None, self.param.table)
        no_flux = pn.bind(lambda flux: flux is None, self.param.flux)
        return pn.FlexBox(
            pn.widgets.Select.from_param(self.param.shown_variable, label="Variable shown", width=160),
            pn.widgets.Select.from_param(self.param.orbit, label="Orbit (mass versus radius)", width=280),
            labelled_checkbox(self, "log_mass", "Log mass axes", margin=(30, 10, 5, 10)),
            pn.widgets.FileDownload(callback=self.mass_csv, label="Download CSV", color="success",
                                    filename=pn.bind(lambda _t: self.csv_filename("mass"), self.param.table),
                                    disabled=no_table, width=170, margin=(22, 10, 5, 10)),
            pn.widgets.FileDownload(callback=self.flux_csv, label="Download flux CSV", color="light",
                                    filename=pn.bind(lambda _t: self.csv_filename("flux"), self.param.flux),
                                    disabled=no_flux, width=170, margin=(22, 10, 5, 10)),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        alert = pn.pane.Alert(self.param.message, alert_type=self.param.message_type,
                              visible=pn.bind(bool, self.param.message), sizing_mode="stretch_width")
        return pn.Column(
            self._question_widgets(),
            self._used,
            self._action_widgets(),
            alert,
            self._result_widgets(),
            self._mass_time_view,
            pn.FlexBox(self._mass_radius_view, self._flux_view, sizing_mode="stretch_width"),
            pn.Card(self._table_view, title="Table: one row per orbit and radius", collapsed=True,
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
