"""Read Sentinel-5P TROPOMI L2 SO2 granules into the canonical *Swath* (``docs/architecture.md``).

The reader opens the file with netCDF4 and reads only what is asked for: the geolocation (pixel centres, the
scanline times and, by default, the pixel corners), the requested variables, and only the requested window of
scanlines (the operational files are chunked along ``scanline``, so a window costs the chunks it touches).

Columns are converted from mol m⁻² to DU with each variable's own ``multiplication_factor_to_convert_to_DU``;
``_FillValue`` becomes NaN; ``scale_factor``/``add_offset`` are applied (``qa_value`` 0–100 -> 0–1). Anything wrong
with the file — unreadable, truncated, a group, variable or attribute missing, a variable of the wrong shape —
raises :class:`~app.data.errors.GranuleError` naming the file and what is wrong, never a bare netCDF error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.data.errors import GranuleError

__all__ = ["VARIABLES", "UNITS", "GEOLOCATION", "DIMENSIONS", "read_swath", "read_attrs", "open_granule",
           "check_dimensions"]

PRODUCT = "PRODUCT"
GEOLOCATIONS = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
DETAILED_RESULTS = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
INPUT_DATA = "PRODUCT/SUPPORT_DATA/INPUT_DATA"
_COLUMN = "sulfurdioxide_total_vertical_column"

#: Canonical variable name -> (group, variable) in the S5P L2 SO2 file.
VARIABLES: dict[str, tuple[str, str]] = {
    "so2_pbl": (PRODUCT, _COLUMN),
    "so2_1km": (DETAILED_RESULTS, f"{_COLUMN}_1km"),
    "so2_7km": (DETAILED_RESULTS, f"{_COLUMN}_7km"),
    "so2_15km": (DETAILED_RESULTS, f"{_COLUMN}_15km"),
    "so2_pbl_precision": (PRODUCT, f"{_COLUMN}_precision"),
    "so2_1km_precision": (DETAILED_RESULTS, f"{_COLUMN}_1km_precision"),
    "so2_7km_precision": (DETAILED_RESULTS, f"{_COLUMN}_7km_precision"),
    "so2_15km_precision": (DETAILED_RESULTS, f"{_COLUMN}_15km_precision"),
    "qa_value": (PRODUCT, "qa_value"),
    "solar_zenith_angle": (GEOLOCATIONS, "solar_zenith_angle"),
    "viewing_zenith_angle": (GEOLOCATIONS, "viewing_zenith_angle"),
    "so2_detection_flag": (DETAILED_RESULTS, "sulfurdioxide_detection_flag"),
    "cloud_fraction": (INPUT_DATA, "cloud_fraction_crb"),
}

#: Units of each canonical variable; "DU" ones are converted with the file's own factor.
UNITS: dict[str, str] = {
    **{name: "DU" for name in VARIABLES if name.startswith("so2_") and name != "so2_detection_flag"},
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


#: What netCDF4/HDF5 raise on a damaged file, or numpy on values of the wrong kind: a GranuleError, never these.
_READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError,
                UnicodeError, MemoryError)


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[netCDF4.Dataset]:
    """The open file, read while holding :data:`~app.core.locks.HDF_LOCK` (HDF5 is not thread-safe).

    Everything done inside the ``with`` runs under the lock; a failure of netCDF4/HDF5 or of the values read
    becomes a :class:`GranuleError` naming the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise GranuleError(path, "the file does not exist" if not path.exists() else "is not a regular file")
    with HDF_LOCK:
        try:
            nc = netCDF4.Dataset(path, "r")
        except _READ_ERRORS as exc:
            raise GranuleError(
                path, f"cannot be opened as a netCDF-4 file (truncated or not netCDF?): {_why(exc)}"
            ) from None
        try:
            nc.set_auto_maskandscale(False)
            yield nc
        except GranuleError:
            raise
        except _READ_ERRORS as exc:
            raise GranuleError(
                path, f"cannot be read (truncated or corrupt file?): {type(exc).__name__}: {_why(exc)}"
            ) from None
        finally:
            with contextlib.suppress(*_READ_ERRORS):
                nc.close()


#: The public name of :func:`_open`, for the granule index's cheap geolocation reads.
open_granule = _open


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # no file name: the GranuleError names it, relative where shown
        return f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc.strerror)
    text = str(exc).strip() or type(exc).__name__
    return text.split(": b'")[0]  # netCDF4 appends the file name as bytes; the GranuleError names it already


def _group(nc: netCDF4.Dataset, path: str, group: str, needed_for: str) -> netCDF4.Group:
    node = nc
    for part in group.split("/"):
        if part not in node.groups:
            raise GranuleError(path, f"group {group} is missing (needed for {needed_for})")
        node = node.groups[part]
    return node


def _variable(nc: netCDF4.Dataset, path: str, group: str, name: str, needed_for: str) -> netCDF4.Variable:
    grp = _group(nc, path, group, needed_for)
    if name not in grp.variables:
        raise GranuleError(path, f"variable {name} is missing from group {group} (needed for {needed_for})")
    return grp.variables[name]


def _read_raw(path: str, var: netCDF4.Variable, index: tuple, where: str) -> np.ndarray:
    try:
        return np.asarray(var[index])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise GranuleError(path, f"reading variable {where} failed (truncated or corrupt file?): {_why(exc)}") from None


def _decode(path: str, var: netCDF4.Variable, raw: np.ndarray, where: str) -> np.ndarray:
    """Fill -> NaN, then scale_factor / add_offset; float32 out."""
    attrs = var.ncattrs()
    out = raw.astype(np.float32 if raw.dtype.itemsize <= 4 else np.float64)
    bad = ~np.isfinite(out)
    fill = var.getncattr("_FillValue") if "_FillValue" in attrs else netCDF4.default_fillvals.get(raw.dtype.str[1:])
    if fill is not None:
        bad |= raw == np.asarray(fill, dtype=raw.dtype)
    if "scale_factor" in attrs or "add_offset" in attrs:
        scale = float(var.getncattr("scale_factor")) if "scale_factor" in attrs else 1.0
        offset = float(var.getncattr("add_offset")) if "add_offset" in attrs else 0.0
        out = out * np.float32(scale) + np.float32(offset)
    out[bad] = np.nan
    return out.astype(np.float32, copy=False)


def _check_shape(path: str, where: str, shape: tuple, expected: tuple) -> None:
    if tuple(shape[: len(expected)]) != tuple(expected):
        raise GranuleError(path, f"variable {where} has shape {tuple(shape)}, expected {tuple(expected)} first")


def check_dimensions(path, var: netCDF4.Variable, where: str, expected: Sequence[str] = DIMENSIONS) -> None:
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


def _scanline_times(nc: netCDF4.Dataset, path: str, window: slice, n_rows: int) -> np.ndarray:
    tvar = _variable(nc, path, PRODUCT, "time", "the scanline times")
    dvar = _variable(nc, path, PRODUCT, "delta_time", "the scanline times")
    factor, base = _units_since(path, "PRODUCT/time", getattr(tvar, "units", ""))
    t_ref = base + np.timedelta64(int(round(float(_read_raw(path, tvar, (0,), "PRODUCT/time")) * factor * 1e9)), "ns")
    check_dimensions(path, dvar, "PRODUCT/delta_time", DIMENSIONS[:2])
    _check_shape(path, "PRODUCT/delta_time", dvar.shape, (1,))
    dfactor, dbase = _units_since(path, "PRODUCT/delta_time", getattr(dvar, "units", ""), default_base=t_ref)
    delta = _read_raw(path, dvar, (0, window), "PRODUCT/delta_time").astype(np.float64)
    if delta.ndim != 1 or delta.size != n_rows:
        raise GranuleError(path, f"variable PRODUCT/delta_time holds {delta.size} scanline times, expected {n_rows}")
    return dbase + np.round(delta * dfactor * 1e9).astype("int64").astype("timedelta64[ns]")


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


def _read_field(nc, path: str, name: str, group: str, var_name: str, window: slice, shape: tuple) -> np.ndarray:
    var = _variable(nc, path, group, var_name, name)
    where = f"{group}/{var_name}"
    check_dimensions(path, var, where, DIMENSIONS + (("corner",) if name.endswith("_bounds") else ()))
    _check_shape(path, where, var.shape[1:], shape[1:])
    data = _decode(path, var, _read_raw(path, var, (0, window) + (slice(None),) * (var.ndim - 2), where), where)
    if UNITS.get(name) == "DU":
        if _DU_ATTR not in var.ncattrs():
            raise GranuleError(path, f"variable {where} has no {_DU_ATTR} attribute (needed for {name} in DU)")
        data = data * np.float32(var.getncattr(_DU_ATTR))
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
        their ``_precision`` (DU), ``qa_value`` (0–1), ``solar_zenith_angle``, ``viewing_zenith_angle``,
        ``so2_detection_flag``, ``cloud_fraction``.
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


def _root(nc: netCDF4.Dataset, key: str, default=None):
    return nc.getncattr(key) if key in nc.ncattrs() else default


def _orbit(nc: netCDF4.Dataset, path: str) -> int:
    orbit = _root(nc, "orbit")
    if orbit is None:
        from app.data.filenames import parse_filename

        return int(parse_filename(path, "tropomi_so2")["orbit"])
    return int(np.asarray(orbit).ravel()[0])


def _swath_attrs(nc: netCDF4.Dataset, path: str) -> dict[str, Any]:
    for key in ("time_coverage_start", "time_coverage_end"):
        if key not in nc.ncattrs():
            raise GranuleError(path, f"the global attribute {key} is missing")
    return {
        "platform": str(_root(nc, "platform", "S5P")),
        "product": "TROPOMI_L2_SO2",
        "orbit": _orbit(nc, path),
        "time_coverage_start": str(nc.getncattr("time_coverage_start")),
        "time_coverage_end": str(nc.getncattr("time_coverage_end")),
        "processor_version": str(_root(nc, "processor_version", "")),
        "ground_pixel_step": _ground_pixel_step(nc),
        "source": path,
    }


def _ground_pixel_step(nc: netCDF4.Dataset) -> int:
    """Real ground pixels per stored one: 1 for real files, the decimation of a reduced sample file.

    Filters that drop the N outermost ground pixels of the 450 need it (they drop N / step stored pixels).
    """
    node = nc.groups.get("METADATA")
    node = node.groups.get("ALGORITHM_SETTINGS") if node is not None else None
    if node is None or "ground_pixel_step" not in node.ncattrs():
        return 1
    return int(np.asarray(node.getncattr("ground_pixel_step")).ravel()[0])


def _iso_to_datetime64(path: str, key: str, text: str) -> np.datetime64:
    try:
        return np.datetime64(text.strip().rstrip("Z"), "ns")
    except ValueError:
        raise GranuleError(path, f"the global attribute {key} = {text!r} is not an ISO time") from None


def _footprint(nc: netCDF4.Dataset) -> np.ndarray | None:
    node = nc
    for part in _FOOTPRINT_GROUP.split("/"):
        if part not in node.groups:
            return None
        node = node.groups[part]
    if "gml:posList" not in node.ncattrs():
        return None
    values = np.array(str(node.getncattr("gml:posList")).split(), dtype=float)
    return values.reshape(-1, 2) if values.size % 2 == 0 and values.size else None


def read_attrs(path: str | Path) -> dict[str, Any]:
    """The cheap facts of a granule, read from its attributes and dimensions only (no pixel arrays).

    Keys: ``source``, ``platform``, ``product``, ``orbit``, ``processor_version``, ``ground_pixel_step`` (1 for real
    files; the decimation of a reduced sample file), ``time_coverage_start`` /
    ``time_coverage_end`` (ISO strings) and ``start`` / ``end`` (``datetime64[ns]``), ``lat_min``, ``lat_max``,
    ``lon_min``, ``lon_max`` (the ``geospatial_*`` attributes; NaN when absent), ``n_scanlines``,
    ``n_ground_pixels``, and ``footprint``: the swath outline as an ``(n, 2)`` array of (lat, lon) from the
    product's GML ``posList`` metadata, or None.
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
        }
        for key in ("lat_min", "lat_max", "lon_min", "lon_max"):
            value = _root(nc, f"geospatial_{key}", np.nan)
            out[key] = float(np.asarray(value).ravel()[0])
    return out
