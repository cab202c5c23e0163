"""SO2 mass time series around a volcano, for every orbit of a period: the engine, its cache, its CSV.

For a volcano, a period, a list of radii, a box-profile column and the pixel filters, the engine returns one
row per (orbit, radius) with the SO2 mass within the disk (``app.science.mass.so2_mass_within_radii``), and a
:class:`TimeseriesReport` of what was read, skipped and why. It does as little work as the question needs:

1. the granule index (:mod:`app.data.index`) keeps only the granules of the period whose footprint touches the
   lat/lon box of the largest disk (antimeridian- and pole-aware, :func:`disk_bbox`), without opening a file;
2. a cached result (one small JSON file per granule and question, :class:`TimeseriesCache`) is used as it is;
3. for each remaining granule, one task: a strided read of the pixel centres finds the window of scanlines that
   can reach the disk (:func:`scanline_window`), then only that window of only the needed variables (the column,
   ``qa_value`` and ``solar_zenith_angle`` when a filter needs them, the centres and corners) is read with
   :func:`app.data.tropomi.read_swath`, and the masses are computed. The window holds every pixel whose centre
   lies in the largest disk, so the masses equal those of the whole granule.

Tasks run on a local thread pool by default, or on a Dask distributed cluster (a scheduler address such as
``tcp://127.0.0.1:8786``, or a ``distributed.Client``): one task per granule, a bounded number in flight, so
that cancelling (a ``threading.Event``) stops submitting and cancels what is pending. A granule that cannot be
read is reported with the reason and the rest of the period still computes.

An orbit belongs to the period when its overpass time (the mean time of its pixels in the largest disk) lies in
``[start, end)``; a date given as ``end`` (no time of day) includes that whole day.

The CSV written by :func:`write_timeseries_csv` starts with ``# key: value`` lines recording the volcano, the
period, the variable, every filter, the radii, the code version, the number of granules used and the creation
time; :func:`read_timeseries_csv` reads it back. The CLI (``fumarole timeseries``) and the dashboard panel write
the same file.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import io
import json
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.data.errors import GranuleError, UserInputError
from app.science.filters import Filters
from app.science.flux import flux_from_mass_table
from app.science.geodesy import EARTH_RADIUS_KM, great_circle_distance_km
from app.science.mass import DEFAULT_RADII_KM, so2_mass_within_radii

__all__ = [
    "ENGINE_VERSION",
    "MAX_RADIUS_KM",
    "SO2_VARIABLES",
    "TABLE_COLUMNS",
    "TimeseriesCache",
    "TimeseriesReport",
    "VolcanoRef",
    "check_radii",
    "check_variable",
    "code_version",
    "compute_flux_timeseries",
    "compute_mass_timeseries",
    "default_cache_dir",
    "disk_bbox",
    "filters_from_header",
    "load_wind_csv",
    "mass_for_granule",
    "parse_period",
    "parse_radii",
    "read_timeseries_csv",
    "resolve_volcano",
    "scanline_window",
    "write_timeseries_csv",
    "DEFAULT_RADII_KM",
]

logger = logging.getLogger(__name__)

#: Version of the engine's results: bump it when a change alters any number, so that cached results are redone.
ENGINE_VERSION = "1"
#: The box-profile columns a time series can use.
SO2_VARIABLES = ("so2_pbl", "so2_1km", "so2_7km", "so2_15km")
#: Largest radius accepted, km.
MAX_RADIUS_KM = 5000.0
#: Columns of the mass table, in order.
TABLE_COLUMNS = ("time", "orbit", "radius_km", "mass_t", "n_valid", "n_summed", "n_pixels", "coverage", "granule")
PRODUCT = "tropomi_so2"
#: Pixel areas from the corners as spherical polygons (``app.science.geodesy.pixel_area_km2``).
AREA_METHOD = "exact"
CACHE_FOLDER = (".fumarole-cache", "timeseries")

_WINDOW_STRIDE = 16  # scanlines between the samples of the cheap read that finds the window
_INT_COLUMNS = ("n_valid", "n_summed", "n_pixels")


def code_version() -> str:
    """The package version and the engine version, e.g. ``fumarole 0.1.0, timeseries engine 1``."""
    return f"fumarole {_package_version()}, timeseries engine {ENGINE_VERSION}"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fumarole")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# --- the question: volcano, period, radii, variable -------------------------------------------------------------


@dataclass(frozen=True)
class VolcanoRef:
    """The volcano of a time series: GVP name and number, and the centre of the disks (degrees)."""

    name: str
    number: int | None
    latitude: float
    longitude: float

    def label(self) -> str:
        """E.g. ``Soufrière St. Vincent (GVP 360150, 13.33, -61.18)``."""
        number = f"GVP {self.number}, " if self.number is not None else ""
        return f"{self.name} ({number}{self.latitude:g}, {self.longitude:g})"


def resolve_volcano(volcano: Any) -> VolcanoRef:
    """A VolcanoRef from a name or GVP number (looked up in the GVP list), a row of it, or a VolcanoRef.

    Raises UserInputError for an unknown name, with the closest names (``app.data.volcanoes.find_volcano``).
    """
    if isinstance(volcano, VolcanoRef):
        return volcano
    if isinstance(volcano, str | int | np.integer):
        from app.data.volcanoes import find_volcano

        volcano = find_volcano(volcano)
    if isinstance(volcano, pd.Series | Mapping) or hasattr(volcano, "latitude"):
        get = volcano.get if isinstance(volcano, pd.Series | Mapping) else lambda k, d=None: getattr(volcano, k, d)
        try:
            lat, lon = float(get("latitude")), float(get("longitude"))
        except (TypeError, ValueError):
            raise UserInputError(f"the volcano {volcano!r} has no usable latitude and longitude") from None
        if not (-90.0 <= lat <= 90.0 and math.isfinite(lon)):
            raise UserInputError(f"the volcano's position {lat}, {lon} is not a latitude and a longitude")
        number = get("number")
        if not -180.0 <= lon < 180.0:
            lon = (lon + 180.0) % 360.0 - 180.0
        return VolcanoRef(str(get("name", "volcano")), None if number is None else int(number), lat, lon)
    raise UserInputError(f"give the volcano as a name or a GVP number; got {volcano!r}")


def check_variable(variable: str) -> str:
    """Return the variable if it is one of :data:`SO2_VARIABLES`, else raise a UserInputError listing them."""
    if variable not in SO2_VARIABLES:
        raise UserInputError(
            f"unknown SO2 column {variable!r}; choose one of {', '.join(SO2_VARIABLES)} (the box-profile heights)"
        )
    return variable


def check_radii(radii_km: Iterable[float] | float) -> tuple[float, ...]:
    """Radii as sorted distinct floats in (0, 5000] km, or a UserInputError naming the bad one."""
    values = np.atleast_1d(np.asarray(radii_km if radii_km is not None else [], dtype=object)).ravel().tolist()
    if not values:
        raise UserInputError("give at least one radius in km (e.g. 25,50,100)")
    out = []
    for value in values:
        try:
            r = float(value)
        except (TypeError, ValueError):
            raise UserInputError(f"a radius must be a number of km; {value!r} is not a number") from None
        if not math.isfinite(r) or r <= 0:
            raise UserInputError(f"a radius must be more than 0 km; got {r:g} km")
        if r > MAX_RADIUS_KM:
            raise UserInputError(f"a radius must be at most {MAX_RADIUS_KM:,.0f} km; got {r:g} km")
        out.append(r)
    return tuple(sorted(set(out)))


def parse_radii(text: str) -> tuple[float, ...]:
    """Radii from text such as ``25,50,100`` (commas or spaces), checked by :func:`check_radii`."""
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    values = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError:
            raise UserInputError(
                f"radii must be numbers of km separated by commas (e.g. 25,50,100); {part!r} is not a number"
            ) from None
    return check_radii(values)


def _is_date_only(value: Any) -> bool:
    if isinstance(value, dt.datetime | pd.Timestamp | np.datetime64):
        return False
    if isinstance(value, dt.date):
        return True
    return isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value) is not None


def _as_timestamp(value: Any, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise UserInputError(
            f"the {what} {value!r} is not a date or time (use e.g. 2021-04-12 or 2021-04-12T18:00)"
        ) from None
    if pd.isna(t):
        raise UserInputError(f"give the {what} of the period (e.g. 2021-04-12)")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.as_unit("ns")


def parse_period(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period [start, end) as naive UTC timestamps; an ``end`` given as a date includes that whole day.

    Raises UserInputError when a bound is not a time or the end comes before the start.
    """
    t0 = _as_timestamp(start, "start")
    t1 = _as_timestamp(end, "end")
    if t1 < t0:
        raise UserInputError(f"the end of the period ({_label(t1)}) comes before its start ({_label(t0)})")
    if _is_date_only(end):
        t1 = t1 + pd.Timedelta(days=1)
    if t1 <= t0:
        raise UserInputError(f"the period from {_label(t0)} to {_label(t1)} is empty; give an end after the start")
    return t0, t1


def _label(t: pd.Timestamp) -> str:
    return f"{t:%Y-%m-%d}" if t == t.normalize() else f"{t:%Y-%m-%d %H:%M}"


def _period_label(t0: pd.Timestamp, t1: pd.Timestamp) -> str:
    """``between 2021-05-01 and 2021-05-03`` for whole days (the last day included), else the times."""
    if t0 == t0.normalize() and t1 == t1.normalize():
        last = t1 - pd.Timedelta(days=1)
        return f"on {_label(t0)}" if last == t0 else f"between {_label(t0)} and {_label(last)}"
    return f"between {_label(t0)} and {_label(t1)}"


def disk_bbox(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """The (lon_min, lat_min, lon_max, lat_max) box around a disk on the sphere; lon_min > lon_max across ±180°.

    The longitude half-width of a spherical cap of angular radius d at latitude φ is asin(sin d / cos φ); a disk
    that holds a pole spans every longitude.
    """
    d = radius_km / EARTH_RADIUS_KM
    lat_min, lat_max = lat - math.degrees(d), lat + math.degrees(d)
    if lat_max >= 90.0 or lat_min <= -90.0 or math.sin(d) >= math.cos(math.radians(lat)):
        return -180.0, max(-90.0, lat_min), 180.0, min(90.0, lat_max)
    half = math.degrees(math.asin(math.sin(d) / math.cos(math.radians(lat))))
    if half >= 180.0:
        return -180.0, lat_min, 180.0, lat_max

    def wrap(x: float) -> float:
        return (x + 180.0) % 360.0 - 180.0

    lon_min, lon_max = wrap(lon - half), wrap(lon + half)
    if lon_max == -180.0:
        lon_max = 180.0
    return lon_min, lat_min, lon_max, lat_max


# --- one granule: the window, the read, the masses (runs on a worker) ----------------------------------------


def _netcdf_lock():
    # netCDF-C and HDF5 are not thread-safe: share xarray's locks (the granule index uses the same ones). They are
    # not re-entrant: should app.data.tropomi.read_swath ever take them itself, drop the `with` around it below.
    from xarray.backends.locks import HDF5_LOCK, NETCDFC_LOCK, combine_locks

    return combine_locks([NETCDFC_LOCK, HDF5_LOCK])


_NETCDF_LOCK = _netcdf_lock()


def _sampled_centres(path: str, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Latitude and longitude of every ``stride``-th scanline (and the last), the rows read and the row count."""
    import netCDF4

    try:
        nc = netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise GranuleError(path, f"cannot be opened as a netCDF-4 file (truncated or not netCDF?): {exc}") from None
    try:
        group = nc.groups.get("PRODUCT")
        if group is None or "latitude" not in group.variables or "longitude" not in group.variables:
            raise GranuleError(path, "has no PRODUCT/latitude and PRODUCT/longitude: not a TROPOMI L2 file")
        lat_var, lon_var = group.variables["latitude"], group.variables["longitude"]
        if lat_var.ndim != 3 or lon_var.shape != lat_var.shape:
            raise GranuleError(path, f"PRODUCT/latitude has shape {lat_var.shape}, expected (1, scanline, pixel)")
        n_rows = int(lat_var.shape[1])
        rows = np.unique(np.r_[np.arange(0, n_rows, stride), n_rows - 1]) if n_rows else np.array([], int)
        try:
            lat = np.ma.filled(np.ma.asarray(lat_var[0, ::stride, :], dtype=np.float64), np.nan)
            lon = np.ma.filled(np.ma.asarray(lon_var[0, ::stride, :], dtype=np.float64), np.nan)
            if n_rows and (n_rows - 1) % stride:
                last = slice(n_rows - 1, n_rows)
                lat = np.vstack([lat, np.ma.filled(np.ma.asarray(lat_var[0, last, :], dtype=np.float64), np.nan)])
                lon = np.vstack([lon, np.ma.filled(np.ma.asarray(lon_var[0, last, :], dtype=np.float64), np.nan)])
        except (OSError, RuntimeError, IndexError, ValueError) as exc:
            raise GranuleError(path, f"reading PRODUCT/latitude failed (truncated or corrupt file?): {exc}") from None
    finally:
        nc.close()
    return lat, lon, rows, n_rows


def scanline_window(path: str | os.PathLike, lat: float, lon: float, radius_km: float,
                    stride: int = _WINDOW_STRIDE) -> tuple[slice | None, int]:
    """The scanlines of a granule that can hold a pixel centre within ``radius_km`` of (lat, lon), and their count.

    Reads every ``stride``-th scanline of the centres (a few percent of one variable), keeps the sampled scanlines
    that come within the radius plus the largest distance between neighbouring samples (along plus across track),
    and widens that by one stride each way: a centre in the disk lies between two sampled scanlines, each within
    that margin. Returns ``(None, n_scanlines)`` when the granule does not come near the disk.
    """
    path = os.fspath(path)
    with _NETCDF_LOCK:
        s_lat, s_lon, rows, n_rows = _sampled_centres(path, stride)
    if s_lat.size == 0:
        return None, n_rows
    distance = great_circle_distance_km(lat, lon, s_lat, s_lon)
    along = great_circle_distance_km(s_lat[:-1], s_lon[:-1], s_lat[1:], s_lon[1:]) if len(rows) > 1 else [[0.0]]
    across = great_circle_distance_km(s_lat[:, :-1], s_lon[:, :-1], s_lat[:, 1:], s_lon[:, 1:])
    margin = np.nanmax(along, initial=0.0) + (np.nanmax(across, initial=0.0) if across.size else 0.0)
    near = np.flatnonzero(np.any(distance <= radius_km + margin, axis=1))
    if near.size == 0:
        return None, n_rows
    first = max(0, int(rows[near[0]]) - stride)
    last = min(n_rows, int(rows[near[-1]]) + stride + 1)
    return slice(first, last), n_rows


def _needed_variables(variable: str, filters: Filters) -> list[str]:
    names = [variable]
    if filters.qa_min > 0:
        names.append("qa_value")
    if filters.sza_max is not None:
        names.append("solar_zenith_angle")
    return names


def _records(table: pd.DataFrame, granule: str) -> list[dict[str, Any]]:
    """Plain JSON-able records of a mass table (time as integer ns, orbit as int or None)."""
    out = []
    for row in table.itertuples(index=False):
        out.append({
            "time": None if pd.isna(row.time) else int(pd.Timestamp(row.time).round("ms").value),
            "orbit": None if pd.isna(row.orbit) else int(row.orbit),
            "radius_km": float(row.radius_km),
            "mass_t": float(row.mass_t),
            "n_valid": int(row.n_valid),
            "n_summed": int(row.n_summed),
            "n_pixels": int(row.n_pixels),
            "coverage": float(row.coverage),
            "granule": granule,
        })
    return out


def mass_for_granule(
    path: str,
    variable: str,
    lat: float,
    lon: float,
    radii_km: tuple[float, ...],
    filters: Filters,
    *,
    window: bool = True,
) -> dict[str, Any]:
    """The masses of one granule: ``{"records": [...], "window": (first, stop) or None, "n_scanlines": n}``.

    ``records`` has one record per radius when a pixel centre lies in the largest disk, none otherwise. With
    ``window=False`` the whole granule is read (the naive way, for checks and benchmarks). Raises GranuleError
    when the file cannot be read.
    """
    from app.data.tropomi import read_swath

    name = os.path.basename(path)
    if window:
        rows, n_rows = scanline_window(path, lat, lon, max(radii_km))
        if rows is None:
            return {"records": [], "window": None, "n_scanlines": n_rows}
    else:
        rows, n_rows = slice(None), None
    with _NETCDF_LOCK:
        swath = read_swath(path, variables=_needed_variables(variable, filters), scanlines=rows)
    table = so2_mass_within_radii(swath, variable, lat, lon, radii_km, filters, area_method=AREA_METHOD)
    n_rows = n_rows if n_rows is not None else int(swath.sizes["scanline"])
    first, stop, _ = rows.indices(n_rows)
    reaches = len(table) and int(table["n_pixels"].iloc[-1]) > 0
    return {"records": _records(table, name) if reaches else [], "window": (first, stop), "n_scanlines": n_rows}


def _granule_task(path: str, variable: str, lat: float, lon: float, radii_km: tuple[float, ...],
                  filters: Filters) -> dict[str, Any]:
    """One task: :func:`mass_for_granule`, with an unreadable file returned as ``{"error": reason}``."""
    t0 = time.perf_counter()
    try:
        out = mass_for_granule(path, variable, lat, lon, radii_km, filters)
    except GranuleError as exc:
        return {"error": exc.problem, "seconds": time.perf_counter() - t0}
    except OSError as exc:  # the file vanished or the disk failed between the index and the read
        return {"error": f"cannot be read ({type(exc).__name__}: {exc})", "seconds": time.perf_counter() - t0}
    out["seconds"] = time.perf_counter() - t0
    return out


# --- the cache ----------------------------------------------------------------------------------------------


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fumarole" / "timeseries"


def default_cache_dir(archive_root: str | os.PathLike | None) -> Path:
    """``<archive>/.fumarole-cache/timeseries`` for a writable local archive, else the user's cache folder."""
    if archive_root is not None:
        root = os.fspath(archive_root)
        if "://" not in root and "::" not in root and os.path.isdir(root) and os.access(root, os.W_OK):
            return Path(root).joinpath(*CACHE_FOLDER)
    return _user_cache_dir()


class TimeseriesCache:
    """Results on disk, one small JSON file per (granule, question): re-runs and longer periods reuse them.

    The key holds the granule's path, size and modification time, the volcano (number, latitude, longitude), the
    radii, the variable, ``Filters.key()`` and :func:`code_version`, so any change to one of them misses.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @staticmethod
    def key(granule: Mapping[str, Any], volcano: VolcanoRef, radii_km: tuple[float, ...], variable: str,
            filters: Filters) -> dict[str, Any]:
        """The full key of one granule's result (a JSON-able dict)."""
        return {
            "granule": str(granule["path"]),
            "size": int(granule["size"]),
            "mtime": float(granule["mtime"]),
            "volcano": [volcano.number, volcano.latitude, volcano.longitude],
            "radii_km": list(radii_km),
            "variable": variable,
            "filters": filters.key(),
            "area_method": AREA_METHOD,
            "code": code_version(),
        }

    def _path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.json"

    def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result of ``key``, or None (missing, unreadable or for another key)."""
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("time-series cache entry %s is unreadable (%s); computing again", path, exc)
            return None
        if entry.get("key") != json.loads(json.dumps(key)):
            return None
        return entry

    def put(self, key: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """Store a result (written to a temporary file, then renamed: readers never see half a file)."""
        path = self._path(key)
        entry = {"key": key, "records": result["records"], "window": result.get("window"),
                 "n_scanlines": result.get("n_scanlines")}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a read-only or full cache folder slows re-runs down; it must not stop this one
            logger.warning("cannot write the time-series cache entry %s: %s", path, exc)


# --- the report ---------------------------------------------------------------------------------------------


@dataclass
class TimeseriesReport:
    """What a time-series run read, reused and skipped, and why (for the log console and the CSV header).

    ``granules_used``: granules with an orbit in the table (computed or from the cache); ``cache_hits``: those
    (and the ones found not to reach the disk) taken from the cache; ``skipped_by_index``: granules of the period
    whose footprint does not touch the largest disk (never opened); ``not_reaching``: granules whose scanlines
    come near the disk's box but no pixel centre falls in the disk; ``outside_period``: granules whose overpass
    lies outside the period; ``superseded``: granules of an orbit also available in a newer or offline version;
    ``corrupt``: (path, reason) of granules that could not be read.
    """

    volcano: VolcanoRef
    start: pd.Timestamp
    end: pd.Timestamp
    radii_km: tuple[float, ...]
    variable: str
    filters: Filters
    scheduler: str = ""
    cache_dir: str | None = None
    n_in_period: int = 0
    skipped_by_index: int = 0
    granules_used: list[str] = field(default_factory=list)
    not_reaching: list[str] = field(default_factory=list)
    outside_period: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0
    computed: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    windows: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def n_granules(self) -> int:
        """Granules whose orbits are in the table."""
        return len(self.granules_used)

    def lines(self) -> list[str]:
        """The report as sentences, one per line (what was read, skipped and why)."""
        out = [
            f"SO2 mass of {self.variable} around {self.volcano.label()} {_period_label(self.start, self.end)}, "
            f"radii {', '.join(f'{r:g}' for r in self.radii_km)} km, filters {self.filters.key()}",
            f"{self.n_in_period} granules in the period: {self.skipped_by_index} skipped by the index (they do not "
            f"touch the {max(self.radii_km):g} km disk), {self.n_granules} used, {self.cache_hits} from the cache, "
            f"{self.computed} read, {len(self.corrupt)} unreadable",
        ]
        for name in self.not_reaching:
            out.append(f"{os.path.basename(name)}: no pixel centre within {max(self.radii_km):g} km")
        for name in self.outside_period:
            out.append(f"{os.path.basename(name)}: passes over the volcano outside the period")
        for name in self.superseded:
            out.append(f"{os.path.basename(name)}: superseded by another granule of the same orbit")
        for path, reason in self.corrupt:
            out.append(f"skipped {os.path.basename(path)}: {reason}")
        if self.cancelled:
            out.append("cancelled: the table holds the granules finished before the cancel")
        out.append(f"done in {self.seconds:.2f} s on {self.scheduler}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --- schedulers -----------------------------------------------------------------------------------------------


class _SyncExecutor(cf.Executor):
    """Runs each task at submission, in the calling thread (scheduler ``"sync"``: debugging, profiling)."""

    def submit(self, fn, /, *args, **kwargs):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future, as a pool does
            future.set_exception(exc)
        return future


@dataclass
class _Runner:
    submit: Callable[..., Any]
    wait: Callable[[list, float], tuple[set, set]]
    close: Callable[[], None]
    in_flight: int
    label: str


def _cf_wait(futures: list, timeout: float) -> tuple[set, set]:
    done, pending = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
    return set(done), set(pending)


def _is_distributed_client(obj: Any) -> bool:
    return type(obj).__module__.startswith("distributed") and hasattr(obj, "scheduler_info")


def _local_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _distributed_runner(client: Any, owned: bool) -> _Runner:
    import distributed

    def wait(futures: list, timeout: float) -> tuple[set, set]:
        try:
            with client.as_current():  # distributed.wait uses the current client; ours need not be the default
                done, pending = distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except (TimeoutError, distributed.TimeoutError):
            return set(), set(futures)
        return set(done), set(pending)

    threads = sum(client.nthreads().values()) or 1
    address = getattr(client.scheduler, "address", "?")
    return _Runner(
        submit=lambda fn, *args: client.submit(fn, *args, pure=False),
        wait=wait,
        close=client.close if owned else (lambda: None),
        in_flight=2 * threads,
        label=f"Dask distributed at {address} ({len(client.nthreads())} workers, {threads} threads)",
    )


def _runner(scheduler: Any) -> _Runner:
    """Turn the ``scheduler`` argument into something that submits, waits and closes."""
    if scheduler is None or scheduler == "threads":
        n = _local_workers()
        pool = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="fumarole-timeseries")
        return _Runner(pool.submit, _cf_wait, lambda: pool.shutdown(cancel_futures=True), 2 * n, f"threads ({n})")
    if scheduler == "sync":
        return _Runner(_SyncExecutor().submit, _cf_wait, lambda: None, 1, "sync (one thread)")
    if scheduler == "processes":
        import multiprocessing

        n = _local_workers()
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
        return _Runner(pool.submit, _cf_wait, lambda: pool.shutdown(cancel_futures=True), 2 * n,
                       f"processes ({n})")
    if isinstance(scheduler, str):
        return _distributed_runner(_connect(scheduler), owned=True)
    if _is_distributed_client(scheduler):
        return _distributed_runner(scheduler, owned=False)
    _check_scheduler(scheduler)
    return _Runner(scheduler.submit, _cf_wait, lambda: None, 8, type(scheduler).__name__)


_LOCAL_SCHEDULERS = ("threads", "processes", "sync")


def _check_scheduler(scheduler: Any) -> None:
    """Raise a UserInputError now (before any work) for a scheduler that cannot be one."""
    if scheduler is None or isinstance(scheduler, cf.Executor) or _is_distributed_client(scheduler):
        return
    if not isinstance(scheduler, str):
        raise UserInputError(
            f"unknown scheduler {scheduler!r}: give a Dask scheduler address (tcp://host:8786), a "
            "distributed.Client, 'threads' (the default), 'processes' or 'sync'"
        )
    text = scheduler.strip()
    if text in _LOCAL_SCHEDULERS or re.match(r"^[a-z+]+://\S+$", text) or re.match(r"^[\w.\-]+:\d+$", text):
        return
    raise UserInputError(
        f"the scheduler {scheduler!r} is neither a Dask scheduler address (e.g. tcp://127.0.0.1:8786) nor one of "
        f"{', '.join(map(repr, _LOCAL_SCHEDULERS))}"
    )


def _connect(address: str) -> Any:
    text = address.strip()
    _check_scheduler(text)
    import distributed

    try:
        return distributed.Client(text, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserInputError(f"cannot connect to the Dask scheduler at {text}: {exc}") from None


def _describe_scheduler(scheduler: Any) -> str:
    if scheduler is None:
        return f"threads ({_local_workers()})"
    if isinstance(scheduler, str):
        return scheduler
    if _is_distributed_client(scheduler):
        return f"Dask distributed at {getattr(scheduler.scheduler, 'address', '?')}"
    return type(scheduler).__name__


# --- the engine ---------------------------------------------------------------------------------------------


def _open_index(catalog_or_index: Any) -> tuple[Any, str | None, list[tuple[str, str]]]:
    """The granule index, the archive root (for the default cache) and the files the index could not read."""
    from app.data.index import GranuleIndex, open_index

    if isinstance(catalog_or_index, GranuleIndex):
        index = catalog_or_index
        root = os.path.dirname(index.path) if index.path and "://" not in index.path else None
    else:
        from app.data import catalog as catalogs

        cat = catalog_or_index
        if cat is None or isinstance(cat, str | os.PathLike):
            cat = catalogs.open_catalog(cat)
        index = open_index(cat, products=[PRODUCT])
        root = catalogs.archive_root(cat)
    skipped = list(index.last_report.skipped) if index.last_report is not None else []
    return index, root, skipped


def _granule_period(path: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Start and end from a TROPOMI file name, or None when the name is not one."""
    from app.data.filenames import PATTERNS

    pattern = PATTERNS.get(PRODUCT)
    if pattern is None or not pattern.matches(os.path.basename(path)):
        return None
    fields = pattern.parse(path)
    return pd.Timestamp(fields["start"]), pd.Timestamp(fields["end"])


def _unreadable_in_period(skipped: list[tuple[str, str]], t0: pd.Timestamp, t1: pd.Timestamp) -> list[tuple[str, str]]:
    """The files the index could not read whose TROPOMI file name says they overlap the period."""
    out = []
    for path, reason in skipped:
        span = _granule_period(path)
        if span is not None and span[1] > t0 and span[0] < t1:
            out.append((path, reason))
    return out


def _one_per_orbit(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One granule per orbit: the offline one of the highest collection and processor over the others.

    An orbit with near-real-time granules only keeps them all: they are successive pieces of the orbit.
    """
    if rows.empty or rows["orbit"].isna().all() or not rows["orbit"].duplicated().any():
        return rows, []
    offline = rows["mode"].fillna("") != "NRTI"
    ranked = rows[offline]
    ranked = ranked.assign(
        _collection=ranked["collection"].fillna(-1).astype(int),
        _processor=ranked["processor"].fillna(-1).astype(int),
    ).sort_values(["_collection", "_processor"], ascending=False, kind="stable")
    best = ranked[~(ranked["orbit"].notna() & ranked["orbit"].duplicated())]
    has_offline = rows["orbit"].isin(best["orbit"].dropna())
    keep = pd.concat([best, rows[~offline & ~has_offline]])
    dropped = sorted(set(rows["path"]) - set(keep["path"]))
    keep = keep.drop(columns=["_collection", "_processor"]).sort_values("start", kind="stable")
    return keep.reset_index(drop=True), dropped


def _stat(row: Mapping[str, Any]) -> dict[str, Any]:
    """Path, size and mtime of a granule: from the file itself when local (the index may be older)."""
    path = str(row["path"])
    if "://" not in path and "::" not in path:
        try:
            st = os.stat(path)
            return {"path": path, "size": st.st_size, "mtime": st.st_mtime}
        except OSError:
            pass  # the read reports the missing file
    return {"path": path, "size": int(row["size"]), "mtime": float(row["mtime"])}


def _empty_table() -> pd.DataFrame:
    return _typed_table(pd.DataFrame({c: [] for c in TABLE_COLUMNS}))


def _typed_table(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=list(TABLE_COLUMNS))
    df["time"] = pd.to_datetime(df["time"]).astype("datetime64[ns]")
    df["orbit"] = pd.array(df["orbit"].astype(object).where(df["orbit"].notna(), None), dtype="Int64")
    for c in ("radius_km", "mass_t", "coverage"):
        df[c] = df[c].astype("float64")
    for c in _INT_COLUMNS:
        df[c] = df[c].astype("int64")
    df["granule"] = df["granule"].astype(object)
    return df


def _table_from_records(records: list[dict[str, Any]]) -> pd.DataFrame:
    if not records:
        return _empty_table()
    df = pd.DataFrame.from_records(records)
    nat = np.iinfo(np.int64).min  # NaT as int64 ns; no float on the way, which would lose nanoseconds
    df["time"] = np.array([nat if t is None or pd.isna(t) else int(t) for t in df["time"]]).view("datetime64[ns]")
    df = _typed_table(df)
    return df.sort_values(["time", "orbit", "radius_km"], kind="stable").reset_index(drop=True)


@dataclass
class _Question:
    volcano: VolcanoRef
    t0: pd.Timestamp
    t1: pd.Timestamp
    radii: tuple[float, ...]
    variable: str
    filters: Filters

    def task_args(self, path: str) -> tuple:
        v = self.volcano
        return (path, self.variable, v.latitude, v.longitude, self.radii, self.filters)


def _take(result: Mapping[str, Any], path: str, q: _Question, report: TimeseriesReport,
          records: list[dict[str, Any]]) -> None:
    """Add one granule's result to the records and the report."""
    if "error" in result:
        report.corrupt.append((path, result["error"]))
        return
    if result.get("window") is not None:
        first, stop = result["window"]
        report.windows[path] = (int(first), int(stop), int(result.get("n_scanlines") or 0))
    rows = result["records"]
    if not rows:
        report.not_reaching.append(path)
        return
    t0, t1 = q.t0.value, q.t1.value
    inside = [r for r in rows if r["time"] is not None and t0 <= r["time"] < t1]
    if not inside:
        report.outside_period.append(path)
        return
    report.granules_used.append(path)
    records.extend(inside)


def _run_tasks(todo: list[tuple[dict[str, Any], dict[str, Any]]], q: _Question, scheduler: Any,
               cache: TimeseriesCache | None, report: TimeseriesReport, records: list[dict[str, Any]],
               tick: Callable[[], None], cancel: threading.Event | None) -> None:
    """Submit one task per granule (a bounded number in flight), collect results, cache them as they come."""
    runner = _runner(scheduler)
    report.scheduler = runner.label
    queue = deque(todo)
    running: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
    try:
        while queue or running:
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            while queue and len(running) < runner.in_flight:
                granule, key = queue.popleft()
                running[runner.submit(_granule_task, *q.task_args(granule["path"]))] = (granule, key)
            done, _ = runner.wait(list(running), 0.2)
            for future in done:
                granule, key = running.pop(future)
                result = future.result()  # the task returns unreadable files as results: this raises only on bugs
                report.computed += 1
                if cache is not None and key is not None and "error" not in result:
                    cache.put(key, result)
                _take(result, granule["path"], q, report, records)
                tick()
    finally:
        for future in running:
            future.cancel()
        runner.close()


def compute_mass_timeseries(
    catalog_or_index: Any,
    volcano: Any,
    start: Any,
    end: Any,
    radii_km: Iterable[float] | float = DEFAULT_RADII_KM,
    variable: str = "so2_7km",
    filters: Filters | Mapping[str, Any] | None = None,
    *,
    scheduler: Any = None,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[pd.DataFrame, TimeseriesReport]:
    """SO2 mass within each radius of a volcano for every orbit of a period, and a report of the run.

    Parameters
    ----------
    catalog_or_index
        A catalogue (name ``"sample"``/``"tiny"``, path or URL of its YAML, an opened one, or None for the
        default): its granule index is opened and refreshed; or a :class:`app.data.index.GranuleIndex`, used
        as it is.
    volcano
        A GVP name or number (``"Soufriere St Vincent"``, ``360150``), a row of the GVP table or a VolcanoRef.
    start, end
        The period, UTC (dates or times; an ``end`` given as a date includes that day).
    radii_km
        Disk radii, km, in (0, 5000]; the SCIENCE.md radii by default.
    variable
        The column: ``so2_pbl``, ``so2_1km``, ``so2_7km`` or ``so2_15km``.
    filters
        :class:`app.science.filters.Filters` (or a mapping of its fields); qa_value >= 0.5 by default.
    scheduler
        None or ``"threads"``: a local thread pool; ``"processes"``; ``"sync"``; a Dask scheduler address
        (``"tcp://127.0.0.1:8786"``) or a ``distributed.Client``: one task per granule on that cluster.
    cache_dir
        The folder of the cache; None for :func:`default_cache_dir`, False for no cache.
    progress
        Called as ``progress(done, total)`` with the granules finished so far (cache hits at once).
    cancel
        A ``threading.Event``: once set, no more task is submitted, pending ones are cancelled, and the table
        holds what finished (``report.cancelled``).

    Returns
    -------
    (pandas.DataFrame, TimeseriesReport)
        One row per (orbit, radius), by time then radius: ``time`` (overpass: mean time of the pixels in the
        largest disk, to the millisecond), ``orbit``, ``radius_km``, ``mass_t`` (tonnes; NaN without a valid
        pixel), ``n_valid``, ``n_summed`` (valid pixels summed, i.e. above ``min_du``), ``n_pixels``,
        ``coverage`` (fraction of the disk covered by valid pixels) and ``granule`` (file name).

    Raises
    ------
    UserInputError
        Unknown volcano (with the closest names), end before start, no radius or a radius <= 0 or > 5,000 km,
        an unknown variable, or no granule of the period that reaches the largest disk.

    """
    t_start = time.perf_counter()
    _check_scheduler(scheduler)
    q = _Question(resolve_volcano(volcano), *parse_period(start, end), check_radii(radii_km),
                  check_variable(variable), Filters.coerce(filters))
    index, root, index_skipped = _open_index(catalog_or_index)
    cache = None
    if cache_dir is not False:
        cache = TimeseriesCache(cache_dir if cache_dir not in (None, True) else default_cache_dir(root))
    report = TimeseriesReport(q.volcano, q.t0, q.t1, q.radii, q.variable, q.filters,
                              scheduler=_describe_scheduler(scheduler),
                              cache_dir=str(cache.folder) if cache else None)
    in_period = index.query(PRODUCT, q.t0, q.t1)
    candidates = index.query(PRODUCT, q.t0, q.t1, disk_bbox(q.volcano.latitude, q.volcano.longitude, max(q.radii)))
    candidates, report.superseded = _one_per_orbit(candidates)
    report.n_in_period = len(in_period)
    report.skipped_by_index = len(in_period) - len(candidates) - len(report.superseded)
    report.corrupt.extend(_unreadable_in_period(index_skipped, q.t0, q.t1))

    total, done = len(candidates), 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if progress is not None and total:
        progress(0, total)
    records: list[dict[str, Any]] = []
    todo = []
    hits = 0
    for row in candidates.to_dict("records"):
        granule = _stat(row)
        key = TimeseriesCache.key(granule, q.volcano, q.radii, q.variable, q.filters) if cache else None
        entry = cache.get(key) if cache else None
        if entry is None:
            todo.append((granule, key))
            continue
        hits += 1
        _take(entry, granule["path"], q, report, records)
    report.cache_hits = hits
    if hits:
        tick(hits)
    if todo and not (cancel is not None and cancel.is_set()):
        _run_tasks(todo, q, scheduler, cache, report, records, tick, cancel)
    elif todo:
        report.cancelled = True
    table = _table_from_records(records)
    report.granules_used.sort()
    report.seconds = time.perf_counter() - t_start
    for line in report.lines():
        logger.info("%s", line)
    if table.empty and not report.cancelled:
        raise _no_data_error(q, report)
    return table, report


def _no_data_error(q: _Question, report: TimeseriesReport) -> UserInputError:
    message = (
        f"no TROPOMI granule {_period_label(q.t0, q.t1)} reaches {max(q.radii):g} km of {q.volcano.name}"
    )
    if report.corrupt:
        shown = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in report.corrupt[:3])
        more = f" and {len(report.corrupt) - 3} more" if len(report.corrupt) > 3 else ""
        message += f" that could be read ({len(report.corrupt)} could not: {shown}{more})"
    elif report.n_in_period == 0:
        message += " (the archive has no TROPOMI granule in that period)"
    error = UserInputError(message)
    error.report = report  # type: ignore[attr-defined]
    return error


# --- flux -----------------------------------------------------------------------------------------------------


def load_wind_csv(path: str | os.PathLike) -> pd.Series:
    """A wind-speed series from a CSV with the columns ``time`` (UTC) and ``wind_ms`` (m/s); ``#`` lines skipped.

    Returns a Series named ``wind_ms`` indexed by time (sorted), to interpolate at each orbit's time. Raises
    UserInputError naming the file and the line at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"the wind file {path} does not exist")
    try:
        raw = pd.read_csv(path, comment="#", skipinitialspace=True, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserInputError(f"the wind file {path} is not a CSV table: {exc}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("time", "wind_ms") if c not in raw.columns]
    if missing:
        raise UserInputError(
            f"the wind file {path} needs the columns time and wind_ms; it lacks {', '.join(missing)} "
            f"(it has {', '.join(raw.columns) or 'no columns'})"
        )
    if raw.empty:
        raise UserInputError(f"the wind file {path} has no rows")
    times = pd.to_datetime(raw["time"], errors="coerce", utc=True)
    speeds = pd.to_numeric(raw["wind_ms"], errors="coerce")
    for i in range(len(raw)):
        line = i + 2  # the header is line 1 (comment lines aside)
        if pd.isna(times.iat[i]):
            raise UserInputError(f"the wind file {path}, row {line}: time {raw['time'].iat[i]!r} is not a time")
        if not (np.isfinite(speeds.iat[i]) and speeds.iat[i] >= 0):
            raise UserInputError(
                f"the wind file {path}, row {line}: wind_ms {raw['wind_ms'].iat[i]!r} is not a speed >= 0 in m/s"
            )
    index = pd.DatetimeIndex(times.dt.tz_localize(None), name="time")
    series = pd.Series(speeds.to_numpy(dtype=float), index=index, name="wind_ms").sort_index()
    if series.index.has_duplicates:
        raise UserInputError(f"the wind file {path} gives the time {series.index[series.index.duplicated()][0]} twice")
    return series


def _wind_input(wind: Any) -> Any:
    if isinstance(wind, str | os.PathLike):
        return load_wind_csv(wind)
    if isinstance(wind, pd.Series | Mapping) or callable(wind):
        return wind
    try:
        value = float(wind)
    except (TypeError, ValueError):
        raise UserInputError(
            f"the wind must be a speed in m/s, a time series or a CSV file (time, wind_ms); got {wind!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise UserInputError(f"the wind speed must be more than 0 m/s; got {wind!r}")
    return value


def compute_flux_timeseries(
    mass_table: pd.DataFrame,
    wind: Any,
    *,
    wind_err_ms: Any = None,
    min_coverage: float = 0.5,
    max_radius_km: float | None = None,
    error_model: str = "cumulative",
) -> pd.DataFrame:
    """SO2 flux (t/day) per orbit by the disk method, from the table of :func:`compute_mass_timeseries`.

    ``wind`` is the wind speed at plume height: a number (m/s), a Series by time (e.g. :func:`load_wind_csv`,
    interpolated at each orbit's time) or by orbit, a function of time, or the path of a CSV (time, wind_ms). For
    the scenario's wind, pass ``get_scenario(name).wind_speed_ms(height_km)``. The other arguments and the
    columns are those of :func:`app.science.flux.flux_from_mass_table`.
    """
    return flux_from_mass_table(
        mass_table,
        _wind_input(wind),
        wind_err_ms=wind_err_ms,
        min_coverage=min_coverage,
        max_radius_km=max_radius_km,
        error_model=error_model,
    )


# --- CSV with provenance -------------------------------------------------------------------------------------

_FILTER_FIELDS = ("qa_min", "sza_max", "edge_pixels", "min_du")


def _header_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return " ".join(str(value).split())  # one line


def write_timeseries_csv(
    df: pd.DataFrame,
    path_or_buffer: str | os.PathLike | io.TextIOBase,
    *,
    volcano: Any,
    start: Any,
    end: Any,
    variable: str,
    filters: Filters | Mapping[str, Any] | None,
    radii: Iterable[float],
    n_granules: int,
    scheduler: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a mass (or flux) table as CSV after ``# key: value`` lines that record how it was made.

    The header records the volcano (name, GVP number, latitude, longitude), the period (UTC, end excluded), the
    variable, every filter, the radii, the code version (:func:`code_version`), the number of granules used, the
    scheduler, the creation time, and any ``extra`` items (e.g. the wind of a flux table).
    """
    v = resolve_volcano(volcano)
    t0, t1 = parse_period(start, end)
    f = Filters.coerce(filters)
    kind = "so2_flux_timeseries" if "flux_t_day" in df.columns else "so2_mass_timeseries"
    header: dict[str, Any] = {
        "fumarole": kind,
        "volcano": v.name,
        "volcano_number": v.number,
        "volcano_latitude": v.latitude,
        "volcano_longitude": v.longitude,
        "start": t0.isoformat(),
        "end": t1.isoformat(),
        "period": "UTC; orbits whose overpass time t has start <= t < end",
        "variable": variable,
        **{f"filter_{name}": getattr(f, name) for name in _FILTER_FIELDS},
        "filters": f.key(),
        "radii_km": ",".join(f"{r:g}" for r in check_radii(list(radii))),
        "code_version": code_version(),
        "n_granules": int(n_granules),
        "scheduler": _describe_scheduler(scheduler) if not isinstance(scheduler, str) else scheduler,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "units": "mass_t tonnes SO2; radius_km km; coverage fraction of the disk covered by valid pixels"
        if kind == "so2_mass_timeseries"
        else "flux_t_day t/day; a_kg_m kg/m; b_kg_m2 kg/m2; wind_ms m/s",
        **dict(extra or {}),
    }
    lines = "".join(f"# {key}: {_header_value(value)}\n" for key, value in header.items())
    table = df.copy()
    if "time" in table.columns:
        table["time"] = (pd.to_datetime(table["time"]).dt.round("ms").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
                         .str[:-3] + "Z").where(
            table["time"].notna(), ""
        )
    body = table.to_csv(index=False, lineterminator="\n")
    if isinstance(path_or_buffer, str | os.PathLike):
        Path(path_or_buffer).write_text(lines + body, encoding="utf-8")
    else:
        path_or_buffer.write(lines + body)


def read_timeseries_csv(path_or_buffer: str | os.PathLike | io.TextIOBase) -> tuple[dict[str, str], pd.DataFrame]:
    """Read a CSV written by :func:`write_timeseries_csv`: the header as a dict of strings, and the table."""
    if isinstance(path_or_buffer, str | os.PathLike):
        path = Path(path_or_buffer)
        if not path.is_file():
            raise UserInputError(f"the time-series file {path} does not exist")
        text = path.read_text(encoding="utf-8")
    else:
        text = path_or_buffer.read()
    header: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    n = 0
    for line in lines:
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(":")
        if sep:
            header[key.strip()] = value.strip()
        n += 1
    df = pd.read_csv(io.StringIO("".join(lines[n:])))  # pandas >= 3 reads floats back exactly
    if "time" in df.columns:
        df["time"] = pd.to_datetime(df["time"], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
    if "orbit" in df.columns:
        df["orbit"] = df["orbit"].astype("Int64")
    if "granule" in df.columns:
        df["granule"] = df["granule"].astype(object)
    if "reason" in df.columns:
        df["reason"] = df["reason"].fillna("").astype(object)
    return header, df


def filters_from_header(header: Mapping[str, str]) -> Filters:
    """The Filters recorded in a CSV header (``filter_qa_min``, ``filter_sza_max``, ...)."""
    values: dict[str, Any] = {}
    for name in _FILTER_FIELDS:
        text = header.get(f"filter_{name}")
        if text is None:
            raise UserInputError(f"the time-series header lacks filter_{name}")
        values[name] = None if text == "none" else (int(text) if name == "edge_pixels" else float(text))
    return Filters(**values)

