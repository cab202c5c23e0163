"""Meteosat SEVIRI Level 1.5 slots (EUMETSAT netCDF, native ``.nat`` or HRIT) -> canonical GeoScene, via satpy.

Reading
-------
:func:`read_seviri` reads through satpy (:func:`app.data.geo_satpy.load_canonical`), choosing the reader by file
name (:func:`seviri_format`): ``seviri_l1b_nc`` for the netCDF files of the sample archive, ``seviri_l1b_native``
for ``.nat`` files and ``seviri_l1b_hrit`` for HRIT segments (with their prologue and epilogue), so real
EUMETSAT files read too, Meteosat-8 … -11 and later. For netCDF files the structure is checked first (global
attributes, dimensions, channel variables: :func:`_check_nc`), since satpy would misread a transposed file; after a
satpy failure the counts are read too so that a truncated file is named as such. Satpy's ``seviri_l1b_nc`` does
not implement HRV (satpy 0.60: ``NotImplementedError``), so ``hrv`` is refused for netCDF files; native and HRIT
files give it where its grid nests in the VIS/IR grid. The calibration below is what satpy applies.

Why this format
---------------
SEVIRI Level 1.5 is distributed by EUMETSAT as the *native* binary (``.nat``), as HRIT segments and, on request
from the Data Centre / Data Tailor, as **netCDF4**; ICARE/AERIS keep their own HDF4 copies. Satpy reads all of
them. The sample archive writes the netCDF form (satpy's ``seviri_l1b_nc`` reader) because it can be written
completely with netCDF4 and numpy: one self-describing file per slot whose every field satpy uses we can fill
with meaningful values. The native format was the other candidate; its 450 kB header is some 40 nested binary
records (satpy describes them in ~1000 lines of numpy dtypes) plus a trailer, and its data are 10-bit packed line
records with per-line headers — writable, but only by reproducing satpy's own tables, for no gain in fidelity for
our use. ICARE's HDF4 stores calibrated values rather than counts and leaves the Earth model out of the file.

The file (as satpy's ``seviri_l1b_nc`` reader and EUMETSAT's netCDF export define it)
-----------------------------------------------------------------------------------
Name: ``W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{MSG1|MSG4}+SEVIRI_C_EUMG_{YYYYmmddHHMMSS}.nc``, the time
being the true start of the repeat cycle to the second (e.g. ``…_C_EUMG_20210412120009.nc`` for the 12:00 slot).

- Dimensions ``num_rows_vis_ir``, ``num_columns_vis_ir`` (3712 × 3712 at 3 km for the full disk),
  ``num_rows_hrv``, ``num_columns_hrv``, ``channels_vis_ir_dim`` (11), ``channels_dim`` (12),
  ``orbit_polynomial_dim_row``, ``orbit_polynomial_dim_col`` (8).
- ``ch1`` … ``ch11`` (VIS006, VIS008, IR_016, IR_039, WV_062, WV_073, IR_087, IR_097, IR_108, IR_120, IR_134) and
  ``ch12`` (HRV): 10-bit counts, 0 = no data, with ``scale_factor`` / ``add_offset`` giving the radiance in
  mW m⁻² sr⁻¹ (cm⁻¹)⁻¹. **Row 0 is the southernmost line and column 0 the westernmost pixel** (satpy flips
  the rows so that the canonical row 0 is north).
- Per line and channel: mean acquisition time (``channel_data_visir_data_l10_line_mean_acquisition_time_day``
  since 1958-01-01 and ``…_msec`` of the day), ``…_line_validity``, ``…_line_geometric_quality``,
  ``…_line_radiometric_quality``; ``planned_chan_processing`` per channel (2 = effective radiance); orbit
  Chebyshev polynomials (``orbit_polynomial_x/y/z``, km, with their validity times).
- Global attributes: ``satellite_id`` (321 = MSG1/Meteosat-8 … 324 = MSG4/Meteosat-11), ``longitude_of_SSP``,
  ``nominal_longitude``, ``equatorial_radius``, ``north_polar_radius``, ``south_polar_radius`` (km),
  ``vis_ir_column_dir_grid_step`` / ``vis_ir_line_dir_grid_step`` (km), ``vis_ir_grid_origin`` (``0x02``: south-
  east), ``type_of_earth_model`` (``0x02``), ``north_most_line``, ``south_most_line``, ``east_most_pixel``,
  ``west_most_pixel`` (line and pixel numbers counted from the south-east, centre of the disk at 1856),
  ``true_repeat_cycle_start_day/_mi_sec``, ``planned_repeat_cycle_end_day/_mi_sec``, ``nominal_image_scanning``.

Calibration (EUMETSAT, *Radiometric calibration of MSG SEVIRI Level 1.5 image data in equivalent spectral
blackbody radiance*, and *Conversion from radiances to reflectances for SEVIRI warm channels*; the same as satpy):

- radiance ``L = count · scale_factor + add_offset`` (count 0 -> no data), clipped at 0; lines flagged missing or
  corrupted *and* "do not use" are blanked;
- infrared (effective radiance): ``T = (C2·νc / ln(C1·νc³ / L + 1) − β) / α`` with each satellite's published
  νc, α, β (:data:`app.data.geo_bands.SEVIRI_CALIB`), C1 = 1.19104273e-5 mW m⁻² sr⁻¹ (cm⁻¹)⁻⁴, C2 = 1.43877523 K cm;
- solar channels: reflectance (%) ``= π · L · 100 / F · d²``, F the band solar irradiance, d the Sun–Earth
  distance in AU at the repeat-cycle start (pyorbital's formula, as satpy).

Geolocation: pixel centres at ``x = (c0 − west − 0.5 + j + 0.5)·Δ`` east of the sub-satellite point for column j
(from the west, from 0) and ``y = (north − c0 + 0.5 − i − 0.5)·Δ`` for canonical row i (from the north), c0 =
1856, Δ the grid step in metres, in the ``+proj=geos`` projection with h = 35785831 m and the file's radii.

The canonical GeoScene is that of :mod:`app.data.geo_ahi` (dims ``(y, x)``, coords in metres of the projection,
variables named by generic channel, BT in K / reflectance in %, NaN for no data), with ``sensor`` ``seviri`` and
``platform`` ``Meteosat-8`` … ``Meteosat-11``. The eleven VIS/IR channels are read by default; ``hrv`` only on request
from native or HRIT files, averaged over 3 × 3 HRV pixels onto the VIS/IR grid when its area nests in it (a real
HRV image covers part of the disk on a shifted grid: such a file raises :class:`GranuleError` saying so).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from pyorbital.astronomy import sun_earth_distance_correction

from app.core.locks import HDF_LOCK
from app.data.errors import GranuleError, UserInputError
from app.data.geo_bands import C1_CM, C2_CM, SEVIRI_BANDS, SEVIRI_CALIB
from app.data.geo_satpy import is_remote, load_canonical, localised

#: SEVIRI channel number in the file (ch1 … ch12) -> (EUMETSAT name, generic channel name).
SEVIRI_CHANNELS: dict[int, tuple[str, str]] = {n: (band.band_id, band.generic) for n, band in SEVIRI_BANDS.items()}
#: Generic channel name -> channel number.
GENERIC_SEVIRI: dict[str, int] = {generic: number for number, (_, generic) in SEVIRI_CHANNELS.items()}
#: The VIS/IR channels (3 km grid) read when no channel is asked for; HRV (1 km) only on request.
VISIR_GENERIC: tuple[str, ...] = tuple(generic for n, (_, generic) in SEVIRI_CHANNELS.items() if n <= 11)
#: Channels calibrated to reflectance.
SOLAR_CHANNELS = frozenset(band.band_id for band in SEVIRI_BANDS.values() if band.is_solar)
#: Central wavelengths (µm), for the variables' attributes.
CENTRAL_WAVELENGTH_UM = {band.band_id: band.central_wavelength_um for band in SEVIRI_BANDS.values()}

#: satellite_id -> (platform name, short name in file names and in the band table's calibration).
SATELLITES = {321: ("Meteosat-8", "MSG1"), 322: ("Meteosat-9", "MSG2"), 323: ("Meteosat-10", "MSG3"),
              324: ("Meteosat-11", "MSG4")}
#: Short name -> satellite_id.
SATELLITE_IDS = {short: sid for sid, (_, short) in SATELLITES.items()}

#: Radiation constants of EUMETSAT's SEVIRI calibration (mW m⁻² sr⁻¹ (cm⁻¹)⁻⁴ and K cm).
C1 = C1_CM
C2 = C2_CM


def _calib(sat_id: int, channel: str) -> dict[str, float]:
    """EUMETSAT's constants of one satellite's channel: ``F`` (solar) or ``VC``, ``ALPHA``, ``BETA`` (infrared)."""
    return SEVIRI_CALIB[SATELLITES[sat_id][1]][channel]


#: Satellite height above the equator used by EUMETSAT's Level 1.5 geometry (m).
SATELLITE_HEIGHT_M = 35785831.0
#: Pixel number of the disk centre on the 3 km grid (lines and columns counted from 1 at the south-east).
GRID_CENTRE = 1856
#: Repeat-cycle epoch of the CDS times.
CDS_EPOCH = dt.datetime(1958, 1, 1)

_NAME_RE = re.compile(r"^W_XX-EUMETSAT-Darmstadt,VIS\+IR\+HRV\+IMAGERY,(?P<sat>MSG\d)\+SEVIRI_C_EUMG_"
                      r"(?P<time>\d{14})\.nc$")


def seviri_file_name(platform: str, start: dt.datetime) -> str:
    """The real name of a SEVIRI netCDF slot file, e.g. ``…,MSG4+SEVIRI_C_EUMG_20210412120009.nc``."""
    return f"W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{platform}+SEVIRI_C_EUMG_{start:%Y%m%d%H%M%S}.nc"


def parse_seviri_name(path: str | Path) -> dict | None:
    """Satellite short name and repeat-cycle start of a SEVIRI netCDF file name, or None if not one."""
    m = _NAME_RE.match(Path(path).name)
    if m is None:
        return None
    return {"satellite": m["sat"], "time": dt.datetime.strptime(m["time"], "%Y%m%d%H%M%S")}


def to_cds(time: dt.datetime) -> tuple[int, int]:
    """Naive UTC datetime -> (days since 1958-01-01, milliseconds of the day)."""
    delta = time - CDS_EPOCH
    return delta.days, int(round((delta.seconds + delta.microseconds / 1e6) * 1000))


def effective_radiance(bt_k, sat_id: int, channel: str) -> np.ndarray:
    """Brightness temperature (K) -> effective radiance (mW m⁻² sr⁻¹ (cm⁻¹)⁻¹), the inverse of the calibration."""
    cal = _calib(sat_id, channel)
    vc, alpha, beta = cal["VC"], cal["ALPHA"], cal["BETA"]
    t = np.asarray(bt_k, dtype=np.float64) * alpha + beta
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return C1 * vc**3 / np.expm1(C2 * vc / t)


def reflectance_factor(sat_id: int, channel: str, time: dt.datetime) -> float:
    """Multiplier from radiance to reflectance (%): π · 100 / F · d(time)²."""
    d = float(sun_earth_distance_correction(time))
    return np.pi * 100.0 / _calib(sat_id, channel)["F"] * d * d


def geos_xy_from_attrs(attrs: dict, nlines: int, ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """Projection x (west -> east) and y (north -> south) of pixel centres (m), from the file's attributes."""
    col_step = float(attrs["vis_ir_column_dir_grid_step"]) * 1000.0
    line_step = float(attrs["vis_ir_line_dir_grid_step"]) * 1000.0
    earth_model = int(str(attrs["type_of_earth_model"]), 16)
    ns_offset, we_offset = (0.0, 0.0) if earth_model == 2 else (-0.5, 0.5)
    west, north = int(attrs["west_most_pixel"]), int(attrs["north_most_line"])
    west_edge = (GRID_CENTRE - west - 0.5 + we_offset) * col_step
    north_edge = (north - GRID_CENTRE + 0.5 + ns_offset) * line_step
    x = west_edge + (np.arange(ncols) + 0.5) * col_step
    y = north_edge - (np.arange(nlines) + 0.5) * line_step
    return x, y


_REQUIRED_ATTRS = (
    "satellite_id", "longitude_of_SSP", "equatorial_radius", "north_polar_radius", "south_polar_radius",
    "vis_ir_column_dir_grid_step", "vis_ir_line_dir_grid_step", "vis_ir_grid_origin", "type_of_earth_model",
    "north_most_line", "south_most_line", "east_most_pixel", "west_most_pixel", "true_repeat_cycle_start_day",
    "true_repeat_cycle_start_mi_sec", "planned_repeat_cycle_end_day", "planned_repeat_cycle_end_mi_sec",
)


def _normalise_channels(channels: Iterable[str] | None) -> list[str]:
    if channels is None:
        return list(VISIR_GENERIC)
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_SEVIRI]
    if unknown:
        raise UserInputError(f"unknown SEVIRI channel {', '.join(map(repr, unknown))}; SEVIRI channels are "
                             f"{', '.join(GENERIC_SEVIRI)}")
    return names


def _check_attrs(path: Path, attrs: dict, nlines: int, ncols: int) -> None:
    missing = [a for a in _REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise GranuleError(path, f"is not a SEVIRI Level 1.5 netCDF file: global attribute "
                                 f"{', '.join(missing)} missing")
    if int(attrs["satellite_id"]) not in SATELLITES:
        raise GranuleError(path, f"has satellite_id {attrs['satellite_id']}; known are "
                                 f"{', '.join(map(str, SATELLITES))} (MSG1–MSG4)")
    if int(str(attrs["vis_ir_grid_origin"]), 16) != 2:
        raise GranuleError(path, f"has vis_ir_grid_origin {attrs['vis_ir_grid_origin']}; only 0x02 (south-east) "
                                 "is supported")
    width = int(attrs["west_most_pixel"]) - int(attrs["east_most_pixel"]) + 1
    height = int(attrs["north_most_line"]) - int(attrs["south_most_line"]) + 1
    if (height, width) != (nlines, ncols):
        raise GranuleError(path, f"says lines {attrs['south_most_line']}–{attrs['north_most_line']} and pixels "
                                 f"{attrs['east_most_pixel']}–{attrs['west_most_pixel']} but holds "
                                 f"{nlines} × {ncols} pixels")


def _check_channel_dims(path: Path, nc: netCDF4.Dataset, wanted: list[str]) -> None:
    for generic in wanted:
        number = GENERIC_SEVIRI[generic]
        name, key = SEVIRI_CHANNELS[number][0], f"ch{number}"
        if key not in nc.variables:
            raise GranuleError(path, f"has no variable {key} ({name}, channel {generic})")
        var = nc.variables[key]
        grid = ("num_rows_hrv", "num_columns_hrv") if number == 12 else ("num_rows_vis_ir", "num_columns_vis_ir")
        if tuple(var.dimensions) != grid:
            raise GranuleError(path, f"variable {key} ({name}) has dimensions ({', '.join(var.dimensions)}), "
                                     f"expected ({', '.join(grid)}): transposed or not a SEVIRI Level 1.5 file")
        if var.dtype.kind not in "iu":
            raise GranuleError(path, f"variable {key} ({name}) holds {var.dtype} values, not integer counts")
        if "scale_factor" not in var.ncattrs() or "add_offset" not in var.ncattrs():
            raise GranuleError(path, f"variable {key} ({name}) has no scale_factor / add_offset")


def _check_nc(path: Path, wanted: list[str], read_counts: bool = False) -> None:
    """Check the structure satpy's ``seviri_l1b_nc`` needs (dimensions, attributes, channel variables).

    With ``read_counts`` the counts are read too (after a satpy failure, to tell a truncated file).
    """
    with HDF_LOCK:
        try:
            with netCDF4.Dataset(path) as nc:
                attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
                try:
                    nlines = len(nc.dimensions["num_rows_vis_ir"])
                    ncols = len(nc.dimensions["num_columns_vis_ir"])
                except KeyError:
                    raise GranuleError(path, "is not a SEVIRI Level 1.5 netCDF file: no num_rows_vis_ir / "
                                             "num_columns_vis_ir dimensions") from None
                _check_attrs(path, attrs, nlines, ncols)
                _check_channel_dims(path, nc, wanted)
                if read_counts:
                    for generic in wanted:
                        np.asarray(nc.variables[f"ch{GENERIC_SEVIRI[generic]}"][:])
        except GranuleError:
            raise
        except (OSError, RuntimeError, EOFError) as exc:
            # netCDF4/HDF5 report a truncated or corrupt file as OSError (on open) or RuntimeError (on read)
            raise GranuleError(path, f"cannot be read as netCDF4 ({exc})") from None
        except (KeyError, AttributeError, ValueError, IndexError, TypeError, OverflowError, MemoryError) as exc:
            raise GranuleError(path, f"is not a usable SEVIRI Level 1.5 netCDF file ({type(exc).__name__}: "
                                     f"{exc})") from None


#: HRIT segment names: ``H-000-MSG4__-MSG4________-IR_108___-000001___-202104121200-__`` (``-C_`` when compressed,
#: ``.bz2`` in some archives); the prologue and epilogue carry ``_________`` as channel and ``PRO``/``EPI``.
_HRIT_RE = re.compile(r"^[HL]-000-MSG\d__-MSG\d_+-(?P<channel>[A-Z0-9_]{9})-(?P<segment>[0-9A-Z_]{9})-"
                      r"(?P<time>\d{12})-[_C]_(?:\.bz2)?$")


def seviri_format(path: str | Path) -> str:
    """The satpy reader of a SEVIRI Level 1.5 file, chosen by its name.

    ``seviri_l1b_native`` (``.nat``), ``seviri_l1b_hrit`` (HRIT segments, prologue, epilogue) or
    ``seviri_l1b_nc`` (EUMETSAT netCDF).
    """
    name = Path(path).name
    if name.endswith(".nat"):
        return "seviri_l1b_native"
    if _HRIT_RE.match(name):
        return "seviri_l1b_hrit"
    return "seviri_l1b_nc"


def _hrit_files(paths: list[Path], wanted: list[str]) -> list[Path]:
    """The prologue, the epilogue and the segments of the channels asked for."""
    names = {SEVIRI_CHANNELS[GENERIC_SEVIRI[g]][0] for g in wanted}
    keep = []
    for path in paths:
        m = _HRIT_RE.match(path.name)
        channel = m["channel"].strip("_") if m else ""
        if m is None or not channel or channel in names or m["segment"].startswith(("PRO", "EPI")):
            keep.append(path)
    return keep


def read_seviri(paths: str | Path | Sequence[str | Path], channels: Iterable[str] | None = None) -> xr.Dataset:
    """Read one SEVIRI Level 1.5 slot into a canonical GeoScene (see the module docstring), with satpy.

    ``paths`` is the file of the slot (or a list holding it): one EUMETSAT netCDF file or one native ``.nat``
    file carries every channel; HRIT slots are the prologue, the epilogue and the channels' segments. The reader
    (``seviri_l1b_nc``, ``seviri_l1b_native``, ``seviri_l1b_hrit``) is chosen by file name (:func:`seviri_format`).
    ``channels`` are generic names (``ir_108``, ``vis_06``, ``hrv`` …); None reads the eleven VIS/IR channels.
    A damaged, truncated or foreign file raises :class:`GranuleError` naming it.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise UserInputError("read_seviri needs the file(s) of one slot")
    if any(is_remote(p) for p in paths):  # satpy's SEVIRI readers and our checks need paths: cached local copies
        with localised(paths) as (local, back):
            ds = _read_seviri(local, channels)
        ds.attrs["source"] = [back.get(str(s), s) for s in ds.attrs.get("source", [])]
        return ds
    return _read_seviri([Path(p) for p in paths], channels)


def _read_seviri(paths: list[Path], channels: Iterable[str] | None) -> xr.Dataset:
    wanted = _normalise_channels(channels)
    formats = {seviri_format(p) for p in paths}
    if len(formats) != 1:
        raise UserInputError(f"read_seviri reads one slot in one format, got {', '.join(sorted(formats))} files")
    reader = formats.pop()
    if reader != "seviri_l1b_hrit" and len(paths) != 1:
        raise UserInputError(f"read_seviri reads one slot file at a time (all channels are in it), got "
                             f"{len(paths)} files")
    for path in paths:
        if not path.exists():
            raise GranuleError(path, "no such file")
    check = diagnose = None
    if reader == "seviri_l1b_nc" and "hrv" in wanted:
        raise UserInputError("hrv cannot be read from a SEVIRI netCDF file: satpy's seviri_l1b_nc reader does not "
                             "implement the HRV channel (native .nat and HRIT files have it)")
    if reader == "seviri_l1b_nc":
        def check(files: list[Path]) -> None:
            _check_nc(files[0], wanted)

        def diagnose(files: list[Path]) -> None:
            _check_nc(files[0], wanted, read_counts=True)
    else:
        paths = _hrit_files(paths, wanted) if reader == "seviri_l1b_hrit" else paths
    band_of = {g: SEVIRI_CHANNELS[GENERIC_SEVIRI[g]][0] for g in wanted}
    return load_canonical(reader, paths, wanted, band_of, sensor="seviri", slot_minutes=15, check=check,
                          diagnose=diagnose, lock=reader != "seviri_l1b_hrit")
