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

Calibration, as satpy's ``abi_l1b`` reader does it: reflectance (%) ``= 100 · L · π d² / esun`` (the ``kappa0``
the file also carries); brightness temperature ``BT = (fk2 / ln(fk1 / L + 1) − bc1) / bc2`` (a radiance ≤ 0
has no temperature: NaN).

Reading
-------
The files are read by satpy's ``abi_l1b`` reader (:func:`app.data.geo_satpy.load_canonical`), the field's
maintained code: GOES-16 … GOES-19 and later ABI platforms read without code here. This module chooses the files
of the bands asked for by name, refuses duplicate bands and files of another slot before satpy opens anything,
and, when satpy fails, re-checks each file (:func:`check_band_file`) so the error names the damaged file.

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
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from app.core.locks import HDF_LOCK
from app.data.errors import GranuleError, UserInputError
from app.data.geo_bands import ABI_BANDS
from app.data.geo_satpy import basename, is_remote, load_canonical

__all__ = [
    "read_abi",
    "check_band_file",
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
#: Calibration variables of the reflective and the emissive bands.
_CALIBRATION = {True: ("esun", "kappa0", "earth_sun_distance_anomaly_in_AU"),
                False: ("planck_fk1", "planck_fk2", "planck_bc1", "planck_bc2")}
#: Full-disk repeat cycle (minutes) of each scan mode.
_MODE_MINUTES = {3: 15, 4: 5, 6: 10}


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
    m = _NAME_RE.match(basename(path))
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


# ------------------------------------------------------------------------------------------------ checks


def _open(path: Path):
    import netCDF4

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


def _check_open_band(nc, path: Path) -> None:
    for name in _REQUIRED:
        _var(nc, path, name)
    _check_image_dims(nc, path)
    band = int(np.asarray(_var(nc, path, "band_id")[:]).ravel()[0])
    if band not in ABI_BANDS:
        raise GranuleError(path, f"has band_id {band}, not an ABI band (1–16)")
    info = parse_abi_name(path)
    if info is not None and info["band"] != band:
        raise GranuleError(path, f"is named as band C{info['band']:02d} but holds band_id {band}")
    for name in _CALIBRATION[ABI_BANDS[band].is_solar]:
        _var(nc, path, name)
    proj = _var(nc, path, "goes_imager_projection")
    for name in ("perspective_point_height", "semi_major_axis", "semi_minor_axis", "longitude_of_projection_origin"):
        if name not in proj.ncattrs():
            raise GranuleError(path, f"its goes_imager_projection has no attribute '{name}'")
    try:
        np.asarray(_var(nc, path, "Rad")[:])
    except (RuntimeError, OSError) as exc:
        raise GranuleError(path, f"its radiances cannot be read (truncated file?): {exc}") from None


def check_band_file(path: str | Path) -> None:
    """Check one ABI L1b file the way satpy needs it (variables, dimensions, calibration, readable radiances).

    Raises :class:`GranuleError` naming the file and what is wrong: truncated, zero bytes, not netCDF, other
    variables, a transposed image, a band_id that contradicts the name. Holds :data:`~app.core.locks.HDF_LOCK`.
    """
    path = Path(path)
    with HDF_LOCK:
        try:
            nc = _open(path)
            try:
                _check_open_band(nc, path)
            finally:
                nc.close()
        except GranuleError:
            raise
        except (RuntimeError, OSError, EOFError, KeyError, AttributeError, ValueError, IndexError, TypeError,
                OverflowError, MemoryError) as exc:
            raise GranuleError(path, f"cannot be read as an ABI L1b file ({type(exc).__name__}: {exc})") from None


def _diagnose(paths: list[Path]) -> None:
    for path in paths:
        check_band_file(path)


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


def _files_by_band(paths: list[Path], wanted_bands: set[int] | None) -> dict[int, tuple[Path, dict]]:
    """The file of each band (by name), refusing names that are not ABI L1b, duplicates and mixed slots."""
    by_band: dict[int, tuple[Path, dict]] = {}
    for path in paths:
        if not is_remote(path) and not path.exists():  # remote: satpy's loader asks the storage
            raise GranuleError(path, "no such file")
        info = parse_abi_name(path)
        if info is None:
            raise GranuleError(path, "is not named as an ABI L1b radiance file "
                                     "(OR_ABI-L1b-RadF-M6C13_G16_s…_e…_c….nc): satpy's abi_l1b reader chooses "
                                     "files by name")
        if wanted_bands is not None and info["band"] not in wanted_bands:
            continue
        if info["band"] in by_band:
            raise GranuleError(path, f"holds band C{info['band']:02d} again ({basename(by_band[info['band']][0])} has "
                                     "it)")
        by_band[info["band"]] = (path, info)
    if by_band:
        ref_path, ref = next(iter(by_band.values()))
        for path, info in by_band.values():
            for key in ("platform", "start", "scene"):
                if info[key] != ref[key]:
                    raise GranuleError(path, f"is from another slot or satellite: {key} {info[key]}, "
                                             f"{basename(ref_path)} has {ref[key]}")
    return by_band


def read_abi(paths: Sequence[str | Path], channels: Iterable[str] | None = None) -> xr.Dataset:
    """Read the L1b files (one per band) of one ABI slot into a canonical GeoScene (see the module docstring).

    ``channels`` are generic names (``ir_105``, ``vis_06`` …); None reads every band given. Only the files of the
    bands asked for are opened (chosen by file name), by satpy's ``abi_l1b`` reader. A file that cannot be used
    raises :class:`GranuleError` naming it; so does a channel with no file, or files from different slots or
    satellites.
    """
    wanted = _normalise_channels(channels)
    paths = [os.fspath(p) if is_remote(p) else Path(p) for p in paths]  # URLs: read by byte ranges (satpy FSFile)
    if not paths:
        raise UserInputError("read_abi needs at least one ABI L1b file")
    wanted_bands = None if wanted is None else {GENERIC_ABI[c] for c in wanted}
    by_band = _files_by_band(paths, wanted_bands)
    if wanted is not None:
        missing = [c for c in wanted if GENERIC_ABI[c] not in by_band]
        if missing:
            raise GranuleError(paths[0], f"no file of this slot holds channel {', '.join(missing)} (ABI band "
                                         f"{', '.join(f'C{GENERIC_ABI[c]:02d}' for c in missing)})")
    if not by_band:
        raise GranuleError(paths[0], "none of these files is an ABI L1b band")
    order = wanted or [ABI_GENERIC[n] for n in sorted(by_band)]
    files = [by_band[GENERIC_ABI[c]][0] for c in order]
    info = by_band[GENERIC_ABI[order[0]]][1]
    ds = load_canonical("abi_l1b", files, order, {c: f"C{GENERIC_ABI[c]:02d}" for c in order}, sensor="abi",
                        slot_minutes=_MODE_MINUTES.get(info["mode"], 10), diagnose=_diagnose)
    ds.attrs["scene_id"] = {"F": "Full Disk", "C": "CONUS"}.get(info["scene"], info["scene"])
    return ds
