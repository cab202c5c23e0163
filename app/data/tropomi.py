"""Read Sentinel-5P TROPOMI L2 SO2 granules into the canonical *Swath* (``docs/architecture.md``).

The reader opens the file with h5netcdf (its netCDF4-like ``legacyapi``) — on the path when local, on
:func:`app.data.storage.open_binary` (byte ranges) when remote: one path for both — and reads only what is asked
for: the geolocation (pixel centres, the
scanline times and, by default, the pixel corners), the requested variables, and only the requested window of
scanlines (the operational files are chunked along ``scanline``, so a window costs the chunks it touches).

Columns are converted from mol m⁻² to DU with each variable's own ``multiplication_factor_to_convert_to_DU``
(the product constant :data:`DU_PER_MOL_M2`, with a log line naming the file and variable, when it is missing);
``_FillValue`` becomes NaN; ``scale_factor``/``add_offset`` are applied (``qa_value`` 0–100 -> 0–1). Anything wrong
with the file — unreadable, truncated, a group, variable or attribute missing, a variable of the wrong shape —
raises :class:`~app.data.errors.GranuleError` naming the file and what is wrong, never a bare netCDF error.
A box-profile column the file does not have (processors before 01.01.01 have none; the 3 km one comes with
02.08.00) raises :class:`LevelUnavailable`, a GranuleError naming the level and the reason; the rest of the file
still reads.

The layout is the real one (``docs/architecture.md``, Swath): ``PRODUCT/delta_time`` per pixel or per scanline,
``time_coverage_*`` with or without a trailing ``Z``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5netcdf.legacyapi as h5nc
import netCDF4
import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.core.state import say_once
from app.data import storage
from app.data.errors import GranuleError

__all__ = ["VARIABLES", "UNITS", "GEOLOCATION", "DIMENSIONS", "BOX_LEVELS", "LAYER_HEIGHT_SINCE", "DU_PER_MOL_M2",
           "LevelUnavailable",
           "read_swath", "read_attrs", "open_granule", "attr", "decode", "footprint_of", "check_dimensions",
           "processor_version_tuple", "pixel_coordinates", "read_centres", "satellite_track", "satellite_altitude_km"]

logger = logging.getLogger(__name__)

PRODUCT = "PRODUCT"
GEOLOCATIONS = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
DETAILED_RESULTS = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
INPUT_DATA = "PRODUCT/SUPPORT_DATA/INPUT_DATA"
#: The SO2 layer height group, from processor 02.05.00 (HARP's S5P ingestion: ``SO2_LAYER_HEIGHT``).
LAYER_HEIGHT = "PRODUCT/SO2_LAYER_HEIGHT"
_COLUMN = "sulfurdioxide_total_vertical_column"

#: Canonical variable name -> (group, variable) in the S5P L2 SO2 file.
VARIABLES: dict[str, tuple[str, str]] = {
    "so2_pbl": (PRODUCT, _COLUMN),
    "so2_1km": (DETAILED_RESULTS, f"{_COLUMN}_1km"),
    "so2_7km": (DETAILED_RESULTS, f"{_COLUMN}_7km"),
    "so2_15km": (DETAILED_RESULTS, f"{_COLUMN}_15km"),
    "so2_3km": (DETAILED_RESULTS, f"{_COLUMN}_3km"),
    "so2_pbl_precision": (PRODUCT, f"{_COLUMN}_precision"),
    "so2_1km_precision": (DETAILED_RESULTS, f"{_COLUMN}_1km_precision"),
    "so2_3km_precision": (DETAILED_RESULTS, f"{_COLUMN}_3km_precision"),
    "so2_7km_precision": (DETAILED_RESULTS, f"{_COLUMN}_7km_precision"),
    "so2_15km_precision": (DETAILED_RESULTS, f"{_COLUMN}_15km_precision"),
    "qa_value": (PRODUCT, "qa_value"),
    "solar_zenith_angle": (GEOLOCATIONS, "solar_zenith_angle"),
    "viewing_zenith_angle": (GEOLOCATIONS, "viewing_zenith_angle"),
    "so2_detection_flag": (DETAILED_RESULTS, "sulfurdioxide_detection_flag"),
    "cloud_fraction": (INPUT_DATA, "cloud_fraction_crb"),
    "so2_layer_height": (LAYER_HEIGHT, "sulfurdioxide_layer_height"),
    "so2_layer_height_precision": (LAYER_HEIGHT, "sulfurdioxide_layer_height_precision"),
    "qa_value_layer_height": (LAYER_HEIGHT, "qa_value_layer_height"),
}

#: Canonical names that are heights (km; the file's ``units``, m in the real product, are converted).
_HEIGHTS = ("so2_layer_height", "so2_layer_height_precision")

#: Units of each canonical variable; "DU" ones are converted with the file's own factor.
UNITS: dict[str, str] = {
    **{name: "DU" for name in VARIABLES
       if name.startswith("so2_") and name != "so2_detection_flag" and name not in _HEIGHTS},
    **{name: "km" for name in _HEIGHTS},
    "qa_value_layer_height": "1",
    "qa_value": "1",
    "solar_zenith_angle": "degree",
    "viewing_zenith_angle": "degree",
    "so2_detection_flag": "1",
    "cloud_fraction": "1",
}

#: Canonical coordinate name -> (group, variable).
GEOLOCATION: dict[str, tuple[str, str]] = {
    "latitude": (PRODUCT, "latitude"),
    "longitude": (PRODUCT, "longitude"),
    "latitude_bounds": (GEOLOCATIONS, "latitude_bounds"),
    "longitude_bounds": (GEOLOCATIONS, "longitude_bounds"),
}

#: The dimensions of the pixel variables of a real S5P L2 file, in order (the corners add ``corner``).
DIMENSIONS = ("time", "scanline", "ground_pixel")

_DU_ATTR = "multiplication_factor_to_convert_to_DU"
#: DU per mol m⁻² as the S5P SO2 product writes it in ``multiplication_factor_to_convert_to_DU`` (1 DU =
#: 4.4615e-4 mol m⁻²): used, with a log line, for a column variable that lacks the attribute.
DU_PER_MOL_M2 = 2241.15

#: Box-profile level (the VolcPlume level key) -> the processor version that first wrote its column (HARP's S5P
#: ingestion: 1/7/15 km from 01.01.01, 3 km from 02.08.00). The PBL column is in every version.
BOX_LEVELS: dict[str, tuple[int, int, int]] = {
    "1km": (1, 1, 1),
    "3km": (2, 8, 0),
    "7km": (1, 1, 1),
    "15km": (1, 1, 1),
}
#: The processor version that first wrote the SO2 layer height (``PRODUCT/SO2_LAYER_HEIGHT``; HARP's S5P ingestion
#: and ESA's announcement of 30 May 2023: operational from mid-July 2023).
LAYER_HEIGHT_SINCE = (2, 5, 0)
#: Every optional field the selector offers -> the processor version that brought it.
_FIRST_WRITTEN: dict[str, tuple[int, int, int]] = {**BOX_LEVELS, "layer_height": LAYER_HEIGHT_SINCE}
#: Units a height variable may carry -> factor to km.
_KM_PER_UNIT = {"m": 1e-3, "meter": 1e-3, "metre": 1e-3, "meters": 1e-3, "km": 1.0, "kilometer": 1.0}
_TIME_UNITS = {
    "seconds": 1.0,
    "milliseconds": 1e-3,
    "microseconds": 1e-6,
    "minutes": 60.0,
    "hours": 3600.0,
    "days": 86400.0,
}
_SINCE = re.compile(r"^\s*(?P<unit>\w+)(?:\s+since\s+(?P<base>.+?))?\s*$")
_FOOTPRINT_GROUP = "METADATA/EOP_METADATA/om:featureOfInterest/eop:multiExtentOf/gml:surfaceMembers/gml:exterior"


# --- opening and looking things up, with errors that read like sentences -------------------------------------


class LevelUnavailable(GranuleError):
    """A box-profile SO2 column (or the SO2 layer height) asked for is not in the granule; the rest still reads.

    ``level`` (e.g. ``"7km"``, or ``"layer_height"``) and ``reason`` say which and why (e.g. the processor version
    predates it).
    """

    def __init__(self, path: object, level: str, reason: str, variable: str | None = None):
        self.level = level
        self.reason = reason
        self.variable = variable or f"so2_{level}"
        super().__init__(path, f"{_what(level)} is unavailable: {reason}")


def _what(level: str) -> str:
    """How a message names an optional field: ``"7km"`` -> "the SO2 column of the 7 km box profile (level 7km)"."""
    if level == "layer_height":
        return "the SO2 layer height"
    return f"the SO2 column of the {level.replace('km', ' km')} box profile (level {level})"


#: What netCDF4/HDF5 raise on a damaged file, or numpy on values of the wrong kind: a GranuleError, never these.
_READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError,
                UnicodeError, MemoryError)


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[h5nc.Dataset]:
    """The open file (h5netcdf's netCDF4-like API), read while holding :data:`~app.core.locks.HDF_LOCK`.

    A local file is opened by its path; a remote one (any fsspec URL) through
    :func:`app.data.storage.open_binary`, which fetches only the byte ranges HDF5 reads. Everything done inside the
    ``with`` runs under the lock; a failure of HDF5, of the storage or of the values read becomes a
    :class:`GranuleError` naming the file and the reason. Values come raw (no masking or scaling).
    """
    url = os.fspath(path)
    if not storage.is_remote(url):
        local = Path(url[len("file://"):] if url.startswith("file://") else url)
        if not local.is_file():
            raise GranuleError(path, "the file does not exist" if not local.exists() else "is not a regular file")
        with HDF_LOCK:
            yield from _opened(str(local), path)
        return
    with storage.open_binary(url) as f, HDF_LOCK:
        yield from _opened(f, url)


class _Group(h5nc.Group):
    """h5netcdf's legacy group, named by its full HDF5 path.

    h5netcdf 1.8's legacy API names a group by its last part only (as netCDF4 does) and joins the paths of the
    group's variables and dimensions to that name, so the variables of nested groups
    (``PRODUCT/SUPPORT_DATA/GEOLOCATIONS``) cannot be opened. Fumarole does not use group names.
    """

    @property
    def name(self):
        return self._h5group.name

    @property
    def _group_cls(self):
        return _Group


class _Dataset(h5nc.Dataset):
    @property
    def _group_cls(self):
        return _Group


#: The remote file (from :func:`app.data.storage.open_binary`) of each open granule, by ``id`` of its Dataset:
#: reads of a window prefetch the window's chunks in few requests (:func:`_prefetch`).
_REMOTE_FILES: dict[int, Any] = {}


def _opened(source, path) -> Iterator[h5nc.Dataset]:
    try:
        nc = _Dataset(source, "r", phony_dims="sort")  # as netCDF-C names dimensions without a scale
    except _READ_ERRORS as exc:
        raise GranuleError(
            path, f"cannot be opened as a netCDF-4 file (truncated or not netCDF?): {_why(exc)}"
        ) from None
    if not isinstance(source, str):
        _REMOTE_FILES[id(nc)] = source
    try:
        yield nc
    except GranuleError:
        raise
    except _READ_ERRORS as exc:
        raise GranuleError(
            path, f"cannot be read (truncated or corrupt file?): {type(exc).__name__}: {_why(exc)}"
        ) from None
    finally:
        _REMOTE_FILES.pop(id(nc), None)
        with contextlib.suppress(*_READ_ERRORS):
            nc.close()


def _prefetch(nc: h5nc.Dataset, var: h5nc.Variable, window: slice) -> None:
    """On a remote granule, fetch the chunks of ``var`` holding the ``window`` of scanlines in few requests.

    HDF5 reads chunks one request each; their addresses and sizes come from the chunk index (read here, as HDF5
    would read it anyway), and :func:`app.data.storage.prefetch` fetches the runs of adjacent chunks at once. A
    local file, a contiguous variable or an HDF5 without ``chunk_iter`` reads as before.
    """
    source = _REMOTE_FILES.get(id(nc))
    ds = getattr(var, "_h5ds", None)
    if source is None or ds is None or ds.chunks is None or ds.ndim < 2 or not hasattr(ds.id, "chunk_iter"):
        return
    first, stop, step = window.indices(ds.shape[1])
    rows = ds.chunks[1]
    if step != 1 or stop <= first:
        return
    ranges = []

    def keep(info) -> None:
        if info.byte_offset is not None and first < info.chunk_offset[1] + rows and info.chunk_offset[1] < stop:
            ranges.append((info.byte_offset, info.byte_offset + info.size))

    with contextlib.suppress(*_READ_ERRORS):
        ds.id.chunk_iter(keep)
        storage.prefetch(source, ranges)


def attr(obj, key: str, default=None):
    """An attribute of a file, group or variable as netCDF4 gives it; ``default`` when absent.

    A one-element array becomes its scalar, text is ``str``.
    """
    if key not in obj.ncattrs():
        return default
    value = obj.getncattr(key)
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim == 1:
        value = value[0]
    if isinstance(value, bytes | np.bytes_):
        value = value.decode("utf-8", "replace")
    return value


#: The public name of :func:`_open`, for the granule index's cheap geolocation reads.
open_granule = _open


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # no file name: the GranuleError names it, relative where shown
        return f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc.strerror)
    text = str(exc).strip() or type(exc).__name__
    cut = _H5_TRUNCATED.search(text)
    if cut:
        return f"the file is truncated ({cut['eof']} of its {cut['stored']} bytes are there)"
    if "file signature not found" in text:
        return "it is not an HDF5 file (no HDF5 signature)"
    return text.split(": b'")[0]  # netCDF4 appends the file name as bytes; the GranuleError names it already


_H5_TRUNCATED = re.compile(r"truncated file: eof = (?P<eof>\d+).*stored_eof = (?P<stored>\d+)")


def _group(nc: h5nc.Dataset, path: str, group: str, needed_for: str) -> h5nc.Group:
    node = nc
    for part in group.split("/"):
        if part not in node.groups:
            raise GranuleError(path, f"group {group} is missing (needed for {needed_for})")
        node = node.groups[part]
    return node


def _variable(nc: h5nc.Dataset, path: str, group: str, name: str, needed_for: str) -> h5nc.Variable:
    grp = _group(nc, path, group, needed_for)
    if name not in grp.variables:
        raise GranuleError(path, f"variable {name} is missing from group {group} (needed for {needed_for})")
    return grp.variables[name]


def _read_raw(path: str, var: h5nc.Variable, index: tuple, where: str) -> np.ndarray:
    try:
        return np.asarray(var[index])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise GranuleError(path, f"reading variable {where} failed (truncated or corrupt file?): {_why(exc)}") from None


def _decode(path: str, var: h5nc.Variable, raw: np.ndarray, where: str) -> np.ndarray:
    """Fill -> NaN, then scale_factor / add_offset; float32 out."""
    attrs = var.ncattrs()
    out = raw.astype(np.float32 if raw.dtype.itemsize <= 4 else np.float64)
    bad = ~np.isfinite(out)
    fill = attr(var, "_FillValue", netCDF4.default_fillvals.get(raw.dtype.str[1:]))
    if fill is not None:
        bad |= raw == np.asarray(fill, dtype=raw.dtype)
    if "scale_factor" in attrs or "add_offset" in attrs:
        scale = float(attr(var, "scale_factor", 1.0))
        offset = float(attr(var, "add_offset", 0.0))
        out = out * np.float32(scale) + np.float32(offset)
    out[bad] = np.nan
    return out.astype(np.float32, copy=False)


#: The public name of :func:`_decode`: fill values -> NaN, scale and offset applied (for the index's samples).
decode = _decode


def _check_shape(path: str, where: str, shape: tuple, expected: tuple) -> None:
    if tuple(shape[: len(expected)]) != tuple(expected):
        raise GranuleError(path, f"variable {where} has shape {tuple(shape)}, expected {tuple(expected)} first")


def check_dimensions(path, var: h5nc.Variable, where: str, expected: Sequence[str] = DIMENSIONS) -> None:
    """Raise a GranuleError unless ``var``'s dimensions are ``expected`` in that order (extra trailing ones allowed).

    Shapes alone cannot tell a swath stored ``(time, ground_pixel, scanline)`` from the real order when the two
    lengths happen to agree; the dimension names can.
    """
    dims = tuple(var.dimensions)
    if dims[: len(expected)] != tuple(expected):
        raise GranuleError(
            path, f"variable {where} has dimensions ({', '.join(dims)}), expected ({', '.join(expected)}) first"
        )


# --- time --------------------------------------------------------------------------------------------------------


def _units_since(path: str, where: str, units: str, default_base=None) -> tuple[float, np.datetime64]:
    m = _SINCE.match(units or "")
    unit = m["unit"].lower() if m else ""
    if unit not in _TIME_UNITS or (m["base"] is None and default_base is None):
        raise GranuleError(path, f"variable {where} has time units {units!r}, expected e.g. 'seconds since 2010-01-01'")
    if m["base"] is None:
        return _TIME_UNITS[unit], default_base
    text = m["base"].strip().rstrip("Z").replace(" ", "T", 1).split("+")[0]
    try:
        base = np.datetime64(text, "ns")
    except ValueError:
        raise GranuleError(
            path, f"variable {where} has time units {units!r} whose reference time is unreadable"
        ) from None
    return _TIME_UNITS[unit], base


def _scanline_times(nc: h5nc.Dataset, path: str, window: slice, n_rows: int) -> np.ndarray:
    """The time of each scanline of ``window``: ``PRODUCT/time`` + ``PRODUCT/delta_time`` (ms), NaT where unknown.

    ``delta_time`` is ``(time, scanline)`` in some S5P L2 products (NO2, CO, CH4) and per pixel, ``(time, scanline,
    ground_pixel)``, in others (SO2, O3, HCHO, CLOUD; HARP's ``s5p_delta_time_num_dims``). Per pixel, the time of
    a scanline is the earliest valid time of its pixels (they are measured together; fill values are skipped); a
    scanline with no valid time is NaT.
    """
    tvar = _variable(nc, path, PRODUCT, "time", "the scanline times")
    dvar = _variable(nc, path, PRODUCT, "delta_time", "the scanline times")
    factor, base = _units_since(path, "PRODUCT/time", str(attr(tvar, "units", "")))
    t_ref = base + np.timedelta64(int(round(float(_read_raw(path, tvar, (0,), "PRODUCT/time")) * factor * 1e9)), "ns")
    per_pixel = dvar.ndim >= 3
    check_dimensions(path, dvar, "PRODUCT/delta_time", DIMENSIONS if per_pixel else DIMENSIONS[:2])
    if dvar.ndim > 3:
        raise GranuleError(path, f"variable PRODUCT/delta_time has {dvar.ndim} dimensions, expected 2 or 3")
    _check_shape(path, "PRODUCT/delta_time", dvar.shape, (1,))
    dfactor, dbase = _units_since(path, "PRODUCT/delta_time", str(attr(dvar, "units", "")), default_base=t_ref)
    index = (0, window, slice(None)) if per_pixel else (0, window)
    _prefetch(nc, dvar, window)
    raw = _read_raw(path, dvar, index, "PRODUCT/delta_time")
    delta = _decode_time(dvar, raw)
    if per_pixel:
        with np.errstate(invalid="ignore"):
            delta = np.fmin.reduce(delta, axis=1) if delta.ndim == 2 and delta.shape[1] else np.full(n_rows, np.nan)
    if delta.ndim != 1 or delta.size != n_rows:
        raise GranuleError(path, f"variable PRODUCT/delta_time holds {delta.size} scanline times, expected {n_rows}")
    known = np.isfinite(delta)
    ns = np.zeros(n_rows, dtype="int64")
    ns[known] = np.round(delta[known] * dfactor * 1e9).astype("int64")
    times = dbase + ns.astype("timedelta64[ns]")
    times[~known] = np.datetime64("NaT")
    return times


def _decode_time(var: h5nc.Variable, raw: np.ndarray) -> np.ndarray:
    """``delta_time`` as float64 with NaN where it holds its fill value (or the netCDF default fill)."""
    out = raw.astype(np.float64)
    fill = attr(var, "_FillValue", netCDF4.default_fillvals.get(raw.dtype.str[1:]))
    if fill is not None:
        out[raw == np.asarray(fill, dtype=raw.dtype)] = np.nan
    return out


# --- public API --------------------------------------------------------------------------------------------------


def _check_names(path, variables: Sequence[str]) -> list[str]:
    names = [variables] if isinstance(variables, str) else list(variables)
    unknown = [n for n in names if n not in VARIABLES]
    if unknown:
        raise GranuleError(
            path,
            f"unknown TROPOMI variable {', '.join(map(repr, unknown))}; known variables: {', '.join(VARIABLES)}",
        )
    return list(dict.fromkeys(names))


def _level_of(name: str) -> str | None:
    """The optional field of a canonical name, None for the fields every processor writes.

    ``so2_7km_precision`` -> ``7km``; ``qa_value_layer_height`` -> ``layer_height``.
    """
    if VARIABLES.get(name, ("",))[0] == LAYER_HEIGHT:
        return "layer_height"
    parts = name.split("_")
    return parts[1] if len(parts) > 1 and parts[0] == "so2" and parts[1] in BOX_LEVELS else None


def processor_version_tuple(text: object) -> tuple[int, ...] | None:
    """``'01.01.07'`` (the ``processor_version`` attribute) or ``'010107'`` (the file name's field) -> (1, 1, 7).

    None when the text is not a version.
    """
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)+", text):
        return tuple(int(p) for p in text.split("."))
    if re.fullmatch(r"\d{6}", text):
        return int(text[:2]), int(text[2:4]), int(text[4:])
    return None


def _processor_version(nc: h5nc.Dataset, path: str) -> str:
    """The granule's processor version as ``NN.NN.NN``: the root attribute, else the file name's field, else ''."""
    version = str(_root(nc, "processor_version", "")).strip()
    if version:
        return version
    from app.data.filenames import parse_filename

    try:
        field = str(parse_filename(path, "tropomi_so2").get("processor") or "")
    except GranuleError:
        return ""
    parsed = processor_version_tuple(field.zfill(6)) if field.isdigit() else None
    return ".".join(f"{p:02d}" for p in parsed) if parsed else ""


def _unavailable_reason(nc: h5nc.Dataset, path: str, level: str) -> str | None:
    """Why the granule has no column for box ``level`` (or no SO2 layer height), or None when it has it."""
    group, var_name = VARIABLES[f"so2_{level}"]
    node = nc
    for part in group.split("/"):
        node = node.groups.get(part) if node is not None else None
    if node is not None and var_name in node.variables:
        return None
    version = _processor_version(nc, path)
    since = _FIRST_WRITTEN[level]
    parsed = processor_version_tuple(version)
    since_text = ".".join(f"{p:02d}" for p in since)
    if parsed is not None and parsed < since:
        what = "SO2 layer height" if level == "layer_height" else f"{level.replace('km', ' km')} box-profile column"
        return f"processor version {version} predates it (the {what} comes with processor {since_text})"
    which = f"processor version {version}" if version else "an unknown processor version"
    return f"variable {var_name} is missing from group {group} (the file is from {which})"


def unavailable_levels(nc: h5nc.Dataset, path: str, levels=BOX_LEVELS) -> dict[str, str]:
    """Box level -> the reason its column is missing, for the levels the open granule ``nc`` does not have.

    ``levels`` may name ``"layer_height"`` too (the SO2 layer height, from processor 02.05.00).
    """
    reasons = {level: _unavailable_reason(nc, path, level) for level in levels}
    return {level: reason for level, reason in reasons.items() if reason is not None}


def _km_factor(path: str, var: h5nc.Variable, where: str) -> float:
    """Factor from the height variable's ``units`` to km (the real product writes m)."""
    units = str(attr(var, "units", "m")).strip().lower()
    if units not in _KM_PER_UNIT:
        raise GranuleError(path, f"variable {where} has units {units!r}, expected a height in m or km")
    return _KM_PER_UNIT[units]


def _du_factor(path: str, var: h5nc.Variable, where: str) -> float:
    """The variable's own factor to DU; the product constant, said once per file and variable, when it has none."""
    if _DU_ATTR in var.ncattrs():
        factor = float(np.asarray(attr(var, _DU_ATTR)).ravel()[0])
        if np.isfinite(factor) and factor > 0:
            return factor
        problem = f"has {_DU_ATTR} = {factor!r}, not a positive number"
    else:
        problem = f"has no {_DU_ATTR} attribute"
    say_once(f"{path}\0{where}", f"{Path(path).name}: variable {where} {problem}; using the product constant "
             f"{DU_PER_MOL_M2} DU per mol m-2 (1 DU = 4.4615e-4 mol m-2)", logger)
    return DU_PER_MOL_M2


def _read_field(nc, path: str, name: str, group: str, var_name: str, window: slice, shape: tuple) -> np.ndarray:
    level = _level_of(name)
    if level is not None:
        reason = _unavailable_reason(nc, path, level)
        if reason is not None:
            raise LevelUnavailable(path, level, reason, variable=name)
    var = _variable(nc, path, group, var_name, name)
    where = f"{group}/{var_name}"
    check_dimensions(path, var, where, DIMENSIONS + (("corner",) if name.endswith("_bounds") else ()))
    _check_shape(path, where, var.shape[1:], shape[1:])
    _prefetch(nc, var, window)
    data = _decode(path, var, _read_raw(path, var, (0, window) + (slice(None),) * (var.ndim - 2), where), where)
    if UNITS.get(name) == "DU":
        data = data * np.float32(_du_factor(path, var, where))
    elif UNITS.get(name) == "km":
        data = data * np.float32(_km_factor(path, var, where))
    return data


def read_swath(
    path: str | Path,
    variables: Sequence[str] | str = ("so2_7km",),
    scanlines: slice | None = None,
    *,
    with_bounds: bool = True,
) -> xr.Dataset:
    """Read a TROPOMI L2 SO2 granule as the canonical Swath.

    Parameters
    ----------
    path : str or Path
        The S5P L2 SO2 file.
    variables : sequence of str
        Canonical names (keys of :data:`VARIABLES`): ``so2_pbl``, ``so2_1km``, ``so2_7km``, ``so2_15km`` (DU),
        ``so2_3km`` (processor 02.08.00 on), their ``_precision`` (DU), ``qa_value`` (0–1), ``solar_zenith_angle``,
        ``viewing_zenith_angle``, ``so2_detection_flag``, ``cloud_fraction``, and from processor 02.05.00 the SO2
        layer height ``so2_layer_height`` (km: the file's ``sulfurdioxide_layer_height`` converted from its
        ``units``, m in the real product), its ``_precision`` (km) and ``qa_value_layer_height`` (0–1).
    scanlines : slice, optional
        A window of scanlines to read; all by default.
    with_bounds : bool
        Also read the pixel corners (``latitude_bounds``, ``longitude_bounds``).

    Returns
    -------
    xarray.Dataset with dims ``(scanline, ground_pixel[, corner])``, coordinates ``latitude``, ``longitude``,
    ``time`` (per scanline) and the bounds, float32 variables with NaN where the file has fill values.
    """
    names = _check_names(path, variables)
    path_s = str(path)
    window = scanlines if scanlines is not None else slice(None)
    if not isinstance(window, slice):
        raise GranuleError(path, f"scanlines must be a slice, got {scanlines!r}")
    with _open(path) as nc:
        lat_var = _variable(nc, path_s, PRODUCT, "latitude", "the pixel latitudes")
        if lat_var.ndim != 3:
            raise GranuleError(path, f"variable PRODUCT/latitude has {lat_var.ndim} dimensions, expected 3")
        check_dimensions(path, lat_var, "PRODUCT/latitude")
        full = lat_var.shape
        n_rows = len(range(*window.indices(full[1])))
        shape = (n_rows, full[2])
        coords: dict[str, Any] = {}
        for name, (group, var_name) in GEOLOCATION.items():
            if name.endswith("_bounds") and not with_bounds:
                continue
            dims = ("scanline", "ground_pixel", "corner") if name.endswith("_bounds") else ("scanline", "ground_pixel")
            data = _read_field(nc, path_s, name, group, var_name, window, (1,) + full[1:])
            coords[name] = (dims, data, {"units": "degrees_north" if "lat" in name else "degrees_east"})
        coords["time"] = ("scanline", _scanline_times(nc, path_s, window, n_rows))
        data_vars = {}
        for name in names:
            group, var_name = VARIABLES[name]
            data = _read_field(nc, path_s, name, group, var_name, window, (1,) + full[1:])
            attrs = {"units": UNITS[name], "source_variable": f"{group}/{var_name}"}
            data_vars[name] = (("scanline", "ground_pixel"), data.reshape(shape), attrs)
        attrs = _swath_attrs(nc, path_s)
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)  # inside: a size mismatch is a GranuleError


def _root(nc: h5nc.Dataset, key: str, default=None):
    return attr(nc, key, default)


def _orbit(nc: h5nc.Dataset, path: str) -> int:
    orbit = _root(nc, "orbit")
    if orbit is None:
        from app.data.filenames import parse_filename

        return int(parse_filename(path, "tropomi_so2")["orbit"])
    return int(np.asarray(orbit).ravel()[0])


def _swath_attrs(nc: h5nc.Dataset, path: str) -> dict[str, Any]:
    for key in ("time_coverage_start", "time_coverage_end"):
        if key not in nc.ncattrs():
            raise GranuleError(path, f"the global attribute {key} is missing")
    return {
        "platform": str(_root(nc, "platform", "S5P")),
        "product": "TROPOMI_L2_SO2",
        "orbit": _orbit(nc, path),
        "time_coverage_start": str(attr(nc, "time_coverage_start")),
        "time_coverage_end": str(attr(nc, "time_coverage_end")),
        "processor_version": _processor_version(nc, path),
        "ground_pixel_step": _ground_pixel_step(nc),
        "source": path,
    }


def _ground_pixel_step(nc: h5nc.Dataset) -> int:
    """Real ground pixels per stored one: 1 for real files, the decimation of a reduced sample file.

    Filters that drop the N outermost ground pixels of the 450 need it (they drop N / step stored pixels).
    """
    node = nc.groups.get("METADATA")
    node = node.groups.get("ALGORITHM_SETTINGS") if node is not None else None
    if node is None or "ground_pixel_step" not in node.ncattrs():
        return 1
    return int(np.asarray(attr(node, "ground_pixel_step")).ravel()[0])


def _iso_to_datetime64(path: str, key: str, text: str) -> np.datetime64:
    try:
        return np.datetime64(text.strip().rstrip("Z"), "ns")
    except ValueError:
        raise GranuleError(path, f"the global attribute {key} = {text!r} is not an ISO time") from None


def _footprint(nc: h5nc.Dataset) -> np.ndarray | None:
    node = nc
    for part in _FOOTPRINT_GROUP.split("/"):
        if part not in node.groups:
            return None
        node = node.groups[part]
    if "gml:posList" not in node.ncattrs():
        return None
    values = np.array(str(attr(node, "gml:posList")).split(), dtype=float)
    return values.reshape(-1, 2) if values.size % 2 == 0 and values.size else None


#: The public name of :func:`_footprint`: the outline ring ``(n, 2)`` of (lat, lon) of an open granule, or None.
footprint_of = _footprint


def pixel_coordinates(nc: h5nc.Dataset, path: str) -> tuple[h5nc.Variable, h5nc.Variable]:
    """``PRODUCT/latitude`` and ``PRODUCT/longitude`` of an open granule, their dimensions and shapes checked.

    Nothing is read but the variables' headers. A file without them, or with them of another layout, is a
    :class:`GranuleError` naming the file and what is wrong.
    """
    group = nc.groups.get(PRODUCT)
    if group is None or "latitude" not in group.variables or "longitude" not in group.variables:
        raise GranuleError(path, "has no PRODUCT/latitude and PRODUCT/longitude: not a TROPOMI L2 file")
    lat_var, lon_var = group.variables["latitude"], group.variables["longitude"]
    if lat_var.ndim != 3 or lon_var.shape != lat_var.shape:
        raise GranuleError(path, f"PRODUCT/latitude has shape {lat_var.shape} and PRODUCT/longitude "
                                 f"{lon_var.shape}, expected both (1, scanline, ground_pixel)")
    check_dimensions(path, lat_var, "PRODUCT/latitude")
    check_dimensions(path, lon_var, "PRODUCT/longitude")
    return lat_var, lon_var


def read_centres(nc: h5nc.Dataset, path: str, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres ``(latitude, longitude)`` of a window of scanlines, float64 degrees, NaN at fill values.

    Only the chunks of the two variables that hold those scanlines are read.
    """
    lat_var, lon_var = pixel_coordinates(nc, path)
    out = []
    for var, where in ((lat_var, "PRODUCT/latitude"), (lon_var, "PRODUCT/longitude")):
        _prefetch(nc, var, rows)
        raw = _read_raw(path, var, (0, rows, slice(None)), where)
        out.append(_decode(path, var, raw, where).astype(np.float64))
    return out[0], out[1]


def satellite_altitude_km(nc: h5nc.Dataset, path: str) -> float | None:
    """The satellite's greatest height over the ground in the granule (``GEOLOCATIONS/satellite_altitude``), km.

    None when the file does not have it or it holds no plausible height (100 km to 40,000 km).
    """
    group = nc
    for part in GEOLOCATIONS.split("/"):
        group = group.groups.get(part) if group is not None else None
    if group is None or "satellite_altitude" not in group.variables:
        return None
    var = group.variables["satellite_altitude"]
    where = f"{GEOLOCATIONS}/satellite_altitude"
    if var.ndim != 2:
        return None
    _prefetch(nc, var, slice(None))
    values = _decode(path, var, _read_raw(path, var, (0, slice(None)), where), where).astype(np.float64)
    factor = _KM_PER_UNIT.get(str(attr(var, "units", "m")).strip().lower())
    if factor is None or not values.size or not np.isfinite(values).all():
        return None
    height = float(values.max()) * factor
    return height if 100.0 <= height <= 40_000.0 else None


def satellite_track(nc: h5nc.Dataset, path: str) -> tuple[np.ndarray, np.ndarray] | str:
    """The sub-satellite point of every scanline, ``(latitude, longitude)`` float64 degrees, of an open granule.

    ``GEOLOCATIONS/satellite_latitude`` and ``satellite_longitude`` (time, scanline): a few KB, where the pixel
    centres are MB. Returns instead a sentence saying why they cannot be used (absent, of another shape, holding
    fill values or impossible values): callers then find what they need from the pixels.
    """
    group = nc
    for part in GEOLOCATIONS.split("/"):
        group = group.groups.get(part) if group is not None else None
    names = ("satellite_latitude", "satellite_longitude")
    if group is None or any(name not in group.variables for name in names):
        return f"{GEOLOCATIONS} has no satellite_latitude and satellite_longitude"
    n_rows = pixel_coordinates(nc, path)[0].shape[1]
    out = []
    for name in names:
        var = group.variables[name]
        if tuple(var.dimensions) != DIMENSIONS[:2] or tuple(var.shape) != (1, n_rows):
            return (f"{GEOLOCATIONS}/{name} has dimensions ({', '.join(var.dimensions)}) and shape {var.shape}, "
                    f"expected (time, scanline) and (1, {n_rows})")
        _prefetch(nc, var, slice(None))
        values = _decode(path, var, _read_raw(path, var, (0, slice(None)), f"{GEOLOCATIONS}/{name}"),
                         f"{GEOLOCATIONS}/{name}").astype(np.float64)
        limit = 90.0 if name == "satellite_latitude" else 540.0
        if values.size and not (np.isfinite(values).all() and (np.abs(values) <= limit).all()):
            return f"{GEOLOCATIONS}/{name} holds fill values or values out of range"
        out.append(values)
    return out[0], out[1]


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The cheap facts of a granule, read from its attributes and dimensions only (no pixel arrays).

    Keys: ``source``, ``platform``, ``product``, ``orbit``, ``processor_version``, ``ground_pixel_step`` (1 for real
    files; the decimation of a reduced sample file), ``time_coverage_start`` /
    ``time_coverage_end`` (ISO strings) and ``start`` / ``end`` (``datetime64[ns]``), ``lat_min``, ``lat_max``,
    ``lon_min``, ``lon_max`` (the ``geospatial_*`` attributes; NaN when absent), ``n_scanlines``,
    ``n_ground_pixels``, ``footprint``: the swath outline as an ``(n, 2)`` array of (lat, lon) from the
    product's GML ``posList`` metadata, or None, ``unavailable_levels``: box level (``"1km"``, ``"3km"``,
    ``"7km"``, ``"15km"``) -> the reason the file has no column for it (e.g. its processor version predates it),
    and ``unavailable_layers``: ``{"layer_height": reason}`` when the file has no SO2 layer height, else ``{}``.
    """
    path_s = str(path)
    with _open(path) as nc:
        attrs = _swath_attrs(nc, path_s)
        prod = _group(nc, path_s, PRODUCT, "the granule's dimensions")
        dims = prod.dimensions
        for dim in ("scanline", "ground_pixel"):
            if dim not in dims:
                raise GranuleError(path, f"dimension {dim} is missing from group {PRODUCT}")
        out = {
            **attrs,
            "start": _iso_to_datetime64(path_s, "time_coverage_start", attrs["time_coverage_start"]),
            "end": _iso_to_datetime64(path_s, "time_coverage_end", attrs["time_coverage_end"]),
            "n_scanlines": len(dims["scanline"]),
            "n_ground_pixels": len(dims["ground_pixel"]),
            "footprint": _footprint(nc),
            "unavailable_levels": unavailable_levels(nc, path_s),
            "unavailable_layers": unavailable_levels(nc, path_s, ("layer_height",)),
        }
        for key in ("lat_min", "lat_max", "lon_min", "lon_max"):
            value = _root(nc, f"geospatial_{key}", np.nan)
            out[key] = float(np.asarray(value).ravel()[0])
    return out
