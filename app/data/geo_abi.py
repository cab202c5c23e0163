"""GOES-R ABI L1b radiances (netCDF4, one file per band) of one full-disk slot -> canonical GeoScene.

The format (GOES-R Product User's Guide, L1b, volume 3)
-------------------------------------------------------
File name ``OR_ABI-L1b-RadF-M6C13_G16_s20211021200204_e20211021209512_c20211021209570.nc``: environment (OR),
product and scene (``RadF`` = full disk), scan mode (M6), channel (C01–C16), platform (G16, G17 …), and the
scan start, end and creation times as ``YYYYJJJHHMMSSt`` (day of year, tenths of a second).

- ``Rad(y, x)``: 16-bit integers (``_Unsigned = "true"``) with ``scale_factor``/``add_offset`` to radiance and a
  ``_FillValue`` (2ⁿ − 1 for an n-bit band) outside the Earth disk; radiance units W m⁻² sr⁻¹ µm⁻¹ for bands
  1–6, mW m⁻² sr⁻¹ (cm⁻¹)⁻¹ for bands 7–16. ``DQF(y, x)`` is the quality flag (0 good).
- ``x``, ``y``: scan angles (radians) as 16-bit integers with ``scale_factor``/``add_offset``; metres of the
  ``+proj=geos`` projection are the angles times ``perspective_point_height`` (satpy's convention).
- ``goes_imager_projection``: ``perspective_point_height``, ``semi_major_axis``, ``semi_minor_axis``,
  ``longitude_of_projection_origin``, ``sweep_angle_axis`` (x).
- calibration scalars: reflective bands ``esun`` and ``kappa0`` (= π d² / esun), ``earth_sun_distance_anomaly_in_AU``;
  emissive bands ``planck_fk1``, ``planck_fk2``, ``planck_bc1``, ``planck_bc2``.

Calibration, as satpy's ``abi_l1b`` reader does it: reflectance (%) ``= 100 · L · π d² / esun``; brightness
temperature ``BT = (fk2 / ln(fk1 / L + 1) − bc1) / bc2`` (a radiance ≤ 0 has no temperature: NaN).

The canonical GeoScene
----------------------
:func:`read_abi` returns an ``xarray.Dataset`` with dims ``(y, x)``; coords ``x``, ``y`` (float64 metres of the
projection at pixel centres, x growing east, y growing north; the scan angles are scaled as satpy does, with the
file's ``scale_factor``/``add_offset`` rounded to 6 decimals, so the grids agree to the metre); one float32
variable per channel named by its generic name (``ir_105`` for C13 …, see :mod:`app.data.geo_bands`), in K or %,
NaN off the disk. Attrs: ``platform`` (``GOES-16``), ``platform_id`` (``G16``), ``sensor`` (``abi``), ``sub_lon``
(``nominal_satellite_subpoint_lon``), ``start_time``/``end_time`` (the nominal slot: the scan start rounded down
to the 10-minute slot, ISO UTC), ``observation_start_time``/``observation_end_time`` (``time_coverage_*``),
``projection`` (``geos``), ``h``, ``a``, ``b`` (m), ``lon_0``, ``sweep`` (``x``), ``crs_proj4``, ``source`` (list
of the files read). Bands on finer grids (C02 0.5 km, C01/C03/C05 1 km) are averaged over whole blocks of pixels
onto the coarsest grid asked for.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.data.errors import GranuleError, UserInputError
from app.data.geo_bands import ABI_BANDS, GENERIC_CHANNELS, GEO_PLATFORMS

__all__ = [
    "read_abi",
    "parse_abi_name",
    "abi_file_name",
    "abi_time_string",
    "radiance_to_bt",
    "bt_to_radiance",
    "ABI_GENERIC",
    "GENERIC_ABI",
]

#: ABI band number -> generic channel name.
ABI_GENERIC: dict[int, str] = {n: b.generic for n, b in ABI_BANDS.items()}
#: Generic channel name -> ABI band number.
GENERIC_ABI: dict[str, int] = {g: n for n, g in ABI_GENERIC.items()}

_NAME_RE = re.compile(
    r"^(?P<env>[A-Z]{2})_ABI-L1b-Rad(?P<scene>[A-Z]\d?)-M(?P<mode>\d)C(?P<band>\d\d)_(?P<platform>G\d\d)"
    r"_s(?P<start>\d{14})_e(?P<end>\d{14})_c(?P<created>\d{14})(?:_[^.]*)?\.nc$"
)
_REQUIRED = ("Rad", "x", "y", "goes_imager_projection", "band_id")


def abi_time_string(t: dt.datetime) -> str:
    """``YYYYJJJHHMMSSt``: year, day of year, time, tenths of a second (truncated), as in ABI file names."""
    return f"{t:%Y%j%H%M%S}{t.microsecond // 100000:d}"


def _parse_abi_time(s: str) -> dt.datetime:
    t = dt.datetime.strptime(s[:13], "%Y%j%H%M%S")
    return t + dt.timedelta(microseconds=100000 * int(s[13]))


def abi_file_name(band: int, platform: str, start: dt.datetime, end: dt.datetime, created: dt.datetime,
                  scene: str = "F", mode: int = 6, environment: str = "OR") -> str:
    """The real name of an ABI L1b radiance file."""
    return (f"{environment}_ABI-L1b-Rad{scene}-M{mode}C{band:02d}_{platform}_s{abi_time_string(start)}"
            f"_e{abi_time_string(end)}_c{abi_time_string(created)}.nc")


def parse_abi_name(path: str | Path) -> dict | None:
    """Fields of an ABI L1b file name (band, platform, start, end, created, scene, mode), None if it is not one."""
    m = _NAME_RE.match(Path(path).name)
    if m is None:
        return None
    return {
        "environment": m["env"],
        "scene": m["scene"],
        "mode": int(m["mode"]),
        "band": int(m["band"]),
        "platform": m["platform"],
        "start": _parse_abi_time(m["start"]),
        "end": _parse_abi_time(m["end"]),
        "created": _parse_abi_time(m["created"]),
    }


def radiance_to_bt(radiance, fk1: float, fk2: float, bc1: float, bc2: float) -> np.ndarray:
    """ABI brightness temperature (K) of a radiance (mW m⁻² sr⁻¹ (cm⁻¹)⁻¹); NaN where the radiance is ≤ 0."""
    r = np.asarray(radiance)
    with np.errstate(divide="ignore", invalid="ignore"):
        bt = (fk2 / np.log(fk1 / r + 1) - bc1) / bc2
    return np.where(r > 0, bt, np.nan)


def bt_to_radiance(bt, fk1: float, fk2: float, bc1: float, bc2: float) -> np.ndarray:
    """The inverse of :func:`radiance_to_bt`: radiance (mW m⁻² sr⁻¹ (cm⁻¹)⁻¹) of a brightness temperature (K)."""
    t = np.asarray(bt, dtype=float)
    with np.errstate(over="ignore"):
        return fk1 / np.expm1(fk2 / (bc1 + bc2 * t))


# ------------------------------------------------------------------------------------------------ one band


@dataclass
class _Band:
    path: Path
    band: int
    data: np.ndarray  # float32, K or %
    x_rad: np.ndarray
    y_rad: np.ndarray
    projection: dict
    attrs: dict
    sub_lon: float


def _open(path: Path):
    import netCDF4

    if not path.exists():
        raise GranuleError(path, "does not exist")
    try:
        return netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise GranuleError(path, f"cannot be opened as netCDF4 (truncated or not an ABI L1b file?): {exc}") from None


def _var(nc, path: Path, name: str):
    if name not in nc.variables:
        raise GranuleError(path, f"has no variable '{name}': not a complete ABI L1b radiance file")
    v = nc.variables[name]
    v.set_auto_maskandscale(False)
    return v


def _scalar(nc, path: Path, name: str) -> float:
    v = _var(nc, path, name)
    value = float(np.asarray(v[...]).ravel()[0])
    fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
    return np.nan if fill is not None and value == float(fill) else value


def _scaled_coordinate(nc, path: Path, name: str) -> np.ndarray:
    """Scan angles (radians) of x or y, scaled as satpy does (scale and offset rounded to 6 decimals)."""
    v = _var(nc, path, name)
    raw = np.asarray(v[:]).astype(np.float64)
    scale = round(float(v.getncattr("scale_factor")), 6) if "scale_factor" in v.ncattrs() else 1.0
    offset = round(float(v.getncattr("add_offset")), 6) if "add_offset" in v.ncattrs() else 0.0
    return raw * scale + offset


def _counts_to_radiance(v) -> np.ndarray:
    counts = np.asarray(v[:])
    unsigned = str(v.getncattr("_Unsigned")).lower() == "true" if "_Unsigned" in v.ncattrs() else False
    fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
    if unsigned:
        counts = counts.view(f"u{counts.dtype.itemsize}")
        if fill is not None:
            fill = np.asarray(fill).astype(counts.dtype.str.replace("i", "u"))
    rad = counts.astype(np.float32) * np.float32(v.getncattr("scale_factor")) + np.float32(
        v.getncattr("add_offset"))
    if fill is not None:
        rad[counts == fill] = np.nan
    return rad


def _read_band(path: Path) -> _Band:
    """One band file, read while holding :data:`~app.core.locks.HDF_LOCK` (netCDF-C and HDF5 are not thread-safe).

    Any failure to decode it — truncated, zero bytes, not netCDF, other variables, transposed arrays — is a
    :class:`GranuleError` naming the file and the reason.
    """
    with HDF_LOCK:
        try:
            return _read_open_band(path)
        except GranuleError:
            raise
        except (RuntimeError, OSError, EOFError, KeyError, AttributeError, ValueError, IndexError, TypeError,
                OverflowError, MemoryError) as exc:
            raise GranuleError(path, f"cannot be read as an ABI L1b file ({type(exc).__name__}: {exc})") from None


def _check_image_dims(nc, path: Path) -> None:
    """``Rad`` must be (y, x) and match the x and y coordinates: a transposed or foreign array is refused."""
    rad = nc.variables["Rad"]
    if tuple(rad.dimensions) != ("y", "x"):
        raise GranuleError(path, f"variable 'Rad' has dimensions ({', '.join(rad.dimensions)}), expected (y, x): "
                                 "transposed or not an ABI L1b radiance file")
    ny, nx = rad.shape
    if (nc.variables["y"].shape, nc.variables["x"].shape) != ((ny,), (nx,)):
        raise GranuleError(path, f"variable 'Rad' is {ny} × {nx} pixels but its coordinates y and x have "
                                 f"{nc.variables['y'].shape} and {nc.variables['x'].shape} values")


def _read_open_band(path: Path) -> _Band:
    nc = _open(path)
    try:
        for name in _REQUIRED:
            _var(nc, path, name)
        _check_image_dims(nc, path)
        band = int(np.asarray(_var(nc, path, "band_id")[:]).ravel()[0])
        if band not in ABI_BANDS:
            raise GranuleError(path, f"has band_id {band}, not an ABI band (1–16)")
        try:
            rad = _counts_to_radiance(_var(nc, path, "Rad"))
        except (RuntimeError, OSError) as exc:
            raise GranuleError(path, f"its radiances cannot be read (truncated file?): {exc}") from None
        if ABI_BANDS[band].is_solar:
            esun = _scalar(nc, path, "esun")
            esd = _scalar(nc, path, "earth_sun_distance_anomaly_in_AU")
            data = rad * np.float32(np.pi * esd * esd / esun) * np.float32(100.0)
        else:
            k = [_scalar(nc, path, f"planck_{c}") for c in ("fk1", "fk2", "bc1", "bc2")]
            data = radiance_to_bt(rad, *k).astype(np.float32)
        proj_var = _var(nc, path, "goes_imager_projection")
        projection = {
            "h": float(proj_var.getncattr("perspective_point_height")),
            "a": float(proj_var.getncattr("semi_major_axis")),
            "b": float(proj_var.getncattr("semi_minor_axis")),
            "lon_0": float(proj_var.getncattr("longitude_of_projection_origin")),
            "sweep": str(proj_var.getncattr("sweep_angle_axis")),
        }
        attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
        sub_lon = (_scalar(nc, path, "nominal_satellite_subpoint_lon")
                   if "nominal_satellite_subpoint_lon" in nc.variables else projection["lon_0"])
        return _Band(path, band, data, _scaled_coordinate(nc, path, "x"), _scaled_coordinate(nc, path, "y"),
                     projection, attrs, sub_lon)
    except (KeyError, AttributeError, ValueError, IndexError) as exc:
        raise GranuleError(path, f"is missing an attribute or value an ABI L1b file has: {exc}") from None
    finally:
        nc.close()


# ------------------------------------------------------------------------------------------------ a slot


def _normalise_channels(channels: Iterable[str] | None) -> list[str] | None:
    if channels is None:
        return None
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_ABI]
    if unknown:
        raise UserInputError(f"unknown ABI channel {', '.join(map(repr, unknown))}; ABI channels are "
                             f"{', '.join(GENERIC_ABI)}")
    return names


def _block_mean(data: np.ndarray, k: int) -> np.ndarray:
    ny, nx = data.shape
    return data.reshape(ny // k, k, nx // k, k).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


def _time(attrs: dict, name: str, path: Path) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(attrs[name]), "%Y-%m-%dT%H:%M:%S.%fZ")
    except (KeyError, ValueError):
        raise GranuleError(path, f"has no valid global attribute {name} (e.g. 2021-04-12T12:00:20.4Z)") from None


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def read_abi(paths: Sequence[str | Path], channels: Iterable[str] | None = None) -> xr.Dataset:
    """Read the L1b files (one per band) of one ABI slot into a canonical GeoScene (see the module docstring).

    ``channels`` are generic names (``ir_105``, ``vis_06`` …); None reads every band given. Only the files of the
    bands asked for are opened (chosen by file name). A file that cannot be used raises :class:`GranuleError`
    naming it; so does a channel with no file, or files from different slots or satellites.
    """
    wanted = _normalise_channels(channels)
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserInputError("read_abi needs at least one ABI L1b file")
    wanted_bands = None if wanted is None else {GENERIC_ABI[c] for c in wanted}
    bands: dict[int, _Band] = {}
    for path in paths:
        info = parse_abi_name(path)
        if info is not None and wanted_bands is not None and info["band"] not in wanted_bands:
            continue
        b = _read_band(path)
        if wanted_bands is not None and b.band not in wanted_bands:
            continue
        if b.band in bands:
            raise GranuleError(path, f"holds band C{b.band:02d} again ({bands[b.band].path.name} has it)")
        bands[b.band] = b
    if wanted is not None:
        missing = [c for c in wanted if GENERIC_ABI[c] not in bands]
        if missing:
            raise GranuleError(paths[0], f"no file of this slot holds channel {', '.join(missing)} (ABI band "
                                         f"{', '.join(f'C{GENERIC_ABI[c]:02d}' for c in missing)})")
    if not bands:
        raise GranuleError(paths[0], "none of these files is an ABI L1b band")
    order = wanted or [ABI_GENERIC[n] for n in sorted(bands)]
    return _to_dataset(bands, order)


def _check_same_slot(bands: dict[int, _Band]) -> None:
    ref = next(iter(bands.values()))
    for b in bands.values():
        for name in ("platform_ID", "time_coverage_start"):
            if str(b.attrs.get(name)) != str(ref.attrs.get(name)):
                raise GranuleError(b.path, f"is from another slot or satellite: {name} {b.attrs.get(name)!r}, "
                                           f"{ref.path.name} has {ref.attrs.get(name)!r}")
        if b.projection != ref.projection:
            raise GranuleError(b.path, f"has projection {b.projection}, {ref.path.name} has {ref.projection}")


def _to_dataset(bands: dict[int, _Band], order: list[str]) -> xr.Dataset:
    _check_same_slot(bands)
    coarse = min(bands.values(), key=lambda b: b.data.shape[1])
    ny, nx = coarse.data.shape
    data_vars = {}
    for name in order:
        b = bands[GENERIC_ABI[name]]
        data = b.data
        if data.shape != (ny, nx):
            k = data.shape[1] // nx
            if data.shape != (ny * k, nx * k):
                raise GranuleError(b.path, f"C{b.band:02d} is on a {data.shape} grid that is not a whole multiple "
                                           f"of the {ny}×{nx} grid of C{coarse.band:02d}")
            data = _block_mean(data, k)
        band = ABI_BANDS[b.band]
        solar = band.is_solar
        data_vars[name] = (("y", "x"), data, {
            "units": "%" if solar else "K",
            "standard_name": "toa_bidirectional_reflectance" if solar else "toa_brightness_temperature",
            "long_name": f"ABI C{b.band:02d} {'reflectance' if solar else 'brightness temperature'}",
            "band": f"C{b.band:02d}",
            "central_wavelength_um": band.central_wavelength_um,
            "generic_wavelength_um": GENERIC_CHANNELS[name].wavelength_um,
        })
    p = coarse.projection
    attrs_in = coarse.attrs
    obs_start = _time(attrs_in, "time_coverage_start", coarse.path)
    obs_end = _time(attrs_in, "time_coverage_end", coarse.path)
    nominal = obs_start.replace(minute=obs_start.minute - obs_start.minute % 10, second=0, microsecond=0)
    platform_id = str(attrs_in.get("platform_ID", ""))
    platform = GEO_PLATFORMS[platform_id].name if platform_id in GEO_PLATFORMS else platform_id
    attrs = {
        "platform": platform,
        "platform_id": platform_id,
        "sensor": "abi",
        "sub_lon": round(float(coarse.sub_lon), 6),
        "start_time": _iso(nominal),
        "end_time": _iso(nominal + dt.timedelta(minutes=10)),
        "observation_start_time": _iso(obs_start),
        "observation_end_time": _iso(obs_end),
        "scene_id": str(attrs_in.get("scene_id", "")),
        "projection": "geos",
        "h": p["h"],
        "a": p["a"],
        "b": p["b"],
        "lon_0": p["lon_0"],
        "sweep": p["sweep"],
        "crs_proj4": (f"+proj=geos +lon_0={p['lon_0']:g} +h={p['h']:.3f} +a={p['a']:.3f} +b={p['b']:.5f} "
                      f"+sweep={p['sweep']} +units=m +no_defs"),
        "source": [str(bands[GENERIC_ABI[n]].path) for n in order],
    }
    coords = {
        "x": ("x", coarse.x_rad * p["h"], {"units": "m", "standard_name": "projection_x_coordinate",
                                           "long_name": "geostationary projection x (scan angle × h)"}),
        "y": ("y", coarse.y_rad * p["h"], {"units": "m", "standard_name": "projection_y_coordinate",
                                           "long_name": "geostationary projection y (scan angle × h)"}),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
