"""NWC SAF GEO cloud top temperature and height (CTTH, netCDF4) -> canonical CloudTop.

The format (NWC/GEO v2018, v2021 and v2025 product output, as satpy's ``nwcsaf-geo`` reader reads it)
------------------------------------------------------------------------------------------------------
File name ``S_NWC_CTTH_{platform}_{region}_{YYYYmmddTHHMMSS}Z.nc`` (``MSG4``, ``GOES16``, ``HIMAWARI8`` …;
``MSG-N``, ``FULL-DISK`` …; the nominal slot time). Dimensions ``ny``, ``nx`` (the imager's fixed grid, row 0
at the north), variables ``(ny, nx)`` each decoded with its own ``scale_factor``/``add_offset``/``_FillValue``
(values outside ``valid_range`` are invalid too). NWC/GEO v2025 files put a leading ``time`` dimension of length
1 on every variable, ``(time, ny, nx)``; the reader takes either and refuses any other shape with a
:class:`GranuleError` naming the file and the variable. v2025 files may lack ``nominal_product_time``: the slot
is then ``time_coverage_start``.

=================  =======  ==========================================================================
ctth_alti          uint16   cloud top height above sea level, m: stored 0–27000, offset −2000 m
ctth_pres          uint16   cloud top pressure, Pa: stored 0–11000, scale 10
ctth_tempe         uint16   cloud top temperature, K: stored 0–20000, scale 0.01, offset 130 K
ctth_effectiv      uint8    effective cloudiness (fraction × emissivity), 0–1: stored 0–100, scale 0.01
ctth_method        uint8    retrieval method (flag values, see ``flag_meanings``)
ctth_conditions    uint16   processing conditions (bit fields: illumination, input data available)
ctth_quality       uint16   quality (bit field: 1 good, 2 questionable)
ctth_status_flag   uint16   status (bit 0 height retrieved, bit 1 semi-transparent cloud)
=================  =======  ==========================================================================

with RGB palettes ``*_pal (pal_colors_250, pal_rgb)`` for the first four. Geolocation: the global attribute
``gdal_projection`` (a PROJ string; ``+a``/``+b``/``+h`` in metres, or in km when ``+a`` < 10,000) and the outer
corners of the grid ``gdal_xgeo_up_left``, ``gdal_ygeo_up_left``, ``gdal_xgeo_low_right``, ``gdal_ygeo_low_right``
(metres of that projection): satpy's area. Also ``satellite_identifier``, ``sub-satellite_longitude``,
``nominal_product_time``, ``time_coverage_start``/``_end`` (``%Y-%m-%dT%H:%M:%SZ``) and ``source``.

The canonical CloudTop
----------------------
:func:`read_ctth` returns an ``xarray.Dataset`` with dims ``(y, x)`` and coords ``x``, ``y`` (float64 metres of
the geostationary projection at pixel centres, as the GeoScene of the same imager), variables
``cloud_top_height`` (m above sea level), ``cloud_top_temperature`` (K), ``cloud_top_pressure`` (hPa),
``effective_cloudiness`` (0–1), all float32 with NaN where clear or off the disk. Attrs: ``platform``
(``GOES-16``), ``platform_id`` (``G16``), ``sensor``, ``sub_lon``, ``start_time``/``end_time`` (the nominal slot,
ISO UTC), ``observation_start_time``/``observation_end_time``, ``region``, ``product`` (``NWCSAF_GEO_CTTH``),
``projection`` (``geos``), ``h``, ``a``, ``b``, ``lon_0``, ``sweep``, ``crs_proj4``, ``source`` (the path).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.core.timefmt import iso_utc
from app.data.errors import GranuleError
from app.data.filenames import parse_filename
from app.data.geo_bands import FULL_DISK, GEO_PLATFORMS

__all__ = ["read_ctth", "CTTH_ENCODING", "ctth_flag_meanings"]

#: How each CTTH variable is stored: dtype, scale/offset (value = stored × scale + offset), fill, valid range.
CTTH_ENCODING: dict[str, dict] = {
    "ctth_alti": {"dtype": "u2", "scale_factor": 1.0, "add_offset": -2000.0, "_FillValue": 65535,
                  "valid_range": (0, 27000), "units": "m", "standard_name": "cloud_top_altitude",
                  "long_name": "Cloud Top Altitude (above sea level)"},
    "ctth_pres": {"dtype": "u2", "scale_factor": 10.0, "add_offset": 0.0, "_FillValue": 65535,
                  "valid_range": (0, 11000), "units": "Pa", "standard_name": "air_pressure_at_cloud_top",
                  "long_name": "Cloud Top Pressure"},
    "ctth_tempe": {"dtype": "u2", "scale_factor": 0.01, "add_offset": 130.0, "_FillValue": 65535,
                   "valid_range": (0, 20000), "units": "K", "standard_name": "air_temperature_at_cloud_top",
                   "long_name": "Cloud Top Temperature"},
    "ctth_effectiv": {"dtype": "u1", "scale_factor": 0.01, "add_offset": 0.0, "_FillValue": 255,
                      "valid_range": (0, 100), "units": "1", "standard_name": "effective_cloud_area_fraction",
                      "long_name": "Effective Cloudiness"},
    "ctth_method": {"dtype": "u1", "scale_factor": 1.0, "add_offset": 0.0, "scaled": False, "_FillValue": 255,
                    "valid_range": (0, 10), "long_name": "Retrieval method used for the cloud top height"},
    "ctth_conditions": {"dtype": "u2", "scale_factor": 1.0, "add_offset": 0.0, "scaled": False,
                        "_FillValue": 65535, "valid_range": (0, 255),
                        "long_name": "Processing conditions for CTTH"},
    "ctth_quality": {"dtype": "u2", "scale_factor": 1.0, "add_offset": 0.0, "scaled": False, "_FillValue": 65535,
                     "valid_range": (0, 7), "long_name": "Quality of the CTTH retrieval"},
    "ctth_status_flag": {"dtype": "u2", "scale_factor": 1.0, "add_offset": 0.0, "scaled": False,
                         "_FillValue": 65535, "valid_range": (0, 3), "standard_name": "cloud_top_altitude status_flag",
                         "long_name": "Status flag of the CTTH retrieval"},
}

_FLAGS = {
    "ctth_method": ("flag_values", list(range(11)), [
        "no_retrieval", "opaque_cloud_using_rttov", "opaque_cloud_not_using_rttov", "intercept_method_10.8_13.4",
        "intercept_method_10.8_6.2", "radiance_ratioing_10.8_13.4", "radiance_ratioing_10.8_6.2",
        "spare_7", "spare_8", "spare_9", "spatial_smoothing"]),
    "ctth_conditions": ("flag_masks", [3, 12, 48, 192], [
        "illumination_1_night_2_day_3_twilight", "sunglint_condition", "satellite_input_data_available",
        "nwp_input_data_available"]),
    "ctth_quality": ("flag_masks", [3, 4], ["retrieval_quality_1_good_2_questionable_3_bad", "bad_input"]),
    "ctth_status_flag": ("flag_masks", [1, 2], ["height_retrieved", "semi_transparent_cloud"]),
}


def ctth_flag_meanings(name: str):
    """(``flag_values`` or ``flag_masks``, values, meanings) of a flag variable, None for a physical one."""
    return _FLAGS.get(name)


_OUTPUT = {
    "cloud_top_height": ("ctth_alti", 1.0, "m", "cloud_top_altitude", "cloud top height above sea level"),
    "cloud_top_temperature": ("ctth_tempe", 1.0, "K", "air_temperature_at_cloud_top", "cloud top temperature"),
    "cloud_top_pressure": ("ctth_pres", 0.01, "hPa", "air_pressure_at_cloud_top", "cloud top pressure"),
    "effective_cloudiness": ("ctth_effectiv", 1.0, "1", "effective_cloud_area_fraction", "effective cloudiness"),
}
_GLOBAL = ("gdal_projection", "gdal_xgeo_up_left", "gdal_ygeo_up_left", "gdal_xgeo_low_right",
           "gdal_ygeo_low_right", "satellite_identifier")


def _decode(path: Path, var, name: str) -> np.ndarray:
    try:
        raw = np.asarray(var[:])  # h5netcdf: the stored values, neither masked nor scaled
    except (RuntimeError, OSError, ValueError) as exc:
        raise GranuleError(path, f"variable {name} cannot be read (truncated file?): {exc}") from None
    attrs = var.ncattrs()
    scale = float(var.getncattr("scale_factor")) if "scale_factor" in attrs else 1.0
    offset = float(var.getncattr("add_offset")) if "add_offset" in attrs else 0.0
    bad = np.zeros(raw.shape, bool)
    if "_FillValue" in attrs:
        bad |= raw == var.getncattr("_FillValue")
    if "valid_range" in attrs:
        lo, hi = np.asarray(var.getncattr("valid_range")).ravel()[:2]
        bad |= (raw < lo) | (raw > hi)
    out = (raw.astype(np.float64) * scale + offset).astype(np.float32)
    out[bad] = np.nan
    return out


def _parse_proj(path: Path, text: str) -> dict:
    try:
        fields = dict(item.lstrip("+").split("=", 1) for item in text.split() if "=" in item)
        a, b, h = float(fields["a"]), float(fields["b"]), float(fields["h"])
        lon_0 = float(fields.get("lon_0", 0.0))
    except (KeyError, ValueError):
        raise GranuleError(path, f"has a gdal_projection without +a, +b, +h: {text!r}") from None
    if fields.get("proj") != "geos":
        raise GranuleError(path, f"is not on a geostationary grid (gdal_projection {text!r})")
    km = a < 10e3
    scale = 1000.0 if km else 1.0
    return {"a": a * scale, "b": b * scale, "h": h * scale, "lon_0": lon_0, "sweep": fields.get("sweep", "y")}


def _time(path: Path, attrs: dict, name: str) -> dt.datetime:
    value = attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise GranuleError(path, f"has no valid global attribute {name} (e.g. 2021-04-12T12:00:00Z)") from None


def _nominal_time(path: Path, attrs: dict) -> dt.datetime:
    """The slot: ``nominal_product_time``; else (v2025 files may lack it) the file name's time; else the scan start."""
    if "nominal_product_time" in attrs:
        return _time(path, attrs, "nominal_product_time")
    try:
        return parse_filename(path, "nwcsaf_ctth")["start"]
    except GranuleError:
        return _time(path, attrs, "time_coverage_start")


def _platform(satellite_id: str):
    for p in GEO_PLATFORMS.values():
        if p.nwcsaf_id == satellite_id:
            return p
    return None


def read_ctth(path: str | Path) -> xr.Dataset:
    """Read an NWC SAF GEO CTTH file into a canonical CloudTop dataset (see the module docstring).

    Raises :class:`GranuleError` naming the file when it cannot be opened (missing, truncated, not netCDF) or
    lacks a variable or attribute the product has.
    """
    from app.data import storage

    path = os.fspath(path) if storage.is_remote(os.fspath(path)) else Path(path)
    if not storage.is_remote(os.fspath(path)) and not path.exists():
        raise GranuleError(path, "does not exist")
    try:
        attrs, data = _read_file(path)
        return _to_dataset(path, attrs, data)
    except GranuleError:
        raise
    except (RuntimeError, OSError, EOFError, KeyError, AttributeError, ValueError, IndexError, TypeError,
            OverflowError, ZeroDivisionError, MemoryError) as exc:
        raise GranuleError(path, f"is not a usable NWC SAF GEO CTTH file ({type(exc).__name__}: {exc})") from None


def _read_file(path: Path | str) -> tuple[dict, dict]:
    """Global attributes and decoded fields, read while holding :data:`~app.core.locks.HDF_LOCK`.

    Through h5netcdf on :func:`app.data.storage.open_binary`: a remote file is read by byte ranges (the header and
    the chunks of the four fields), a local one as a plain file.
    """
    import h5netcdf.legacyapi

    from app.data import storage

    with HDF_LOCK, storage.open_binary(path) as f:
        try:
            nc = h5netcdf.legacyapi.Dataset(f, "r")
        except (OSError, ValueError) as exc:
            raise GranuleError(path, f"cannot be opened as netCDF4 (truncated or not an NWC SAF file?): "
                                     f"{exc}") from None
        try:
            return _read_open(path, nc)
        finally:
            nc.close()


def _check_dims(path: Path, name: str, dims: tuple[str, ...], shape: tuple[int, ...]) -> None:
    """Accept ``(ny, nx)`` (v2018, v2021) and ``(time, ny, nx)`` with one time (v2025); say why anything else fails."""
    if dims == ("ny", "nx"):
        return
    if dims == ("time", "ny", "nx"):
        if shape[0] == 1:
            return
        raise GranuleError(path, f"variable '{name}' has {shape[0]} times (dimension time), expected 1: "
                                 "an NWC SAF GEO v2025 product holds one slot")
    raise GranuleError(path, f"variable '{name}' has dimensions ({', '.join(dims)}), expected (ny, nx) or "
                             "(time, ny, nx): transposed or not an NWC SAF GEO CTTH file")


def _read_open(path: Path, nc) -> tuple[dict, dict]:
    attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
    missing = [name for name in _GLOBAL if name not in attrs]
    if missing:
        raise GranuleError(path, f"has no global attribute {', '.join(missing)}: not an NWC SAF GEO product")
    data = {}
    for out, (name, factor, units, standard, long_name) in _OUTPUT.items():
        if name not in nc.variables:
            raise GranuleError(path, f"has no variable '{name}': not a complete NWC SAF GEO CTTH file")
        var = nc.variables[name]
        _check_dims(path, name, tuple(var.dimensions), var.shape)
        values = _decode(path, var, name).reshape(var.shape[-2:]) * np.float32(factor)
        data[out] = (("y", "x"), values, {"units": units, "standard_name": standard, "long_name": long_name,
                                          "source_variable": name})
    return attrs, data


def _region_of(path: Path | str) -> str:
    name = os.fspath(path).rsplit("/", 1)[-1]
    return name.split("_")[4] if name.count("_") >= 5 else ""


def _to_dataset(path: Path, attrs: dict, data: dict) -> xr.Dataset:
    ny, nx = data["cloud_top_height"][1].shape
    proj = _parse_proj(path, str(attrs["gdal_projection"]))
    x0, y1 = float(attrs["gdal_xgeo_up_left"]), float(attrs["gdal_ygeo_up_left"])
    x1, y0 = float(attrs["gdal_xgeo_low_right"]), float(attrs["gdal_ygeo_low_right"])
    dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
    x = x0 + dx * (np.arange(nx) + 0.5)
    y = y1 - dy * (np.arange(ny) + 0.5)
    sat_id = str(attrs["satellite_identifier"])
    platform = _platform(sat_id)
    nominal = _nominal_time(path, attrs)
    repeat = FULL_DISK[platform.sensor].repeat_minutes if platform else 15
    sub_lon = float(attrs.get("sub-satellite_longitude", proj["lon_0"]))
    out_attrs = {
        "platform": platform.name if platform else sat_id,
        "platform_id": platform.key if platform else sat_id,
        "sensor": platform.sensor if platform else "",
        "sub_lon": round(sub_lon, 6),
        "start_time": iso_utc(nominal),
        "end_time": iso_utc(nominal + dt.timedelta(minutes=repeat)),
        "observation_start_time": iso_utc(_time(path, attrs, "time_coverage_start")),
        "observation_end_time": iso_utc(_time(path, attrs, "time_coverage_end")),
        "region": str(attrs.get("region_name", _region_of(path))),
        "product": "NWCSAF_GEO_CTTH",
        "projection": "geos",
        **proj,
        "crs_proj4": (f"+proj=geos +lon_0={proj['lon_0']:g} +h={proj['h']:.3f} +a={proj['a']:.3f} "
                      f"+b={proj['b']:.5f} +sweep={proj['sweep']} +units=m +no_defs"),
        "source": str(path),
    }
    coords = {
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
    }
    return xr.Dataset(data, coords=coords, attrs=out_attrs)
