"""SO2 mass time series around a volcano, for every orbit of a period: the engine, its cache, its CSV.

For a volcano, a period, a list of radii, a box-profile column and the pixel filters, the engine returns one
row per (orbit, radius) with the SO2 mass within the disk (``app.science.mass.so2_mass_within_radii``), and a
:class:`TimeseriesReport` of what was read, skipped and why. It does as little work as the question needs:

1. the granule index (:mod:`app.data.index`) keeps only the granules of the period whose footprint touches the
   lat/lon box of the largest disk (antimeridian- and pole-aware, :func:`disk_bbox`), without opening a file;
2. a cached result (one small signed JSON file per granule and question, :class:`TimeseriesCache`, kept in the
   per-user state folder, never in the archive) is used once its signature and schema are checked;
3. for each remaining granule, one task: the satellite's ground track (a few KB) and the pixel centres of the
   scanlines passing near enough find the window of scanlines that reach the disk (:func:`scanline_window`;
   a strided read of the centres for a file without satellite positions), then only that window of only the
   needed variables (the column, ``qa_value`` and ``solar_zenith_angle`` when a filter needs them, the centres
   and corners) is read with
   :func:`app.data.tropomi.read_swath`, and the masses are computed. The window holds every pixel whose centre
   lies in the largest disk, so the masses equal those of the whole granule.

Tasks run on a local thread pool by default, or on a Dask distributed cluster: one task per granule, a bounded
number in flight, so that cancelling (a ``threading.Event``) stops submitting and cancels what is pending. Where
they run is the operator's choice, never a page visitor's: dashboards pass ``cluster=`` the *name* of a cluster
configured in the operator's settings (:func:`app.core.settings.clusters`); only trusted callers (the CLI's own
``--scheduler`` flag, notebooks, tests) pass ``scheduler=`` an address or a ``distributed.Client``. A Dask client
unpickles what its scheduler sends, so an address must never come from a web page.

A granule that cannot be read -- any failure of the reader on that file, a file name that does not parse (a month
13), a file that vanished -- is a skipped granule with its reason, named relative to the archive root; the rest of
the period still computes, and the CSV header lists the skipped granules.

An orbit belongs to the period when its overpass time (the mean time of its pixels in the largest disk) lies in
``[start, end)``; a date given as ``end`` (no time of day) includes that whole day.

The CSV written by :func:`write_timeseries_csv` starts with ``# key: value`` lines recording the volcano, the
period, the variable, every filter, the radii, the code version, the number of granules used and the creation
time, and every granule that was skipped with the reason; :func:`read_timeseries_csv` reads it back
(:func:`skipped_from_header` gives the skipped granules). The CLI (``fumarole timeseries``) and the dashboard
panel write the same file.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import hmac
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

from app.core.locks import HDF_LOCK
from app.core.lonlat import wrap_lon
from app.core.state import say_once
from app.data import storage
from app.data.errors import GranuleError, UserInputError
from app.data.tropomi import LevelUnavailable
from app.science.filters import Filters
from app.science.flux import flux_from_mass_table
from app.science.geodesy import EARTH_RADIUS_KM, great_circle_distance_km
from app.science.mass import DEFAULT_RADII_KM, so2_mass_within_radii

__all__ = [
    "CACHE_FORMAT",
    "CONNECT_TIMEOUT_S",
    "ENGINE_VERSION",
    "GRANULE_FAILURES",
    "MAX_RADIUS_KM",
    "SO2_VARIABLES",
    "TABLE_COLUMNS",
    "TimeseriesCache",
    "TimeseriesReport",
    "VolcanoRef",
    "check_csv_output",
    "check_radii",
    "check_scheduler",
    "check_variable",
    "check_wind_speed",
    "cluster_names",
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
    "relative_name",
    "resolve_volcano",
    "scanline_window",
    "skipped_from_header",
    "write_timeseries_csv",
    "DEFAULT_RADII_KM",
]

logger = logging.getLogger(__name__)

#: Version of the engine's results: bump it when a change alters any number, so that cached results are redone.
ENGINE_VERSION = "2"  # 2: QA strict (qa_value > qa_min), the S5P SO2 recommendation
#: The box-profile columns a time series can use.
SO2_VARIABLES = ("so2_pbl", "so2_1km", "so2_3km", "so2_7km", "so2_15km")
#: Largest radius accepted, km.
MAX_RADIUS_KM = 5000.0
#: Columns of the mass table, in order.
TABLE_COLUMNS = ("time", "orbit", "radius_km", "mass_t", "n_valid", "n_summed", "n_pixels", "coverage", "granule")
PRODUCT = "tropomi_so2"
#: Pixel areas from the corners as spherical polygons (``app.science.geodesy.pixel_area_km2``).
AREA_METHOD = "exact"
#: The format of a cache entry (bump it when the entry's layout changes).
CACHE_FORMAT = "fumarole-timeseries-cache/2"
#: Seconds a Dask scheduler has to answer before the run gives up (an unanswering address must not hang a run).
CONNECT_TIMEOUT_S = 10.0

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
            lon = wrap_lon(lon)
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


#: The times a period may span: satellite data, with room on both sides (and far from pandas' year 1677 and 2262).
EARLIEST = pd.Timestamp("1900-01-01")
LATEST = pd.Timestamp("2200-01-01")


def _as_timestamp(value: Any, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(
            f"the {what} {value!r} is not a date or time (use e.g. 2021-04-12 or 2021-04-12T18:00)"
        ) from None
    if pd.isna(t):
        raise UserInputError(f"give the {what} of the period as a date (e.g. 2021-04-12); got {value!r}")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    if not EARLIEST <= t < LATEST:
        raise UserInputError(
            f"the {what} {value!r} is outside the years {EARLIEST.year}-{LATEST.year - 1} a time series can span"
        )
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

    lon_min, lon_max = wrap_lon(lon - half), wrap_lon(lon + half)
    if lon_max == -180.0:
        lon_max = 180.0
    return lon_min, lat_min, lon_max, lat_max


# --- one granule: the window, the read, the masses (runs on a worker) ----------------------------------------


# netCDF-C and HDF5 are not thread-safe: every open and read below holds app.core.locks.HDF_LOCK (re-entrant, so a
# reader that takes it itself inside does not deadlock); the mass computation on the arrays runs outside it.


def _sampled_centres(nc, path: str, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Latitude and longitude of every ``stride``-th scanline (and the last), the rows read and the row count."""
    from app.data import tropomi

    lat_var, lon_var = tropomi.pixel_coordinates(nc, path)
    n_rows = int(lat_var.shape[1])
    rows = np.unique(np.r_[np.arange(0, n_rows, stride), n_rows - 1]) if n_rows else np.array([], int)

    def rows_of(var, where, index):  # fill values -> NaN, as float64
        return tropomi.decode(path, var, np.asarray(var[0, index, :]), where).astype(np.float64)

    lat = rows_of(lat_var, "PRODUCT/latitude", slice(None, None, stride))
    lon = rows_of(lon_var, "PRODUCT/longitude", slice(None, None, stride))
    if n_rows and (n_rows - 1) % stride:
        last = slice(n_rows - 1, n_rows)
        lat = np.vstack([lat, rows_of(lat_var, "PRODUCT/latitude", last)])
        lon = np.vstack([lon, rows_of(lon_var, "PRODUCT/longitude", last)])
    return lat, lon, rows, n_rows


def _strided_window(nc, path: str, lat: float, lon: float, radius_km: float,
                    stride: int) -> tuple[slice | None, int]:
    """The window from every ``stride``-th scanline of the pixel centres (for files without satellite positions).

    Keeps the sampled scanlines that come within the radius plus the largest distance between neighbouring samples
    (along plus across track), and widens that by one stride each way: a centre in the disk lies between two
    sampled scanlines, each within that margin. On a chunked file this touches every chunk of the two variables.
    """
    s_lat, s_lon, rows, n_rows = _sampled_centres(nc, path, stride)
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


#: Relative slack on the swath's measures taken on the granule's own scanlines (the half width, the pixels' offset
#: from the scanline's cross-track great circle), for the scanlines not read. Both follow the satellite's height
#: over the ellipsoid (S5P: 824 km ± about 2 %), the Earth's curvature and rotation under it: they change by a few
#: percent over the length of a disk, far less than 10 %; scanlines read that exceed them raise them (see below).
SWATH_SLACK = 0.10


def _unit_vectors(lat, lon) -> np.ndarray:
    la, lo = np.radians(np.asarray(lat, dtype=float)), np.radians(np.asarray(lon, dtype=float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _arc_km(sine) -> np.ndarray:
    """Distance on the Earth (km) of a point from a great circle, from the sine of its angular distance."""
    return EARTH_RADIUS_KM * np.abs(np.arcsin(np.clip(sine, -1.0, 1.0)))


class _GroundTrack:
    """The sub-satellite points of a granule and, per scanline, the unit normal of its cross-track great circle.

    The cross-track great circle of scanline i passes through its sub-satellite point at right angles to the
    track: its normal is the track's direction there (from the neighbouring sub-satellite points). With the
    satellite's height (``GEOLOCATIONS/satellite_altitude``), the horizon bounds what any scanline can see.
    """

    def __init__(self, s_lat: np.ndarray, s_lon: np.ndarray, altitude_km: float | None = None):
        self.lat, self.lon = s_lat, s_lon
        #: Ground distance from the sub-satellite point to the horizon (nothing farther is seen), when known.
        self.horizon_km = None if altitude_km is None else \
            EARTH_RADIUS_KM * math.acos(EARTH_RADIUS_KM / (EARTH_RADIUS_KM + altitude_km))
        points = _unit_vectors(s_lat, s_lon)
        self.normals = None
        self.step_km = 0.0
        if len(points) >= 2:
            direction = np.gradient(points, axis=0)
            direction -= np.sum(direction * points, axis=1, keepdims=True) * points  # tangent at each point
            norm = np.linalg.norm(direction, axis=1, keepdims=True)
            if np.all(norm > 0):
                self.normals = direction / norm
            self.step_km = float(np.max(great_circle_distance_km(s_lat[:-1], s_lon[:-1], s_lat[1:], s_lon[1:])))

    def across_km(self, lat, lon, rows: slice | None = None) -> np.ndarray:
        """Distance (km) from the cross-track great circles.

        Of one point from every scanline's circle (``rows`` None), or of the points of each scanline of ``rows``
        (an array of scanlines × points) from that scanline's own.
        """
        points = _unit_vectors(lat, lon)
        if rows is None:
            return np.zeros(self.lat.shape) if self.normals is None else _arc_km(self.normals @ points)
        if self.normals is None:
            return np.zeros(points.shape[:-1])
        return _arc_km(np.einsum("rpk,rk->rp", points, self.normals[rows]))


class _CentreRows:
    """The pixel centres of one contiguous span of scanlines of an open granule, grown as needed.

    With, per scanline, the ground distance of its farthest centre from its sub-satellite point (the half width)
    and from its cross-track great circle (the offset).
    """

    def __init__(self, nc, path: str, track: _GroundTrack):
        self.nc, self.path, self.track = nc, path, track
        self.first = self.stop = 0
        self.lat = self.lon = np.empty((0, 0))
        self.half_width = self.offset = np.empty(0)

    def _read(self, first: int, stop: int) -> tuple[np.ndarray, ...]:
        from app.data import tropomi

        rows = slice(first, stop)
        lat, lon = tropomi.read_centres(self.nc, self.path, rows)
        reach = great_circle_distance_km(self.track.lat[rows, None], self.track.lon[rows, None], lat, lon)
        across = self.track.across_km(lat, lon, rows)
        if lat.shape[1] == 0:
            return lat, lon, np.full(stop - first, np.nan), np.full(stop - first, np.nan)
        # fmax skips NaN (fill values) and gives NaN for a scanline of fill values only, without a warning
        return lat, lon, np.fmax.reduce(reach, axis=1), np.fmax.reduce(across, axis=1)

    def cover(self, first: int, stop: int) -> None:
        """Make the span hold the scanlines ``first`` .. ``stop - 1`` (reading only those not held yet)."""
        if self.stop == self.first:
            self.lat, self.lon, self.half_width, self.offset = self._read(first, stop)
            self.first, self.stop = first, stop
            return
        if first < self.first:
            lat, lon, width, offset = self._read(first, self.first)
            self.lat, self.lon = np.vstack([lat, self.lat]), np.vstack([lon, self.lon])
            self.half_width, self.offset = np.r_[width, self.half_width], np.r_[offset, self.offset]
            self.first = first
        if stop > self.stop:
            lat, lon, width, offset = self._read(self.stop, stop)
            self.lat, self.lon = np.vstack([self.lat, lat]), np.vstack([self.lon, lon])
            self.half_width, self.offset = np.r_[self.half_width, width], np.r_[self.offset, offset]
            self.stop = stop

    def measures(self) -> tuple[float, float]:
        """The largest half width and offset (km) over the scanlines held; NaN when no centre is known."""
        finite = np.isfinite(self.half_width)
        if not finite.any():
            return float("nan"), float("nan")
        return float(self.half_width[finite].max()), float(np.fmax.reduce(self.offset[finite]))


def _track_window(nc, path: str, track: _GroundTrack, lat: float, lon: float,
                  radius_km: float) -> tuple[slice | None, int] | str:
    """The exact window from the satellite's ground track, or a sentence saying why it cannot be had.

    Two lower bounds on the distance from the volcano V to any pixel centre P of scanline i, both from the
    triangle inequality, with W the scanline's half width (the farthest centre from its sub-satellite point S)
    and E its offset (the farthest centre from its cross-track great circle G):

    - |VP| >= |VS| - W: a scanline whose sub-satellite point is farther than ``radius_km + W`` has no centre in
      the disk;
    - |VP| >= dist(V, G) - E: nor has one whose cross-track great circle passes farther than ``radius_km + E``
      (this one confines the candidates to about the disk's length along the track).

    A disk farther from the whole track than the horizon (with the slack) is not read at all. W and E are
    measured on the granule: first on the scanline whose sub-satellite point is nearest the volcano,
    then on every scanline read, and used with the slack :data:`SWATH_SLACK` (and E with one scanline's spacing
    more): only the scanlines passing both tests are candidates; their pixel centres are read, and while a
    scanline read exceeds the W or E used, these grow and the candidates with them. The window runs from the
    first to the last scanline with a centre in the disk.
    """
    n_rows = int(track.lat.size)
    if n_rows == 0:
        return None, 0
    to_point = great_circle_distance_km(lat, lon, track.lat, track.lon)
    if track.horizon_km is not None and to_point.min() > radius_km + track.horizon_km * (1.0 + SWATH_SLACK):
        return None, n_rows  # the disk lies beyond the satellite's horizon all along: no pixel read
    to_circle = track.across_km(lat, lon)
    nearest = int(np.argmin(to_point))
    centres = _CentreRows(nc, path, track)
    centres.cover(nearest, nearest + 1)
    width, offset = centres.measures()
    if not math.isfinite(width):
        return f"the scanline {nearest} nearest the volcano has no pixel centre to measure the swath on"
    while True:
        candidates = np.flatnonzero((to_point <= radius_km + width * (1.0 + SWATH_SLACK))
                                    & (to_circle <= radius_km + offset * (1.0 + SWATH_SLACK) + track.step_km))
        if candidates.size == 0:
            return None, n_rows
        centres.cover(int(candidates[0]), int(candidates[-1]) + 1)
        measured = centres.measures()
        if measured[0] <= width and measured[1] <= offset:
            break
        width, offset = max(width, measured[0]), max(offset, measured[1])
    inside = great_circle_distance_km(lat, lon, centres.lat, centres.lon) <= radius_km  # NaN compares False
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        return None, n_rows
    return slice(centres.first + int(rows[0]), centres.first + int(rows[-1]) + 1), n_rows


def scanline_window(path: str | os.PathLike, lat: float, lon: float, radius_km: float,
                    stride: int = _WINDOW_STRIDE) -> tuple[slice | None, int]:
    """The scanlines of a granule that hold a pixel centre within ``radius_km`` of (lat, lon), and their count.

    From the satellite's ground track (``GEOLOCATIONS/satellite_latitude``/``longitude``, a few KB) and the pixel
    centres of only the scanlines whose sub-satellite point comes near enough (:func:`_track_window`): the window
    runs from the first to the last scanline with a centre in the disk, and only the chunks of those candidate
    scanlines are read. A file without usable satellite positions falls back (said in a debug log line) to every
    ``stride``-th scanline of the centres, whose window is a few strides wider and which reads every chunk of the
    centres. Returns ``(None, n_scanlines)`` when no pixel centre lies in the disk.
    """
    from app.data import tropomi

    path = os.fspath(path)
    with HDF_LOCK, tropomi.open_granule(path) as nc:
        track = tropomi.satellite_track(nc, path)
        if not isinstance(track, str):
            track = _GroundTrack(*track, tropomi.satellite_altitude_km(nc, path))
        found = track if isinstance(track, str) else _track_window(nc, path, track, lat, lon, radius_km)
        if not isinstance(found, str):
            return found
        logger.debug("%s: the scanline window comes from every %dth scanline of the pixel centres: %s",
                     os.path.basename(path), stride, found)
        return _strided_window(nc, path, lat, lon, radius_km, stride)


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
    with HDF_LOCK:
        swath = read_swath(path, variables=_needed_variables(variable, filters), scanlines=rows)
    table = so2_mass_within_radii(swath, variable, lat, lon, radii_km, filters, area_method=AREA_METHOD)
    n_rows = n_rows if n_rows is not None else int(swath.sizes["scanline"])
    first, stop, _ = rows.indices(n_rows)
    reaches = len(table) and int(table["n_pixels"].iloc[-1]) > 0
    return {"records": _records(table, name) if reaches else [], "window": (first, stop), "n_scanlines": n_rows}


#: What reading or computing one granule may raise on a bad file: the granule is skipped with the reason.
#: (NameError, ImportError, AssertionError... are bugs of ours and still stop the run.)
GRANULE_FAILURES = (GranuleError, OSError, RuntimeError, ValueError, LookupError, TypeError, AttributeError,
                    ArithmeticError, UnicodeError, EOFError)


def _exception_text(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())[:300]
    except Exception:  # noqa: BLE001 - an exception whose str() fails (distributed's KilledWorker without a worker)
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _granule_task(path: str, variable: str, lat: float, lon: float, radii_km: tuple[float, ...],
                  filters: Filters, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One task: :func:`mass_for_granule`, with a granule that cannot be used returned as ``{"error": reason}``.

    Whatever the reader or the mass computation raises on this one file (:data:`GRANULE_FAILURES`: a damaged or
    truncated file, a variable of the wrong shape or type, a file that vanished; and any other exception, logged
    with its traceback) makes the granule a skipped one with that reason; the run goes on. Errors of the run's own
    orchestration happen outside this function.
    """
    t0 = time.perf_counter()
    if storage_options and storage.registered_options(path) != dict(storage_options):
        storage.register(path.rsplit("/", 1)[0], storage_options)  # on a worker: the options came with the task
    try:
        out = mass_for_granule(path, variable, lat, lon, radii_km, filters)
    except LevelUnavailable as exc:  # a processor version without this column: not damage, said as such
        return {"unavailable": exc.reason, "seconds": time.perf_counter() - t0}
    except GranuleError as exc:
        return {"error": exc.problem, "seconds": time.perf_counter() - t0}
    except OSError as exc:  # the file vanished or the disk failed between the index and the read
        return {"error": f"cannot be read ({_exception_text(exc)})", "seconds": time.perf_counter() - t0}
    except GRANULE_FAILURES as exc:
        return {"error": f"cannot be used ({_exception_text(exc)})", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - any failure on one file skips that file; the log keeps the traceback
        # NameError, ImportError, AssertionError...: most likely a bug of ours, not of the file. The granule is
        # still skipped (the period goes on), and the error log carries the traceback to report.
        logger.error("time series: unexpected failure of the reader on %s (a bug?)", os.path.basename(path),
                     exc_info=True)
        return {"error": f"cannot be used (unexpected failure of the reader: {_exception_text(exc)})",
                "seconds": time.perf_counter() - t0}
    out["seconds"] = time.perf_counter() - t0
    return out


# --- the cache ----------------------------------------------------------------------------------------------


def default_cache_dir(archive_root: str | os.PathLike | None) -> Path:
    """The cache folder of an archive: ``timeseries`` in its per-user state folder, never in the archive itself.

    That is ``app.core.state.archive_state_dir(archive_root) / "timeseries"`` (``$FUMAROLE_STATE_DIR`` or XDG,
    keyed by the archive's root), or ``state_dir() / "timeseries"`` when the root is not known.
    """
    from app.core.state import archive_state_dir, state_dir

    if archive_root is None:
        return state_dir() / "timeseries"
    return archive_state_dir(archive_root) / "timeseries"


_RECORD_FIELDS = frozenset(TABLE_COLUMNS)
_NS_MIN, _NS_MAX = EARLIEST.as_unit("ns").value, LATEST.as_unit("ns").value


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _record_problem(i: int, record: Any, radius: float, granule: str) -> str | None:
    """What is wrong with record ``i`` of an entry, or None (the schema of :data:`TABLE_COLUMNS`)."""
    if not isinstance(record, dict) or set(record) != _RECORD_FIELDS:
        return f"record {i} is not a mapping of the fields {', '.join(TABLE_COLUMNS)}"
    t, orbit = record["time"], record["orbit"]
    if t is not None and not (_is_int(t) and _NS_MIN <= t < _NS_MAX):
        return f"record {i}: time {t!r} is not a time in ns since 1970 within {EARLIEST.year}-{LATEST.year - 1}"
    if orbit is not None and not (_is_int(orbit) and orbit >= 0):
        return f"record {i}: orbit {orbit!r} is not a whole number >= 0"
    if not (_is_number(record["radius_km"]) and record["radius_km"] == radius):
        return f"record {i}: radius_km {record['radius_km']!r} is not the radius {radius:g} of the key"
    mass, coverage = record["mass_t"], record["coverage"]
    if not (_is_number(mass) and (math.isfinite(mass) or math.isnan(mass))):
        return f"record {i}: mass_t {mass!r} is not a number of tonnes"
    if not (_is_number(coverage) and 0.0 <= coverage <= 1.0):
        return f"record {i}: coverage {coverage!r} is not a fraction between 0 and 1"
    counts = [record[c] for c in ("n_summed", "n_valid", "n_pixels")]
    if not all(_is_int(n) and n >= 0 for n in counts) or not counts[0] <= counts[1] <= counts[2]:
        return f"record {i}: the pixel counts {counts} are not whole numbers with n_summed <= n_valid <= n_pixels"
    if record["granule"] != granule:
        return f"record {i}: granule {record['granule']!r} is not the key's {granule!r}"
    return None


def _entry_problem(entry: Any, key: Mapping[str, Any]) -> str | None:
    """What is wrong with the content of a signed entry for ``key``, or None."""
    if json.loads(json.dumps(key)) != entry.get("key"):
        return "it holds the result of another question"
    records, window, n_rows = entry.get("records"), entry.get("window"), entry.get("n_scanlines")
    radii = list(key["radii_km"])
    if not isinstance(records, list) or len(records) not in (0, len(radii)):
        return f"its records are not a list of 0 or {len(radii)} records (one per radius)"
    if not (_is_int(n_rows) and n_rows >= 0):
        return f"n_scanlines {n_rows!r} is not a whole number >= 0"
    if window is None:
        if records:
            return "it has records but no window of scanlines"
    elif not (isinstance(window, list) and len(window) == 2 and all(map(_is_int, window))
              and 0 <= window[0] < window[1] <= n_rows):
        return f"window {window!r} is not [first, stop] scanlines within 0-{n_rows}"
    granule = os.path.basename(str(key["granule"]))
    for i, (record, radius) in enumerate(zip(records, radii, strict=False)):
        problem = _record_problem(i, record, float(radius), granule)
        if problem:
            return problem
    return None


class TimeseriesCache:
    """Results on disk, one small signed JSON file per (granule, question): re-runs and longer periods reuse them.

    The key holds the granule's path, size and modification time, the volcano (number, latitude, longitude), the
    radii, the variable, ``Filters.key()`` and :func:`code_version`, so any change to one of them misses.

    An entry is data, never code (JSON, no pickle), and it is trusted only once checked: it carries an HMAC-SHA256
    of its content with this installation's key (``app.core.state.secret_key("timeseries-cache")``), and its key
    and every record are checked against the schema (types and ranges of each field). An entry that is not JSON,
    is ``null``, is edited or forged, or breaks the schema is ignored (said once in the log), the granule is
    computed again and the entry overwritten. Writing goes through ``app.core.state.write_state``: a folder that
    cannot be written is said once and the run goes on without storing.
    """

    def __init__(self, folder: str | os.PathLike, secret: bytes | None = None):
        """``folder`` holds the entries; ``secret`` signs them (default: the installation's cache key)."""
        self.folder = Path(folder)
        self._secret = secret
        self._writable = True
        #: entries found invalid (ignored and computed again) by this object
        self.rejected = 0

    @staticmethod
    def key(granule: Mapping[str, Any], volcano: VolcanoRef, radii_km: tuple[float, ...], variable: str,
            filters: Filters) -> dict[str, Any]:
        """The full key of one granule's result (a JSON-able dict)."""
        return {
            "granule": str(granule["path"]),
            "size": int(granule["size"]),
            "version": str(granule["version"] if "version" in granule else granule["mtime"]),
            "volcano": [volcano.number, volcano.latitude, volcano.longitude],
            "radii_km": list(radii_km),
            "variable": variable,
            "filters": filters.key(),
            "area_method": AREA_METHOD,
            "code": code_version(),
        }

    def _path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(_canonical(key)).hexdigest()
        return self.folder / f"{digest}.json"

    def _signature(self, body: Mapping[str, Any]) -> str:
        if self._secret is None:
            from app.core.state import secret_key

            self._secret = secret_key("timeseries-cache")
        return hmac.new(self._secret, _canonical(body), hashlib.sha256).hexdigest()

    def _reject(self, path: Path, problem: str) -> None:
        self.rejected += 1
        say_once(str(path), f"time-series cache entry {path.name} in {self.folder} is not used: {problem}; "
                             "the granule is computed again and the entry replaced")

    def get(self, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored result of ``key`` (records, window, n_scanlines), or None when missing or not valid."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._reject(path, f"it cannot be read ({exc.strerror or exc})")
            return None
        try:
            entry = json.loads(data)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self._reject(path, f"it is not JSON ({_exception_text(exc)})")
            return None
        problem = self._problem(entry, key)
        if problem:
            self._reject(path, problem)
            return None
        return {"records": entry["records"], "window": entry["window"], "n_scanlines": entry["n_scanlines"]}

    def _problem(self, entry: Any, key: Mapping[str, Any]) -> str | None:
        if not isinstance(entry, dict):
            return f"it holds {type(entry).__name__ if entry is not None else 'null'}, not an entry"
        if entry.get("format") != CACHE_FORMAT:
            return f"its format is {entry.get('format')!r}, not {CACHE_FORMAT!r}"
        signature = entry.get("hmac")
        body = {k: v for k, v in entry.items() if k != "hmac"}
        if not isinstance(signature, str) or not hmac.compare_digest(signature, self._signature(body)):
            return "its signature does not match its content (edited, forged, or signed with another key)"
        return _entry_problem(entry, key)

    def put(self, key: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
        """Store a result, signed (atomically: readers never see half a file); False when it could not be written.

        A folder that cannot be written is said once (``app.core.state.write_state``) and not tried again by
        this object: the run goes on without storing.
        """
        if not self._writable:
            return False
        window = result.get("window")
        body = {"format": CACHE_FORMAT, "key": json.loads(json.dumps(key)), "records": list(result["records"]),
                "window": None if window is None else [int(window[0]), int(window[1])],
                "n_scanlines": int(result.get("n_scanlines") or 0)}
        text = _canonical({**body, "hmac": self._signature(body)})

        def write(tmp: str) -> None:
            Path(tmp).write_bytes(text)

        from app.core.state import write_state

        self._writable = write_state(self._path(key), write, what="time-series cache")
        return self._writable


# --- the report ---------------------------------------------------------------------------------------------


def _is_url(path: str) -> bool:
    return "://" in path or "::" in path


def relative_name(path: str | os.PathLike, root: str | os.PathLike | None) -> str:
    """A granule's path relative to the archive root (``tropomi/2021/04/12/S5P_...nc``), for users to read.

    Never an absolute server path: a path outside ``root`` (or with no root known) is given by its file name. A
    relative path is taken as already relative to the root (the granule index reports skipped files that way).
    """
    text = os.fspath(path)
    if not _is_url(text) and not os.path.isabs(text):
        return Path(text).as_posix()
    if root is not None:
        base = os.fspath(root).rstrip("/")
        if _is_url(text) or _is_url(base):
            if text.startswith(base + "/"):
                return text[len(base) + 1:]
        else:
            full, top = os.path.abspath(text), os.path.abspath(base)
            if os.path.commonpath([full, top]) == top and full != top:
                return Path(os.path.relpath(full, top)).as_posix()
    return text.rstrip("/").rsplit("/", 1)[-1].rsplit(os.sep, 1)[-1]


def _relative_text(text: str, path: str, name: str, root: str | None) -> str:
    """``text`` with the absolute ``path`` (and the archive root) replaced by names users may see."""
    text = text.replace(path, name)
    if root:
        text = text.replace(os.fspath(root).rstrip("/") + "/", "").replace(os.fspath(root), "the archive")
    return text



@dataclass
class TimeseriesReport:
    """What a time-series run read, reused and skipped, and why (for the log console and the CSV header).

    ``granules_used``: granules with an orbit in the table (computed or from the cache); ``cache_hits``: those
    (and the ones found not to reach the disk) taken from the cache; ``skipped_by_index``: granules of the period
    whose footprint does not touch the largest disk (never opened); ``not_reaching``: granules whose scanlines
    come near the disk's box but no pixel centre falls in the disk; ``outside_period``: granules whose overpass
    lies outside the period; ``superseded``: granules of an orbit also available in a newer or offline version;
    ``corrupt``: (path, reason) of granules that could not be read or used (a damaged file, a file name that
    does not parse); ``unavailable``: (path, reason) of granules whose processor version lacks the column asked for
    (``so2_3km`` before 02.08.00; :class:`~app.data.tropomi.LevelUnavailable`); ``cache_rejected``: cache entries
    found invalid and computed again. Paths are the server's; every sentence meant for a user names a granule
    relative to ``archive_root`` (:meth:`name`).
    """

    volcano: VolcanoRef
    start: pd.Timestamp
    end: pd.Timestamp
    radii_km: tuple[float, ...]
    variable: str
    filters: Filters
    scheduler: str = ""
    cache_dir: str | None = None
    archive_root: str | None = None
    n_in_period: int = 0
    skipped_by_index: int = 0
    granules_used: list[str] = field(default_factory=list)
    not_reaching: list[str] = field(default_factory=list)
    outside_period: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    unavailable: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0
    cache_rejected: int = 0
    computed: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    windows: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def n_granules(self) -> int:
        """Granules whose orbits are in the table."""
        return len(self.granules_used)

    def name(self, path: str) -> str:
        """A granule's path as users see it: relative to the archive root (:func:`relative_name`)."""
        return relative_name(path, self.archive_root)

    def skipped_granules(self) -> list[tuple[str, str]]:
        """(name relative to the archive root, reason) of every granule skipped because it could not be used.

        Damaged granules first, then those whose processor version lacks the column asked for.
        """
        return [(self.name(path), _relative_text(reason, path, self.name(path), self.archive_root))
                for path, reason in (*self.corrupt, *self.unavailable)]

    def lines(self) -> list[str]:
        """The report as sentences, one per line (what was read, skipped and why)."""
        out = [
            f"SO2 mass of {self.variable} around {self.volcano.label()} {_period_label(self.start, self.end)}, "
            f"radii {', '.join(f'{r:g}' for r in self.radii_km)} km, filters {self.filters.key()}",
            f"{self.n_in_period} granules in the period: {self.skipped_by_index} skipped by the index (they do not "
            f"touch the {max(self.radii_km):g} km disk), {self.n_granules} used, {self.cache_hits} from the cache, "
            f"{self.computed} read, {len(self.corrupt)} unreadable"
            + (f", {len(self.unavailable)} without the {self.variable} column" if self.unavailable else ""),
        ]
        for path in self.not_reaching:
            out.append(f"{self.name(path)}: no pixel centre within {max(self.radii_km):g} km")
        for path in self.outside_period:
            out.append(f"{self.name(path)}: passes over the volcano outside the period")
        for path in self.superseded:
            out.append(f"{self.name(path)}: superseded by another granule of the same orbit")
        for name, reason in self.skipped_granules():
            out.append(f"skipped {name}: {reason}")
        if self.cache_rejected:
            out.append(f"{self.cache_rejected} cache entr{'ies were' if self.cache_rejected > 1 else 'y was'} not "
                       "valid (edited, damaged or forged) and computed again")
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


def _distributed_runner(client: Any, owned: bool, cluster: str | None = None) -> _Runner:
    import distributed

    def wait(futures: list, timeout: float) -> tuple[set, set]:
        try:
            with client.as_current():  # distributed.wait uses the current client; ours need not be the default
                done, pending = distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except (TimeoutError, distributed.TimeoutError):
            return set(), set(futures)
        return set(done), set(pending)

    threads = sum(client.nthreads().values()) or 1
    # a configured cluster is named, not located: its address is the operator's, not for the pages
    where = f"cluster {cluster}: Dask distributed" if cluster else \
        f"Dask distributed at {getattr(client.scheduler, 'address', '?')}"
    return _Runner(
        submit=lambda fn, *args: client.submit(fn, *args, pure=False),
        wait=wait,
        close=client.close if owned else (lambda: None),
        in_flight=2 * threads,
        label=f"{where} ({len(client.nthreads())} workers, {threads} threads)",
    )


def _runner(where: _Where) -> _Runner:
    """Turn the resolved scheduler into something that submits, waits and closes."""
    scheduler = where.value
    if scheduler is None or scheduler == "threads":
        n = _local_workers()
        pool = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="fumarole-timeseries")
        return _Runner(pool.submit, _cf_wait, lambda: pool.shutdown(cancel_futures=True), 2 * n,
                       where.label(f"threads ({n})"))
    if scheduler == "sync":
        return _Runner(_SyncExecutor().submit, _cf_wait, lambda: None, 1, where.label("sync (one thread)"))
    if scheduler == "processes":
        import multiprocessing

        n = _local_workers()
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
        return _Runner(pool.submit, _cf_wait, lambda: pool.shutdown(cancel_futures=True), 2 * n,
                       where.label(f"processes ({n})"))
    if isinstance(scheduler, str):
        return _distributed_runner(_connect(scheduler, where.cluster), owned=True, cluster=where.cluster)
    if _is_distributed_client(scheduler):
        return _distributed_runner(scheduler, owned=False)
    return _Runner(scheduler.submit, _cf_wait, lambda: None, 8, type(scheduler).__name__)


_LOCAL_SCHEDULERS = ("threads", "processes", "sync")
_ADDRESS = re.compile(r"^[a-z+]+://\S+$|^[\w.\-]+:\d+$")


@dataclass(frozen=True)
class _Where:
    """Where the tasks run: a scheduler value (see :func:`compute_mass_timeseries`) and the cluster it is named by."""

    value: Any
    cluster: str | None = None

    def label(self, what: str) -> str:
        return f"cluster {self.cluster}: {what}" if self.cluster and self.cluster != "local" else what


def cluster_names() -> list[str]:
    """The names of the clusters the operator configured (``app.core.settings.clusters``), ``local`` first."""
    from app.core.settings import LOCAL, SettingsError, clusters

    try:
        names = list(clusters())
    except SettingsError as exc:
        raise UserInputError(str(exc)) from None
    return [LOCAL, *sorted(n for n in names if n != LOCAL)]


def _cluster(name: Any) -> _Where:
    """The configured cluster ``name``: its address looked up in the operator's settings, never given by a caller."""
    from app.core.settings import SettingsError, cluster_address

    if not isinstance(name, str):
        raise UserInputError(f"a cluster is given by its name (one of {', '.join(cluster_names())}); got {name!r}")
    try:
        address = cluster_address(name.strip())
    except SettingsError as exc:
        raise UserInputError(str(exc)) from None
    address = address.strip()
    if address not in _LOCAL_SCHEDULERS and not _ADDRESS.match(address):
        raise UserInputError(f"the configured cluster {name.strip()!r} has the address {address!r}, which is "
                             "not a Dask scheduler address (tcp://host:8786): fix the operator's settings")
    return _Where(address, name.strip())


def _resolve_scheduler(scheduler: Any, cluster: Any) -> _Where:
    """Check the ``scheduler``/``cluster`` arguments now (before any work) and say where the tasks will run."""
    if cluster is not None:
        if scheduler is not None:
            raise UserInputError("give either cluster= (the name of a configured cluster) or scheduler=, not both")
        return _cluster(cluster)
    if scheduler is None or isinstance(scheduler, cf.Executor) or _is_distributed_client(scheduler):
        return _Where(scheduler)
    if not isinstance(scheduler, str):
        raise UserInputError(
            f"unknown scheduler {scheduler!r}: give a Dask scheduler address (tcp://host:8786), a "
            "distributed.Client, 'threads' (the default), 'processes' or 'sync'"
        )
    text = scheduler.strip()
    if text in _LOCAL_SCHEDULERS or _ADDRESS.match(text):
        return _Where(text)
    names = cluster_names()
    if text in names:
        return _cluster(text)
    raise UserInputError(
        f"the scheduler {scheduler!r} is neither a Dask scheduler address (e.g. tcp://127.0.0.1:8786), one of "
        f"{', '.join(map(repr, _LOCAL_SCHEDULERS))}, nor a configured cluster ({', '.join(names)})"
    )


def check_scheduler(scheduler: Any = None, cluster: str | None = None) -> str:
    """Check the ``scheduler``/``cluster`` of :func:`compute_mass_timeseries` now, before any work; say where it runs.

    Raises a UserInputError for a scheduler that cannot be one, or a cluster that is not configured. Connects to
    nothing.
    """
    return _describe_scheduler(_resolve_scheduler(scheduler, cluster))


def _probe(address: str, timeout: float) -> None:
    """Raise OSError/TimeoutError unless a Dask endpoint at ``address`` completes the handshake within ``timeout``.

    ``distributed.Client(timeout=...)`` bounds the TCP connection, not the handshake read that follows: a port
    that accepts and never answers would hang the run. The probe runs in a thread of its own (the caller may be
    inside an event loop).
    """
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    with cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fumarole-dask-probe") as pool:
        pool.submit(asyncio.run, handshake()).result()


def _connect(address: str, cluster: str | None = None) -> Any:
    text = address.strip()
    shown = f"cluster {cluster!r}" if cluster else f"the Dask scheduler at {text}"
    import distributed

    timeout = float(CONNECT_TIMEOUT_S)
    try:
        _probe(text, timeout)
        return distributed.Client(text, timeout=f"{timeout}s", set_as_default=False)
    except TimeoutError as exc:  # asyncio's too (one class since Python 3.11); caught before OSError, its base
        raise UserInputError(f"{shown} did not answer as a Dask scheduler within {timeout:g} s "
                             f"({_exception_text(exc)})") from None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"cannot connect to {shown}: {_exception_text(exc)}") from None


def _describe_scheduler(scheduler: Any) -> str:
    where = scheduler if isinstance(scheduler, _Where) else _Where(scheduler)
    value = where.value
    if value is None:
        return where.label(f"threads ({_local_workers()})")
    if isinstance(value, str):
        return where.label(value) if not where.cluster or value in _LOCAL_SCHEDULERS else where.label("Dask")
    if _is_distributed_client(value):
        return f"Dask distributed at {getattr(value.scheduler, 'address', '?')}"
    return type(value).__name__


# --- the engine ---------------------------------------------------------------------------------------------


def _index_root(index: Any) -> str | None:
    """The archive root of an index given as it is: its own, else the common folder of its products' roots."""
    root = getattr(index, "root", None)
    if root:
        return os.fspath(root)
    roots = [os.fspath(s.root_url) for s in getattr(index, "sources", []) or [] if getattr(s, "root_url", None)]
    if not roots:
        return None
    if any(_is_url(r) for r in roots):
        return roots[0]
    return os.path.commonpath([os.path.abspath(r) for r in roots])


def _open_index(catalog_or_index: Any) -> tuple[Any, str | None, list[tuple[str, str]]]:
    """The granule index, the archive root (for the default cache and names) and the files the index skipped."""
    from app.data.index import GranuleIndex, open_index

    if isinstance(catalog_or_index, GranuleIndex):
        index = catalog_or_index
        root = _index_root(index)
    else:
        from app.data import catalog as catalogs

        cat = catalog_or_index
        if cat is None or isinstance(cat, str | os.PathLike):
            cat = catalogs.open_catalog(cat)
        index = open_index(cat, products=[PRODUCT])
        root = catalogs.archive_root(cat)
    skipped = list(index.last_report.skipped) if index.last_report is not None else []
    return index, root, skipped


def _granule_period(path: str) -> tuple[pd.Timestamp, pd.Timestamp] | None | str:
    """Start and end from a TROPOMI file name, None when the name is not one, or a reason (text).

    The reason is returned when the name has the shape of a TROPOMI name but its fields do not parse (a month 13).
    """
    from app.data.filenames import PATTERNS

    pattern = PATTERNS.get(PRODUCT)
    if pattern is None or not pattern.matches(str(path).rstrip("/").rsplit("/", 1)[-1].rsplit(os.sep, 1)[-1]):
        return None
    try:
        fields = pattern.parse(path)
        return pd.Timestamp(fields["start"]), pd.Timestamp(fields["end"])
    except (GranuleError, ValueError, KeyError, TypeError, OverflowError) as exc:
        return exc.problem if isinstance(exc, GranuleError) else f"its file name does not parse ({exc})"


def _unreadable_in_period(skipped: list[tuple[str, str]], t0: pd.Timestamp, t1: pd.Timestamp) -> list[tuple[str, str]]:
    """The TROPOMI files the index skipped that may hold an orbit of the period.

    Those whose file name gives a period overlapping this one, and those whose name has a TROPOMI shape but does
    not parse (a month 13): their period is unknown, so they are named as skipped rather than silently left out.
    """
    out = []
    for path, reason in skipped:
        span = _granule_period(path)
        if isinstance(span, str) or (span is not None and span[1] > t0 and span[0] < t1):
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
    """Path, size and version of a granule, from the file itself (the index may be older).

    :func:`app.data.storage.stamp` gives the ETag or the modification time; when the file cannot be examined now,
    the index row's are used (the read then reports why).
    """
    path = str(row["path"])
    try:
        _, version, size = storage.stamp(path)
        return {"path": path, "size": size, "version": version}
    except GranuleError:
        return {"path": path, "size": int(row["size"]), "version": f"index mtime {float(row['mtime'])!r}"}


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
        # the URL and its storage options, not a local path: a worker without the archive's file system (a Dask
        # worker on another machine) opens the granule itself from object storage
        return (path, self.variable, v.latitude, v.longitude, self.radii, self.filters,
                storage.registered_options(path))


def _take(result: Mapping[str, Any], path: str, q: _Question, report: TimeseriesReport,
          records: list[dict[str, Any]]) -> None:
    """Add one granule's result to the records and the report."""
    if "error" in result:
        report.corrupt.append((path, result["error"]))
        return
    if "unavailable" in result:
        report.unavailable.append((path, result["unavailable"]))
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


def _task_result(future: Any) -> dict[str, Any]:
    """A finished task's result, or the reason its granule is skipped.

    A task that failed where it ran (a Dask worker that died, a result that could not be sent back, a task
    cancelled by the scheduler) is a skipped granule with that reason, like a bad file.
    """
    try:
        return future.result()
    except (Exception, cf.CancelledError) as exc:  # noqa: BLE001 - one granule's failure never stops the period
        logger.warning("time series: a granule's task failed", exc_info=True)
        return {"error": f"its task failed ({_exception_text(exc)})"}


def _run_tasks(todo: list[tuple[dict[str, Any], dict[str, Any]]], q: _Question, where: _Where,
               cache: TimeseriesCache | None, report: TimeseriesReport, records: list[dict[str, Any]],
               tick: Callable[[], None], cancel: threading.Event | None) -> None:
    """Submit one task per granule (a bounded number in flight), collect results, cache them as they come."""
    runner = _runner(where)
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
                result = _task_result(future)
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
    cluster: str | None = None,
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
        :class:`app.science.filters.Filters` (or a mapping of its fields); None for the one default of every
        entry point, :data:`app.science.filters.DEFAULT_FILTERS` (QA > 0.5, SZA <= 80°).
    scheduler
        For trusted callers only (the CLI's ``--scheduler``, notebooks, tests): None or ``"threads"``: a local
        thread pool; ``"processes"``; ``"sync"``; a Dask scheduler address (``"tcp://127.0.0.1:8786"``) or a
        ``distributed.Client``: one task per granule on that cluster; or the name of a cluster the operator
        configured (as ``cluster``). The engine connects to an address it is given, and a Dask client unpickles
        what its scheduler sends: never pass an address that came from a web page.
    cluster
        The name of a cluster configured by the operator (:func:`cluster_names`, ``app.core.settings``):
        ``"local"`` (this process's threads) or a name whose address only the settings know. What dashboards
        pass; an unknown name is a UserInputError. Give ``cluster`` or ``scheduler``, not both.
    cache_dir
        The folder of the cache; None for :func:`default_cache_dir` (in the per-user state folder, never in the
        archive), False for no cache.
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
        ``coverage`` (fraction of the disk covered by valid pixels) and ``granule`` (file name). Granules that
        could not be read or used are not in the table: ``report.skipped_granules()`` names them with the reason.

    Raises
    ------
    UserInputError
        Unknown volcano (with the closest names), end before start, a time outside 1900-2199, no radius or a
        radius <= 0 or > 5,000 km, an unknown variable, an unknown scheduler or cluster, a Dask scheduler that
        does not answer within :data:`CONNECT_TIMEOUT_S`, or no granule of the period that reaches the largest
        disk.

    """
    t_start = time.perf_counter()
    where = _resolve_scheduler(scheduler, cluster)
    q = _Question(resolve_volcano(volcano), *parse_period(start, end), check_radii(radii_km),
                  check_variable(variable), Filters.default() if filters is None else Filters.coerce(filters))
    index, root, index_skipped = _open_index(catalog_or_index)
    cache = None
    if cache_dir is not False:
        cache = TimeseriesCache(cache_dir if cache_dir not in (None, True) else default_cache_dir(root))
    report = TimeseriesReport(q.volcano, q.t0, q.t1, q.radii, q.variable, q.filters,
                              scheduler=_describe_scheduler(where),
                              cache_dir=str(cache.folder) if cache else None, archive_root=root)
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
    report.cache_rejected = cache.rejected if cache else 0
    if hits:
        tick(hits)
    if todo and not (cancel is not None and cancel.is_set()):
        _run_tasks(todo, q, where, cache, report, records, tick, cancel)
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
        shown = "; ".join(f"{name}: {why}" for name, why in report.skipped_granules()[:3])
        more = f" and {len(report.corrupt) - 3} more" if len(report.corrupt) > 3 else ""
        message += f" that could be read ({len(report.corrupt)} could not: {shown}{more})"
    elif report.n_in_period == 0:
        message += " (the archive has no TROPOMI granule in that period)"
    error = UserInputError(message)
    error.report = report  # type: ignore[attr-defined]
    return error


# --- flux -----------------------------------------------------------------------------------------------------


def load_wind_csv(path: str | os.PathLike) -> pd.Series:
    """A wind-speed series from a CSV with the columns ``time`` (UTC) and ``speed_ms`` or ``wind_ms`` (m/s).

    Returns a Series named ``wind_ms`` indexed by time (sorted), to interpolate at each orbit's time. Raises
    UserInputError naming the file and the line at fault. A CSV with heights (``height_km``) is read by
    :class:`app.data.wind.CsvWind`, which takes the speed at the plume height.
    """
    from app.data.wind import load_wind_csv_table

    table = load_wind_csv_table(path)
    if "height_km" in table.columns:
        raise UserInputError(f"the wind file {path} has heights (height_km): give it as a wind source "
                             "(app.data.wind.CsvWind) with the plume height")
    return pd.Series(table["speed_ms"].to_numpy(float), index=pd.DatetimeIndex(table["time"], name="time"),
                     name="wind_ms")


def check_wind_speed(wind: Any, what: str = "the wind speed") -> float:
    """A constant wind speed (m/s) as a finite float > 0, or a UserInputError naming ``what`` and the value."""
    from app.data.wind import check_speed

    return check_speed(wind, what)


def _wind_input(wind: Any) -> Any:
    if isinstance(wind, str | os.PathLike):
        return load_wind_csv(wind)
    if isinstance(wind, pd.Series | Mapping) or callable(wind):
        return wind
    try:
        float(wind)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(
            f"the wind must be a wind source (app.data.wind), a speed in m/s, a time series or a CSV file "
            f"(time, speed_ms); got {wind!r}"
        ) from None
    return check_wind_speed(wind)


def _volcano_position(volcano: Any) -> tuple[float, float]:
    if volcano is None:
        raise UserInputError("a gridded wind (ERA5) is taken at the volcano: give the volcano of the time series")
    if isinstance(volcano, tuple | list) and len(volcano) == 2:
        return float(volcano[0]), float(volcano[1])
    v = resolve_volcano(volcano)
    return v.latitude, v.longitude


def compute_flux_timeseries(
    mass_table: pd.DataFrame,
    wind: Any,
    *,
    plume_height_km: float | None = None,
    volcano: Any = None,
    why_no_wind: str | None = None,
    wind_err_ms: Any = None,
    min_coverage: float = 0.5,
    max_radius_km: float | None = None,
    error_model: str = "cumulative",
) -> pd.DataFrame:
    """SO2 flux (t/day) per orbit by the disk method, from the table of :func:`compute_mass_timeseries`.

    ``wind`` is the wind at plume height: a wind source (:mod:`app.data.wind`: a constant, a CSV or an ERA5 file,
    e.g. the catalogue's, :func:`app.data.wind.wind_from_catalog`) taken at ``plume_height_km`` over ``volcano``
    (a name, a VolcanoRef or (lat, lon)) at each orbit's time; a number (m/s); a Series by time (interpolated
    at each orbit's time) or by orbit; a function of time; the path of a CSV (time, speed_ms); or None, when
    there is no wind at all: every orbit then has no flux and its ``reason`` says why (``why_no_wind``, else a
    sentence saying what to give). The other arguments and
    the columns are those of :func:`app.science.flux.flux_from_mass_table`.
    """
    from app.data.wind import DEFAULT_PLUME_HEIGHT_KM, WindSource, no_wind_reason

    source = wind if isinstance(wind, WindSource) else None
    if wind is None:
        value: Any = lambda _t: float("nan")  # noqa: E731
    elif source is not None:
        height = DEFAULT_PLUME_HEIGHT_KM if plume_height_km is None else float(plume_height_km)
        lat, lon = _volcano_position(volcano) if source.kind == "era5" else (float("nan"), float("nan"))
        value = source.at(height, lat, lon, mass_table["time"].dropna().unique() if len(mass_table) else [])
    else:
        value = _wind_input(wind)
    flux = flux_from_mass_table(
        mass_table,
        value,
        wind_err_ms=wind_err_ms,
        min_coverage=min_coverage,
        max_radius_km=max_radius_km,
        error_model=error_model,
    )
    no_wind = flux["reason"].astype(str).str.startswith("no usable wind") & flux["wind_ms"].astype(float).isna()
    if len(flux) and no_wind.any():
        if wind is None:
            flux.loc[no_wind, "reason"] = f"no wind: {why_no_wind or no_wind_reason()}"
        elif source is not None:
            flux.loc[no_wind, "reason"] = [f"no wind: {source.missing_reason(t)}" for t in flux.loc[no_wind, "time"]]
    return flux


# --- CSV with provenance -------------------------------------------------------------------------------------

_FILTER_FIELDS = ("qa_min", "sza_max", "edge_pixels", "min_du")


def _header_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    return " ".join(str(value).split())  # one line


def check_csv_output(path: str | os.PathLike, what: str = "the output") -> Path:
    """The CSV file to write, checked before any work: its folder exists and a file can be made in it.

    Raises a UserInputError naming ``what`` (e.g. ``-o``) and the path when the path is a folder, its folder is
    missing or not a folder, or nothing can be written there (a probe file is made and removed at once).
    """
    import tempfile

    out = Path(path)
    if not str(path).strip():
        raise UserInputError(f"{what} needs the path of the CSV file to write")
    if out.is_dir():
        raise UserInputError(f"{what} {path} is a folder; give the path of the CSV file to write")
    folder = out.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() or _under_a_file(folder) else "does not exist"
        raise UserInputError(f"{what} {path}: the folder {folder} {state}; make it first or choose another")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".fumarole-probe-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise UserInputError(f"{what} {path}: nothing can be written in {folder} ({exc.strerror or exc})") from None
    if out.exists() and not os.access(out, os.W_OK):
        raise UserInputError(f"{what} {path} exists and cannot be overwritten")
    return out


def _under_a_file(folder: Path) -> bool:
    return any(parent.is_file() for parent in (folder, *folder.parents))


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
    skipped: Iterable[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a mass (or flux) table as CSV after ``# key: value`` lines that record how it was made.

    The header records the volcano (name, GVP number, latitude, longitude), the period (UTC, end excluded), the
    variable, every filter, the radii, the code version (:func:`code_version`), the number of granules used, the
    scheduler, the creation time, the granules skipped because they could not be read or used (``skipped``:
    (name, reason) pairs, as ``TimeseriesReport.skipped_granules()`` gives them, names relative to the archive
    root: ``n_skipped_granules`` then one ``skipped_granule_<i>: <name>: <reason>`` line each), and any ``extra``
    items (e.g. the wind of a flux table). A table without the orbits of skipped granules thus says so.
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
        **_skipped_header(skipped),
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


def _skipped_header(skipped: Iterable[tuple[str, str]]) -> dict[str, str]:
    items = [(str(name), str(reason)) for name, reason in skipped]
    out = {"n_skipped_granules": str(len(items))}
    for i, (name, reason) in enumerate(items, start=1):
        out[f"skipped_granule_{i}"] = f"{name}: {reason}"
    return out


def skipped_from_header(header: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (name, reason) of each granule skipped, as a CSV header of :func:`write_timeseries_csv` lists them."""
    n = int(header.get("n_skipped_granules", "0") or 0)
    out = []
    for i in range(1, n + 1):
        text = header.get(f"skipped_granule_{i}")
        if text is None:
            raise UserInputError(f"the time-series header says {n} granules were skipped but lacks number {i}")
        name, _, reason = text.partition(": ")
        out.append((name, reason))
    return out


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

