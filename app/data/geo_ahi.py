"""Himawari-8/9 AHI full-disk slots in Himawari Standard Data (HSD) -> canonical GeoScene.

The format (JMA, *Himawari Standard Data User's Guide*, version 1.3)
--------------------------------------------------------------------
One file per band and segment: ``HS_{sat}_{YYYYMMDD}_{HHMM}_B{bb}_{area}_R{rr}_S{ss}{tt}.DAT`` (for example
``HS_H08_20210412_1200_B13_FLDK_R20_S0110.DAT``; archives often add ``.bz2``, which this reader also opens). ``R``
is the nominal resolution in tenths of a km (R05, R10, R20), ``S{ss}{tt}`` the segment number and the number of
segments (10 for the full disk). The grid itself is described by the header, never by the name.

A file is eleven little-endian header blocks, each starting with its number (u1) and its length in bytes (u2; u4
for block 10), followed by the counts as ``uint16`` in (line, column) order, line 1 at the north, column 1 at the
west:

1. basic information (satellite, observation area and timeline, start/end time as Modified Julian Date, header and
   data lengths, file name),
2. data information (bits per pixel, columns and lines of this segment),
3. projection information (sub-satellite longitude, CFAC/LFAC/COFF/LOFF, satellite distance from the Earth's
   centre and the Earth's radii, in km),
4. navigation information (actual sub-satellite point, satellite distance, sun and moon positions),
5. calibration information: band number, central wavelength (µm), valid bits, the counts that flag error and
   outside-scan pixels, the count -> radiance gain and offset (W m⁻² sr⁻¹ µm⁻¹); then for the infrared bands
   (7–16) the coefficients of the effective-to-brightness temperature correction
   ``Tb = c0 + c1·Te + c2·Te²`` and the physical constants (c, h, k) of the Planck function, for the visible and
   near-infrared bands (1–6) the radiance -> albedo coefficient and the updated count -> radiance coefficients,
6. inter-calibration (GSICS) information,
7. segment information (number of segments, this segment's number, its first line in the full disk),
8. navigation correction, 9. observation time of lines, 10. error information — each with a count of entries
   that follow, then 40 spare bytes —, 11. spare.

Calibration (the same as satpy's ``ahi_hsd`` reader in its default ``update`` mode):

- radiance ``L = gain · count + offset``, with the updated VIS coefficients of block 5 when they are non-zero;
- infrared: ``Te = (h c / k λ) / ln(2 h c² / (L·10⁶ λ⁵) + 1)`` then ``Tb = c0 + c1 Te + c2 Te²`` (K);
  a radiance of 0 or less has no temperature (NaN);
- visible/near-infrared: reflectance (%) ``= L · coeff_rad2albedo · 100``, clipped at 0 (no sun-zenith
  correction: this is the top-of-atmosphere bidirectional reflectance factor, as satpy gives it).

Geolocation: with ``f = CFAC / 2¹⁶`` (columns per degree of scan angle) the pixel at column ``c`` and full-disk
line ``l`` (both from 1) looks at scan angles ``x = (c − COFF)/f`` and ``y = (LOFF − l)/LFAC·2¹⁶`` degrees; times
the satellite height above the ellipsoid ``h = distance − a`` (radians × metres) they are the coordinates of the
``+proj=geos +sweep=y`` projection, the convention of satpy's area extents. Segments carry the full-disk LOFF and
are placed by their segment number (and checked against their first line number).

Reading
-------
The counts are read, calibrated, stitched and geolocated by satpy's ``ahi_hsd`` reader (default ``update``
calibration, ``mask_space=False``: off-disk pixels are those the file flags, not a recomputed disk edge), through
:func:`app.data.geo_satpy.load_canonical`; Himawari-8, Himawari-9 and later read without code here. Before satpy
opens anything this module parses every file's *header* (:func:`read_hsd_segment` with ``header_only``; a plain
file's size is checked too): the band and segment agree with the file name, the segments of a band agree on their
size and grid and are placed as numbered, and all files are of one satellite, area and slot — satpy checks none of
this (a B14 file named B13 would be read as B13). When satpy fails, each file is parsed whole so the error names
the damaged one. The header dtypes below are also what the sample writer packs. Plain binary reads: no lock.

The canonical GeoScene
----------------------
:func:`read_ahi` returns an ``xarray.Dataset`` with dims ``(y, x)``; coords ``x``, ``y`` (float64, metres of the
geostationary projection at pixel centres, x growing east, y growing north, row 0 at the north); one float32
variable per channel, named by its generic name (``ir_105`` for B13 …; brightness temperature in K or reflectance
in %; NaN off the disk and where the counts flag an error); attrs ``platform`` (``Himawari-8``), ``platform_id``
(``H08``), ``sensor`` (``ahi``), ``sub_lon``, ``start_time``/``end_time`` (the nominal slot, ISO UTC),
``observation_start_time``/``observation_end_time`` (first and last scanned line), ``projection`` (``geos``),
``h``, ``a``, ``b`` (m), ``lon_0``, ``sweep`` (``y``), ``crs_proj4``, ``source`` (the file paths read). When
the bands asked for are on grids of different resolution (real B03 is 0.5 km, B01/B02/B04 1 km, the rest 2 km),
finer bands are averaged over whole blocks of pixels onto the coarsest grid, whose pixel centres coincide with
the block centres.
"""

from __future__ import annotations

import bz2
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from app.data.errors import GranuleError, UserInputError
from app.data.geo_bands import AHI_BANDS
from app.data.geo_satpy import basename, is_remote, load_canonical, localised, platform_key

# --------------------------------------------------------------------------------------------------------------
# Bands (from the shared band table)
# --------------------------------------------------------------------------------------------------------------

#: AHI band number -> generic channel name used everywhere above ``app/data``.
AHI_GENERIC: dict[int, str] = {number: band.generic for number, band in AHI_BANDS.items()}
#: Generic channel name -> AHI band number.
GENERIC_AHI: dict[str, int] = {name: band for band, name in AHI_GENERIC.items()}
#: The resolution code real file names carry (tenths of km): R05 for B03, R10 for B01/B02/B04, else R20.
AHI_RES_CODE: dict[int, int] = {number: int(round(band.resolution_km * 10)) for number, band in AHI_BANDS.items()}
#: Bands calibrated to reflectance (1–6); the others to brightness temperature.
AHI_SOLAR_BANDS = frozenset(number for number, band in AHI_BANDS.items() if band.is_solar)

#: MJD epoch used by every time in the HSD header.
MJD_EPOCH = dt.datetime(1858, 11, 17)

# --------------------------------------------------------------------------------------------------------------
# Header blocks (HSD User's Guide v1.3, little-endian)
# --------------------------------------------------------------------------------------------------------------

BASIC_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("total_number_of_hblocks", "<u2"), ("byte_order", "u1"),
    ("satellite", "S16"), ("proc_center_name", "S16"), ("observation_area", "S4"),
    ("other_observation_info", "S2"), ("observation_timeline", "<u2"), ("observation_start_time", "<f8"),
    ("observation_end_time", "<f8"), ("file_creation_time", "<f8"), ("total_header_length", "<u4"),
    ("total_data_length", "<u4"), ("quality_flag1", "u1"), ("quality_flag2", "u1"), ("quality_flag3", "u1"),
    ("quality_flag4", "u1"), ("file_format_version", "S32"), ("file_name", "S128"), ("spare", "S40"),
])
DATA_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("number_of_bits_per_pixel", "<u2"),
    ("number_of_columns", "<u2"), ("number_of_lines", "<u2"), ("compression_flag_for_data", "u1"),
    ("spare", "S40"),
])
PROJ_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("sub_lon", "<f8"), ("CFAC", "<u4"), ("LFAC", "<u4"),
    ("COFF", "<f4"), ("LOFF", "<f4"), ("distance_from_earth_center", "<f8"), ("earth_equatorial_radius", "<f8"),
    ("earth_polar_radius", "<f8"), ("req2_rpol2_req2", "<f8"), ("rpol2_req2", "<f8"), ("req2_rpol2", "<f8"),
    ("coeff_for_sd", "<f8"), ("resampling_types", "<i2"), ("resampling_size", "<i2"), ("spare", "S40"),
])
NAV_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("navigation_info_time", "<f8"), ("SSP_longitude", "<f8"),
    ("SSP_latitude", "<f8"), ("distance_earth_center_to_satellite", "<f8"), ("nadir_longitude", "<f8"),
    ("nadir_latitude", "<f8"), ("sun_position", "<f8", (3,)), ("moon_position", "<f8", (3,)), ("spare", "S40"),
])
CAL_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("band_number", "<u2"), ("central_wave_length", "<f8"),
    ("valid_number_of_bits_per_pixel", "<u2"), ("count_value_error_pixels", "<u2"),
    ("count_value_outside_scan_pixels", "<u2"), ("gain_count2rad_conversion", "<f8"),
    ("offset_count2rad_conversion", "<f8"),
])
IR_CAL = np.dtype([
    ("c0_rad2tb_conversion", "<f8"), ("c1_rad2tb_conversion", "<f8"), ("c2_rad2tb_conversion", "<f8"),
    ("c0_tb2rad_conversion", "<f8"), ("c1_tb2rad_conversion", "<f8"), ("c2_tb2rad_conversion", "<f8"),
    ("speed_of_light", "<f8"), ("planck_constant", "<f8"), ("boltzmann_constant", "<f8"), ("spare", "S40"),
])
VIS_CAL = np.dtype([
    ("coeff_rad2albedo_conversion", "<f8"), ("coeff_update_time", "<f8"),
    ("cali_gain_count2rad_conversion", "<f8"), ("cali_offset_count2rad_conversion", "<f8"), ("spare", "S80"),
])
INTER_CAL = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("gsics_calibration_intercept", "<f8"),
    ("gsics_calibration_slope", "<f8"), ("gsics_calibration_coeff_quadratic_term", "<f8"),
    ("gsics_std_scn_radiance_bias", "<f8"), ("gsics_std_scn_radiance_bias_uncertainty", "<f8"),
    ("gsics_std_scn_radiance", "<f8"), ("gsics_correction_starttime", "<f8"), ("gsics_correction_endtime", "<f8"),
    ("gsics_radiance_validity_upper_lim", "<f4"), ("gsics_radiance_validity_lower_lim", "<f4"),
    ("gsics_filename", "S128"), ("spare", "S56"),
])
SEGMENT_INFO = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("total_number_of_segments", "u1"),
    ("segment_sequence_number", "u1"), ("first_line_number_of_image_segment", "<u2"), ("spare", "S40"),
])
NAV_CORR = np.dtype([
    ("hblock_number", "u1"), ("blocklength", "<u2"), ("center_column_of_rotation", "<f4"),
    ("center_line_of_rotation", "<f4"), ("amount_of_rotational_correction", "<f8"),
    ("numof_correction_info_data", "<u2"),
])
NAV_CORR_ENTRY = np.dtype([
    ("line_number_after_rotation", "<u2"), ("shift_amount_for_column_direction", "<f4"),
    ("shift_amount_for_line_direction", "<f4"),
])
OBS_TIME = np.dtype([("hblock_number", "u1"), ("blocklength", "<u2"), ("number_of_observation_times", "<u2")])
OBS_TIME_ENTRY = np.dtype([("line_number", "<u2"), ("observation_time", "<f8")])
ERROR_INFO = np.dtype([("hblock_number", "u1"), ("blocklength", "<u4"), ("number_of_error_info_data", "<u2")])
ERROR_ENTRY = np.dtype([("line_number", "<u2"), ("numof_error_pixels_per_line", "<u2")])
SPARE_BLOCK = np.dtype([("hblock_number", "u1"), ("blocklength", "<u2"), ("spare", "S256")])
#: Blocks 8, 9 and 10 end with this many spare bytes after their entries.
TRAILING_SPARE = 40

_NAME_RE = re.compile(
    r"^HS_(?P<sat>H\d\d)_(?P<date>\d{8})_(?P<hhmm>\d{4})_B(?P<band>\d\d)_(?P<area>[A-Z0-9]{4})"
    r"_R(?P<res>\d\d)_S(?P<seg>\d\d)(?P<total>\d\d)\.DAT(?P<bz2>\.bz2)?$"
)


def hsd_file_name(platform: str, time: dt.datetime, band: int, segment: int, total_segments: int,
                  area: str = "FLDK") -> str:
    """The real name of one HSD file, e.g. ``HS_H08_20210412_1200_B13_FLDK_R20_S0110.DAT``."""
    return (f"HS_{platform}_{time:%Y%m%d_%H%M}_B{band:02d}_{area}_R{AHI_RES_CODE[band]:02d}"
            f"_S{segment:02d}{total_segments:02d}.DAT")


def parse_hsd_name(path: str | Path) -> dict | None:
    """Fields of an HSD file name (satellite, slot time, band, area, segment, total), or None if not one."""
    m = _NAME_RE.match(Path(path).name)
    if m is None:
        return None
    return {
        "satellite": m["sat"], "time": dt.datetime.strptime(m["date"] + m["hhmm"], "%Y%m%d%H%M"),
        "band": int(m["band"]), "area": m["area"], "res_code": int(m["res"]), "segment": int(m["seg"]),
        "total_segments": int(m["total"]),
    }


def mjd_to_datetime(mjd: float) -> dt.datetime:
    """Modified Julian Date (days since 1858-11-17 00:00 UTC) -> naive UTC datetime (to the microsecond)."""
    return MJD_EPOCH + dt.timedelta(days=float(mjd))


def datetime_to_mjd(time: dt.datetime) -> float:
    """Naive UTC datetime -> Modified Julian Date."""
    return (time - MJD_EPOCH) / dt.timedelta(days=1)


# --------------------------------------------------------------------------------------------------------------
# Calibration (shared with the sample writer, which applies the inverses)
# --------------------------------------------------------------------------------------------------------------

def planck_wavelength_radiance(temperature_k, wavelength_um: float, c: float, h: float, k: float) -> np.ndarray:
    """Planck spectral radiance (W m⁻² sr⁻¹ µm⁻¹) at one wavelength, with the constants the file gives."""
    lam = wavelength_um * 1e-6
    t = np.asarray(temperature_k, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return 2.0 * h * c**2 / (lam**5 * np.expm1(h * c / (k * lam * t))) * 1e-6


@dataclass(frozen=True)
class HsdSegment:
    """One parsed HSD file: its header blocks (numpy records) and its counts (lines, columns), if read."""

    path: Path
    basic: np.void
    data_info: np.void
    proj: np.void
    nav: np.void
    cal: np.void
    cal_band: np.void
    inter_cal: np.void
    segment: np.void
    observation_times: np.ndarray
    counts: np.ndarray | None  # None when only the header was read

    @property
    def band(self) -> int:
        """AHI band number (1–16)."""
        return int(self.cal["band_number"])

    @property
    def is_solar(self) -> bool:
        """True for the visible and near-infrared bands (calibrated to reflectance)."""
        return self.band in AHI_SOLAR_BANDS


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".bz2"):
            with bz2.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise GranuleError(path, "no such file") from None
    except (OSError, EOFError) as exc:
        raise GranuleError(path, f"cannot be read ({exc})") from None


#: More header than this is damage (a real header is a few kB to ~100 kB with the per-line tables).
MAX_HEADER_BYTES = 4 << 20


def _read_header_bytes(path: Path) -> tuple[bytes, int | None]:
    """The header bytes (as block 1 gives their length) and the file size (None for ``.bz2``: unknown unread)."""
    try:
        compressed = path.name.endswith(".bz2")
        with (bz2.open(path, "rb") if compressed else open(path, "rb")) as f:
            first = f.read(BASIC_INFO.itemsize)
            if len(first) < BASIC_INFO.itemsize or first[0] != 1:
                return first, None if compressed else path.stat().st_size
            total = int(np.frombuffer(first, BASIC_INFO)[0]["total_header_length"])
            rest = f.read(min(max(total, len(first)), MAX_HEADER_BYTES) - len(first))
        return first + rest, None if compressed else path.stat().st_size
    except FileNotFoundError:
        raise GranuleError(path, "no such file") from None
    except (OSError, EOFError) as exc:
        raise GranuleError(path, f"cannot be read ({exc})") from None


class _BlockCursor:
    """Walks the header blocks of one HSD buffer, checking numbers, lengths and the end of the buffer."""

    def __init__(self, path: Path, buf: bytes):
        self.path, self.buf, self.pos = path, buf, 0

    def record(self, dtype: np.dtype, at: int, what: str, count: int = 1) -> np.ndarray:
        end = at + dtype.itemsize * count
        if end > len(self.buf):
            raise GranuleError(self.path, f"is truncated: {what} needs bytes {at}–{end} but the file has "
                                          f"{len(self.buf)} bytes")
        return np.frombuffer(self.buf, dtype=dtype, count=count, offset=at)

    def block(self, number: int, dtype: np.dtype, extra: np.dtype | None = None) -> tuple[np.void, np.void | None]:
        start = self.pos
        head = self.record(dtype, start, f"header block {number}")[0]
        if int(head["hblock_number"]) != number:
            raise GranuleError(self.path, f"is not a valid HSD file: header block {number} expected at byte "
                                          f"{start}, found block number {int(head['hblock_number'])}")
        tail = self.record(extra, start + dtype.itemsize, f"header block {number}")[0] if extra else None
        self.pos = start + int(head["blocklength"])
        return head, tail

    def block_with_entries(self, number: int, dtype: np.dtype, count_field: str, entry: np.dtype
                           ) -> tuple[np.void, np.ndarray]:
        start = self.pos
        head, _ = self.block(number, dtype)
        n = int(head[count_field])
        entries = self.record(entry, start + dtype.itemsize, f"header block {number}", count=n)
        return head, entries


def read_hsd_segment(path: str | Path, header_only: bool = False) -> HsdSegment:
    """Parse one HSD file (plain or ``.bz2``); a damaged or truncated file raises :class:`GranuleError`.

    ``header_only`` reads the header blocks alone (and, for a plain file, checks its size): the cheap check made
    before satpy reads the slot. Plain binary reads: no lock is needed (the HDF libraries are not involved).
    Whatever is wrong with the bytes — truncated, zero bytes, garbage, a header that contradicts the file name —
    is a :class:`GranuleError` naming the file and the reason, never another exception.
    """
    path = Path(path)
    try:
        if header_only:
            buf, size = _read_header_bytes(path)
        else:
            buf = _read_bytes(path)
            size = len(buf)
        segment = _parse_segment(path, buf, size, header_only)
        _nominal_times(segment.basic)  # times beyond the calendar are damage too
    except GranuleError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, ZeroDivisionError, MemoryError) as exc:
        raise GranuleError(path, f"is not a valid HSD file ({type(exc).__name__}: {exc})") from None
    try:
        info = parse_hsd_name(path)
    except ValueError:  # a name with an impossible date: the header is what counts
        info = None
    if info is not None and info["band"] != segment.band:
        raise GranuleError(path, f"is named as band B{info['band']:02d} but its header (block 5) holds band "
                                 f"B{segment.band:02d}")
    if info is not None and info.get("segment") not in (None, int(segment.segment["segment_sequence_number"])):
        raise GranuleError(path, f"is named as segment {info['segment']} but its header (block 7) says segment "
                                 f"{int(segment.segment['segment_sequence_number'])}")
    return segment


def _parse_segment(path: Path, buf: bytes, size: int | None, header_only: bool) -> HsdSegment:
    cur = _BlockCursor(path, buf)
    basic, _ = cur.block(1, BASIC_INFO)
    if int(basic["byte_order"]) != 0:
        raise GranuleError(path, "is big-endian (byte_order 1); only little-endian HSD files are supported")
    data_info, _ = cur.block(2, DATA_INFO)
    proj, _ = cur.block(3, PROJ_INFO)
    nav, _ = cur.block(4, NAV_INFO)
    cal = cur.record(CAL_INFO, cur.pos, "header block 5")[0]
    band = int(cal["band_number"])
    if band not in AHI_GENERIC:
        raise GranuleError(path, f"has band number {band} in header block 5; AHI bands are 1–16")
    cal, cal_band = cur.block(5, CAL_INFO, VIS_CAL if band in AHI_SOLAR_BANDS else IR_CAL)
    inter_cal, _ = cur.block(6, INTER_CAL)
    segment, _ = cur.block(7, SEGMENT_INFO)
    cur.block_with_entries(8, NAV_CORR, "numof_correction_info_data", NAV_CORR_ENTRY)
    _, obs_times = cur.block_with_entries(9, OBS_TIME, "number_of_observation_times", OBS_TIME_ENTRY)
    cur.block_with_entries(10, ERROR_INFO, "number_of_error_info_data", ERROR_ENTRY)
    cur.block(11, SPARE_BLOCK)

    header_length = int(basic["total_header_length"])
    if cur.pos != header_length:
        raise GranuleError(path, f"is not a valid HSD file: its header blocks end at byte {cur.pos} but block 1 "
                                 f"gives a header length of {header_length}")
    nlines, ncols = int(data_info["number_of_lines"]), int(data_info["number_of_columns"])
    if int(data_info["number_of_bits_per_pixel"]) != 16 or int(data_info["compression_flag_for_data"]) != 0:
        raise GranuleError(path, "stores compressed or non-16-bit counts; only plain uint16 data are supported")
    expected = header_length + nlines * ncols * 2
    if size is not None and size < expected:
        raise GranuleError(path, f"is truncated: {nlines} lines × {ncols} columns of counts need {expected} bytes, "
                                 f"the file has {size}")
    counts = None
    if not header_only:
        counts = np.frombuffer(buf, dtype="<u2", count=nlines * ncols, offset=header_length).reshape(nlines, ncols)
    return HsdSegment(path=path, basic=basic, data_info=data_info, proj=proj, nav=nav, cal=cal, cal_band=cal_band,
                      inter_cal=inter_cal, segment=segment, observation_times=obs_times.copy(), counts=counts)


def _nominal_times(basic: np.void) -> tuple[dt.datetime, dt.datetime]:
    """Nominal slot start (the observation timeline HHMM on the observation day) and end (+10 min for FLDK)."""
    start = mjd_to_datetime(basic["observation_start_time"])
    timeline = int(basic["observation_timeline"])
    hh, mm = divmod(timeline, 100)
    if hh > 23 or mm > 59:  # fill value: keep the observation time
        return start, start + dt.timedelta(minutes=10)
    candidates = [dt.datetime.combine(start.date() + dt.timedelta(days=d), dt.time(hh, mm)) for d in (-1, 0, 1)]
    nominal = min(candidates, key=lambda t: abs(t - start))
    return nominal, nominal + dt.timedelta(minutes=10)


# --------------------------------------------------------------------------------------------------------------
# One slot: checks on the headers, then satpy
# --------------------------------------------------------------------------------------------------------------

#: Header fields every segment of one band shares.
_SHARED_PROJ = ("CFAC", "LFAC", "COFF", "LOFF", "sub_lon")


def _shape(seg: HsdSegment) -> tuple[int, int, int]:
    return (int(seg.data_info["number_of_lines"]), int(seg.data_info["number_of_columns"]),
            int(seg.segment["total_number_of_segments"]))


def _check_band_segments(band: int, segments: list[HsdSegment]) -> None:
    """The segments of one band agree on their size and grid (the majority is right) and are placed as numbered."""
    shapes = [_shape(s) for s in segments]
    ref = max(set(shapes), key=shapes.count)
    first = segments[shapes.index(ref)]
    seen: dict[int, Path] = {}
    for seg in segments:
        nlines, _, total = _shape(seg)
        number = int(seg.segment["segment_sequence_number"])
        first_line = int(seg.segment["first_line_number_of_image_segment"])
        if _shape(seg) != ref:
            raise GranuleError(seg.path, f"does not match the other B{band:02d} segments: {ref[0]} lines × "
                                         f"{ref[1]} columns of {ref[2]} segments expected, its header says "
                                         f"{nlines} × {_shape(seg)[1]} of {total}")
        if number in seen or not 1 <= number <= total:
            raise GranuleError(seg.path, f"segment {number} of {total} is duplicated or out of range")
        if first_line != (number - 1) * nlines + 1:
            raise GranuleError(seg.path, f"segment {number} starts at line {first_line}, expected "
                                         f"{(number - 1) * nlines + 1} for {nlines}-line segments")
        for name in _SHARED_PROJ:
            if seg.proj[name] != first.proj[name]:
                raise GranuleError(seg.path, f"has {name} {seg.proj[name]} where segment "
                                             f"{int(first.segment['segment_sequence_number'])} has {first.proj[name]}")
        seen[number] = seg.path


def _check_same_slot(segments: list[HsdSegment]) -> None:
    ref = segments[0]
    ref_slot = _nominal_times(ref.basic)[0]
    for seg in segments:
        for field in ("satellite", "observation_area"):
            if seg.basic[field] != ref.basic[field]:
                raise GranuleError(seg.path, f"is from another satellite or area: {field} "
                                             f"{seg.basic[field]!r}, {ref.path.name} has {ref.basic[field]!r}")
        slot = _nominal_times(seg.basic)[0]
        if slot != ref_slot:
            raise GranuleError(seg.path, f"is from another slot: {slot:%Y-%m-%d %H:%M}, {ref.path.name} is "
                                         f"from {ref_slot:%Y-%m-%d %H:%M}")
        if seg.proj["sub_lon"] != ref.proj["sub_lon"]:
            raise GranuleError(seg.path, f"has sub_lon {seg.proj['sub_lon']}, {ref.path.name} has "
                                         f"{ref.proj['sub_lon']}")


def _diagnose(paths: list[Path]) -> None:
    """After a satpy failure: parse every file whole, so the error names the damaged one."""
    for path in paths:
        read_hsd_segment(path)


def _normalise_channels(channels: Iterable[str] | None) -> list[str] | None:
    if channels is None:
        return None
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_AHI]
    if unknown:
        raise UserInputError(f"unknown AHI channel {', '.join(map(repr, unknown))}; AHI channels are "
                             f"{', '.join(GENERIC_AHI)}")
    return names


def _satpy_names(paths: list[Path]) -> list[Path]:
    """Files satpy's ``ahi_hsd`` reader recognises (it chooses them by name): others are refused, named."""
    for path in paths:
        if parse_hsd_name(path) is None:
            raise GranuleError(path, "is not named as an HSD file (HS_H09_20250412_0300_B13_FLDK_R20_S0110.DAT): "
                                     "satpy's ahi_hsd reader chooses files by name")
    return paths


def read_ahi(paths: Sequence[str | Path], channels: Iterable[str] | None = None) -> xr.Dataset:
    """Read the HSD files of one AHI slot into a canonical GeoScene (see the module docstring).

    ``paths`` are the segment files of one time slot (any bands, any subset of segments: missing segments are
    NaN). ``channels`` are generic names (``ir_105``, ``vis_06`` …); None reads every band present. The headers
    are checked here (band, segment, grid and slot of every file agree with its name and with the others), the
    counts are read and calibrated by satpy's ``ahi_hsd`` reader. Files that cannot be used raise
    :class:`GranuleError` naming the file; a channel with no file raises it too.
    """
    wanted = _normalise_channels(channels)
    if not paths:
        raise UserInputError("read_ahi needs at least one HSD file")
    wanted_bands = None if wanted is None else {GENERIC_AHI[c] for c in wanted}
    if any(is_remote(p) for p in paths):  # remote segments: local copies of the bands asked for only (cached)
        names = [(p, parse_hsd_name(basename(p))) for p in paths]
        chosen = [p for p, info in names if info is None or wanted_bands is None or info["band"] in wanted_bands]
        with localised(chosen) as (local, back):
            ds = _read_ahi(local, wanted, wanted_bands)
        ds.attrs["source"] = [back.get(str(s), s) for s in ds.attrs.get("source", [])]
        return ds
    return _read_ahi([Path(p) for p in paths], wanted, wanted_bands)


def _read_ahi(paths: list[Path], wanted: list[str] | None, wanted_bands: set[int] | None) -> xr.Dataset:
    by_band: dict[int, list[HsdSegment]] = {}
    for path in paths:
        info = parse_hsd_name(path)
        if info is not None and wanted_bands is not None and info["band"] not in wanted_bands:
            continue
        seg = read_hsd_segment(path, header_only=True)
        if wanted_bands is None or seg.band in wanted_bands:
            by_band.setdefault(seg.band, []).append(seg)
    if wanted is not None:
        missing = [c for c in wanted if GENERIC_AHI[c] not in by_band]
        if missing:
            raise GranuleError(paths[0], f"no file of this slot holds channel {', '.join(missing)} "
                                         f"(AHI band {', '.join(f'B{GENERIC_AHI[c]:02d}' for c in missing)})")
    for band, segs in sorted(by_band.items()):
        _check_band_segments(band, segs)
    segments = [s for _, segs in sorted(by_band.items()) for s in segs]
    _check_same_slot(segments)
    order = wanted or [AHI_GENERIC[b] for b in sorted(by_band)]
    files = _satpy_names([s.path for s in segments])
    short = parse_hsd_name(files[0])["satellite"]  # H08, H09: the key when the platform table lacks the satellite
    ds = load_canonical("ahi_hsd", files, order, {c: f"B{GENERIC_AHI[c]:02d}" for c in order},
                        lambda attrs: platform_key(attrs.get("platform_name", ""), short), sensor="ahi",
                        reader_kwargs={"mask_space": False}, diagnose=_diagnose, lock=False)
    ds.attrs["observation_area"] = segments[0].basic["observation_area"].decode(errors="replace").strip("\x00 ")
    return ds
