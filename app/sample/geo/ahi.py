"""Write one Himawari-8 AHI full-disk slot as real Himawari Standard Data (HSD) files.

Files, names and header blocks are those of JMA's HSD format 1.3 (see :mod:`app.data.geo_ahi` for the layout):
``HS_H08_{YYYYMMDD}_{HHMM}_B{bb}_FLDK_R{rr}_S{ss}10.DAT``, ten segments per band, eleven header blocks, then the
counts as ``uint16``; with ``compress=True`` each file is bzip2-compressed as ``….DAT.bz2``, the form NOAA's
archive on AWS and JMA's HimawariCloud distribute (the sample archive writes that: ~6× smaller). Satpy's
``ahi_hsd`` reader opens them without warnings and calibrates them to the values put in (tests/test_geo_ahi.py).

Reduced resolution
------------------
The real full disk is 5500 × 5500 pixels at 2 km (bands 5–16), 11000 at 1 km (B01, B02, B04) and 22000 at 0.5 km
(B03). The sample puts **every band on one common grid**, the 2 km grid reduced by ``resolution_factor``: 550 × 550
pixels (20 km at the sub-satellite point) for the demo's factor 10, with CFAC = LFAC = round(20466275 / factor) and
COFF = LOFF = (N + 1) / 2, so the grid is the real one coarsened (the sub-satellite point stays on the corner of
the four central pixels, as in real data). File names keep the real resolution codes (R05 for B03, R10 for B01,
B02, B04, R20 for the rest) so that archive patterns match real archives; readers take the grid from the header,
never from the name. ``resolution_factor=1`` writes the real 5500 × 5500 grid (real for bands 5–16).

Calibration written (our choices, in the real header fields)
------------------------------------------------------------
- Valid bits: 11 for B01–B06, 14 for B07, 12 for B08–B16 (as AHI). Error pixels count 65535, outside-scan pixels
  (off the disk, or NaN in the input) count 65534.
- Infrared: the count range spans the radiance of ``T_RANGE_K`` (170–340 K for the window bands, 170–300/310 K for
  water vapour, 180–360 K for B07), linear in radiance; beyond it values saturate. The Planck constants are the
  CODATA 2010 values real files carry, the central wavelengths those of :mod:`app.data.geo_bands`; the Te -> Tb
  correction is a real B13 file's for B13 and the identity for the other bands (we do not know their real values).
  Quantisation limits the round trip to half a count: < 0.06 K for B13–B15 above 190 K, < 0.1 K for the
  water-vapour bands above 200 K, but ~1 K for B07 at 200 K (3.9 µm radiances are tiny at cold temperatures;
  real B07 has the same problem, hence its 14 bits).
- Visible/near-infrared: radiance -> albedo coefficient π / E_sun (E_sun the band's solar irradiance at 1 AU,
  approximate), counts spanning 0–120 % reflectance with a dark offset of two counts; the updated coefficients
  equal the nominal ones. Half a count is < 0.03 % reflectance.
- Navigation: the satellite sits exactly at its nominal position (140.7° E, 42164 km from the Earth's centre);
  no navigation correction; the sun position is computed, the moon's is left at zero (not modelled).
"""

from __future__ import annotations

import bz2
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyorbital.astronomy import gmst, sun_ra_dec

from app.data import geo_ahi as hsd
from app.data.geo_bands import (
    AHI_BANDS,
    BOLTZMANN_CONSTANT,
    FULL_DISK,
    PLANCK_CONSTANT,
    SPEED_OF_LIGHT,
    geo_platform,
)
from app.sample.geo.scene import GeoGrid, grid_cloud_top, scan_angles_to_lonlat, simulate_channels

_H08 = geo_platform("H08")
#: Nominal sub-satellite longitude of Himawari-8 (degrees east).
SUB_LON = _H08.sub_lon
#: Satellite distance from the Earth's centre (km) and the Earth's radii (km) written in block 3.
DISTANCE_KM = (_H08.projection.h + _H08.projection.a) / 1000.0
EQUATORIAL_RADIUS_KM = _H08.projection.a / 1000.0
POLAR_RADIUS_KM = _H08.projection.b / 1000.0
#: Real 2 km full-disk grid: pixels and CFAC (= LFAC).
FULL_DISK_2KM = FULL_DISK["ahi"].n_pixels
CFAC_2KM = 20466275
#: Central wavelengths of Himawari-8's bands (µm), as written in block 5.
CENTRAL_WAVELENGTH_UM = {number: band.central_wavelength_um for number, band in AHI_BANDS.items()}
#: Valid bits per pixel.
VALID_BITS = {band: (11 if band <= 6 else 14 if band == 7 else 12) for band in range(1, 17)}
#: Brightness temperatures (K) spanned by the counts of each infrared band.
T_RANGE_K = {7: (180.0, 360.0), 8: (170.0, 300.0), 9: (170.0, 310.0), 10: (170.0, 310.0),
             **{band: (170.0, 340.0) for band in range(11, 17)}}
#: Te -> Tb correction (c0, c1, c2): a real B13 file's for B13, the identity elsewhere.
TB_CORRECTION = {13: (-0.116127314574, 1.00099153832, -1.76961091571e-06)}
#: Band solar irradiance at 1 AU (W m⁻² µm⁻¹, approximate) for the radiance -> albedo coefficient π / E_sun.
SOLAR_IRRADIANCE = {1: 2017.0, 2: 1877.0, 3: 1631.0, 4: 977.0, 5: 245.0, 6: 76.1}
#: Reflectance (%) at the top count of the visible bands, and the dark offset in counts.
MAX_REFLECTANCE = 120.0
DARK_COUNTS = 2
ERROR_COUNT = 65535
OUTSIDE_SCAN_COUNT = 65534
#: Full-disk scan timing: first line after the slot start, and duration of the whole scan (seconds).
SCAN_START_S = 20.4
SCAN_DURATION_S = 566.0
ALL_BANDS = tuple(range(1, 17))
#: The bands the sample archive writes: those the RGB recipes need (the ABI sample's channels, plus B02, the green
#: of AHI's true colour): B01–B05, B07, B09–B11, B13–B16.
AHI_DEMO_BANDS: tuple[str, ...] = (
    "vis_04", "vis_05", "vis_06", "nir_08", "nir_16", "ir_39", "wv_69", "wv_73", "ir_87", "ir_105", "ir_112",
    "ir_120", "ir_133",
)


@dataclass(frozen=True)
class AhiGrid:
    """The common full-disk grid of a sample slot (every band on it)."""

    resolution_factor: int
    size: int
    cfac: int
    coff: float

    @property
    def shape(self) -> tuple[int, int]:
        """(lines, columns)."""
        return self.size, self.size

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Projection x (west -> east) and y (north -> south) of pixel centres, metres."""
        h = (DISTANCE_KM - EQUATORIAL_RADIUS_KM) * 1000.0
        idx = np.arange(1, self.size + 1, dtype=np.float64)
        f = 2.0**16 / self.cfac
        coff = float(np.float32(self.coff))
        return np.deg2rad((idx - coff) * f) * h, np.deg2rad((coff - idx) * f) * h

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (degrees) of pixel centres, (lines, columns); NaN off the disk."""
        x, y = self.xy()
        h = _H08.projection.h
        lat, lon = scan_angles_to_lonlat(x[None, :] / h, y[:, None] / h, _H08.projection)
        return lon, lat

    def geo_grid(self, platform: str = "H08") -> GeoGrid:
        """The same grid as a :class:`~app.sample.geo.scene.GeoGrid` (scan angles of the pixel centres).

        The slot's CTTH product is written on it, and the scene's cloud tops are computed on it.
        """
        step = np.deg2rad(2.0**16 / self.cfac)
        coff = float(np.float32(self.coff))
        return GeoGrid(platform, self.size, self.size, (1.0 - coff) * step, step, (coff - 1.0) * step, -step,
                       FULL_DISK["ahi"].resolution_km * self.resolution_factor)


def ahi_grid(resolution_factor: int = 10) -> AhiGrid:
    """The 2 km full-disk grid coarsened by an integer factor that divides 5500 (10 -> 550 × 550)."""
    if resolution_factor < 1 or FULL_DISK_2KM % resolution_factor:
        raise ValueError(f"resolution_factor must divide {FULL_DISK_2KM}, got {resolution_factor}")
    size = FULL_DISK_2KM // resolution_factor
    return AhiGrid(resolution_factor, size, int(round(CFAC_2KM / resolution_factor)), (size + 1) / 2.0)


def _band_number(band: int | str) -> int:
    if isinstance(band, str):
        if band in hsd.GENERIC_AHI:
            return hsd.GENERIC_AHI[band]
        band = int(band.upper().lstrip("B"))
    if band not in hsd.AHI_GENERIC:
        raise ValueError(f"unknown AHI band {band!r}; bands are 1–16 (or B01–B16, or generic names)")
    return int(band)


@dataclass(frozen=True)
class BandCalibration:
    """What block 5 says for one band, and how to turn BT / reflectance into counts."""

    band: int
    gain: float
    offset: float
    c0: float = 0.0
    c1: float = 1.0
    c2: float = 0.0
    albedo_coeff: float = 0.0

    @property
    def bits(self) -> int:
        """Valid bits per pixel."""
        return VALID_BITS[self.band]

    @property
    def solar(self) -> bool:
        """True for bands 1–6 (reflectance)."""
        return self.band in hsd.AHI_SOLAR_BANDS

    def radiance(self, value: np.ndarray) -> np.ndarray:
        """Brightness temperature (K) or reflectance (%) -> radiance (W m⁻² sr⁻¹ µm⁻¹)."""
        value = np.asarray(value, dtype=np.float64)
        if self.solar:
            return value / 100.0 / self.albedo_coeff
        # invert Tb = c0 + c1 Te + c2 Te² (stable form of the root near Tb), then Planck
        disc = self.c1**2 - 4.0 * self.c2 * (self.c0 - value)
        te = 2.0 * (value - self.c0) / (self.c1 + np.sqrt(disc))
        return hsd.planck_wavelength_radiance(te, CENTRAL_WAVELENGTH_UM[self.band], SPEED_OF_LIGHT, PLANCK_CONSTANT,
                                              BOLTZMANN_CONSTANT)

    def counts(self, value: np.ndarray) -> np.ndarray:
        """Brightness temperature (K) or reflectance (%) -> uint16 counts (NaN -> outside-scan count)."""
        value = np.asarray(value, dtype=np.float64)
        finite = np.isfinite(value)
        rad = self.radiance(np.where(finite, value, 250.0 if not self.solar else 0.0))
        counts = np.clip(np.rint((rad - self.offset) / self.gain), 0, 2**self.bits - 1)
        out = counts.astype(np.uint16)
        out[~finite] = OUTSIDE_SCAN_COUNT
        return out


def band_calibration(band: int) -> BandCalibration:
    """The calibration the sample writes for one band (see the module docstring)."""
    top = 2**VALID_BITS[band] - 1
    if band in hsd.AHI_SOLAR_BANDS:
        coeff = np.pi / SOLAR_IRRADIANCE[band]
        rad_max = MAX_REFLECTANCE / 100.0 / coeff
        gain = rad_max / (top - DARK_COUNTS)
        return BandCalibration(band, gain=gain, offset=-DARK_COUNTS * gain, albedo_coeff=coeff)
    c0, c1, c2 = TB_CORRECTION.get(band, (0.0, 1.0, 0.0))
    probe = BandCalibration(band, gain=1.0, offset=0.0, c0=c0, c1=c1, c2=c2)
    r_lo, r_hi = probe.radiance(np.array(T_RANGE_K[band]))
    return BandCalibration(band, gain=(r_hi - r_lo) / top, offset=float(r_lo), c0=c0, c1=c1, c2=c2)


def _sun_position_km(time: dt.datetime) -> np.ndarray:
    """Sun position in Earth-fixed Cartesian coordinates (km), for block 4."""
    ra, dec = sun_ra_dec(np.datetime64(time))
    lon = ra - gmst(np.datetime64(time))
    au_km = 149597870.7
    return au_km * np.array([np.cos(dec) * np.cos(lon), np.cos(dec) * np.sin(lon), np.sin(dec)])


def _record(dtype: np.dtype, **values) -> np.ndarray:
    rec = np.zeros(1, dtype=dtype)
    for key, value in values.items():
        rec[key] = value
    return rec


def _header(cal: BandCalibration, grid: AhiGrid, time: dt.datetime, segment: int, segments: int,
            name: str, platform: str) -> bytes:
    """The eleven header blocks of one segment file."""
    band = cal.band
    nlines = grid.size // segments
    first_line = (segment - 1) * nlines + 1
    seg_len = dt.timedelta(seconds=SCAN_DURATION_S / segments)
    obs_start = time + dt.timedelta(seconds=SCAN_START_S) + (segment - 1) * seg_len
    obs_end = obs_start + seg_len
    mjd = hsd.datetime_to_mjd

    blocks: list[np.ndarray] = []
    blocks.append(_record(hsd.DATA_INFO, hblock_number=2, blocklength=hsd.DATA_INFO.itemsize,
                          number_of_bits_per_pixel=16, number_of_columns=grid.size, number_of_lines=nlines))
    a, b, dist = EQUATORIAL_RADIUS_KM, POLAR_RADIUS_KM, DISTANCE_KM
    blocks.append(_record(
        hsd.PROJ_INFO, hblock_number=3, blocklength=hsd.PROJ_INFO.itemsize, sub_lon=SUB_LON, CFAC=grid.cfac,
        LFAC=grid.cfac, COFF=grid.coff, LOFF=grid.coff, distance_from_earth_center=dist, earth_equatorial_radius=a,
        earth_polar_radius=b, req2_rpol2_req2=(a * a - b * b) / (a * a), rpol2_req2=b * b / (a * a),
        req2_rpol2=a * a / (b * b), coeff_for_sd=dist * dist - a * a, resampling_types=4, resampling_size=4))
    mid = obs_start + seg_len / 2
    blocks.append(_record(
        hsd.NAV_INFO, hblock_number=4, blocklength=hsd.NAV_INFO.itemsize, navigation_info_time=mjd(mid),
        SSP_longitude=SUB_LON, SSP_latitude=0.0, distance_earth_center_to_satellite=dist, nadir_longitude=SUB_LON,
        nadir_latitude=0.0, sun_position=_sun_position_km(mid), moon_position=np.zeros(3)))
    band_cal = hsd.VIS_CAL if cal.solar else hsd.IR_CAL
    common = dict(hblock_number=5, blocklength=hsd.CAL_INFO.itemsize + band_cal.itemsize, band_number=band,
                  central_wave_length=CENTRAL_WAVELENGTH_UM[band], valid_number_of_bits_per_pixel=cal.bits,
                  count_value_error_pixels=ERROR_COUNT, count_value_outside_scan_pixels=OUTSIDE_SCAN_COUNT,
                  gain_count2rad_conversion=cal.gain, offset_count2rad_conversion=cal.offset)
    blocks.append(_record(hsd.CAL_INFO, **common))
    if cal.solar:
        blocks.append(_record(hsd.VIS_CAL, coeff_rad2albedo_conversion=cal.albedo_coeff,
                              coeff_update_time=mjd(time - dt.timedelta(days=30)),
                              cali_gain_count2rad_conversion=cal.gain, cali_offset_count2rad_conversion=cal.offset))
    else:
        blocks.append(_record(hsd.IR_CAL, c0_rad2tb_conversion=cal.c0, c1_rad2tb_conversion=cal.c1,
                              c2_rad2tb_conversion=cal.c2, c0_tb2rad_conversion=-cal.c0 / cal.c1,
                              c1_tb2rad_conversion=1.0 / cal.c1, c2_tb2rad_conversion=-cal.c2 / cal.c1,
                              speed_of_light=SPEED_OF_LIGHT, planck_constant=PLANCK_CONSTANT,
                              boltzmann_constant=BOLTZMANN_CONSTANT))
    invalid = -1e10  # the HSD fill value for "no GSICS correction"
    blocks.append(_record(
        hsd.INTER_CAL, hblock_number=6, blocklength=hsd.INTER_CAL.itemsize, gsics_calibration_intercept=invalid,
        gsics_calibration_slope=invalid, gsics_calibration_coeff_quadratic_term=invalid,
        gsics_std_scn_radiance_bias=invalid, gsics_std_scn_radiance_bias_uncertainty=invalid,
        gsics_std_scn_radiance=invalid, gsics_correction_starttime=invalid, gsics_correction_endtime=invalid,
        gsics_radiance_validity_upper_lim=invalid, gsics_radiance_validity_lower_lim=invalid))
    blocks.append(_record(hsd.SEGMENT_INFO, hblock_number=7, blocklength=hsd.SEGMENT_INFO.itemsize,
                          total_number_of_segments=segments, segment_sequence_number=segment,
                          first_line_number_of_image_segment=first_line))
    spare = np.zeros(hsd.TRAILING_SPARE, dtype="u1")
    nav_entries = _record(hsd.NAV_CORR_ENTRY, line_number_after_rotation=first_line)
    blocks += [_record(hsd.NAV_CORR, hblock_number=8, blocklength=hsd.NAV_CORR.itemsize + nav_entries.nbytes + 40,
                       center_column_of_rotation=grid.coff, center_line_of_rotation=grid.coff,
                       amount_of_rotational_correction=0.0, numof_correction_info_data=1), nav_entries, spare]
    lines = np.array([first_line, first_line + nlines - 1])
    times = np.array([mjd(obs_start), mjd(obs_end)])
    obs_entries = np.zeros(len(lines), dtype=hsd.OBS_TIME_ENTRY)
    obs_entries["line_number"], obs_entries["observation_time"] = lines, times
    blocks += [_record(hsd.OBS_TIME, hblock_number=9, blocklength=hsd.OBS_TIME.itemsize + obs_entries.nbytes + 40,
                       number_of_observation_times=len(lines)), obs_entries, spare]
    blocks += [_record(hsd.ERROR_INFO, hblock_number=10, blocklength=hsd.ERROR_INFO.itemsize + 40,
                       number_of_error_info_data=0), spare]
    blocks.append(_record(hsd.SPARE_BLOCK, hblock_number=11, blocklength=hsd.SPARE_BLOCK.itemsize))

    header_length = hsd.BASIC_INFO.itemsize + sum(blk.nbytes for blk in blocks)
    basic = _record(
        hsd.BASIC_INFO, hblock_number=1, blocklength=hsd.BASIC_INFO.itemsize, total_number_of_hblocks=11,
        byte_order=0, satellite=f"Himawari-{platform[-1]}".encode(), proc_center_name=b"MSC",
        observation_area=b"FLDK", other_observation_info=b"  ", observation_timeline=time.hour * 100 + time.minute,
        observation_start_time=mjd(obs_start), observation_end_time=mjd(obs_end),
        file_creation_time=mjd(time + dt.timedelta(minutes=12)), total_header_length=header_length,
        total_data_length=nlines * grid.size * 2, file_format_version=b"1.3", file_name=name.encode())
    return b"".join(blk.tobytes() for blk in [basic, *blocks])


def write_ahi_fields(fields: Mapping[str, np.ndarray], time: dt.datetime, out_root: str | Path, *,
                     resolution_factor: int = 10, segments: int = 10, platform: str = "H08",
                     compress: bool = False) -> list[Path]:
    """Write given fields (generic name -> BT K / reflectance %, on :func:`ahi_grid`) as HSD files in out_root.

    NaN is written as an outside-scan pixel. Returns the paths written, band by band, segment by segment.
    ``compress`` writes each file bzip2-compressed as ``….DAT.bz2``, as public archives (NOAA's on AWS,
    JMA's HimawariCloud) distribute them.
    """
    grid = ahi_grid(resolution_factor)
    if grid.size % segments:
        raise ValueError(f"{segments} segments do not divide the {grid.size} lines of the grid")
    out = Path(out_root)
    out.mkdir(parents=True, exist_ok=True)
    slot = _slot(time)
    nlines = grid.size // segments
    paths = []
    for name, field in fields.items():
        band = _band_number(name)
        field = np.asarray(field)
        if field.shape != grid.shape:
            raise ValueError(f"field {name!r} has shape {field.shape}, the grid is {grid.shape}")
        cal = band_calibration(band)
        counts = cal.counts(field)
        for seg in range(1, segments + 1):
            fname = hsd.hsd_file_name(platform, slot, band, seg, segments)
            header = _header(cal, grid, slot, seg, segments, fname, platform)
            data = header + counts[(seg - 1) * nlines:seg * nlines].astype("<u2").tobytes()
            path = out / (fname + ".bz2" if compress else fname)
            path.write_bytes(bz2.compress(data) if compress else data)
            paths.append(path)
    return paths


def write_ahi_slot(scenario, time: dt.datetime, out_root: str | Path, *, resolution_factor: int = 10,
                   bands: Iterable[int | str] = ALL_BANDS, segments: int = 10, compress: bool = False,
                   max_block_pixels: int = 1_000_000) -> list[Path]:
    """Write the AHI full-disk slot at ``time`` (rounded down to 10 min) of a scenario as HSD files in out_root.

    The scene (brightness temperatures, reflectances) comes from the GEO scene model
    (:func:`app.sample.geo.scene.simulate_channels`) at the pixel centres of :func:`ahi_grid`, with the cloud
    tops of :func:`~app.sample.geo.scene.grid_cloud_top` on that grid (:meth:`AhiGrid.geo_grid`): the clouds the
    CTTH product written on the same grid reports. ``bands`` are band numbers (1–16), ``B13``-style ids or
    generic names; ``compress`` writes ``.DAT.bz2`` files. Returns the paths written (bands × segments files).
    """
    grid = ahi_grid(resolution_factor)
    geo = grid.geo_grid()
    names = [hsd.AHI_GENERIC[_band_number(b)] for b in bands]
    slot = _slot(time)
    slot64 = np.datetime64(slot, "s")
    fields = {name: np.empty(grid.shape, np.float32) for name in names}
    for rows in geo.row_blocks(max_block_pixels):
        lat, lon = geo.lonlat(rows)
        values = simulate_channels(scenario, lat, lon, slot64, SUB_LON, names, sat_height_m=_H08.projection.h,
                                   cloud_tops=grid_cloud_top(scenario, geo, slot64, rows))
        for name in names:
            fields[name][rows] = values[name]
    return write_ahi_fields(fields, slot, out_root, resolution_factor=resolution_factor, segments=segments,
                            compress=compress)


def _slot(time: dt.datetime) -> dt.datetime:
    """The 10-minute slot a time falls in (naive UTC)."""
    if isinstance(time, np.datetime64):
        time = time.astype("datetime64[us]").astype(dt.datetime)
    if time.tzinfo is not None:
        time = time.astimezone(dt.UTC).replace(tzinfo=None)
    return time.replace(second=0, microsecond=0, minute=time.minute - time.minute % 10)
