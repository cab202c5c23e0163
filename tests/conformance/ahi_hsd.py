"""Himawari Standard Data (HSD) segments built from JMA's format description, for conformance tests.

The layout is JMA's *Himawari Standard Data User's Guide* (version 1.3, 2017): eleven little-endian header blocks,
each starting with its number (1 byte) and its length (2 bytes; 4 for block 10), then the counts as uint16 in
(line, column) order. Field by field, as packed below with :mod:`struct` (the sizes are the guide's: 282, 50, 127,
139, 147, 259, 47, 61 + 10n, 45 + 10n, 47 + 4n and 259 bytes); the header values follow those satpy's own
``test_ahi_hsd.py`` uses for its ``ahi_hsd`` reader (Earth radii 6378.137/6356.7523 km, satellite distance
42164 km, ``COFF = LOFF`` at the disk centre, ``observation_timeline`` as HHMM, MJD times, ``FLDK`` area).

The grid is a full disk at reduced resolution (``CFAC``/``LFAC`` divided by :data:`REDUCTION`, 22 × 22 pixels
for a 2 km band, 88 × 88 for the 0.5 km B03), cut into two segments — small, but every geolocation number means
what it means in a real file. Platform Himawari-9 (``H09``), the primary satellite since December 2022.

Expected values (in :class:`HsdBand`) are computed by hand from what was written, with the guide's formulas:

- radiance ``L = gain · count + offset`` — for bands 1–6 the *updated* coefficients of block 5 when they are not
  zero (satpy's default ``update`` mode); counts equal to the error or outside-scan values are no data;
- infrared: ``Te = (h c / k λ) / ln(2 h c² / (L · 10⁶ · λ⁵) + 1)``, then ``Tb = c0 + c1·Te + c2·Te²``;
- visible: reflectance (%) ``= L · coeff_rad2albedo · 100``;
- geolocation: column ``c`` and line ``l`` (from 1) look at ``x = (c − COFF) · 2¹⁶ / CFAC`` and
  ``y = (LOFF − l) · 2¹⁶ / LFAC`` degrees, times ``h = distance − a`` (m) in the ``geos`` projection.

Nothing here imports ``app``: the fixtures must not share our writers' mistakes.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MJD0 = dt.datetime(1858, 11, 17)
DISTANCE_KM, REQ_KM, RPOL_KM = 42164.0, 6378.137, 6356.7523
H_M = DISTANCE_KM * 1000.0 - REQ_KM * 1000.0
C, PLANCK_H, BOLTZMANN_K = 2.99792458e8, 6.62606957e-34, 1.3806488e-23
#: Real full-disk CFAC of the 2 km bands; the fixture divides it (and the number of columns) by REDUCTION.
CFAC_2KM, REDUCTION = 20466275, 250
ERROR_COUNT, OUTSIDE_COUNT = 65535, 65534
#: Band -> (resolution code, size factor vs 2 km, central wavelength µm, valid bits, gain, offset, extra)
BANDS = {
    13: ("R20", 1, 10.4073, 11, -0.0023, 18.2,
         {"c0": -0.1335, "c1": 1.000446, "c2": -1.1e-06}),
    3: ("R05", 4, 0.6385, 11, 0.0250, -0.05,
        {"albedo": 0.0019254, "cali_gain": 0.0247, "cali_offset": -0.0494}),
}


def mjd(t: dt.datetime) -> float:
    """Modified Julian Date of a naive UTC time."""
    return (t - MJD0) / dt.timedelta(days=1)


@dataclass
class HsdBand:
    """The segments written for one band and what a reader must give back from them."""

    band: int
    paths: list[Path]
    counts: np.ndarray  # whole disk, uint16
    gain: float
    offset: float
    wavelength_um: float
    coefficients: dict
    cfac: int
    coff: float

    def radiance(self) -> np.ndarray:
        """W m⁻² sr⁻¹ µm⁻¹ of every pixel (float64), NaN for the error and outside-scan counts."""
        c = self.coefficients
        gain, offset = (c["cali_gain"], c["cali_offset"]) if "cali_gain" in c else (self.gain, self.offset)
        rad = self.counts.astype(np.float64) * gain + offset
        return np.where((self.counts == ERROR_COUNT) | (self.counts == OUTSIDE_COUNT), np.nan, rad)

    def expected(self) -> np.ndarray:
        """Brightness temperature (K) for an infrared band, reflectance (%) for a visible one."""
        rad = self.radiance()
        c = self.coefficients
        if "albedo" in c:
            return rad * c["albedo"] * 100.0
        lam = self.wavelength_um * 1e-6
        te = (PLANCK_H * C / (BOLTZMANN_K * lam)) / np.log(2 * PLANCK_H * C**2 / (rad * 1e6 * lam**5) + 1)
        return c["c0"] + c["c1"] * te + c["c2"] * te**2

    def xy_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Projection x (west -> east) and y (north -> south) of the pixel centres, metres."""
        n = self.counts.shape[1]
        idx = np.arange(1, n + 1, dtype=np.float64)
        x = np.deg2rad((idx - self.coff) * 2.0**16 / self.cfac) * H_M
        y = np.deg2rad((self.coff - idx) * 2.0**16 / self.cfac) * H_M
        return x, y


def _s(text: str, size: int) -> bytes:
    return text.encode("ascii").ljust(size, b"\0")


def _header(platform_name: str, name: str, band: int, seg: int, total: int, nlines: int, ncols: int,
            slot: dt.datetime, start: dt.datetime, end: dt.datetime, cfac: int, coff: float) -> bytes:
    res, _, wavelength, bits, gain, offset, extra = BANDS[band]
    blocks = []
    # block 2 … 11 first: block 1 needs the total header length
    blocks.append(struct.pack("<BHHHHB40s", 2, 50, 16, ncols, nlines, 0, b""))
    blocks.append(struct.pack("<BHdIIffdddddddhh40s", 3, 127, 140.7, cfac, cfac, coff, coff, DISTANCE_KM, REQ_KM,
                              RPOL_KM, (REQ_KM**2 - RPOL_KM**2) / REQ_KM**2, RPOL_KM**2 / REQ_KM**2,
                              REQ_KM**2 / RPOL_KM**2, 1737122264.0, 0, 4, b""))
    blocks.append(struct.pack("<BHdddddd3d3d40s", 4, 139, mjd(start), 140.6571, 0.0043,
                              42165.04, 140.2525, 0.0167, 1.1e8, -6.5e7, 2.3e7, 3.1e5, 1.8e5, -2.0e4, b""))
    common = struct.pack("<BHHdHHHdd", 5, 147, band, wavelength, bits, ERROR_COUNT, OUTSIDE_COUNT, gain, offset)
    if band <= 6:
        tail = struct.pack("<dddd80s", extra["albedo"], mjd(slot) - 3.0, extra["cali_gain"], extra["cali_offset"],
                           b"")
    else:
        tail = struct.pack("<ddddddddd40s", extra["c0"], extra["c1"], extra["c2"], 0.13, 0.9995, 1.1e-6, C,
                           PLANCK_H, BOLTZMANN_K, b"")
    blocks.append(common + tail)
    blocks.append(struct.pack("<BHddddddddff128s56s", 6, 259, -0.1, 1.001, 0.0, 0.01, 0.002, 7.5, mjd(slot) - 1,
                              mjd(slot) + 1, 20.0, 0.0, b"", b""))
    first_line = (seg - 1) * nlines + 1
    blocks.append(struct.pack("<BHBBH40s", 7, 47, total, seg, first_line, b""))
    blocks.append(struct.pack("<BHffdH", 8, 61 + 10, ncols / 2 + 0.5, nlines * total / 2 + 0.5, 0.0, 1)
                  + struct.pack("<Hff", first_line, 0.0, 0.0) + b"\0" * 40)
    blocks.append(struct.pack("<BHH", 9, 45 + 20, 2) + struct.pack("<Hd", first_line, mjd(start))
                  + struct.pack("<Hd", first_line + nlines - 1, mjd(end)) + b"\0" * 40)
    blocks.append(struct.pack("<BIH", 10, 47 + 4, 1) + struct.pack("<HH", first_line, 0) + b"\0" * 40)
    blocks.append(struct.pack("<BH256s", 11, 259, b""))
    rest = b"".join(blocks)
    total_header = 282 + len(rest)
    timeline = slot.hour * 100 + slot.minute
    block1 = struct.pack("<BHHB16s16s4s2sHdddIIBBBB32s128s40s", 1, 282, 11, 0, _s(platform_name, 16), _s("MSC", 16),
                         b"FLDK", b"  ", timeline, mjd(start), mjd(end), mjd(end) + 1e-4, total_header,
                         nlines * ncols * 2, 0, 0, 0, 0, _s("1.3", 32), _s(name, 128), b"")
    assert len(block1) == 282 and len(common + tail) == 147
    return block1 + rest


def build(out: Path, band: int = 13, platform: str = "H09", slot: dt.datetime = dt.datetime(2025, 4, 12, 3, 0),
          segments: int = 2, seed: int = 0) -> HsdBand:
    """Write the ``segments`` segment files of one band of a full-disk slot into ``out``."""
    platform_name = {"H08": "Himawari-8", "H09": "Himawari-9"}[platform]
    res, factor, wavelength, _, gain, offset, extra = BANDS[band]
    n = 5500 // REDUCTION * factor
    cfac = CFAC_2KM // REDUCTION * factor
    coff = (n + 1) / 2
    rng = np.random.default_rng(seed + band)
    lo, hi = (200, 3000) if band <= 6 else (1500, 7500)  # positive radiances only
    counts = rng.integers(lo, hi, size=(n, n)).astype(np.uint16)
    idx = np.arange(1, n + 1) - coff
    off_disk = np.hypot(idx[None, :], idx[:, None]) > 0.5 * n * 0.98
    counts[off_disk] = OUTSIDE_COUNT
    counts[n // 2, n // 3] = ERROR_COUNT
    start = slot + dt.timedelta(seconds=20.4)
    end = slot + dt.timedelta(minutes=9, seconds=46)
    nlines = n // segments
    paths = []
    for seg in range(1, segments + 1):
        name = f"HS_{platform}_{slot:%Y%m%d_%H%M}_B{band:02d}_FLDK_{res}_S{seg:02d}{segments:02d}.DAT"
        header = _header(platform_name, name, band, seg, segments, nlines, n, slot, start, end, cfac, coff)
        path = Path(out) / name
        path.write_bytes(header + counts[(seg - 1) * nlines:seg * nlines].astype("<u2").tobytes())
        paths.append(path)
    return HsdBand(band, paths, counts, gain, offset, wavelength, extra, cfac, coff)
