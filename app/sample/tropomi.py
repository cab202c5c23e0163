"""Sentinel-5P TROPOMI L2 SO2 sample granules, in the real file format, from the scenario.

One OFFL file per orbit, named and laid out as the operational product (``shared/FORMATS.md``): netCDF4 with the
groups ``PRODUCT``, ``PRODUCT/SUPPORT_DATA/{GEOLOCATIONS,DETAILED_RESULTS,INPUT_DATA}`` and ``METADATA/...``,
dimensions ``(time=1, scanline, ground_pixel[, corner=4])``, columns in mol m⁻² with the attribute
``multiplication_factor_to_convert_to_DU``. Satpy's ``tropomi_l2`` reader opens these files.

Geometry
--------
The file holds the daylit half of the orbit, from the south-pole crossing (argument of latitude −90°, a quarter
period before the ascending node) to the north-pole crossing, one scanline every 0.84 s at full resolution
(3,624 scanlines). Each scanline has 450 ground pixels uniform in scan angle over ±54°, which gives a 2,672 km
swath on the sphere at 824 km and a 3.45 km nadir pixel across track (5.5 km along track). Ground pixel 0 is on
the left of the flight direction (west on the daylit, ascending half), so the corners run anticlockwise seen from
above: 0 bottom-left (earlier scanline edge, lower ground-pixel edge), 1 bottom-right, 2 top-right, 3 top-left,
which is the order satpy's ``tropomi_l2`` assembles into pixel-edge grids. ``scanline_step`` and ``pixel_step``
decimate: the dimensions keep their names, and each pixel's corners are drawn at the decimated boundaries, so
footprints grow (``scanline_step=4, pixel_step=3`` gives 22 km × 10 km at nadir).

Retrieval model (stated numbers)
--------------------------------
TROPOMI retrieves one slant column S and divides it by the air-mass factor (AMF) of each assumed box profile:
PBL (taken at 0 km), 1 km, 7 km and 15 km. Here

- the clear-sky AMF at nadir, overhead Sun, for SO2 at height h (km) is
  ``A(h) = 0.355 + 0.793 ln(1 + h / 5 km)``: 0.355 (PBL), 0.50 (1 km), 1.05 (7 km), 1.45 (15 km);
- it falls with solar and viewing zenith angles, more for low layers (more Rayleigh extinction above them):
  ``× cos(SZA)^k(h) × cos(VZA)^(k(h)/2)`` with ``k(h) = 0.10 + 0.40 exp(−h / 4 km)`` (0.50 at the surface,
  0.12 at 15 km): at SZA 70° the PBL AMF is 0.21 and the 7 km one 0.87;
- a cloud of fraction f, top z_c and optical depth τ shields SO2 below its top and brightens the scene above it:
  ``× (1 − f) + f [b + (a − b) σ((h − z_c) / 0.5 km)]`` with ``b = 1 − 0.9 τ/(τ+5)``, ``a = 1 + 0.8 τ/(τ+5)``
  and σ the logistic function.

Every factor grows with h, so for one plume the PBL column is the largest and the 15 km one the smallest, and the
box at the true plume height returns the true column. The true slant column is the scenario's column (averaged
over the pixel footprint) times the AMF at the scenario's plume height; the measured slant column adds Gaussian
noise of standard deviation ``0.32 DU / sqrt(cos SZA)`` (in slant DU), so the column noise is that divided by each
box's AMF: at SZA 30° about 1.0 DU (PBL), 0.7 (1 km), 0.34 (7 km) and 0.25 (15 km), about 2.6 DU for the PBL at
SZA 70°. The ``_precision`` variables hold exactly those standard deviations.

Quality and flags: ``qa_value`` is 1 for a clear pixel at low SZA, ``× (1 − 0.35 f)`` for clouds, ``× (1 − 0.6
ramp)`` with the ramp going from 0 at SZA 65° to 1 at SZA 80° (so clear pixels fall below 0.5 near SZA 77° and
cloudy ones near 72°). Pixels with SZA > 88° and a random 0.02 % of pixels (processing failures) have fill values
and ``qa_value`` 0, with the error recorded in ``processing_quality_flags``. ``sulfurdioxide_detection_flag`` is 1
where the measured slant column exceeds 4 times its noise, 2 where such a detection lies within 1,500 km of the
scenario's volcano, 4 where SZA > 70° (the detection test is unreliable there), 0 otherwise.

Layout by processor (:data:`PROCESSING_BASELINES`): ``PRODUCT/delta_time`` is per pixel, ``(time, scanline,
ground_pixel)``, int32 ms since ``time_reference`` with ``_FillValue`` (HARP's ``s5p_delta_time_num_dims`` for SO2);
``time_coverage_start``/``_end`` have no trailing ``Z`` (as the DLR files); the 1/7/15 km box columns are in every
baseline written (from 01.01.01); the 3 km one (``sulfurdioxide_total_vertical_column_3km``) from 02.08.00; the
group ``PRODUCT/SO2_LAYER_HEIGHT`` (``sulfurdioxide_layer_height`` and ``_precision`` in m,
``sulfurdioxide_layer_pressure`` in Pa, ``qa_value_layer_height`` 0–100 × 0.01) from 02.05.00. The layer height is
retrieved, here, where the scenario's column exceeds 5 DU (our rule; the product retrieves it only for enhanced
SO2): the scenario's plume height plus noise of standard deviation ``0.5 km + 20 km·DU / column``, capped at 4 km;
its QA is ``min(1, column / 20 DU) × (1 − 0.35 f)``, at least 0.3.

Every file says it is synthetic (``comment``, ``history``). Generation is deterministic: the noise comes from a
generator seeded with ``(rng_seed, orbit)``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np

from app.sample.orbit import (
    EARTH_RADIUS_KM,
    SENTINEL_5P,
    SunSynchronousOrbit,
    initial_bearing,
    scan_angle_to_ground_km,
    viewing_zenith_deg,
)

__all__ = [
    "SCANLINE_SECONDS",
    "N_GROUND_PIXELS",
    "HALF_SCAN_ANGLE_DEG",
    "DU_FACTOR",
    "BOX_HEIGHTS_KM",
    "SwathGeometry",
    "SimulatedOrbit",
    "daylit_window",
    "swath_geometry",
    "solar_angles",
    "air_mass_factor",
    "slant_noise_du",
    "simulate_orbit",
    "tropomi_path",
    "write_tropomi_orbit",
    "write_tropomi_day",
    "write_granule",
    "orbit_sees_region",
    "PROCESSING_BASELINES",
    "processing_baseline",
]

#: Time between two full-resolution scanlines (s), 5.5 km along track, since 6 August 2019.
SCANLINE_SECONDS = 0.84
#: Ground pixels per scanline at full resolution.
N_GROUND_PIXELS = 450
#: Half of the across-track field of view (degrees of scan angle).
HALF_SCAN_ANGLE_DEG = 54.0
#: ``multiplication_factor_to_convert_to_DU`` of the operational product (1 / 4.4619e-4 mol m⁻²; the textbook
#: 1 / 4.4615e-4 = 2241.40 differs by 0.01 %). Readers must use the attribute, not this constant.
DU_FACTOR = 2241.15
#: ``multiplication_factor_to_convert_to_molecules_percm2``: Avogadro's number / 1e4.
MOLECULES_CM2_FACTOR = 6.02214e19
#: Fill value of float variables in S5P L2 products.
FLOAT_FILL = np.float32(9.96921e36)
INT_FILL = np.int32(-2147483647)
#: The assumed box profiles and the height (km) at which the AMF model places each.
BOX_HEIGHTS_KM = {"pbl": 0.0, "1km": 1.0, "3km": 3.0, "7km": 7.0, "15km": 15.0}
#: The processing baselines of the OFFL SO2 product: (first day, collection, processor), each with its source. A
#: sample granule is named and laid out as the real one of its day: the box columns, the 3 km one and the SO2
#: layer height come and go with the processor (``app.data.tropomi.BOX_LEVELS``, ``LAYER_HEIGHT_SINCE``).
#: Where only a granule seen on a day is known, that day stands for the switch (marked "first seen").
PROCESSING_BASELINES: tuple[tuple[str, int, str, str], ...] = (
    ("2018-04-30", 1, "010105", "RPRO granule of orbit 2818, 2018-04-30 (CAMS CSO listing); first seen"),
    ("2019-08-25", 1, "010107", "OFFL granule of orbit 9658, 2019-08-25 (NASA GES DISC); the real stripped "
                                "granule of orbit 12367, 2020-03-03, is 01.01.07 too"),
    ("2020-07-01", 1, "020104", "UPAS 02.01.03 from July 2020 (S5P MPC VDAF); 02.01.04 in the real OFFL granule "
                                "of orbit 18121, 2021-04-12, collection 01"),
    ("2021-07-01", 2, "020201", "collection 02 from 2021-07-01 (TEMIS S5P data versions); processor 02.02.01 of "
                                "the O3/SO2/HCHO/CLOUD suite from orbit 19308, 2021-07-05 (Copernicus SentiWiki)"),
    ("2021-12-06", 2, "020301", "OFFL granule of orbit 21497, 2021-12-06, collection 02 (CAMS CSO listing); "
                                "first seen"),
    ("2022-07-20", 3, "020401", "collection 03, processor 02.04.01 from orbit 24697, 2022-07-20 (Copernicus "
                                "SentiWiki, same processor suite)"),
    ("2023-07-20", 3, "020500", "02.05.00 from orbit 29878, 2023-07-20, adding PRODUCT/SO2_LAYER_HEIGHT (ESA "
                                "announcement of 30 May 2023; Copernicus SentiWiki)"),
    ("2023-11-29", 3, "020601", "02.06.01 from orbit 31750, 2023-11-29 (Copernicus SentiWiki); SO2 granule of "
                                "orbit 32914, 2024-02-19"),
    ("2025-04-23", 3, "020701", "NRTI SO2 granule of orbit 38999, 2025-04-23; still 02.07.01 on 2025-09-22 "
                                "(orbit 41153); first seen"),
    ("2026-03-26", 3, "020800", "NRTI SO2 granule of orbit 43788, 2026-03-26, with the 3 km box column "
                                "(HARP: from 02.08.00); first seen"),
)
DEFAULT_SEED = 20210412
#: Scanlines simulated and written at a time (and the chunk size along ``scanline``): bounds the memory used.
_BLOCK_ROWS = 256

# AMF model numbers (see the module docstring).
_AMF_A0, _AMF_B, _AMF_H = 0.355, 0.793, 5.0
_K_TOP, _K_SURFACE, _K_SCALE_KM = 0.10, 0.40, 4.0
_CLOUD_SHIELD, _CLOUD_BRIGHTEN, _CLOUD_TAU, _CLOUD_EDGE_KM = 0.9, 0.8, 5.0, 0.5
# Noise and quality numbers.
_SLANT_NOISE_DU = 0.32
_SZA_MAX_PROCESSED = 88.0
_SZA_HIGH_FLAG = 70.0
_QA_SZA_START, _QA_SZA_END, _QA_SZA_DROP = 65.0, 80.0, 0.6
_QA_CLOUD_DROP = 0.35
_FAILURE_RATE = 2e-4
_DETECTION_SIGMA = 4.0
_VOLCANIC_RADIUS_KM = 1500.0
# SO2 layer height numbers (module docstring).
_LH_MIN_DU, _LH_PRECISION_KM, _LH_PRECISION_KM_DU, _LH_PRECISION_MAX_KM = 5.0, 0.5, 20.0, 4.0
_LH_FULL_QA_DU, _LH_QA_MIN = 20.0, 0.3

# processing_quality_flags: the low byte is an error code, the bits above are warnings (a subset of the S5P list).
_PQF_SUCCESS, _PQF_SZA_RANGE, _PQF_NUMERICAL = 0, 7, 16
_PQF_SUN_GLINT_WARNING = 1 << 20


# --- geometry ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwathGeometry:
    """Where and when each pixel of a (possibly decimated) daylit half-orbit looks.

    Arrays are ``(scanline, ground_pixel)`` unless said otherwise; times are ``datetime64[ns]`` UTC, angles in
    degrees, longitudes in [-180, 180).
    """

    orbit: int
    scanline_step: int
    pixel_step: int
    first_scanline: int  # index of the first scanline in the whole (decimated) orbit
    n_scanlines_orbit: int  # scanlines in the whole (decimated) orbit
    time: np.ndarray  # (scanline,) centre time of each scanline
    scanline_start: np.ndarray  # (scanline + 1,) edge times
    scan_angle: np.ndarray  # (ground_pixel,)
    cross_track_km: np.ndarray  # (ground_pixel,) signed ground distance of pixel centres from the track
    across_km: np.ndarray  # (ground_pixel,) across-track pixel size
    along_km: np.ndarray  # (scanline, ground_pixel) along-track pixel size
    latitude: np.ndarray
    longitude: np.ndarray
    latitude_bounds: np.ndarray  # (scanline, ground_pixel, 4)
    longitude_bounds: np.ndarray
    solar_zenith_angle: np.ndarray
    solar_azimuth_angle: np.ndarray
    viewing_zenith_angle: np.ndarray
    viewing_azimuth_angle: np.ndarray
    satellite_latitude: np.ndarray  # (scanline,)
    satellite_longitude: np.ndarray
    satellite_altitude_m: float

    @property
    def shape(self) -> tuple[int, int]:
        """``(scanline, ground_pixel)``."""
        return self.latitude.shape

    @property
    def pixel_var_km2(self) -> np.ndarray:
        """Footprint variance (along² + across²) / 12 of each pixel (km²), for the scenario's pixel averaging."""
        return (self.along_km**2 + self.across_km[None, :] ** 2) / 12.0


def _td(seconds) -> np.ndarray:
    return np.round(np.asarray(seconds, dtype=float) * 1e9).astype("int64").astype("timedelta64[ns]")


def _n_full_scanlines(platform: SunSynchronousOrbit) -> int:
    return int(platform.period_s / 2 / SCANLINE_SECONDS)


def daylit_window(orbit: int, platform: SunSynchronousOrbit = SENTINEL_5P) -> tuple[np.datetime64, np.datetime64]:
    """Start and end (UTC) of the daylit half of an orbit: south-pole crossing to north-pole crossing.

    The end is the end of the last whole full-resolution scanline (3,624 of 0.84 s for Sentinel-5P).
    """
    start = platform.ascending_node_time(orbit) - _td(platform.period_s / 4)
    return start, start + _td(_n_full_scanlines(platform) * SCANLINE_SECONDS)


def _distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dl = np.deg2rad(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def swath_geometry(
    orbit: int,
    *,
    scanline_step: int = 4,
    pixel_step: int = 3,
    scanlines: slice | None = None,
    platform: SunSynchronousOrbit = SENTINEL_5P,
) -> SwathGeometry:
    """Geolocation and angles of every pixel of an orbit's daylit half.

    ``scanlines`` (a slice with step 1 over the decimated scanlines) computes only part of the orbit, e.g. one
    full-resolution scanline for a test. The number of ground pixels is ``round(450 / pixel_step)``, spread
    uniformly in scan angle over the whole ±54° field of view.
    """
    if scanline_step < 1 or pixel_step < 1:
        raise ValueError(f"scanline_step and pixel_step must be >= 1, got {scanline_step} and {pixel_step}")
    n_orbit = _n_full_scanlines(platform) // scanline_step
    first, stop, step = (scanlines or slice(None)).indices(n_orbit)
    if step != 1 or stop <= first:
        raise ValueError(f"scanlines must be a non-empty slice with step 1 within 0..{n_orbit}, got {scanlines}")
    start, _ = daylit_window(orbit, platform)
    dt_s = SCANLINE_SECONDS * scanline_step
    edges = start + _td(np.arange(first, stop + 1) * dt_s)
    centres = edges[:-1] + _td(dt_s / 2)

    n_pix = max(1, round(N_GROUND_PIXELS / pixel_step))
    edge_angle = np.linspace(-HALF_SCAN_ANGLE_DEG, HALF_SCAN_ANGLE_DEG, n_pix + 1)
    angle = 0.5 * (edge_angle[1:] + edge_angle[:-1])
    alt = platform.altitude_km
    x_edge = scan_angle_to_ground_km(edge_angle, alt)
    x = scan_angle_to_ground_km(angle, alt)

    lat, lon = platform.ground_points(centres, x)
    elat, elon = platform.ground_points(edges, x_edge)
    lat_b = np.stack([elat[:-1, :-1], elat[:-1, 1:], elat[1:, 1:], elat[1:, :-1]], axis=-1)
    lon_b = np.stack([elon[:-1, :-1], elon[:-1, 1:], elon[1:, 1:], elon[1:, :-1]], axis=-1)

    sat_lat, sat_lon = platform.subpoint(centres)
    sub_lat, sub_lon = platform.subpoint(edges)
    along_nadir = _distance_km(sub_lat[:-1], sub_lon[:-1], sub_lat[1:], sub_lon[1:])
    along = along_nadir[:, None] * np.cos(x / EARTH_RADIUS_KM)[None, :]

    sza, saa = solar_angles(centres[:, None], lat, lon)
    vza = np.broadcast_to(viewing_zenith_deg(angle, alt)[None, :], lat.shape)
    vaa = initial_bearing(lat, lon, sat_lat[:, None], sat_lon[:, None])
    return SwathGeometry(
        orbit=int(orbit),
        scanline_step=scanline_step,
        pixel_step=pixel_step,
        first_scanline=first,
        n_scanlines_orbit=n_orbit,
        time=centres,
        scanline_start=edges,
        scan_angle=angle,
        cross_track_km=x,
        across_km=np.abs(np.diff(x_edge)),
        along_km=along,
        latitude=lat,
        longitude=lon,
        latitude_bounds=lat_b,
        longitude_bounds=lon_b,
        solar_zenith_angle=sza,
        solar_azimuth_angle=saa,
        viewing_zenith_angle=vza,
        viewing_azimuth_angle=(vaa + 180.0) % 360.0 - 180.0,
        satellite_latitude=sat_lat,
        satellite_longitude=sat_lon,
        satellite_altitude_m=alt * 1000.0,
    )


def solar_angles(time, lat, lon) -> tuple[np.ndarray, np.ndarray]:
    """Solar zenith angle and azimuth (degrees; azimuth east of north in [-180, 180)) at times and places.

    The low-precision solar position of the Astronomical Almanac (about 0.01° from 1950 to 2050); arguments
    broadcast together.
    """
    d = (np.asarray(time, dtype="datetime64[ns]") - np.datetime64("2000-01-01T12:00", "ns")).astype("int64") / 86400e9
    g = np.deg2rad(357.529 + 0.98560028 * d)
    q = 280.459 + 0.98564736 * d
    ecl = np.deg2rad(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.deg2rad(23.439 - 3.6e-7 * d)
    ra = np.arctan2(np.cos(eps) * np.sin(ecl), np.cos(ecl))
    dec = np.arcsin(np.sin(eps) * np.sin(ecl))
    gmst = np.deg2rad((280.46061837 + 360.98564736629 * d) % 360.0)
    h = gmst + np.deg2rad(lon) - ra
    phi = np.deg2rad(lat)
    cos_z = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(h)
    sza = np.rad2deg(np.arccos(np.clip(cos_z, -1.0, 1.0)))
    az = np.arctan2(-np.cos(dec) * np.sin(h), np.cos(phi) * np.sin(dec) - np.sin(phi) * np.cos(dec) * np.cos(h))
    return sza, (np.rad2deg(az) + 180.0) % 360.0 - 180.0


# --- retrieval model -----------------------------------------------------------------------------------------


def air_mass_factor(
    height_km,
    solar_zenith_deg,
    viewing_zenith_deg=0.0,
    cloud_fraction=0.0,
    cloud_top_km=0.0,
    cloud_optical_depth=0.0,
) -> np.ndarray:
    """Air-mass factor of an SO2 layer at ``height_km`` (the model of the module docstring); broadcasts.

    Increases strictly with height for any geometry and cloud, so box columns keep the order PBL > 1 km > 7 km >
    15 km for one slant column.
    """
    h = np.maximum(np.asarray(height_km, dtype=float), 0.0)
    clear = _AMF_A0 + _AMF_B * np.log1p(h / _AMF_H)
    k = _K_TOP + _K_SURFACE * np.exp(-h / _K_SCALE_KM)
    mu0 = np.cos(np.deg2rad(np.minimum(solar_zenith_deg, 89.0)))
    mu = np.cos(np.deg2rad(np.minimum(viewing_zenith_deg, 89.0)))
    geometry = mu0**k * mu ** (k / 2)
    tau = np.asarray(cloud_optical_depth, dtype=float)
    opacity = tau / (tau + _CLOUD_TAU)
    below, above = 1.0 - _CLOUD_SHIELD * opacity, 1.0 + _CLOUD_BRIGHTEN * opacity
    step = 0.5 * (1.0 + np.tanh((h - np.asarray(cloud_top_km)) / (2 * _CLOUD_EDGE_KM)))  # logistic
    f = np.asarray(cloud_fraction, dtype=float)
    cloud = (1.0 - f) + f * (below + (above - below) * step)
    return clear * geometry * cloud


def slant_noise_du(solar_zenith_deg) -> np.ndarray:
    """Standard deviation (DU, slant) of the measured slant column: ``0.32 / sqrt(cos SZA)``."""
    mu0 = np.cos(np.deg2rad(np.minimum(solar_zenith_deg, 89.0)))
    return _SLANT_NOISE_DU / np.sqrt(mu0)


@dataclass(frozen=True)
class SimulatedOrbit:
    """The retrieval of one orbit before it is written: the truth, the noisy product and its flags.

    Columns in DU, ``(scanline, ground_pixel)``; NaN where the pixel is not processed (``valid`` False).
    """

    geometry: SwathGeometry
    scenario_name: str
    true_column_du: np.ndarray  # footprint-averaged scenario column
    true_height_km: np.ndarray  # scenario plume height, NaN without plume
    slant_du: np.ndarray  # measured slant column (truth × AMF + noise)
    slant_noise_du: np.ndarray
    amf: dict[str, np.ndarray]  # box -> AMF
    column_du: dict[str, np.ndarray]  # box -> retrieved vertical column
    precision_du: dict[str, np.ndarray]
    qa_value: np.ndarray  # 0-1, already rounded to the stored 0.01 steps
    valid: np.ndarray
    detection_flag: np.ndarray
    processing_quality_flags: np.ndarray
    cloud_fraction: np.ndarray
    cloud_top_km: np.ndarray
    cloud_optical_depth: np.ndarray
    is_land: np.ndarray
    surface_elevation_km: np.ndarray
    layer_height_km: np.ndarray  # retrieved SO2 layer height (NaN where not retrieved)
    layer_height_precision_km: np.ndarray
    layer_height_qa: np.ndarray  # 0-1, rounded to 0.01 (0 where not retrieved)


def _as_scenario(scenario):
    if isinstance(scenario, str):
        from app.sample.scenario import get_scenario

        return get_scenario(scenario)
    return scenario


def _noise(rng_seed: int, orbit: int, rows: slice, n_pix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard normal deviates, failure draws and layer-height deviates for the scanlines ``rows`` of an orbit.

    Drawn per block of ``_BLOCK_ROWS`` scanlines from a generator seeded with ``(rng_seed, orbit, block)``, so a
    scanline gets the same draws whichever window it is simulated in (the writer works block by block). The
    layer-height deviates are drawn after the others, so adding them changed no earlier draw.
    """
    first, stop = rows.start, rows.stop
    blocks = range(first // _BLOCK_ROWS, (stop - 1) // _BLOCK_ROWS + 1)
    eps, fail, lh = [], [], []
    for b in blocks:
        rng = np.random.default_rng([int(rng_seed), int(orbit), b])
        eps.append(rng.standard_normal((_BLOCK_ROWS, n_pix)))
        fail.append(rng.random((_BLOCK_ROWS, n_pix)) < _FAILURE_RATE)
        lh.append(rng.standard_normal((_BLOCK_ROWS, n_pix)))
    cut = slice(first - blocks[0] * _BLOCK_ROWS, stop - blocks[0] * _BLOCK_ROWS)
    return np.concatenate(eps)[cut], np.concatenate(fail)[cut], np.concatenate(lh)[cut]


def _layer_height(true_du, height, valid, cloud_fraction, eps, noise: bool):
    """Retrieved SO2 layer height (km), its precision (km) and QA (0-1) by the rule of the module docstring."""
    with np.errstate(invalid="ignore", divide="ignore"):
        seen = valid & np.isfinite(height) & (true_du > _LH_MIN_DU)
        precision = np.minimum(_LH_PRECISION_KM + _LH_PRECISION_KM_DU / np.where(seen, true_du, 1.0),
                               _LH_PRECISION_MAX_KM)
        retrieved = height + (precision * eps if noise else 0.0)
        qa = np.clip(np.minimum(1.0, true_du / _LH_FULL_QA_DU) * (1.0 - _QA_CLOUD_DROP * cloud_fraction),
                     _LH_QA_MIN, 1.0)
    nan = np.float64(np.nan)
    return (np.where(seen, np.maximum(retrieved, 0.0), nan), np.where(seen, precision, nan),
            np.where(seen, np.round(qa * 100.0) / 100.0, 0.0))


def simulate_orbit(
    scenario,
    orbit: int,
    *,
    scanline_step: int = 4,
    pixel_step: int = 3,
    rng_seed: int = DEFAULT_SEED,
    noise: bool = True,
    scanlines: slice | None = None,
) -> SimulatedOrbit:
    """Simulate the L2 SO2 retrieval of one orbit from the scenario (see the module docstring).

    ``scenario`` is a scenario object or its name. With ``noise=False`` the measured slant column is the true one,
    so the box at the plume height returns the scenario's column exactly. The noise of a pixel depends only on
    ``(rng_seed, orbit)``, its scanline and the number of ground pixels: not on the order orbits are simulated in,
    nor on the ``scanlines`` window.
    """
    sc = _as_scenario(scenario)
    geo = swath_geometry(orbit, scanline_step=scanline_step, pixel_step=pixel_step, scanlines=scanlines)
    t = geo.time[:, None]
    lat, lon = geo.latitude, geo.longitude
    shape = geo.shape
    true_du = np.broadcast_to(sc.so2_column_du(lat, lon, t, geo.pixel_var_km2), shape).astype(float)
    height = np.broadcast_to(sc.so2_layer_height_km(lat, lon, t), shape).astype(float)
    clouds = sc.clouds(lat, lon, t)
    cf = np.broadcast_to(np.nan_to_num(np.asarray(clouds.fraction, dtype=float)), shape)
    ctop = np.broadcast_to(np.nan_to_num(np.asarray(clouds.top_km, dtype=float)), shape)  # NaN where clear
    ctau = np.broadcast_to(np.nan_to_num(np.asarray(clouds.optical_depth, dtype=float)), shape)
    land = np.broadcast_to(np.asarray(sc.surface_is_land(lat, lon), dtype=bool), shape)
    if hasattr(sc, "surface_elevation_km"):
        elevation = np.broadcast_to(np.asarray(sc.surface_elevation_km(lat, lon), dtype=float), shape)
    else:
        elevation = np.where(land, 0.2, 0.0)

    sza, vza = geo.solar_zenith_angle, geo.viewing_zenith_angle
    amf_args = (sza, vza, cf, ctop, ctau)
    amf_true = air_mass_factor(np.where(np.isfinite(height), height, BOX_HEIGHTS_KM["1km"]), *amf_args)
    sigma = slant_noise_du(sza)
    eps, failed, eps_lh = _noise(rng_seed, orbit, slice(geo.first_scanline, geo.first_scanline + shape[0]),
                                 shape[1])
    slant = true_du * amf_true + (sigma * eps if noise else 0.0)

    too_dark = sza > _SZA_MAX_PROCESSED
    valid = ~too_dark & ~failed
    amf = {box: air_mass_factor(h, *amf_args) for box, h in BOX_HEIGHTS_KM.items()}
    nan = np.float64(np.nan)
    column = {box: np.where(valid, slant / a, nan) for box, a in amf.items()}
    precision = {box: np.where(valid, sigma / a, nan) for box, a in amf.items()}

    ramp = np.clip((sza - _QA_SZA_START) / (_QA_SZA_END - _QA_SZA_START), 0.0, 1.0)
    qa = (1.0 - _QA_CLOUD_DROP * cf) * (1.0 - _QA_SZA_DROP * ramp)
    qa = np.where(valid, np.round(qa * 100.0) / 100.0, 0.0)

    detected = valid & (slant > _DETECTION_SIGMA * sigma)
    near = _distance_km(lat, lon, sc.volcano.latitude, sc.volcano.longitude) < _VOLCANIC_RADIUS_KM
    flag = np.where(detected, np.where(near, 2, 1), 0)
    flag = np.where(sza > _SZA_HIGH_FLAG, 4, flag).astype(np.int32)
    pqf = np.full(shape, _PQF_SUCCESS, dtype=np.uint32)
    pqf[valid & _sun_glint(geo) & ~land] |= _PQF_SUN_GLINT_WARNING
    pqf[failed] = _PQF_NUMERICAL
    pqf[too_dark] = _PQF_SZA_RANGE
    lh, lh_precision, lh_qa = _layer_height(true_du, height, valid, cf, eps_lh, noise)
    return SimulatedOrbit(
        geometry=geo,
        scenario_name=str(getattr(sc, "name", "scenario")),
        true_column_du=true_du,
        true_height_km=height,
        slant_du=np.where(valid, slant, nan),
        slant_noise_du=sigma,
        amf={box: np.where(valid, a, nan) for box, a in amf.items()},
        column_du=column,
        precision_du=precision,
        qa_value=qa,
        valid=valid,
        detection_flag=flag,
        processing_quality_flags=pqf,
        cloud_fraction=cf,
        cloud_top_km=ctop,
        cloud_optical_depth=ctau,
        is_land=land,
        surface_elevation_km=elevation,
        layer_height_km=lh,
        layer_height_precision_km=lh_precision,
        layer_height_qa=lh_qa,
    )


# --- writing -------------------------------------------------------------------------------------------------

_PRODUCT = "PRODUCT"
_GEO = "PRODUCT/SUPPORT_DATA/GEOLOCATIONS"
_DETAILED = "PRODUCT/SUPPORT_DATA/DETAILED_RESULTS"
_INPUT = "PRODUCT/SUPPORT_DATA/INPUT_DATA"
_PIXEL = ("time", "scanline", "ground_pixel")
_CORNER = ("time", "scanline", "ground_pixel", "corner")
_LINE = ("time", "scanline")
_LAYER_HEIGHT = "PRODUCT/SO2_LAYER_HEIGHT"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # no trailing Z, as the DLR files
_COMPLEVEL = 4
_N_LAYERS = 34
_STEM = "sulfurdioxide_total_vertical_column"
_BOX_TEXT = {"pbl": "polluted", "1km": "1km", "3km": "3km", "7km": "7km", "15km": "15km"}
_BOX_WORDS = {
    "pbl": "the polluted (planetary boundary layer) scenario",
    "1km": "a 1 km box profile",
    "3km": "a 3 km box profile",
    "7km": "a 7 km box profile",
    "15km": "a 15 km box profile",
}
_ON_PIXELS = "/PRODUCT/longitude /PRODUCT/latitude"
_SCALE_HEIGHT_M = 8400.0


def _py_datetime(t) -> dt.datetime:
    """A naive UTC datetime from a datetime64, rounded to the microsecond."""
    us = np.datetime64(t, "us").astype("int64")
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(us))


def _whole_seconds(t) -> dt.datetime:
    return _py_datetime(np.datetime64(t, "s"))


def processing_baseline(day) -> tuple[int, str]:
    """``(collection, processor)`` of the OFFL SO2 product on ``day`` (:data:`PROCESSING_BASELINES`).

    ``processing_baseline("2021-04-12") == (1, "020104")``, as the real granule of that day; a day before the first
    baseline gets the first.
    """
    d = np.datetime64(str(np.datetime64(day, "D")), "D")
    chosen = PROCESSING_BASELINES[0]
    for row in PROCESSING_BASELINES:
        if np.datetime64(row[0], "D") <= d:
            chosen = row
    return chosen[1], chosen[2]


def _baseline_of_orbit(orbit: int, processor, collection) -> tuple[int, str]:
    """The orbit's (collection, processor): the ones given, else those of its day."""
    day_collection, day_processor = processing_baseline(SENTINEL_5P.orbit_start(orbit))
    return (day_collection if collection is None else int(collection),
            day_processor if processor is None else f"{int(processor):06d}")


def tropomi_path(out_root, orbit: int, *, processor: str | int | None = None, collection: int | None = None) -> Path:
    """Where :func:`write_tropomi_orbit` puts an orbit: ``out_root/tropomi/YYYY/MM/DD/S5P_OFFL_L2__SO2____...nc``.

    The name's start and end are those of the whole orbit (as in real OFFL names); the day folder is the start's.
    The creation time is three hours after the end, so names are reproducible. The collection and processor are
    those of the orbit's day (:func:`processing_baseline`) unless given.
    """
    from app.data.filenames import tropomi_filename

    collection, processor = _baseline_of_orbit(orbit, processor, collection)
    start = _whole_seconds(SENTINEL_5P.orbit_start(orbit))
    end = _whole_seconds(SENTINEL_5P.orbit_start(orbit + 1))
    name = tropomi_filename(
        start,
        end,
        orbit=int(orbit),
        collection=collection,
        processor=f"{int(processor):06d}",
        created=end + dt.timedelta(hours=3),
        mode="OFFL",
    )
    return Path(out_root) / "tropomi" / f"{start:%Y}" / f"{start:%m}" / f"{start:%d}" / name


# The variables of the file, declared once: where each goes, its attributes, and how to get its rows from a
# simulated block of scanlines.


@dataclass(frozen=True)
class _Var:
    group: str
    name: str
    dims: tuple[str, ...]
    attrs: dict
    values: Callable[[SimulatedOrbit], np.ndarray]  # rows of a block, without the leading ``time`` axis
    dtype: str = "f4"
    lsd: int | None = None  # least_significant_digit (quantisation before compression)
    fill: object = None
    valid_only: bool = False  # integer variables: fill where the pixel was not processed


def _to_mol(du) -> np.ndarray:
    return np.asarray(du) / DU_FACTOR


def _column_attrs(long_name: str, standard_name: str, ancillary: str | None = None) -> dict:
    attrs = {
        "units": "mol m-2",
        "standard_name": standard_name,
        "long_name": long_name,
        "coordinates": "longitude latitude",
        "multiplication_factor_to_convert_to_DU": np.float32(DU_FACTOR),
        "multiplication_factor_to_convert_to_molecules_percm2": np.float32(MOLECULES_CM2_FACTOR),
    }
    if ancillary:
        attrs["ancillary_variables"] = ancillary
    return attrs


def _product_vars(reference: np.datetime64, geo_lsd: int) -> list[_Var]:
    ref_text = _py_datetime(reference).strftime("%Y-%m-%d %H:%M:%S")
    out = [
        _Var(
            _PRODUCT,
            "delta_time",
            _PIXEL,  # per pixel in the SO2 product (HARP: s5p_delta_time_num_dims = 3); every pixel of a scanline alike
            {"long_name": "offset from reference start time of measurement", "units": f"milliseconds since {ref_text}"},
            lambda s: np.broadcast_to(
                np.round((s.geometry.time - reference).astype("int64") / 1e6).astype(np.int32)[:, None],
                s.geometry.shape,
            ),
            dtype="i4",
            fill=INT_FILL,
        ),
        _Var(
            _PRODUCT,
            "time_utc",
            _LINE,
            {"long_name": "Time of observation as ISO 8601 date-time string"},
            lambda s: np.array([_py_datetime(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in s.geometry.time], object),
            dtype="str",
        ),
    ]
    for name, unit, limit in (("latitude", "degrees_north", 90.0), ("longitude", "degrees_east", 180.0)):
        attrs = {
            "long_name": f"pixel center {name}",
            "units": unit,
            "standard_name": name,
            "valid_min": np.float32(-limit),
            "valid_max": np.float32(limit),
            "bounds": f"/{_GEO}/{name}_bounds",
        }
        out.append(_Var(_PRODUCT, name, _PIXEL, attrs, lambda s, n=name: getattr(s.geometry, n), lsd=geo_lsd))
    qa_attrs = {
        "units": "1",
        "scale_factor": np.float32(0.01),
        "add_offset": np.float32(0.0),
        "valid_min": np.uint8(0),
        "valid_max": np.uint8(100),
        "long_name": "data quality value",
        "comment": "A continuous quality descriptor, varying between 0 (no data) and 1 (full quality data). "
        "Recommend to ignore data with qa_value < 0.5",
        "coordinates": "longitude latitude",
    }
    qa = _Var(
        _PRODUCT,
        "qa_value",
        _PIXEL,
        qa_attrs,
        lambda s: np.round(s.qa_value * 100).astype(np.uint8),
        dtype="u1",
        fill=np.uint8(255),
    )
    column = _column_attrs(
        "total vertical column of sulfur dioxide for the polluted scenario derived from the total slant column",
        "atmosphere_mole_content_of_sulfur_dioxide",
        f"{_STEM}_precision qa_value",
    )
    precision = _column_attrs(
        "standard error of the total vertical column of sulfur dioxide for the polluted scenario",
        "atmosphere_mole_content_of_sulfur_dioxide standard_error",
    )
    return out + [
        qa,
        _Var(_PRODUCT, _STEM, _PIXEL, column, lambda s: _to_mol(s.column_du["pbl"]), lsd=5),
        _Var(_PRODUCT, f"{_STEM}_precision", _PIXEL, precision, lambda s: _to_mol(s.precision_du["pbl"]), lsd=5),
    ]


def _sun_glint(geo: SwathGeometry) -> np.ndarray:
    s, v = np.deg2rad(geo.solar_zenith_angle), np.deg2rad(geo.viewing_zenith_angle)
    phi = np.deg2rad(geo.solar_azimuth_angle - geo.viewing_azimuth_angle)
    cos_g = np.cos(s) * np.cos(v) - np.sin(s) * np.sin(v) * np.cos(phi)
    return np.rad2deg(np.arccos(np.clip(cos_g, -1, 1))) < 30.0


def _orbit_phase(geo: SwathGeometry) -> np.ndarray:
    """Fraction of the orbit (from the descending node) at each scanline: 0.25 to 0.75 over the daylit half."""
    rows = geo.first_scanline + np.arange(geo.shape[0]) + 0.5
    return 0.25 + 0.5 * rows / geo.n_scanlines_orbit


def _geolocation_vars(geo_lsd: int) -> list[_Var]:
    out = []
    corners = "corners 0 bottom-left, 1 bottom-right, 2 top-right, 3 top-left (anticlockwise)"
    for name in ("latitude_bounds", "longitude_bounds"):
        attrs = {"long_name": f"{name.split('_')[0]}s of the ground pixel corners", "comment": corners}
        out.append(_Var(_GEO, name, _CORNER, attrs, lambda s, n=name: getattr(s.geometry, n), lsd=geo_lsd))
    angles = (
        ("solar_zenith_angle", 0.0, 180.0, "away from the vertical"),
        ("solar_azimuth_angle", -180.0, 180.0, "East-of-North"),
        ("viewing_zenith_angle", 0.0, 180.0, "away from the vertical"),
        ("viewing_azimuth_angle", -180.0, 180.0, "East-of-North"),
    )
    for name, lo, hi, measured in angles:
        what = name.replace("_angle", "").replace("_", " ")
        target = "Sun" if name.startswith("solar") else "satellite"
        attrs = {
            "long_name": f"{what} angle",
            "standard_name": name,
            "units": "degree",
            "valid_min": np.float32(lo),
            "valid_max": np.float32(hi),
            "coordinates": _ON_PIXELS,
            "comment": f"{what.capitalize()} angle of the {target} at the ground pixel location on the reference "
            f"ellipsoid. Angle is measured {measured}.",
        }
        out.append(_Var(_GEO, name, _PIXEL, attrs, lambda s, n=name: getattr(s.geometry, n), lsd=1))
    lines = (
        ("satellite_latitude", "sub-satellite latitude", "degrees_north", 5, lambda g: g.satellite_latitude),
        ("satellite_longitude", "sub-satellite longitude", "degrees_east", 5, lambda g: g.satellite_longitude),
        ("satellite_altitude", "satellite altitude", "m", 0, lambda g: np.full(g.shape[0], g.satellite_altitude_m)),
        ("satellite_orbit_phase", "fractional satellite orbit phase", "1", 6, _orbit_phase),
    )
    for name, long_name, unit, lsd, get in lines:
        out.append(
            _Var(
                _GEO, name, _LINE, {"long_name": long_name, "units": unit}, lambda s, get=get: get(s.geometry), lsd=lsd
            )
        )
    flags = {
        "long_name": "ground pixel quality flag",
        "flag_masks": np.array([0, 1, 2, 4, 8, 16, 128], dtype=np.uint8),
        "flag_meanings": "no_error solar_eclipse sun_glint_possible descending night geo_boundary_crossing "
        "geolocation_error",
    }
    out.append(
        _Var(
            _GEO,
            "geolocation_flags",
            _PIXEL,
            flags,
            lambda s: np.where(_sun_glint(s.geometry) & ~s.is_land, 2, 0).astype(np.uint8),
            dtype="u1",
            fill=np.uint8(255),
        )
    )
    return out


def _boxes(version: tuple[int, ...]) -> list[str]:
    """The box-profile columns a processor version writes: 1/7/15 km from 01.01.01, 3 km from 02.08.00."""
    if version < (1, 1, 1):
        return []
    return ["1km", "3km", "7km", "15km"] if version >= (2, 8, 0) else ["1km", "7km", "15km"]


def _detailed_vars(version: tuple[int, ...] = (2, 1, 4)) -> list[_Var]:
    out = []
    boxes = _boxes(version)
    for box in boxes:
        col = _column_attrs(
            f"total vertical column of sulfur dioxide for {_BOX_WORDS[box]}",
            "atmosphere_mole_content_of_sulfur_dioxide",
            f"{_STEM}_{box}_precision",
        )
        prec = _column_attrs(
            f"standard error of the total vertical column of sulfur dioxide for {_BOX_WORDS[box]}",
            "atmosphere_mole_content_of_sulfur_dioxide standard_error",
        )
        out.append(_Var(_DETAILED, f"{_STEM}_{box}", _PIXEL, col, lambda s, b=box: _to_mol(s.column_du[b]), lsd=5))
        out.append(
            _Var(
                _DETAILED, f"{_STEM}_{box}_precision", _PIXEL, prec, lambda s, b=box: _to_mol(s.precision_du[b]), lsd=5
            )
        )
    for box in ["pbl", *boxes]:
        attrs = {
            "units": "1",
            "long_name": f"total air mass factor of sulfur dioxide for {_BOX_WORDS[box]}",
            "coordinates": _ON_PIXELS,
        }
        out.append(
            _Var(
                _DETAILED,
                f"sulfurdioxide_total_air_mass_factor_{_BOX_TEXT[box]}",
                _PIXEL,
                attrs,
                lambda s, b=box: s.amf[b],
                lsd=3,
            )
        )
    slant = _column_attrs(
        "background corrected sulfur dioxide slant column density", "atmosphere_mole_content_of_sulfur_dioxide"
    )
    out.append(
        _Var(_DETAILED, "sulfurdioxide_slant_column_corrected", _PIXEL, slant, lambda s: _to_mol(s.slant_du), lsd=5)
    )
    detection = {
        "units": "1",
        "long_name": "sulfur dioxide detection flag",
        "flag_values": np.array([0, 1, 2, 3, 4], dtype=np.int32),
        "flag_meanings": "no_detection so2_detected volcanic_detection detection_near_anthropogenic_source "
        "high_solar_zenith_angle",
        "coordinates": _ON_PIXELS,
    }
    out.append(
        _Var(
            _DETAILED,
            "sulfurdioxide_detection_flag",
            _PIXEL,
            detection,
            lambda s: s.detection_flag,
            dtype="i4",
            fill=INT_FILL,
            valid_only=True,
        )
    )
    pqf = {
        "long_name": "Processing quality flags",
        "flag_masks": np.array([255, 255, 255, _PQF_SUN_GLINT_WARNING], dtype=np.uint32),
        "flag_values": np.array([_PQF_SUCCESS, _PQF_SZA_RANGE, _PQF_NUMERICAL, _PQF_SUN_GLINT_WARNING], np.uint32),
        "flag_meanings": "success sza_range_error numerical_error sun_glint_warning",
        "comment": "A subset of the S5P L2 processing flags: the low byte is an error code, higher bits warnings",
        "coordinates": _ON_PIXELS,
    }
    out.append(
        _Var(
            _DETAILED,
            "processing_quality_flags",
            _PIXEL,
            pqf,
            lambda s: s.processing_quality_flags,
            dtype="u4",
            fill=np.uint32(4294967295),
        )
    )
    return out


def _layer_height_vars() -> list[_Var]:
    """``PRODUCT/SO2_LAYER_HEIGHT`` (processor 02.05.00 on): layer height and precision (m), pressure (Pa), QA."""
    def height(long_name):
        return {"units": "m", "long_name": long_name, "coordinates": _ON_PIXELS}

    return [
        _Var(_LAYER_HEIGHT, "sulfurdioxide_layer_height", _PIXEL, height("sulfur dioxide layer height"),
             lambda s: s.layer_height_km * 1000.0, lsd=0),
        _Var(_LAYER_HEIGHT, "sulfurdioxide_layer_height_precision", _PIXEL,
             height("standard error of the sulfur dioxide layer height"),
             lambda s: s.layer_height_precision_km * 1000.0, lsd=0),
        _Var(_LAYER_HEIGHT, "sulfurdioxide_layer_pressure", _PIXEL,
             {"units": "Pa", "long_name": "sulfur dioxide layer pressure", "coordinates": _ON_PIXELS},
             lambda s: _surface_pressure_pa(s) * np.exp(-s.layer_height_km * 1000.0 / _SCALE_HEIGHT_M), lsd=-1),
        _Var(_LAYER_HEIGHT, "qa_value_layer_height", _PIXEL,
             {"units": "1", "scale_factor": np.float32(0.01), "add_offset": np.float32(0.0),
              "valid_min": np.uint8(0), "valid_max": np.uint8(100), "coordinates": _ON_PIXELS,
              "long_name": "data quality value of the sulfur dioxide layer height"},
             lambda s: np.round(s.layer_height_qa * 100).astype(np.uint8), dtype="u1", fill=np.uint8(255)),
    ]


def _surface_pressure_pa(s: SimulatedOrbit) -> np.ndarray:
    lat, lon = np.deg2rad(s.geometry.latitude), np.deg2rad(s.geometry.longitude)
    synoptic = 1.0 + 0.008 * np.sin(3 * lat) * np.cos(2 * lon)
    return 101325.0 * np.exp(-s.surface_elevation_km * 1000.0 / _SCALE_HEIGHT_M) * synoptic


def _cloud_height_m(s: SimulatedOrbit) -> np.ndarray:
    return np.where(s.cloud_fraction > 0, s.cloud_top_km * 1000.0, np.nan)


def _input_vars() -> list[_Var]:
    fields = (
        ("surface_pressure", "surface_air_pressure", "surface air pressure", "Pa", -1, _surface_pressure_pa),
        ("surface_altitude", "surface_altitude", "surface altitude", "m", 0, lambda s: s.surface_elevation_km * 1000.0),
        ("surface_albedo", None, "surface albedo at 328 nm", "1", 3, lambda s: np.where(s.is_land, 0.08, 0.05)),
        (
            "cloud_fraction_crb",
            None,
            "cloud fraction, cloud as reflecting boundary",
            "1",
            3,
            lambda s: s.cloud_fraction,
        ),
        (
            "cloud_height_crb",
            None,
            "cloud height above surface, cloud as reflecting boundary",
            "m",
            -1,
            _cloud_height_m,
        ),
        (
            "cloud_pressure_crb",
            None,
            "cloud pressure, cloud as reflecting boundary",
            "Pa",
            -1,
            lambda s: _surface_pressure_pa(s) * np.exp(-_cloud_height_m(s) / _SCALE_HEIGHT_M),
        ),
        (
            "cloud_albedo_crb",
            None,
            "cloud albedo, cloud as reflecting boundary",
            "1",
            3,
            lambda s: np.where(s.cloud_fraction > 0, 0.8, np.nan),
        ),
        (
            "ozone_total_vertical_column",
            "atmosphere_mole_content_of_ozone",
            "ozone total vertical column",
            "mol m-2",
            5,
            lambda s: _to_mol(290.0 + 70.0 * np.sin(np.deg2rad(s.geometry.latitude)) ** 2),
        ),
    )
    out = []
    for name, standard_name, long_name, unit, lsd, get in fields:
        attrs = {"long_name": long_name, "units": unit, "coordinates": _ON_PIXELS}
        if standard_name:
            attrs["standard_name"] = standard_name
        out.append(_Var(_INPUT, name, _PIXEL, attrs, get, lsd=lsd))
    return out


def _bounds_lsd(geo: SwathGeometry) -> int:
    """Decimal digits kept in coordinates: 1e-4° (11 m) for pixels under 8 km, else 1e-3° (111 m)."""
    return 4 if min(float(np.min(geo.along_km)), float(np.min(geo.across_km))) < 8.0 else 3


def _processor_version(processor: str | int) -> str:
    digits = f"{int(processor):06d}"
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}"


class _GranuleWriter:
    """Writes an S5P L2 SO2 file block of scanlines by block, then its attributes and metadata.

    The file is written under a ``.part`` name and renamed when complete, so an interrupted run never leaves a
    truncated file under a real granule name.
    """

    def __init__(self, path: Path, first: SimulatedOrbit, n_rows: int, processor: str | int):
        self.path = path
        self.tmp = path.with_name(path.name + ".part")
        self.version = _processor_version(processor)
        self.version_tuple = tuple(int(p) for p in self.version.split("."))
        geo = first.geometry
        self.geo0 = geo
        self.scenario_name = first.scenario_name
        self.row0 = geo.first_scanline
        self.n_rows, self.n_pix = n_rows, geo.shape[1]
        self.reference = np.datetime64(geo.time[0], "D").astype("datetime64[s]")
        self.every = max(1, 64 // geo.scanline_step)
        self.stats = {"lat": [], "lon": [], "left": [], "right": [], "valid": 0, "total": 0}
        self.last_edge = geo.scanline_start[-1]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.nc = netCDF4.Dataset(self.tmp, "w", format="NETCDF4")
        self._create(_bounds_lsd(geo))

    def _create(self, geo_lsd: int) -> None:
        nc = self.nc
        layer_height = self.version_tuple >= (2, 5, 0)
        for group in (_PRODUCT, _GEO, _DETAILED, _INPUT) + ((_LAYER_HEIGHT,) if layer_height else ()):
            nc.createGroup(group)
        for sub in ("QA_STATISTICS", "ALGORITHM_SETTINGS", "GRANULE_DESCRIPTION", "ESA_METADATA", "ISO_METADATA"):
            nc.createGroup(f"METADATA/{sub}")
        prod = nc[_PRODUCT]
        sizes = {"time": 1, "scanline": self.n_rows, "ground_pixel": self.n_pix, "corner": 4}
        for name, size in sizes.items():
            prod.createDimension(name, size)
        prod.createDimension("layer", _N_LAYERS)  # the real product's vertical layers (averaging kernels; unused here)
        for name in ("scanline", "ground_pixel", "corner"):
            v = prod.createVariable(name, "i4", (name,))
            v.setncatts(
                {
                    "units": "1",
                    "long_name": f"{name.replace('_', ' ')} dimension index",
                    "comment": f"indices of the {name} dimension, from 0",
                }
            )
            v[:] = np.arange(sizes[name], dtype=np.int32)
        t = prod.createVariable("time", "i4", ("time",))
        t.setncatts(
            {
                "units": "seconds since 2010-01-01 00:00:00",
                "standard_name": "time",
                "axis": "T",
                "long_name": "reference time for the measurements",
                "comment": "The time in this variable corresponds to the time in the time_reference global attribute",
            }
        )
        t[:] = np.array([(self.reference - np.datetime64("2010-01-01", "s")).astype("int64")], dtype=np.int32)
        self.vars = _product_vars(self.reference, geo_lsd) + _geolocation_vars(geo_lsd)
        self.vars += _detailed_vars(self.version_tuple) + _input_vars()
        if layer_height:
            self.vars += _layer_height_vars()
        chunk = min(self.n_rows, _BLOCK_ROWS)
        for spec in self.vars:
            if spec.dtype == "str":
                var = nc[spec.group].createVariable(spec.name, str, spec.dims)
            else:
                fill = FLOAT_FILL if spec.fill is None and spec.dtype == "f4" else spec.fill
                chunks = (1, chunk) + (self.n_pix, 4)[: len(spec.dims) - 2]
                var = nc[spec.group].createVariable(
                    spec.name,
                    spec.dtype,
                    spec.dims,
                    zlib=True,
                    complevel=_COMPLEVEL,
                    shuffle=True,
                    fill_value=fill,
                    chunksizes=chunks,
                    least_significant_digit=spec.lsd,
                )
                var.set_auto_scale(False)  # integers are written as stored (qa_value 0-100 with its scale_factor)
            var.setncatts(spec.attrs)

    def write(self, sim: SimulatedOrbit) -> None:
        """Write the scanlines of a simulated block at their place in the file."""
        geo = sim.geometry
        rows = slice(geo.first_scanline - self.row0, geo.first_scanline - self.row0 + geo.shape[0])
        for spec in self.vars:
            data = np.asarray(spec.values(sim))
            if spec.dtype == "f4":
                data = np.ma.masked_invalid(data.astype(np.float32))
            elif spec.valid_only:
                data = np.where(sim.valid, data, spec.fill)
            self.nc[spec.group][spec.name][(0, rows)] = data
        self._accumulate(sim)

    def _accumulate(self, sim: SimulatedOrbit) -> None:
        geo, st = sim.geometry, self.stats
        lat_b, lon_b = geo.latitude_bounds, geo.longitude_bounds
        st["lat"] += [float(lat_b.min()), float(lat_b.max())]
        st["lon"] += [float(lon_b.min()), float(lon_b.max())]
        st["valid"] += int(sim.valid.sum())
        st["total"] += int(sim.valid.size)
        absolute = geo.first_scanline + np.arange(geo.shape[0])
        keep = (absolute % self.every == 0) | (absolute == self.row0 + self.n_rows - 1)
        st["left"] += list(zip(lat_b[keep, 0, 0], lon_b[keep, 0, 0], strict=True))
        st["right"] += list(zip(lat_b[keep, -1, 1], lon_b[keep, -1, 1], strict=True))
        self.top = (lat_b[-1, -1, 2], lon_b[-1, -1, 2], lat_b[-1, 0, 3], lon_b[-1, 0, 3])
        self.last_edge = geo.scanline_start[-1]

    def finish(self) -> Path:
        """Write the global attributes and metadata, close, and move the file to its real name."""
        self.nc.setncatts(self._root_attrs())
        self._metadata()
        self.nc.close()
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial file."""
        self.nc.close()
        self.tmp.unlink(missing_ok=True)

    def _footprint(self) -> str:
        st = self.stats
        ring = [st["left"][0], *st["right"], self.top[:2], self.top[2:], *st["left"][::-1]]
        return " ".join(f"{a:.4f} {b:.4f}" for a, b in ring)

    def _root_attrs(self) -> dict:
        geo, st = self.geo0, self.stats
        start, end = _py_datetime(geo.scanline_start[0]), _py_datetime(self.last_edge)
        created = _whole_seconds(SENTINEL_5P.orbit_start(geo.orbit + 1)) + dt.timedelta(hours=3)
        return {
            "Conventions": "CF-1.7",
            "institution": "DLR-ATP",
            "source": "Sentinel 5 precursor, TROPOMI, space-borne remote sensing, L2",
            "title": "TROPOMI/S5P Sulphur Dioxide SO2",
            "summary": "TROPOMI/S5P L2 data Swath 5.5x3.5km2 processed in OFFL mode",
            "comment": f"SYNTHETIC sample granule written by Fumarole from the scenario '{self.scenario_name}' "
            f"(scanline_step={geo.scanline_step}, pixel_step={geo.pixel_step}); not a measurement. "
            "Float variables are quantised (least_significant_digit).",
            "history": f"{created:%Y-%m-%d %H:%M:%S} fumarole sample (app.sample.tropomi)",
            "tracking_id": str(uuid.uuid5(uuid.NAMESPACE_URL, self.path.name)),
            "id": self.path.stem,
            "platform": "S5P",
            "sensor": "TROPOMI",
            "orbit": np.int32(geo.orbit),
            "processor_version": self.version,
            "product_version": "2.0.0",
            "time_reference": _py_datetime(self.reference).strftime(_TIME_FORMAT),
            "time_reference_days_since_1950": np.int32(
                (self.reference - np.datetime64("1950-01-01", "D")).astype("timedelta64[D]").astype(int)
            ),
            "time_reference_julian_day": np.float64(
                (self.reference - np.datetime64("1970-01-01", "s")).astype("int64") / 86400.0 + 2440587.5
            ),
            "time_reference_seconds_since_1970": np.int64(
                (self.reference - np.datetime64("1970-01-01", "s")).astype("int64")
            ),
            "time_coverage_start": start.strftime(_TIME_FORMAT),
            "time_coverage_end": end.strftime(_TIME_FORMAT),
            "time_coverage_duration": f"PT{(end - start).total_seconds():.3f}S",
            "time_coverage_resolution": f"PT{SCANLINE_SECONDS * geo.scanline_step:.3f}S",
            "geospatial_lat_min": np.float32(min(st["lat"])),
            "geospatial_lat_max": np.float32(max(st["lat"])),
            "geospatial_lon_min": np.float32(min(st["lon"])),
            "geospatial_lon_max": np.float32(max(st["lon"])),
            "cdm_data_type": "Swath",
            "date_created": f"{created:%Y-%m-%dT%H:%M:%S}",
            "naming_authority": "DLR-ATP",
            "references": "https://atmos.eoc.dlr.de/tropomi",
            "keywords_vocabulary": "AGU index terms, http://publications.agu.org/author-resource-center/index-terms/",
            "keywords": "0340 Middle atmosphere, composition and chemistry; 0345 Pollution, urban and regional; "
            "0365 Troposphere, composition and chemistry; 3305 Climate change and variability; 3360 Remote sensing; "
            "8419 Volcano monitoring, 8430 Volcanic gases; 8488 Volcanic hazards and risks",
            "standard_name_vocabulary": "NetCDF Climate and Forecast Metadata Conventions Standard Name Table "
            "(v29, 08 July 2015), http://cfconventions.org/standard-names.html",
            "creator_name": "Fumarole sample writer (synthetic; not the S5P TROPOMI L2 processor)",
            "creator_url": "https://atmos.eoc.dlr.de/tropomi",
            "creator_email": "none (synthetic sample)",
            "project": "Sentinel 5 precursor/TROPOMI",
            "license": "No conditions apply",
            "spatial_resolution": "5.5x3.5km2",
        }

    def _metadata(self) -> None:
        nc, geo, st = self.nc, self.geo0, self.stats
        nc["METADATA/QA_STATISTICS"].setncatts(
            {
                "number_of_groundpixels": np.int32(st["total"]),
                "number_of_processed_pixels": np.int32(st["total"]),
                "number_of_successfully_processed_pixels": np.int32(st["valid"]),
                "number_of_failed_retrievals": np.int32(st["total"] - st["valid"]),
            }
        )
        nc["METADATA/ALGORITHM_SETTINGS"].setncatts(
            {
                "synthetic_amf_model": "A(h) = 0.355 + 0.793 ln(1 + h/5 km), x cos(SZA)^k x cos(VZA)^(k/2), "
                "k = 0.10 + 0.40 exp(-h/4 km), x cloud shielding/brightening",
                "synthetic_box_heights_km": "pbl 0, 1km 1, 3km 3, 7km 7, 15km 15",
                "synthetic_slant_noise": "0.32 DU / sqrt(cos SZA)",
                "scanline_step": np.int32(geo.scanline_step),
                "ground_pixel_step": np.int32(geo.pixel_step),
            }
        )
        an_lon = SENTINEL_5P.subpoint(SENTINEL_5P.ascending_node_time(geo.orbit))[1]
        nc["METADATA/GRANULE_DESCRIPTION"].setncatts(
            {
                "ProductShortName": "L2__SO2___",
                "ProcessLevel": "2",
                "ProcessingMode": "Offline",
                "InstrumentName": "TROPOMI",
                "MissionName": "Sentinel-5 precursor",
                "MissionShortName": "S5P",
                "ProcessorVersion": self.version,
                "LongitudeOfDaysideNadirEquatorCrossing": np.float32(an_lon),
            }
        )
        ext = nc.createGroup(
            "METADATA/EOP_METADATA/om:featureOfInterest/eop:multiExtentOf/gml:surfaceMembers/gml:exterior"
        )
        ext.setncattr("gml:posList", self._footprint())


def _write_blocks(path: Path, blocks, n_rows: int, processor: str | int) -> Path:
    writer = None
    try:
        for sim in blocks:
            if writer is None:
                writer = _GranuleWriter(path, sim, n_rows, processor)
            writer.write(sim)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise ValueError(f"{path.name}: no scanlines to write")
    return writer.finish()


def write_granule(sim: SimulatedOrbit, path: str | Path, *, processor: str | int | None = None) -> Path:
    """Write a simulated orbit (or window of one) to ``path`` in the S5P L2 SO2 layout.

    The processor (hence the layout: 3 km column, layer height) is that of the orbit's day unless given.
    """
    _, processor = _baseline_of_orbit(sim.geometry.orbit, processor, None)
    return _write_blocks(Path(path), [sim], sim.geometry.shape[0], processor)


def write_tropomi_orbit(
    scenario,
    orbit: int,
    out_root: str | Path,
    *,
    scanline_step: int = 4,
    pixel_step: int = 3,
    rng_seed: int = DEFAULT_SEED,
    processor: str | int | None = None,
    collection: int | None = None,
    noise: bool = True,
) -> Path:
    """Simulate one orbit of the scenario and write it as an OFFL L2 SO2 file; returns the file's path.

    ``scenario`` is a scenario object or its name (a name keeps process-pool calls cheap to pickle). The file goes
    to :func:`tropomi_path` under ``out_root``. The orbit is simulated and written ``_BLOCK_ROWS`` scanlines at a
    time, so memory stays small at full resolution; the file equals :func:`simulate_orbit` of the whole orbit.
    The collection and processor (name and layout) are those of the orbit's day (:func:`processing_baseline`)
    unless given.
    """
    sc = _as_scenario(scenario)
    n_rows = _n_full_scanlines(SENTINEL_5P) // scanline_step
    kw = dict(scanline_step=scanline_step, pixel_step=pixel_step, rng_seed=rng_seed, noise=noise)
    blocks = (
        simulate_orbit(sc, orbit, scanlines=slice(a, min(a + _BLOCK_ROWS, n_rows)), **kw)
        for a in range(0, n_rows, _BLOCK_ROWS)
    )
    collection, processor = _baseline_of_orbit(orbit, processor, collection)
    path = tropomi_path(out_root, orbit, processor=processor, collection=collection)
    return _write_blocks(path, blocks, n_rows, processor)


def orbit_sees_region(orbit: int, region, margin_deg: float = 2.0) -> bool:
    """Whether the daylit swath of ``orbit`` passes over ``region`` = (lon_min, lat_min, lon_max, lat_max).

    Longitudes wrap: ``lon_min > lon_max`` means the region crosses the antimeridian. Checked on a coarse grid of
    the swath (about 100 km apart) against the region grown by ``margin_deg``.
    """
    lon_min, lat_min, lon_max, lat_max = (float(x) for x in region)
    geo = swath_geometry(orbit, scanline_step=16, pixel_step=25)
    lat, lon = geo.latitude, geo.longitude
    in_lat = (lat >= lat_min - margin_deg) & (lat <= lat_max + margin_deg)
    east_of_min = (lon - (lon_min - margin_deg)) % 360.0
    width = (lon_max - lon_min) % 360.0 + 2 * margin_deg
    return bool(np.any(in_lat & (east_of_min <= width)))


def write_tropomi_day(
    scenario,
    day,
    out_root: str | Path,
    *,
    scanline_step: int = 4,
    pixel_step: int = 3,
    rng_seed: int = DEFAULT_SEED,
    processor: str | int | None = None,
    collection: int | None = None,
    noise: bool = True,
    region=None,
) -> list[Path]:
    """Write every Sentinel-5P orbit that starts on ``day`` (UTC; a date, datetime64 or ISO string).

    About 14 or 15 files into ``out_root/tropomi/YYYY/MM/DD/``; returns their paths in orbit order. With
    ``region`` = (lon_min, lat_min, lon_max, lat_max) (e.g. the scenario's ``domain``), only the orbits whose
    daylit swath passes over it are written (five instead of fifteen for La Soufrière's domain), to keep a demo
    archive small.
    """
    sc = _as_scenario(scenario)
    d0 = np.datetime64(str(np.datetime64(day, "D")), "D")
    orbits = [int(o) for o in SENTINEL_5P.orbits_between(d0, d0 + np.timedelta64(1, "D"))]
    if region is not None:
        orbits = [o for o in orbits if orbit_sees_region(o, region)]
    kw = dict(
        scanline_step=scanline_step,
        pixel_step=pixel_step,
        rng_seed=rng_seed,
        processor=processor,
        collection=collection,
        noise=noise,
    )
    return [write_tropomi_orbit(sc, orbit, out_root, **kw) for orbit in orbits]
