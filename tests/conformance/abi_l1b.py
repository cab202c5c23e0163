"""GOES-R ABI L1b radiance files (one band, full disk) built from the public description, for conformance tests.

The layout is that of the GOES-R *Product Definition and User's Guide* (PUG) L1b volume 3 (section 5.1, "Radiances")
and of the files NOAA distributes (``noaa-goes18``/``noaa-goes19`` buckets), cross-checked with what satpy's own
``test_abi_l1b.py`` builds for its ``abi_l1b`` reader (``Rad`` with ``scale_factor``/``add_offset``/``_FillValue``,
``x``/``y`` scan angles, ``goes_imager_projection``, ``band_id``, the Planck and solar calibration scalars,
``nominal_satellite_subpoint_*``, ``yaw_flip_flag``, the ``time_coverage_*`` attributes):

- name ``OR_ABI-L1b-RadF-M6C13_G18_s20251021200211_e20251021209519_c20251021209576.nc`` (start, end, creation
  as ``YYYYJJJHHMMSSt``);
- ``Rad(y, x)`` int16 with ``_Unsigned = "true"`` (counts up to 2ⁿ − 1 for an n-bit band), ``scale_factor`` and
  ``add_offset`` (float32) to radiance, ``_FillValue`` 2ⁿ − 1 (off the Earth disk), ``valid_range``; ``DQF(y, x)``;
- ``x``, ``y`` int16 scan angles (rad) with float32 ``scale_factor``/``add_offset`` (full disk 2 km: 5.6e-05 and
  ∓0.151844; 0.5 km: 1.4e-05 and ∓0.151858); pixels are *selected* from the real grid (every 452nd 2 km pixel, a
  12 × 12 image; 48 × 48 at 0.5 km), so the fixture is small but every number is on the real fixed grid;
- ``goes_imager_projection`` (GRS80, ``perspective_point_height`` 35786023 m, ``sweep_angle_axis`` x);
- ``band_id``, ``band_wavelength``, ``planck_fk1/fk2/bc1/bc2`` (emissive), ``esun``, ``kappa0``,
  ``earth_sun_distance_anomaly_in_AU`` (reflective), ``nominal_satellite_subpoint_lat/lon/height``,
  ``yaw_flip_flag``, ``t``, ``time_bounds``;
- global attributes ``platform_ID``, ``instrument_ID``, ``orbital_slot``, ``scene_id``, ``spatial_resolution``,
  ``time_coverage_start``/``_end``, ``production_site``, ``timeline_id``, ``dataset_name``.

The calibration coefficients are the file's own: each platform here gets values of the real order but different
from GOES-16's, so a reader that took them from a table instead of the file would fail. Expected values are
computed by hand in :class:`AbiBand` from what was written: ``L = count · scale + offset``;
``BT = (fk2 / ln(fk1 / L + 1) − bc1) / bc2`` (NaN for L ≤ 0); reflectance (%) ``= 100 · L · π d² / esun``.

Nothing here imports ``app``: the fixtures must not share our writers' mistakes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

H = 35786023.0
A, B = 6378137.0, 6356752.31414
#: Real fixed-grid packing of the scan angles: (scale_factor, add_offset of x; y has both negated).
GRID = {2000: (5.6e-05, -0.151844), 500: (1.4e-05, -0.151858)}
#: Every STRIDE-th 2 km pixel from the first CENTRE is kept: 12 pixels across the disk.
STRIDE, FIRST, N = 452, 226, 12
#: Platform -> (projection longitude, nominal sub-satellite longitude, orbital slot, instrument flight model).
PLATFORMS = {"G18": (-137.0, -137.0, "GOES-West", "FM3"), "G19": (-75.0, -75.2, "GOES-East", "FM4")}
#: Per (platform, band): the file's calibration (not GOES-16's), radiance packing and bit depth.
CALIBRATION = {
    ("G18", 13): {"planck_fk1": 10748.0, "planck_fk2": 1394.9, "planck_bc1": 0.0987, "planck_bc2": 0.99965},
    ("G19", 13): {"planck_fk1": 10795.6, "planck_fk2": 1396.2, "planck_bc1": 0.0871, "planck_bc2": 0.99970},
    ("G18", 2): {"esun": 1625.8, "earth_sun_distance_anomaly_in_AU": 1.00291},
    ("G19", 2): {"esun": 1628.4, "earth_sun_distance_anomaly_in_AU": 1.00291},
}
PACKING = {13: (0.04572892, -1.6443, 12, "mW m-2 sr-1 (cm-1)-1", 10.33),
           2: (0.15859237, -20.289911, 12, "W m-2 sr-1 um-1", 0.64)}


def abi_time(t: dt.datetime) -> str:
    """``YYYYJJJHHMMSSt`` as in ABI file names."""
    return f"{t:%Y%j%H%M%S}{t.microsecond // 100000}"


@dataclass
class AbiBand:
    """One written file and what a reader must give back from it."""

    path: Path
    platform: str
    band: int
    counts: np.ndarray  # uint16 as written (fill where off the disk)
    x_m: np.ndarray  # pixel-centre projection x (m) = scan angle × h
    y_m: np.ndarray
    calibration: dict
    scale: float
    offset: float
    fill: int

    def radiance(self) -> np.ndarray:
        """Radiance of every pixel (float64), NaN at the fill value."""
        rad = self.counts.astype(np.float64) * float(np.float32(self.scale)) + float(np.float32(self.offset))
        return np.where(self.counts == self.fill, np.nan, rad)

    def expected(self) -> np.ndarray:
        """Brightness temperature (K) or reflectance (%), by hand from the file's coefficients."""
        rad = self.radiance()
        c = self.calibration
        if "esun" in c:
            d = c["earth_sun_distance_anomaly_in_AU"]
            return 100.0 * rad * np.pi * d * d / c["esun"]
        with np.errstate(invalid="ignore", divide="ignore"):
            bt = (c["planck_fk2"] / np.log(c["planck_fk1"] / rad + 1.0) - c["planck_bc1"]) / c["planck_bc2"]
        return np.where(rad > 0, bt, np.nan)


def _indices(resolution: int) -> np.ndarray:
    """Integer scan-angle codes of the kept pixels: the 2 km selection, or 4 × 4 blocks of 0.5 km around it."""
    coarse = FIRST + STRIDE * np.arange(N)
    if resolution == 2000:
        return coarse
    # 0.5 km pixel centres of the 4 sub-pixels of each kept 2 km sample, STRIDE/4 apart so the blocks tile the
    # image evenly and their means fall on the 2 km centres
    scale2, off2 = GRID[2000]
    scale, off = GRID[500]
    centres = off2 + scale2 * coarse
    sub = (np.arange(4) - 1.5) * scale2 * STRIDE / 4
    return np.rint(((centres[:, None] + sub[None, :]).ravel() - off) / scale).astype(int)


def _counts(n: int, bits: int, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    fill = 2**bits - 1
    counts = rng.integers(1, fill - 1, size=(n, n)).astype(np.uint16)
    off_disk = np.hypot(x[None, :] / 0.1517, y[:, None] / 0.1512) > 1.0  # outside the Earth's limb
    counts[off_disk] = fill
    counts[n // 2, n // 3] = 0  # a radiance below zero: no temperature
    return counts


def build(out: Path, platform: str = "G18", band: int = 13, start: dt.datetime = dt.datetime(2025, 4, 12, 12, 0, 21,
          100000), seed: int = 0) -> AbiBand:
    """Write one ABI L1b full-disk band file into ``out`` and return what a reader must read from it."""
    lon_0, sub_lon, slot, fm = PLATFORMS[platform]
    scale, offset, bits, units, wavelength = PACKING[band]
    resolution = 500 if band == 2 else 2000
    xs, xo = GRID[resolution]
    codes = _indices(resolution)
    n = codes.size
    x_rad = float(np.float32(xo)) + codes * float(np.float32(xs))
    x_exact, y_exact = round(xo, 6) + codes * round(xs, 6), -(round(xo, 6) + codes * round(xs, 6))
    counts = _counts(n, bits, np.random.default_rng(seed + band), x_rad, -x_rad)
    end = start + dt.timedelta(minutes=9, seconds=30, microseconds=800000)
    created = end + dt.timedelta(seconds=5)
    name = (f"OR_ABI-L1b-RadF-M6C{band:02d}_{platform}_s{abi_time(start)}_e{abi_time(end)}_c{abi_time(created)}"
            ".nc")
    path = Path(out) / name
    fill = 2**bits - 1
    cal = CALIBRATION[(platform, band)]
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("y", n)
        nc.createDimension("x", n)
        nc.createDimension("number_of_time_bounds", 2)
        nc.setncatts({
            "naming_authority": "gov.nesdis.noaa", "Conventions": "CF-1.7", "title": "ABI L1b Radiances",
            "platform_ID": platform, "instrument_type": "GOES-R Series Advanced Baseline Imager (ABI)",
            "instrument_ID": fm, "orbital_slot": slot, "scene_id": "Full Disk",
            "spatial_resolution": "0.5km at nadir" if resolution == 500 else "2km at nadir",
            "production_site": "WCDAS", "timeline_id": "ABI Mode 6", "dataset_name": name,
            "time_coverage_start": start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 100000}Z",
            "time_coverage_end": end.strftime("%Y-%m-%dT%H:%M:%S.") + f"{end.microsecond // 100000}Z",
        })
        rad = nc.createVariable("Rad", "i2", ("y", "x"), fill_value=np.int16(np.uint16(fill).view(np.int16)))
        rad.set_auto_maskandscale(False)
        rad.setncatts({"_Unsigned": "true", "scale_factor": np.float32(scale), "add_offset": np.float32(offset),
                       "units": units, "valid_range": np.array([0, fill - 1], np.int16),
                       "long_name": "ABI L1b Radiances", "standard_name": "toa_outgoing_radiance_per_unit_wavenumber"
                       if band > 6 else "toa_outgoing_radiance_per_unit_wavelength",
                       "sensor_band_bit_depth": np.int8(bits), "grid_mapping": "goes_imager_projection",
                       "coordinates": "band_id band_wavelength t y x"})
        rad[:] = counts.view(np.int16)
        dqf = nc.createVariable("DQF", "i1", ("y", "x"), fill_value=np.int8(-1))
        dqf[:] = np.where(counts == fill, 1, 0).astype(np.int8)
        for axis, sign in (("x", 1.0), ("y", -1.0)):
            v = nc.createVariable(axis, "i2", (axis,))
            v.set_auto_maskandscale(False)
            v.setncatts({"scale_factor": np.float32(sign * xs), "add_offset": np.float32(sign * xo), "units": "rad",
                         "axis": axis.upper(), "long_name": f"GOES fixed grid projection {axis}-coordinate"})
            v[:] = codes.astype(np.int16)
        proj = nc.createVariable("goes_imager_projection", "i4")
        proj.setncatts({"long_name": "GOES-R ABI fixed grid projection", "grid_mapping_name": "geostationary",
                        "perspective_point_height": H, "semi_major_axis": A, "semi_minor_axis": B,
                        "inverse_flattening": 298.2572221, "latitude_of_projection_origin": 0.0,
                        "longitude_of_projection_origin": lon_0, "sweep_angle_axis": "x"})
        t = nc.createVariable("t", "f8")
        j2000 = dt.datetime(2000, 1, 1, 12)
        t.units = "seconds since 2000-01-01 12:00:00"
        t[...] = ((start - j2000) + (end - start) / 2).total_seconds()
        tb = nc.createVariable("time_bounds", "f8", ("number_of_time_bounds",))
        tb[:] = [(start - j2000).total_seconds(), (end - j2000).total_seconds()]
        scalars = {"band_id": ("i1", band), "band_wavelength": ("f4", wavelength), "yaw_flip_flag": ("i1", 0),
                   "nominal_satellite_subpoint_lat": ("f4", 0.0), "nominal_satellite_subpoint_lon": ("f4", sub_lon),
                   "nominal_satellite_height": ("f4", 35786.023)}
        if "esun" in cal:
            d = cal["earth_sun_distance_anomaly_in_AU"]
            scalars.update(esun=("f4", cal["esun"]), earth_sun_distance_anomaly_in_AU=("f4", d),
                           kappa0=("f4", np.pi * d * d / cal["esun"]))
        else:
            scalars.update({k: ("f4", v) for k, v in cal.items()})
        for key, (dtype, value) in scalars.items():
            nc.createVariable(key, dtype)[...] = value
    cal_f32 = {k: float(np.float32(v)) for k, v in cal.items()}
    return AbiBand(path, platform, band, counts, x_exact * H, y_exact * H, cal_f32, scale, offset, fill)
