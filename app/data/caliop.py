"""CALIPSO CALIOP Level 1B V4 granules (HDF4) -> the canonical *Curtain* (docs/architecture.md).

A granule is one half orbit (``...ZD.hdf`` day, ``...ZN.hdf`` night). The backscatter profiles are HDF4 scientific
data sets (SDS) of shape (profiles, 583); the per-profile geolocation SDSs have shape (profiles, 1); the altitudes of
the 583 bins are not an SDS but the field ``Lidar_Data_Altitudes`` of the Vdata table ``metadata``. Everything is
read with pyhdf, as a CALIOP user reads it, and only the SDSs (and the profile and altitude windows) asked for.

Time. ``Profile_Time`` counts TAI seconds since 1993-01-01T00:00:00 UTC (the EOS "TAI93" convention): it runs
through leap seconds, so it leads a naive UTC count from that epoch by the leap seconds inserted since then, 10 s
from 2017 on (TAI − UTC = 37 s now, 27 s on 1993-01-01). :func:`tai93_to_datetime64` removes them with the table
:data:`LEAP_SECONDS`, so the canonical ``time`` is UTC (numpy ``datetime64[ns]``, which has no leap seconds).
``Profile_UTC_Time`` (``yymmdd.fraction_of_day``) holds the same instants in UTC and is decoded by
:func:`utc_number_to_datetime64`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.core.timefmt import iso_utc
from app.data import storage
from app.data.errors import FumaroleError, GranuleError, UserInputError

__all__ = [
    "VARIABLES",
    "DERIVED_VARIABLES",
    "FILL_VALUE",
    "LEAP_SECONDS",
    "read_curtain",
    "read_track",
    "read_altitudes",
    "datetime64_to_tai93",
    "tai93_to_datetime64",
    "datetime64_to_utc_number",
    "utc_number_to_datetime64",
]

#: Canonical name -> SDS name in the file.
VARIABLES = {
    "total_attenuated_backscatter_532": "Total_Attenuated_Backscatter_532",
    "perpendicular_attenuated_backscatter_532": "Perpendicular_Attenuated_Backscatter_532",
    "attenuated_backscatter_1064": "Attenuated_Backscatter_1064",
}

#: Derived canonical variables and the variables they are computed from.
DERIVED_VARIABLES = {
    "depolarization_ratio_532": (
        "total_attenuated_backscatter_532",
        "perpendicular_attenuated_backscatter_532",
    ),
}

_LONG_NAMES = {
    "total_attenuated_backscatter_532": "total attenuated backscatter, 532 nm",
    "perpendicular_attenuated_backscatter_532": "perpendicular attenuated backscatter, 532 nm",
    "attenuated_backscatter_1064": "attenuated backscatter, 1064 nm",
    "depolarization_ratio_532": "volume depolarisation ratio, 532 nm (perpendicular / parallel)",
}

#: The fill value of CALIOP float SDSs.
FILL_VALUE = -9999.0


#: Per-profile SDSs: one value per profile, stored (profiles, 1).
_PER_PROFILE = ("Latitude", "Longitude", "Profile_Time", "Surface_Elevation", "Day_Night_Flag")

# -------------------------------------------------------------------------------------------- time conventions

TAI93_EPOCH = np.datetime64("1993-01-01T00:00:00", "ns")
"""The epoch of ``Profile_Time``: 1993-01-01T00:00:00 UTC."""

_TAI_MINUS_UTC_AT_EPOCH = 27

#: UTC instants from which TAI − UTC took a new value (seconds), from 1993 on (IERS Bulletin C). None since 2017.
LEAP_SECONDS = (
    ("1993-07-01", 28),
    ("1994-07-01", 29),
    ("1996-01-01", 30),
    ("1997-07-01", 31),
    ("1999-01-01", 32),
    ("2006-01-01", 33),
    ("2009-01-01", 34),
    ("2012-07-01", 35),
    ("2015-07-01", 36),
    ("2017-01-01", 37),
)

_LEAP_UTC_S = np.array(
    [(np.datetime64(d, "ns") - TAI93_EPOCH).astype("int64") / 1e9 for d, _ in LEAP_SECONDS], dtype=float
)
_LEAP_COUNT = np.array([v - _TAI_MINUS_UTC_AT_EPOCH for _, v in LEAP_SECONDS], dtype=float)
# The same instants on the TAI93 scale (each leap second already counted when its new value starts).
_LEAP_TAI_S = _LEAP_UTC_S + _LEAP_COUNT


def _leaps_since_epoch(utc_s: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(_LEAP_UTC_S, utc_s, side="right")
    return np.concatenate([[0.0], _LEAP_COUNT])[idx]


def datetime64_to_tai93(t) -> np.ndarray:
    """TAI seconds since 1993-01-01T00:00:00 UTC (``Profile_Time``) of UTC ``datetime64`` value(s), as float64."""
    utc_s = (np.asarray(t, dtype="datetime64[ns]") - TAI93_EPOCH).astype("int64") / 1e9
    return utc_s + _leaps_since_epoch(utc_s)


def tai93_to_datetime64(seconds) -> np.ndarray:
    """UTC ``datetime64[ns]`` of ``Profile_Time`` value(s) (inverse of :func:`datetime64_to_tai93`)."""
    s = np.asarray(seconds, dtype=float)
    idx = np.searchsorted(_LEAP_TAI_S, s, side="right")
    utc_s = s - np.concatenate([[0.0], _LEAP_COUNT])[idx]
    return TAI93_EPOCH + np.round(utc_s * 1e9).astype("int64").astype("timedelta64[ns]")


def datetime64_to_utc_number(t) -> np.ndarray:
    """``Profile_UTC_Time`` value(s): the number ``yymmdd.fraction_of_day`` (e.g. 210412.5 is 2021-04-12 12:00)."""
    t = np.asarray(t, dtype="datetime64[ns]")
    day = t.astype("datetime64[D]")
    frac = (t - day).astype("int64") / 86400e9
    y = day.astype("datetime64[Y]").astype(int) + 1970
    m = (day.astype("datetime64[M]").astype(int) % 12) + 1
    d = (day - day.astype("datetime64[M]")).astype(int) + 1
    return (y % 100) * 10000.0 + m * 100.0 + d + frac


def utc_number_to_datetime64(number, century: int = 2000) -> np.ndarray:
    """UTC ``datetime64[ns]`` of ``Profile_UTC_Time`` value(s) ``yymmdd.fraction_of_day``."""
    x = np.asarray(number, dtype=float)
    whole = np.floor(x).astype(np.int64)
    yy, mm, dd = whole // 10000, (whole // 100) % 100, whole % 100
    month = ((century + yy - 1970) * 12 + mm - 1).astype("datetime64[M]")
    day = month.astype("datetime64[D]") + (dd - 1).astype("timedelta64[D]")
    frac_ns = np.round((x - whole) * 86400e9).astype(np.int64).astype("timedelta64[ns]")
    return day.astype("datetime64[ns]") + frac_ns


# -------------------------------------------------------------------------------------------- HDF4 access


def _hdf4_errors() -> tuple[type[BaseException], ...]:
    from pyhdf.error import HDF4Error

    return (HDF4Error, OSError, ValueError, TypeError, IndexError, KeyError, RuntimeError, OverflowError,
            UnicodeError, MemoryError)


class _Granule:
    """An open CALIOP L1B granule: SD (datasets) access plus the ``metadata`` Vdata, closed on exit."""

    def __init__(self, path: str | os.PathLike, local: str | os.PathLike | None = None):
        from pyhdf.SD import SD, SDC

        self.path = os.fspath(path)  # as users see it: the local path or the URL
        self.local = os.fspath(local) if local is not None else self.path  # what pyhdf opens (a local copy)
        if not os.path.isfile(self.local):
            raise GranuleError(
                self.path, "the file does not exist." if not os.path.exists(self.local) else "is not a regular file."
            )
        try:
            self.sd = SD(self.local, SDC.READ)
            self.datasets = self.sd.datasets()
        except _hdf4_errors() as e:
            raise GranuleError(
                self.path, f"cannot be opened as an HDF4 file (truncated or corrupt, or not HDF4?): {self.why(e)}"
            ) from None

    def why(self, exc: BaseException) -> str:
        """The library's words for a failure, without the file's path (the GranuleError names the file)."""
        text = (str(exc).strip() or type(exc).__name__).replace(self.local, "the file").replace(self.path, "the file")
        return text if text.endswith(".") else text + "."

    def __enter__(self) -> _Granule:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.sd.end()
        except _hdf4_errors():
            pass
        if exc is not None and not isinstance(exc, FumaroleError) and isinstance(exc, _hdf4_errors()):
            # values of the wrong kind or size met while decoding: the file is at fault, say so
            raise GranuleError(
                self.path, f"cannot be read (truncated or corrupt file?): {type(exc).__name__}: {self.why(exc)}"
            ) from None

    def read(self, name: str, rows: slice = slice(None), cols: slice | None = None) -> np.ndarray:
        """An SDS (or a window of it); raises GranuleError if it is missing or unreadable."""
        if name not in self.datasets:
            raise GranuleError(
                self.path,
                f"has no SDS {name!r}, which a CALIOP L1B V4 granule has; it holds "
                f"{', '.join(sorted(self.datasets)) or 'no datasets'}.",
            )
        try:
            sds = self.sd.select(name)
            try:
                data = sds[rows, cols] if cols is not None else sds[rows]
            finally:
                sds.endaccess()
        except _hdf4_errors() as e:
            raise GranuleError(
                self.path, f"SDS {name!r} cannot be read (truncated or corrupt file?): {self.why(e)}"
            ) from None
        return np.asarray(data)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of an SDS (which must exist)."""
        shape = self.datasets[name][1]
        return (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(n) for n in shape)

    def n_profiles(self) -> int:
        """The number of profiles, checked against every per-profile SDS of the file: (profiles, 1) each."""
        name = "Latitude"
        if name not in self.datasets:
            raise GranuleError(self.path, "has no SDS 'Latitude', so it is not a CALIOP L1B granule.")
        n = self.shape(name)[0]
        for other in _PER_PROFILE:
            if other in self.datasets and self.shape(other) not in ((n, 1), (n,)):
                raise GranuleError(
                    self.path,
                    f"SDS {other!r} has shape {self.shape(other)}, not (profiles, 1) = ({n}, 1): wrong dimension "
                    "order or not a CALIOP L1B granule.",
                )
        return n

    def check_profile_sds(self, name: str, n: int, n_bins: int) -> None:
        """Raise a GranuleError unless the SDS ``name`` is (profiles, altitude bins) = (n, n_bins)."""
        if name in self.datasets and self.shape(name) != (n, n_bins):
            raise GranuleError(
                self.path,
                f"SDS {name!r} has shape {self.shape(name)}, not (profiles, altitude bins) = ({n}, {n_bins}): "
                "wrong dimension order or not a CALIOP L1B granule.",
            )

    def metadata(self, fields: Sequence[str]) -> dict:
        """Fields of the single record of the ``metadata`` Vdata."""
        import pyhdf.VS  # noqa: F401  (HDF.vstart() needs the VS module loaded)
        from pyhdf.HDF import HC, HDF

        try:
            hdf = HDF(self.local, HC.READ)
        except _hdf4_errors() as e:
            raise GranuleError(
                self.path, f"cannot be opened for its Vdata tables (corrupt file?): {self.why(e)}"
            ) from None
        try:
            vs = hdf.vstart()
            try:
                try:
                    vd = vs.attach("metadata")
                except _hdf4_errors():
                    raise GranuleError(
                        self.path,
                        "has no 'metadata' Vdata table, so the altitudes of its 583 bins "
                        "(field Lidar_Data_Altitudes) are unknown.",
                    ) from None
                try:
                    present = [f[0] for f in vd.fieldinfo()]
                    missing = [f for f in fields if f not in present]
                    if missing:
                        raise GranuleError(self.path, f"its 'metadata' Vdata has no field {', '.join(missing)}.")
                    vd.setfields(*fields)
                    record = vd.read(1)[0]
                finally:
                    vd.detach()
            finally:
                vs.end()
        except GranuleError:
            raise
        except _hdf4_errors() as e:
            raise GranuleError(
                self.path, f"its 'metadata' Vdata cannot be read (corrupt file?): {self.why(e)}"
            ) from None
        finally:
            hdf.close()
        return dict(zip(fields, record, strict=True))


def read_altitudes(path: str | os.PathLike) -> np.ndarray:
    """The 583 bin altitudes (km, top first) of a granule, from its ``metadata`` Vdata."""
    with storage.local_copy(path) as local, HDF_LOCK, _Granule(path, local) as g:
        return _altitudes(g)


def _altitudes(g: _Granule) -> np.ndarray:
    alt = np.asarray(g.metadata(["Lidar_Data_Altitudes"])["Lidar_Data_Altitudes"], dtype=np.float32).ravel()
    if alt.size < 2 or not np.all(np.isfinite(alt)):
        raise GranuleError(g.path, f"its Lidar_Data_Altitudes field holds {alt.size} values, not 583 altitudes.")
    return alt


# -------------------------------------------------------------------------------------------- public readers


def _profile_slice(profiles, n: int, path: str) -> slice:
    if profiles is None:
        return slice(0, n)
    if isinstance(profiles, tuple) and len(profiles) == 2:
        profiles = slice(*profiles)
    if not isinstance(profiles, slice):
        raise UserInputError(f"profiles must be a slice or a (start, stop) pair, not {profiles!r}.")
    start, stop, step = profiles.indices(n)
    if step < 1:
        raise UserInputError(f"profiles step must be positive, not {step}.")
    if stop <= start:
        raise UserInputError(f"profile window {profiles} selects no profile of {path} ({n} profiles).")
    return slice(start, stop, step)


def _altitude_slice(alt: np.ndarray, alt_range_km, path: str) -> slice:
    if alt_range_km is None:
        return slice(0, alt.size)
    lo, hi = sorted(float(a) for a in alt_range_km)
    idx = np.flatnonzero((alt >= lo) & (alt <= hi))
    if idx.size == 0:
        raise UserInputError(
            f"altitude window {lo}..{hi} km holds no bin of {path} (bins span {alt.min():.2f}..{alt.max():.2f} km)."
        )
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _check_variables(variables) -> tuple[list[str], list[str]]:
    if isinstance(variables, str):
        variables = (variables,)
    known = list(VARIABLES) + list(DERIVED_VARIABLES)
    unknown = [v for v in variables if v not in known]
    if unknown:
        raise UserInputError(
            f"unknown CALIOP variable {', '.join(map(repr, unknown))}; known variables: {', '.join(known)}."
        )
    to_read = []
    for v in variables:
        for needed in DERIVED_VARIABLES.get(v, (v,)):
            if needed not in to_read:
                to_read.append(needed)
    return list(variables), to_read


def _day_night(path: str, flags: np.ndarray) -> str:
    name = os.path.basename(path)
    if name.endswith(("ZD.hdf", "ZN.hdf")):
        return name[-5]
    if flags.size:
        return "N" if np.nanmean(flags) > 0.5 else "D"
    return ""


def _geolocation(g: _Granule, rows: slice) -> dict[str, np.ndarray]:
    lat = g.read("Latitude", rows).reshape(-1).astype(np.float32)
    lon = g.read("Longitude", rows).reshape(-1).astype(np.float32)
    tai = g.read("Profile_Time", rows).reshape(-1).astype(np.float64)
    time = tai93_to_datetime64(tai)
    return {"latitude": lat, "longitude": lon, "time": time}


def _attrs(g: _Granule, geo: dict, flags: np.ndarray) -> dict:
    t = geo["time"]
    return {
        "platform": "CALIPSO",
        "instrument": "CALIOP",
        "product": "CALIOP_L1B",
        "day_night": _day_night(g.path, flags),
        "time_coverage_start": iso_utc(t.min()) if t.size else "",
        "time_coverage_end": iso_utc(t.max()) if t.size else "",
        "source": g.path,
    }


def read_track(path: str | os.PathLike, profiles=None) -> xr.Dataset:
    """The ground track of a granule: ``latitude``, ``longitude`` and ``time`` per profile, nothing else.

    Cheap (three small SDSs): for drawing the track on a map and for the granule index. ``profiles`` is a slice
    (a step decimates, e.g. ``slice(None, None, 50)``) or a ``(start, stop)`` pair.
    """
    with storage.local_copy(path) as local, HDF_LOCK, _Granule(path, local) as g:
        rows = _profile_slice(profiles, g.n_profiles(), g.path)
        geo = _geolocation(g, rows)
        flags = g.read("Day_Night_Flag", rows).ravel() if "Day_Night_Flag" in g.datasets else np.array([])
        ds = xr.Dataset(coords={k: ("profile", v) for k, v in geo.items()}, attrs=_attrs(g, geo, flags))
    _coord_attrs(ds)
    return ds


def read_curtain(
    path: str | os.PathLike,
    variables: Sequence[str] | str = ("total_attenuated_backscatter_532",),
    profiles=None,
    *,
    alt_range_km: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Read a CALIOP L1B V4 granule into the canonical *Curtain* (docs/architecture.md).

    Parameters
    ----------
    path : str or os.PathLike
        The ``CAL_LID_L1-Standard-V4-*.hdf`` file.
    variables : sequence of str
        Canonical names among :data:`VARIABLES` (``total_attenuated_backscatter_532``,
        ``perpendicular_attenuated_backscatter_532``, ``attenuated_backscatter_1064``) and the derived
        ``depolarization_ratio_532`` = perpendicular / (total − perpendicular) (NaN where total ≤ perpendicular).
        Only the SDSs needed are read.
    profiles : slice or (int, int), optional
        A profile window: a slice (its step decimates) or a ``(start, stop)`` pair; ``None`` for all.
    alt_range_km : (float, float), optional
        ``(low, high)`` km: keep only the bins whose altitude lies within; ``None`` for all 583.

    Returns
    -------
    xarray.Dataset
        Dims ``(profile, altitude)``; coords ``latitude``, ``longitude``, ``time`` (UTC, from
        ``Profile_Time``) per profile and ``altitude`` (km, top first as in the file); data variables as asked,
        fill values (-9999) as NaN, plus ``surface_elevation`` (km) per profile.

    Raises
    ------
    GranuleError
        The file is missing, truncated or corrupt, or lacks an SDS or the ``metadata`` Vdata.
    UserInputError
        An unknown variable name or an empty window.
    """
    asked, to_read = _check_variables(variables)
    with storage.local_copy(path) as local, HDF_LOCK, _Granule(path, local) as g:
        alt_all = _altitudes(g)
        rows = _profile_slice(profiles, g.n_profiles(), g.path)
        cols = _altitude_slice(alt_all, alt_range_km, g.path)
        geo = _geolocation(g, rows)
        data = {}
        for name in to_read:
            g.check_profile_sds(VARIABLES[name], g.n_profiles(), alt_all.size)
            arr = g.read(VARIABLES[name], rows, cols).astype(np.float32, copy=False)
            if arr.ndim != 2 or arr.shape[1] != cols.stop - cols.start:
                raise GranuleError(g.path, f"SDS {VARIABLES[name]!r} has shape {arr.shape}, not (profiles, 583).")
            data[name] = np.where(arr <= FILL_VALUE + 0.5, np.float32(np.nan), arr)
        surface = g.read("Surface_Elevation", rows).reshape(-1).astype(np.float32)
        flags = g.read("Day_Night_Flag", rows).ravel() if "Day_Night_Flag" in g.datasets else np.array([])
        attrs = _attrs(g, geo, flags)
    if "depolarization_ratio_532" in asked:
        total = data["total_attenuated_backscatter_532"]
        perp = data["perpendicular_attenuated_backscatter_532"]
        parallel = total - perp
        with np.errstate(invalid="ignore", divide="ignore"):
            data["depolarization_ratio_532"] = np.where(parallel > 0, perp / parallel, np.nan).astype(np.float32)
    if any(a.shape[0] != surface.size for a in (geo["latitude"], *data.values())):
        raise GranuleError(path, "its per-profile SDSs and its curtains hold different numbers of profiles.")
    ds = xr.Dataset(
        {name: (("profile", "altitude"), data[name]) for name in asked},
        coords={
            **{k: ("profile", v) for k, v in geo.items()},
            "altitude": ("altitude", alt_all[cols]),
        },
        attrs=attrs,
    )
    ds["surface_elevation"] = ("profile", surface, {"units": "km", "long_name": "surface elevation"})
    for name in asked:
        units = "1" if name == "depolarization_ratio_532" else "km-1 sr-1"
        ds[name].attrs.update(units=units, long_name=_LONG_NAMES[name])
    _coord_attrs(ds)
    return ds


def _coord_attrs(ds: xr.Dataset) -> None:
    ds["latitude"].attrs.update(units="degrees_north", standard_name="latitude")
    ds["longitude"].attrs.update(units="degrees_east", standard_name="longitude")
    ds["time"].attrs.update(long_name="profile time (UTC)")
    if "altitude" in ds.coords:
        ds["altitude"].attrs.update(units="km", long_name="altitude above mean sea level")
