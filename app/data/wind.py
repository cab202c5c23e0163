"""Wind at plume height for the disk-method flux: a constant, a CSV, or an ERA5-layout netCDF, one interface.

A wind source is an entry of the catalogue (``entries: wind``, read by :func:`app.data.catalog.wind_spec`), or a
value the user gives (a constant speed, an uploaded CSV). Three kinds, one interface (:class:`WindSource`):

``constant``
    A speed in m/s (and, for information, the direction it blows from, degrees), the same at every time and height.
``csv``
    A table ``time, speed_ms[, direction_deg][, height_km]`` (UTC times; ``wind_ms`` is taken for ``speed_ms``;
    ``#`` lines are comments). Without ``height_km`` the speed is the one at plume height. With it, each time has a
    profile, interpolated linearly in height at the plume height (a height outside the profile takes its nearest
    end). Between times the speed is interpolated linearly; outside the table's times there is no wind.
``era5``
    A netCDF file laid out as the Copernicus Climate Data Store delivers ERA5 on pressure levels: ``u`` and ``v``
    (m s-1) on ``(time, level, latitude, longitude)``, with the names of either CDS generation -- ``valid_time`` and
    ``pressure_level`` (the CDS since September 2024: netCDF-4, float32, time in seconds since 1970) or ``time`` and
    ``level`` (the legacy CDS: netCDF-3, packed int16 with ``scale_factor``/``add_offset``, hours since 1900);
    latitude descending (north first) or ascending, longitudes 0..360 or -180..180; other dimensions of length 1
    (``number``, ``expver``) are dropped. The wind is taken

    * at the plume height: the height is turned into a pressure with the standard atmosphere
      (:func:`pressure_hpa_at`; the plume height counts as geopotential height above sea level), and ``u`` and
      ``v`` are interpolated linearly in ln(p) between the two levels around it (the nearest level beyond the
      file's levels);
    * at the volcano: bilinear in latitude and longitude between the four grid points around it (across the
      0°/360° seam of a global grid); a volcano outside the grid is an error naming the file and the grid;
    * at each orbit's time: linear between the two times around it; within :data:`TIME_TOLERANCE` of the first or
      last time the end value; farther, no wind (the orbit's flux says so).

    The speed is the length of the interpolated (u, v).

The standard atmosphere is the ICAO / US Standard Atmosphere 1976 below 32 km (geopotential height z):

* 0-11 km: T = 288.15 K - 6.5 K/km · z, p = 1013.25 hPa · (T / 288.15 K)^(g0 M / (R* L)), exponent 5.255877;
* 11-20 km: isothermal 216.65 K, p = 226.3206 hPa · exp(-(z - 11 km) / H), H = R T / g0 = 6.341620 km;
* 20-32 km: T = 216.65 K + 1 K/km · (z - 20 km), p = 54.74887 hPa · (216.65 K / T)^(g0 M / (R* · 1 K/km)),
  exponent 34.16319.

No wind at all (no catalogue entry, no value given) is not an error of the mass time series: the flux has no
value and says why (:func:`no_wind_reason`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.core.locks import HDF_LOCK
from app.data import storage
from app.data.errors import GranuleError, UserInputError

__all__ = [
    "DEFAULT_PLUME_HEIGHT_KM",
    "KINDS",
    "PLUME_HEIGHT_KM",
    "TIME_TOLERANCE",
    "ConstantWind",
    "CsvWind",
    "Era5Wind",
    "WindError",
    "WindSource",
    "height_km_at",
    "load_wind_csv_table",
    "no_wind_reason",
    "open_wind",
    "pressure_hpa_at",
    "wind_from_catalog",
]

#: The kinds of wind source a catalogue entry may declare (``metadata.wind_source``).
KINDS = ("constant", "csv", "era5")
#: The plume height (km) each box-profile column assumes: the default height the wind is taken at.
PLUME_HEIGHT_KM = {"so2_pbl": 0.5, "so2_1km": 1.0, "so2_3km": 3.0, "so2_7km": 7.0, "so2_15km": 15.0}
DEFAULT_PLUME_HEIGHT_KM = 7.0
#: How far before the first or after the last time of a gridded wind the end value is still used.
TIME_TOLERANCE = pd.Timedelta(hours=3)

# --- the standard atmosphere (ICAO / US 1976), geopotential height ---------------------------------------------

_G0 = 9.80665  # m s-2
_R_AIR = 287.0528  # J kg-1 K-1 (R* / M)
_P0, _T0, _L0 = 1013.25, 288.15, 0.0065  # hPa, K, K/m
_EXP0 = _G0 / (_R_AIR * _L0)  # 5.255877
_Z11, _T11 = 11000.0, 216.65
_P11 = _P0 * (_T11 / _T0) ** _EXP0  # 226.3206 hPa
_H11 = _R_AIR * _T11 / _G0  # 6341.62 m
_Z20 = 20000.0
_P20 = _P11 * math.exp(-(_Z20 - _Z11) / _H11)  # 54.74887 hPa
_L20 = 0.001  # K/m
_EXP20 = _G0 / (_R_AIR * _L20)  # 34.16319
_Z32 = 32000.0


def pressure_hpa_at(height_km: Any) -> np.ndarray | float:
    """Pressure (hPa) of the standard atmosphere at a geopotential height (km), 0-32 km (see the module's text).

    Heights below 0 use the 0-11 km formula; above 32 km give NaN.
    """
    z = np.asarray(height_km, dtype=float) * 1000.0
    low = _P0 * np.power(np.maximum(_T0 - _L0 * np.minimum(z, _Z11), 1.0) / _T0, _EXP0)
    mid = _P11 * np.exp(-(np.clip(z, _Z11, _Z20) - _Z11) / _H11)
    high = _P20 * np.power(_T11 / (_T11 + _L20 * (np.clip(z, _Z20, _Z32) - _Z20)), _EXP20)
    p = np.where(z <= _Z11, low, np.where(z <= _Z20, mid, high))
    p = np.where(z > _Z32, np.nan, p)
    return float(p) if np.ndim(p) == 0 else p


def height_km_at(pressure_hpa: Any) -> np.ndarray | float:
    """Geopotential height (km) of a pressure (hPa) in the standard atmosphere: the inverse of :func:`pressure_hpa_at`.

    Pressures above 1013.25 hPa give heights below 0; below the 32 km pressure (8.68 hPa), NaN.
    """
    p = np.asarray(pressure_hpa, dtype=float)
    low = (_T0 - _T0 * np.power(np.maximum(p, 1e-9) / _P0, 1.0 / _EXP0)) / _L0
    mid = _Z11 + _H11 * np.log(_P11 / np.maximum(p, 1e-9))
    high = _Z20 + (_T11 / _L20) * (np.power(_P20 / np.maximum(p, 1e-9), 1.0 / _EXP20) - 1.0)
    z = np.where(p >= _P11, low, np.where(p >= _P20, mid, high))
    z = np.where((z > _Z32) | ~(p > 0), np.nan, z) / 1000.0
    return float(z) if np.ndim(z) == 0 else z


# --- the interface ---------------------------------------------------------------------------------------------


class WindError(UserInputError):
    """A wind source that cannot be used: names the source (a file relative to the archive, a value) and why."""


def no_wind_reason(catalog_name: str | None = None) -> str:
    """Why a flux has no wind when no source is given: one sentence saying what to do."""
    where = f"the catalogue {catalog_name} has no wind entry" if catalog_name else "no wind source was given"
    return (f"{where}: give a constant speed or a wind CSV (time, speed_ms), or add a wind entry (constant, csv or "
            "era5) to the catalogue")


@dataclass
class WindSource:
    """A wind at plume height for the flux; subclasses say where it comes from.

    ``name`` is how users see the source (a file relative to the archive root, or ``constant``).
    """

    name: str

    kind = "?"

    def speed_ms(self, times: Iterable[Any], height_km: float, lat: float, lon: float) -> np.ndarray:
        """Wind speed (m/s) at ``height_km`` over (lat, lon) at each time; NaN where the source has no wind."""
        raise NotImplementedError

    def missing_reason(self, time: Any) -> str:
        """Why the source has no wind at ``time`` (a sentence for the flux table)."""
        return f"the wind {self.name} has no value at {_t(time)}"

    def describe(self, height_km: float, lat: float, lon: float) -> str:
        """The wind used, as the flux CSV's ``wind`` header line records it."""
        raise NotImplementedError

    def at(self, height_km: float, lat: float, lon: float, times: Iterable[Any]) -> Callable[[Any], float]:
        """A function of time giving the speed at the given times (for ``app.science.flux``), computed once."""
        index = _as_index(times)
        speeds = self.speed_ms(index, height_km, lat, lon) if len(index) else np.array([])
        table = {int(t.value): float(s) for t, s in zip(index, speeds, strict=True) if not pd.isna(t)}

        def speed(time: Any) -> float:
            if pd.isna(time):
                return float("nan")
            return table.get(int(pd.Timestamp(time).as_unit("ns").value), float("nan"))

        return speed


def _as_index(times: Iterable[Any]) -> pd.DatetimeIndex:
    """Times (strings, datetimes, numpy or pandas) as a naive UTC DatetimeIndex in ns."""
    stamps = []
    for t in times:
        stamp = pd.Timestamp(t)
        if not pd.isna(stamp) and stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        stamps.append(stamp)
    return pd.DatetimeIndex(stamps, dtype="datetime64[ns]")


def _t(time: Any) -> str:
    t = pd.Timestamp(time)
    return "an unknown time" if pd.isna(t) else f"{t:%Y-%m-%d %H:%M} UTC"


def check_speed(value: Any, what: str = "the wind speed") -> float:
    """A wind speed (m/s) as a finite float > 0, or a :class:`WindError` naming ``what`` and the value."""
    try:
        speed = float(value)
    except (TypeError, ValueError, OverflowError):
        raise WindError(f"{what} must be a number of m/s; got {value!r}") from None
    if not (math.isfinite(speed) and speed > 0):
        raise WindError(f"{what} must be more than 0 m/s; got {value!r}")
    return speed


@dataclass
class ConstantWind(WindSource):
    """The same speed (m/s) at every time and height; ``direction_deg`` (blowing from, clockwise from north)."""

    speed: float = 0.0
    direction_deg: float | None = None
    kind = "constant"

    def __post_init__(self) -> None:
        """Check the speed and the direction."""
        self.speed = check_speed(self.speed, f"the wind speed of {self.name}")
        if self.direction_deg is not None:
            try:
                direction = float(self.direction_deg)
            except (TypeError, ValueError):
                direction = float("nan")
            if not (math.isfinite(direction) and 0.0 <= direction <= 360.0):
                raise WindError(f"the wind direction of {self.name} must be 0-360 degrees; got {self.direction_deg!r}")
            self.direction_deg = direction

    def speed_ms(self, times, height_km, lat, lon) -> np.ndarray:
        """The constant speed at every time."""
        return np.full(len(_as_index(times)), self.speed)

    def describe(self, height_km, lat, lon) -> str:
        """E.g. ``8 m/s (constant)`` or ``8 m/s from 270° (constant)``."""
        direction = f" from {self.direction_deg:g}°" if self.direction_deg is not None else ""
        source = "" if self.name == "constant" else f", {self.name}"
        return f"{self.speed:g} m/s{direction} (constant{source})"


# --- CSV -------------------------------------------------------------------------------------------------------


_CSV_CHECKS = {"speed_ms": (0.0, math.inf, "a speed >= 0 in m/s"), "direction_deg": (0.0, 360.0, "a direction 0-360°"),
               "height_km": (-1.0, 32.0, "a height of -1 to 32 km")}


def _check_csv_row(out: pd.DataFrame, raw: pd.DataFrame, i: int, shown: str, names: dict[str, str]) -> None:
    row = i + 2  # the header is row 1 (comment lines aside)
    if pd.isna(out["time"].iat[i]):
        raise WindError(f"the wind file {shown}, row {row}: time {raw['time'].iat[i]!r} is not a time")
    for column, (lo, hi, what) in _CSV_CHECKS.items():
        if column in out.columns and not lo <= out[column].iat[i] <= hi:  # NaN fails too
            name = names[column]
            raise WindError(f"the wind file {shown}, row {row}: {name} {raw[name].iat[i]!r} is not {what}")


def load_wind_csv_table(path: str | os.PathLike, name: str | None = None) -> pd.DataFrame:
    """The rows of a wind CSV: ``time`` (naive UTC), ``speed_ms``, and ``direction_deg``/``height_km`` if present.

    ``wind_ms`` is accepted for ``speed_ms``. Raises WindError naming the file (``name``, else its path) and the row.
    """
    path = Path(path)
    shown = name or str(path)
    if not path.is_file():
        raise WindError(f"the wind file {shown} does not exist")
    try:
        raw = pd.read_csv(path, comment="#", skipinitialspace=True, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WindError(f"the wind file {shown} is not a CSV table: {' '.join(str(exc).split())}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    speed = "speed_ms" if "speed_ms" in raw.columns or "wind_ms" not in raw.columns else "wind_ms"
    missing = [c for c in ("time", speed) if c not in raw.columns]
    if missing:
        raise WindError(f"the wind file {shown} needs the columns time and speed_ms (or wind_ms); it lacks "
                        f"{', '.join(missing)} (it has {', '.join(raw.columns) or 'no columns'})")
    if raw.empty:
        raise WindError(f"the wind file {shown} has no rows")
    out = pd.DataFrame({"time": pd.to_datetime(raw["time"], errors="coerce", utc=True)})
    names = {"speed_ms": speed, "direction_deg": "direction_deg", "height_km": "height_km"}  # ours: the file's
    for column, name in names.items():
        if name in raw.columns:
            out[column] = pd.to_numeric(raw[name], errors="coerce")
    for i in range(len(raw)):
        _check_csv_row(out, raw, i, shown, names)
    out["time"] = out["time"].dt.tz_localize(None).astype("datetime64[ns]")
    keys = ["time", "height_km"] if "height_km" in out.columns else ["time"]
    dup = out.duplicated(keys)
    if dup.any():
        first = out.loc[dup.idxmax()]
        at = f" at {first['height_km']:g} km" if "height_km" in out.columns else ""
        raise WindError(f"the wind file {shown} gives the time {first['time']}{at} twice")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


@dataclass
class CsvWind(WindSource):
    """A wind table by time (and height): see the module's text."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    kind = "csv"

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None) -> CsvWind:
        """Read a wind CSV (:func:`load_wind_csv_table`); ``name`` is how users see it."""
        return cls(name or Path(path).name, load_wind_csv_table(path, name or Path(path).name))

    def _series(self, height_km: float) -> pd.Series:
        """Speed by time at ``height_km`` (profiles interpolated in height, clamped at their ends)."""
        table = self.table
        if "height_km" not in table.columns:
            return pd.Series(table["speed_ms"].to_numpy(float), index=pd.DatetimeIndex(table["time"]))
        speeds = {t: float(np.interp(height_km, rows["height_km"].to_numpy(float), rows["speed_ms"].to_numpy(float)))
                  for t, rows in table.groupby("time", sort=True)}
        return pd.Series(speeds, dtype=float).rename_axis("time")

    def speed_ms(self, times, height_km, lat, lon) -> np.ndarray:
        """Linear in time between the table's times (in height first when it has heights); NaN outside."""
        series = self._series(height_km)
        t = _as_index(times).asi8.astype(float)
        known = pd.DatetimeIndex(series.index).as_unit("ns").asi8.astype(float)
        out = np.interp(t, known, series.to_numpy(float))
        return np.where((t >= known[0]) & (t <= known[-1]), out, np.nan)

    def missing_reason(self, time) -> str:
        """The table's span, when ``time`` lies outside it."""
        t0, t1 = self.table["time"].min(), self.table["time"].max()
        return f"the wind file {self.name} covers {_t(t0)} to {_t(t1)}, not {_t(time)}"

    def describe(self, height_km, lat, lon) -> str:
        """E.g. ``time series from wind.csv`` (at 7 km when it has heights)."""
        at = f" at {height_km:g} km" if "height_km" in self.table.columns else ""
        return f"time series from {self.name}{at}"


# --- ERA5 on pressure levels -----------------------------------------------------------------------------------

_TIME_NAMES = ("valid_time", "time")
_LEVEL_NAMES = ("pressure_level", "level", "isobaricInhPa", "plev")
_LAT_NAMES = ("latitude", "lat")
_LON_NAMES = ("longitude", "lon")


def _first(names: Iterable[str], present: Iterable[str]) -> str | None:
    present = set(present)
    return next((n for n in names if n in present), None)


def _read_times(var: Any) -> pd.DatetimeIndex:
    import netCDF4

    units = getattr(var, "units", None)
    if not units:
        raise ValueError(f"its time variable {var.name} has no units")
    values = np.ma.filled(np.ma.asarray(var[:], dtype=np.float64), np.nan)
    dates = netCDF4.num2date(values, units, getattr(var, "calendar", "standard"),
                             only_use_cftime_datetimes=False, only_use_python_datetimes=True)
    return pd.DatetimeIndex(pd.to_datetime(np.ravel(dates))).as_unit("ns")


def _coordinate(nc: Any, name: str, what: str) -> np.ndarray:
    """A 1-D coordinate: present, finite, not empty, strictly monotonic; else a ValueError saying which."""
    if name not in nc.variables:
        raise ValueError(f"it has no coordinate variable {name}")
    values = np.ma.filled(np.ma.asarray(nc.variables[name][:], dtype=float), np.nan).ravel()
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"its {what} coordinate {name} has missing values or is empty")
    steps = np.diff(values)
    if len(values) > 1 and not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(f"its {what} coordinate {name} is not monotonic")
    return values


@dataclass
class _Grid:
    times: pd.DatetimeIndex
    levels_hpa: np.ndarray  # as in the file
    lats: np.ndarray
    lons: np.ndarray
    dims: tuple[str, ...]  # of u, in the file's order
    time_dim: str
    level_dim: str | None
    lat_dim: str
    lon_dim: str


@dataclass
class Era5Wind(WindSource):
    """u and v on pressure levels from an ERA5-layout netCDF file (either CDS generation): see the module's text."""

    path: str = ""
    kind = "era5"
    _grid: _Grid | None = field(default=None, repr=False)
    _profiles: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Read the coordinates now: a file that is not an ERA5 layout is an error at once, naming it."""
        self._grid = self._read_grid()

    def _problem(self, text: str) -> WindError:
        return WindError(f"the wind file {self.name} {text}")

    def _open(self):
        import netCDF4

        try:
            with storage.local_copy(self.path) as local:  # a remote file: its copy in the per-user cache
                return netCDF4.Dataset(local, "r")
        except GranuleError as exc:
            raise self._problem(f"cannot be reached: {exc.problem}") from None
        except (OSError, RuntimeError) as exc:
            raise self._problem(f"cannot be opened as netCDF ({' '.join(str(exc).split())[:200]})") from None

    def _read_grid(self) -> _Grid:
        with HDF_LOCK:
            nc = self._open()
            try:
                return self._grid_of(nc)
            except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
                raise self._problem(f"is not an ERA5 pressure-level layout: {exc}") from None
            finally:
                nc.close()

    def _grid_of(self, nc) -> _Grid:
        missing = [v for v in ("u", "v") if v not in nc.variables]
        if missing:
            raise ValueError(f"it has no variable {' or '.join(missing)} (has {', '.join(nc.variables) or 'none'})")
        u, v = nc.variables["u"], nc.variables["v"]
        if u.dimensions != v.dimensions or u.shape != v.shape:
            raise ValueError(f"u {u.dimensions} and v {v.dimensions} are not on the same grid")
        dims = u.dimensions
        time_dim, level_dim = _first(_TIME_NAMES, dims), _first(_LEVEL_NAMES, dims)
        lat_dim, lon_dim = _first(_LAT_NAMES, dims), _first(_LON_NAMES, dims)
        if time_dim is None or lat_dim is None or lon_dim is None:
            raise ValueError(f"u is on {dims}; expected (valid_time or time, pressure_level or level, latitude, "
                             "longitude)")
        known = {time_dim, level_dim, lat_dim, lon_dim}
        extra = [d for d in dims if d not in known and nc.dimensions[d].size != 1]
        if extra:
            raise ValueError(f"u has the dimension {extra[0]} of size {nc.dimensions[extra[0]].size}, which is "
                             "neither time, level, latitude nor longitude")
        if time_dim not in nc.variables:
            raise ValueError(f"it has no coordinate variable {time_dim}")
        levels = _coordinate(nc, level_dim, "level") if level_dim is not None else np.array([np.nan])
        if level_dim is not None and str(getattr(nc.variables[level_dim], "units", "hPa")).strip().lower() == "pa":
            levels = levels / 100.0
        lats, lons = _coordinate(nc, lat_dim, "latitude"), _coordinate(nc, lon_dim, "longitude")
        times = _read_times(nc.variables[time_dim])
        if times.hasnans or not times.is_monotonic_increasing:
            raise ValueError("its times are missing or not increasing")
        return _Grid(times, levels, lats, lons, dims, time_dim, level_dim, lat_dim, lon_dim)

    # -- where: the four grid points around the volcano
    def _corners(self, lat: float, lon: float) -> tuple[list[int], list[int], float, float]:
        """Indices of the latitudes and longitudes around (lat, lon) and the bilinear weights (of the second ones)."""
        g = self._grid
        lats = g.lats
        order = np.argsort(lats)
        sorted_lats = lats[order]
        if not sorted_lats[0] - 1e-9 <= lat <= sorted_lats[-1] + 1e-9:
            raise self._outside(lat, lon)
        k = int(np.clip(np.searchsorted(sorted_lats, lat) - 1, 0, max(len(lats) - 2, 0)))
        k1 = min(k + 1, len(lats) - 1)
        span = sorted_lats[k1] - sorted_lats[k]
        wy = 0.0 if span == 0 else float(np.clip((lat - sorted_lats[k]) / span, 0.0, 1.0))
        rows = [int(order[k]), int(order[k1])]
        lons = g.lons
        west = float(np.min(lons))
        x = (lon - west) % 360.0 + west  # the volcano in the file's longitude convention
        lon_order = np.argsort(lons)
        sorted_lons = lons[lon_order]
        step = float(np.median(np.diff(sorted_lons))) if len(lons) > 1 else 0.0
        is_global = len(lons) > 1 and sorted_lons[-1] - sorted_lons[0] + step >= 360.0 - 1e-6
        if x > sorted_lons[-1] + 1e-9:
            if not is_global:
                raise self._outside(lat, lon)
            cols = [int(lon_order[-1]), int(lon_order[0])]
            wx = (x - sorted_lons[-1]) / step
        else:
            j = int(np.clip(np.searchsorted(sorted_lons, x) - 1, 0, max(len(lons) - 2, 0)))
            j1 = min(j + 1, len(lons) - 1)
            span = sorted_lons[j1] - sorted_lons[j]
            wx = 0.0 if span == 0 else float((x - sorted_lons[j]) / span)
            cols = [int(lon_order[j]), int(lon_order[j1])]
        return rows, cols, wy, float(np.clip(wx, 0.0, 1.0))

    def _outside(self, lat: float, lon: float) -> WindError:
        g = self._grid
        return self._problem(
            f"covers latitudes {g.lats.min():g} to {g.lats.max():g} and longitudes {g.lons.min():g} to "
            f"{g.lons.max():g}; the volcano at {lat:g}, {lon:g} is outside it")

    def _read_points(self, rows: list[int], cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The u and v at the 2 x 2 points, as arrays (time, level, 2, 2)."""
        g = self._grid
        with HDF_LOCK:
            nc = self._open()
            try:
                out = []
                for name in ("u", "v"):
                    var = nc.variables[name]
                    block = np.empty((len(g.times), len(g.levels_hpa), 2, 2))
                    for a, r in enumerate(rows):
                        for b, c in enumerate(cols):
                            index = tuple(r if d == g.lat_dim else c if d == g.lon_dim else slice(None)
                                          for d in g.dims)
                            values = np.ma.filled(np.ma.asarray(var[index], dtype=np.float64), np.nan)
                            block[:, :, a, b] = self._to_time_level(values, var.dimensions)
                    out.append(block)
            except (OSError, RuntimeError, ValueError, IndexError) as exc:
                raise self._problem(f"cannot be read ({' '.join(str(exc).split())[:200]})") from None
            finally:
                nc.close()
        return out[0], out[1]

    def _to_time_level(self, values: np.ndarray, dims: tuple[str, ...]) -> np.ndarray:
        """The values of one grid point as (time, level), whatever the order of the file's dimensions."""
        g = self._grid
        kept = [d for d in dims if d not in (g.lat_dim, g.lon_dim)]
        order = [kept.index(g.time_dim)] + ([kept.index(g.level_dim)] if g.level_dim else [])
        order += [i for i in range(len(kept)) if i not in order]  # the dimensions of size 1
        arr = np.transpose(values, order).reshape(len(g.times), -1)
        return arr[:, : len(g.levels_hpa)]

    def _profile(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        """The u and v at the volcano (bilinear), (time, level)."""
        key = (round(lat, 6), round(lon, 6))
        if key not in self._profiles:
            rows, cols, wy, wx = self._corners(lat, lon)
            u4, v4 = self._read_points(rows, cols)
            weights = np.array([[(1 - wy) * (1 - wx), (1 - wy) * wx], [wy * (1 - wx), wy * wx]])
            self._profiles[key] = ((u4 * weights).sum(axis=(2, 3)), (v4 * weights).sum(axis=(2, 3)))
        return self._profiles[key]

    def _at_height(self, field_tl: np.ndarray, height_km: float) -> np.ndarray:
        """A (time, level) field at the height's standard pressure, linear in ln(p); by time."""
        g = self._grid
        if g.level_dim is None or len(g.levels_hpa) == 1:
            return field_tl[:, 0]
        p = pressure_hpa_at(height_km)
        if not np.isfinite(p):
            raise WindError(f"a plume height of {height_km:g} km is above the 32 km of the standard atmosphere")
        order = np.argsort(np.log(g.levels_hpa))
        x = np.log(g.levels_hpa)[order]
        return np.array([np.interp(math.log(p), x, row[order]) for row in field_tl])

    def uv(self, times: Iterable[Any], height_km: float, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        """The u and v (m/s) at the plume height over (lat, lon) at each time (NaN outside the file's times)."""
        u_tl, v_tl = self._profile(lat, lon)
        u_t, v_t = self._at_height(u_tl, height_km), self._at_height(v_tl, height_km)
        known = self._grid.times.asi8.astype(float)
        t = _as_index(times).asi8.astype(float)
        tol = float(TIME_TOLERANCE.value)
        inside = (t >= known[0] - tol) & (t <= known[-1] + tol)
        u = np.where(inside, np.interp(t, known, u_t), np.nan)
        v = np.where(inside, np.interp(t, known, v_t), np.nan)
        return u, v

    def speed_ms(self, times, height_km, lat, lon) -> np.ndarray:
        """The length of the interpolated (u, v)."""
        u, v = self.uv(times, height_km, lat, lon)
        return np.hypot(u, v)

    def missing_reason(self, time) -> str:
        """The file's span, when ``time`` lies outside it (by more than the tolerance)."""
        g = self._grid
        return (f"the wind file {self.name} covers {_t(g.times[0])} to {_t(g.times[-1])}, not {_t(time)} "
                f"(± {TIME_TOLERANCE.total_seconds() / 3600:g} h)")

    def describe(self, height_km, lat, lon) -> str:
        """E.g. ``ERA5 u/v from wind/era5_wind.nc at 7 km (410.6 hPa), bilinear at 13.33, -61.18, linear in time``."""
        p = pressure_hpa_at(height_km)
        return (f"ERA5 u/v from {self.name} at {height_km:g} km ({p:.1f} hPa, standard atmosphere), bilinear at "
                f"{lat:g}, {lon:g}, linear in time")


def open_wind(kind: str, *, path: str | os.PathLike | None = None, name: str | None = None,
              speed_ms: Any = None, direction_deg: Any = None) -> WindSource:
    """A wind source of ``kind`` (``constant``, ``csv`` or ``era5``); ``name`` is how users see it.

    Raises WindError (a UserInputError) naming the source and what is wrong with it.
    """
    if kind == "constant":
        if speed_ms is None:
            raise WindError(f"the constant wind {name or ''} has no speed_ms".replace("  ", " "))
        return ConstantWind(name or "constant", speed_ms, direction_deg)
    if kind not in KINDS:
        raise WindError(f"unknown wind source kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if path is None:
        raise WindError(f"the {kind} wind {name or ''} names no file".replace("  ", " "))
    shown = name or Path(path).name
    if storage.is_remote(os.fspath(path)):
        try:
            storage.stamp(os.fspath(path))
        except GranuleError as exc:
            raise WindError(f"the wind file {shown} cannot be reached: {exc.problem}") from None
        if kind == "csv":
            with storage.local_copy(os.fspath(path)) as local:
                return CsvWind.from_file(local, shown)
    elif not Path(path).is_file():
        raise WindError(f"the wind file {shown} does not exist")
    if kind == "csv":
        return CsvWind.from_file(path, shown)
    return Era5Wind(shown, os.fspath(path))


def _shown(url: str, root: str | None) -> str:
    """A wind file as users see it: relative to the archive root, else its file name (never a server path)."""
    if root and "://" not in url and "://" not in root:
        full, top = os.path.abspath(url), os.path.abspath(root)
        if os.path.commonpath([full, top]) == top and full != top:
            return Path(os.path.relpath(full, top)).as_posix()
    return url.rstrip("/").rsplit("/", 1)[-1]


def wind_from_catalog(cat: Any) -> WindSource | None:
    """The wind source of a catalogue's wind entry (:func:`app.data.catalog.wind_spec`), or None without one.

    Raises WindError (a UserInputError) when the entry's file is missing or unreadable, naming it relative to the
    archive root; CatalogError when the entry itself is wrong.
    """
    from app.data.catalog import archive_root, wind_spec

    spec = wind_spec(cat)
    if spec is None:
        return None
    if spec.kind == "constant":
        return open_wind("constant", name=f"catalogue entry {spec.entry}", speed_ms=spec.speed_ms,
                         direction_deg=spec.direction_deg)
    url = spec.url or ""
    root = archive_root(cat)
    shown = _shown(url, root)
    if storage.is_remote(url) and url.startswith(root.rstrip("/") + "/"):
        shown = url[len(root.rstrip("/")) + 1:]  # relative to the remote archive root, as users see files
    return open_wind(spec.kind, path=url, name=shown)
