"""CALIPSO CALIOP Level 1B V4 sample granules (HDF4), written from the scenario model.

What is written, per half-orbit granule ``out_root/caliop/YYYY/MM/DD/CAL_LID_L1-Standard-V4-51.{start}Z{D|N}.hdf``:

- SDSs (profiles, 583), float32, km⁻¹ sr⁻¹: ``Total_Attenuated_Backscatter_532``,
  ``Perpendicular_Attenuated_Backscatter_532``, ``Attenuated_Backscatter_1064``, deflate-compressed (level 2).
  Noise-like float32 hardly compresses, so the values are first quantised as a digitiser would: to a step (a power
  of two) at or below ¼ of each bin's night-time noise (which adds < 0.5 % to the noise variance), then to 10
  mantissa bits (5e-4 relative); that halves the files and changes no statistic a user can see;
- SDSs (profiles, 1): ``Latitude``, ``Longitude``, ``Profile_Time`` (TAI seconds since 1993-01-01T00:00:00 UTC,
  leap seconds counted: UTC + 10 s from 2017 on, see :mod:`app.data.caliop`), ``Profile_UTC_Time``
  (``yymmdd.fraction_of_day``), ``Profile_ID``, ``Surface_Elevation`` (km), ``Land_Water_Mask`` (1 land,
  7 deep ocean), ``Day_Night_Flag`` (0 day, 1 night: the granule's letter), ``Solar_Zenith_Angle``;
  each with the ``units``, ``format``, ``fillvalue`` (-9999) and ``valid_range`` (a ``"low...high"`` string)
  attributes of the real product (the valid ranges are as we remember them; readers should not depend on them);
- the Vdata ``metadata`` (one record): ``Product_ID``, ``Date_Time_at_Granule_Start``,
  ``Date_Time_at_Granule_End``, ``Date_Time_of_Production``, ``Number_of_Good_Profiles``,
  ``Number_of_Bad_Profiles``, ``Initial/Final_Subsatellite_Latitude/Longitude`` and ``Lidar_Data_Altitudes``
  (the 583 bin altitudes, :func:`lidar_data_altitudes`).

Granules. The track is :data:`app.sample.orbit.CALIPSO` (``subpoint(t)``). Granules are half orbits split, as the
real ones are, where the sub-satellite point crosses the terminator (solar zenith angle 90°): ``D`` while it is
sunlit, ``N`` while it is dark. A day's granules are those that *start* on that day (so the last one runs into the
next day); the name carries the start time, truncated to the second.

Demo reduction (a regional order, not the full archive). Real granules hold a profile every 333 m (one laser
shot, 20.16 Hz): about 56,000 profiles per half orbit, some 400 MB of backscatter (3 × 56,000 × 583 float32).
Here each written profile stands for the average of ``profile_step`` consecutive shots (15 → one profile every
~5 km): the physics is evaluated at the middle shot, the noise is that of the average (÷ √step) and partial cloud
cover mixes cloudy and clear shots (binomially drawn).
With a ``region`` (lon_min, lat_min, lon_max, lat_max; ``lon_min > lon_max`` crosses the antimeridian), only the
granules whose track passes through the box are written, and each is clipped to the box's latitude band
± ``lat_margin_deg`` — as a user who orders a regional subset gets it. The file name and the metadata
``Date_Time_at_Granule_Start/End`` stay those of the whole half orbit; ``Profile_ID`` keeps the shot numbers of the
whole granule, so a clipped file starts at a high profile number. ``region=None`` writes whole granules
(for benchmarks; ``profile_step=1`` gives the real size).

Physics of a profile (numbers in the module constants):

- molecules: β = 1.5e-3 km⁻¹ sr⁻¹ · exp(−z / 8 km) at 532 nm, /16 at 1064 nm (λ⁻⁴); extinction = (8π/3) β;
  depolarisation 0.0036;
- the scenario's volcanic aerosol (:meth:`Scenario.aerosol_backscatter_532` / ``aerosol_depolarization``);
  lidar ratio 50 sr; colour ratio β1064/β532 from 0.4 (sulfate) to 0.8 (ash) with the depolarisation;
- the scenario's clouds (:meth:`Scenario.clouds`): extinction uniform between base and top summing to the optical
  depth; lidar ratio 19 sr (water) / 25 sr (ice); multiple-scattering factor η 0.7 / 0.6 on their attenuation;
  depolarisation 0.40 for ice, 0.03 growing to 0.28 with penetration for water; colour ratio 1;
- attenuation: each bin is multiplied by the two-way transmission from the top, averaged over the bin, so
  everything below an opaque cloud (τ ≳ 3) is gone;
- the surface: a sharp return in the bin holding the surface elevation (and a short detector tail in the two bins
  below), integrated attenuated backscatter 0.05 sr⁻¹ at sea, 0.04 sr⁻¹ on land at 532 nm (×1 / ×1.8 at 1064);
  nothing below ground but noise;
- noise: Gaussian, variance (k·signal + σ_bg²) per 30 m bin and shot, scaled by 30 m / bin thickness and
  1 / ``profile_step``; σ_bg grows with the solar background by day (σ_bg = a + b·√cos SZA), the parallel and
  perpendicular 532 channels carrying independent noise (total = their sum).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.locks import HDF_LOCK
from app.data.caliop import FILL_VALUE, datetime64_to_tai93, datetime64_to_utc_number
from app.data.filenames import caliop_filename
from app.sample.orbit import CALIPSO, SunSynchronousOrbit

__all__ = [
    "N_BINS",
    "SHOT_INTERVAL_S",
    "GranuleWindow",
    "lidar_data_altitudes",
    "solar_zenith_deg",
    "granule_windows",
    "default_region",
    "simulate_profiles",
    "write_granule",
    "write_caliop_day",
]

N_BINS = 583
SHOT_INTERVAL_S = 1.0 / 20.16  # CALIOP fires at 20.16 Hz; one L1B profile per shot (333 m)
RANGE_BIN_KM = 0.02998  # the 30 m range bin (15 m digitiser samples, two per bin)
# (number of bins, spacing in range bins), top first: 300 m, 180 m, 60 m, 30 m, 300 m.
_ALTITUDE_REGIONS = ((33, 10), (55, 6), (200, 2), (290, 1), (5, 10))
_TOP_ALTITUDE_KM = 39.856  # centre of the first bin; with 29.98 m bins this reproduces every region boundary

# --- physics constants (see the module docstring) ---
BETA_MOLECULAR_532_SEA_LEVEL = 1.5e-3  # km-1 sr-1
MOLECULAR_SCALE_HEIGHT_KM = 8.0
MOLECULAR_LIDAR_RATIO = 8.0 * np.pi / 3.0  # sr
MOLECULAR_DEPOLARIZATION = 0.0036
AEROSOL_LIDAR_RATIO = 50.0  # sr
CLOUD_LIDAR_RATIO = {"water": 19.0, "ice": 25.0}  # sr
MULTIPLE_SCATTERING_ETA = {"water": 0.7, "ice": 0.6}
ICE_DEPOLARIZATION = 0.40
WATER_DEPOLARIZATION = (0.03, 0.25)  # single scattering, and the growth with penetrated optical depth
SURFACE_IAB_532 = {"sea": 0.05, "land": 0.04}  # sr-1, integrated attenuated backscatter of the surface
SURFACE_COLOR_RATIO = {"sea": 1.0, "land": 1.8}
SURFACE_DEPOLARIZATION = {"sea": 0.02, "land": 0.30}
SURFACE_TAIL = (0.6, 0.3, 0.1)  # share of the surface return in the surface bin and the two below
# noise per 30 m bin and single shot: variance = SHOT_NOISE * signal + background**2
SHOT_NOISE = {"532": 2.0e-3, "1064": 4.0e-3}  # km-1 sr-1
BACKGROUND_NOISE = {"532": (1.0e-3, 4.0e-3), "1064": (1.5e-3, 2.5e-3)}  # (night, extra × sqrt(cos SZA)) km-1 sr-1
VALID_RANGE = {
    "Total_Attenuated_Backscatter_532": (-0.075, 2.5),
    "Perpendicular_Attenuated_Backscatter_532": (-0.075, 1.5),
    "Attenuated_Backscatter_1064": (-0.04, 2.5),
}
_KEEP_MANTISSA_BITS = 10  # float32 values rounded to 10 of 23 mantissa bits (5e-4 relative, far below the noise)
_CHUNK_PROFILES = 2048


def lidar_data_altitudes() -> np.ndarray:
    """The 583 bin-centre altitudes (km, top first, float32) of CALIOP L1B, as in ``Lidar_Data_Altitudes``.

    Five regions of 33 × 300 m, 55 × 180 m, 200 × 60 m, 290 × 30 m and 5 × 300 m, in multiples of the 29.98 m
    range bin: 39.86 → 30.26, 30.02 → 20.31, 20.19 → 8.26, 8.21 → −0.45 and −0.62 → −1.82 km.
    """
    return _bin_geometry()[0].astype(np.float32)


def _bin_geometry() -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and thicknesses (km, float64, top first)."""
    centres, widths = [], []
    z, prev = _TOP_ALTITUDE_KM, None
    for n, k in _ALTITUDE_REGIONS:
        step = k * RANGE_BIN_KM
        if prev is not None:
            z -= 0.5 * (prev + step)
        centres.append(z - step * np.arange(n))
        widths.append(np.full(n, step))
        z = centres[-1][-1]
        prev = step
    return np.concatenate(centres), np.concatenate(widths)


# ------------------------------------------------------------------------------------------- sun and granules


def solar_zenith_deg(lat, lon, t) -> np.ndarray:
    """Solar zenith angle (degrees) at (lat, lon) and UTC time(s) ``t`` (low-precision almanac, ~0.01°)."""
    d = (np.asarray(t, dtype="datetime64[ns]") - np.datetime64("2000-01-01T12:00", "ns")).astype("int64") / 86400e9
    g = np.deg2rad(357.529 + 0.98560028 * d)
    q = 280.459 + 0.98564736 * d
    ecl_lon = np.deg2rad(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.deg2rad(23.439 - 3.6e-7 * d)
    ra = np.rad2deg(np.arctan2(np.cos(eps) * np.sin(ecl_lon), np.cos(ecl_lon)))
    dec = np.arcsin(np.sin(eps) * np.sin(ecl_lon))
    gmst_deg = 280.46061837 + 360.98564736629 * d
    hour_angle = np.deg2rad(gmst_deg + np.asarray(lon, dtype=float) - ra)
    phi = np.deg2rad(np.asarray(lat, dtype=float))
    cos_z = np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(hour_angle)
    return np.rad2deg(np.arccos(np.clip(cos_z, -1.0, 1.0)))


@dataclass(frozen=True)
class GranuleWindow:
    """One half-orbit granule: start and end (UTC ``datetime64[ns]``) and ``D`` (sunlit) or ``N``."""

    start: np.datetime64
    end: np.datetime64
    day_night: str

    def profile_times(self, profile_step: int = 1) -> np.ndarray:
        """Times (``datetime64[ns]``) of the profiles: the middle shot of each group of ``profile_step`` shots."""
        shot_ns = SHOT_INTERVAL_S * 1e9
        n = int(np.floor((self.end - self.start).astype("int64") / (profile_step * shot_ns))) + 1
        shots = np.arange(n) * profile_step + 0.5 * (profile_step - 1)
        times = self.start + np.round(shots * shot_ns).astype("int64").astype("timedelta64[ns]")
        return times[times < self.end]


def granule_windows(day, orbit: SunSynchronousOrbit = CALIPSO, sample_s: float = 10.0) -> list[GranuleWindow]:
    """The half-orbit granules that start on ``day`` (UTC), split at the terminator crossings of the track."""
    d0 = np.datetime64(day, "D").astype("datetime64[ns]")
    margin = np.timedelta64(4, "h")
    n = int((86400 + 2 * 4 * 3600) / sample_s) + 1
    t = d0 - margin + (np.arange(n) * sample_s * 1e9).astype("int64").astype("timedelta64[ns]")
    lat, lon = orbit.subpoint(t)
    c = np.cos(np.deg2rad(solar_zenith_deg(lat, lon, t)))
    k = np.flatnonzero(np.sign(c[:-1]) != np.sign(c[1:]))
    frac = c[k] / (c[k] - c[k + 1])
    crossings = t[k] + np.round(frac * sample_s * 1e3).astype("int64").astype("timedelta64[ms]")
    crossings = crossings.astype("datetime64[ms]").astype("datetime64[ns]")
    out = []
    for a, b in zip(crossings[:-1], crossings[1:], strict=True):
        if not (d0 <= a < d0 + np.timedelta64(1, "D")):
            continue
        mid = a + (b - a) // 2
        la, lo = orbit.subpoint(mid)
        out.append(GranuleWindow(a, b, "D" if solar_zenith_deg(la, lo, mid) < 90.0 else "N"))
    return out


def default_region(scenario, half_width_deg: tuple[float, float] = (35.0, 12.0)) -> tuple[float, ...]:
    """A demo region around the scenario's volcano: (lon_min, lat_min, lon_max, lat_max), wrapped to ±180."""
    v = scenario.volcano
    dlon, dlat = half_width_deg

    def wrap(x):
        return float((x + 180.0) % 360.0 - 180.0)

    return (
        wrap(v.longitude - dlon),
        max(-90.0, v.latitude - dlat),
        wrap(v.longitude + dlon),
        min(90.0, v.latitude + dlat),
    )


def _in_lon(lon: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (lon >= lo) & (lon <= hi) if lo <= hi else (lon >= lo) | (lon <= hi)


def _clip_to_region(lat, lon, region, lat_margin_deg) -> slice | None:
    """The profile window of a granule within the region's latitude band ± margin, or None if it misses the box."""
    if region is None:
        return slice(0, lat.size)
    lon_min, lat_min, lon_max, lat_max = region
    in_box = (lat >= lat_min) & (lat <= lat_max) & _in_lon(lon, lon_min, lon_max)
    if not in_box.any():
        return None
    band = (lat >= lat_min - lat_margin_deg) & (lat <= lat_max + lat_margin_deg)
    # contiguous runs of the band; keep those that pass through the box
    edges = np.flatnonzero(np.diff(np.concatenate([[0], band.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    keep = [(a, b) for a, b in zip(starts, stops, strict=True) if in_box[a:b].any()]
    return slice(int(keep[0][0]), int(keep[-1][1]))


# ------------------------------------------------------------------------------------------- physics


@dataclass
class _Layers:
    """Backscatter (km-1 sr-1), extinction (km-1) and depolarisation of each constituent, (n, m) arrays."""

    beta_mol: np.ndarray
    beta_aer: np.ndarray
    depol_aer: np.ndarray
    color_aer: np.ndarray
    beta_cld: np.ndarray
    alpha_cld_eff: np.ndarray  # η × extinction: what attenuates
    depol_cld: np.ndarray


def _transmission_factor(dtau: np.ndarray) -> np.ndarray:
    """Two-way transmission averaged over each bin, from optical depths per bin (n, m), top first."""
    tau_top = np.cumsum(dtau, axis=1) - dtau
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(dtau > 1e-9, -np.expm1(-2.0 * dtau) / (2.0 * dtau), 1.0)
    return np.exp(-2.0 * tau_top) * within


def _layers(scenario, lat, lon, time, z, dz, surface):
    n, m = lat.size, z.size
    top_edge, bottom_edge = z + 0.5 * dz, z - 0.5 * dz
    air = np.clip((top_edge[None, :] - surface[:, None]) / dz[None, :], 0.0, 1.0)
    beta_mol = BETA_MOLECULAR_532_SEA_LEVEL * np.exp(-z / MOLECULAR_SCALE_HEIGHT_KM)[None, :] * air
    beta_aer = np.nan_to_num(np.asarray(scenario.aerosol_backscatter_532(lat, lon, z, time), float)) * air
    depol_aer = np.zeros((n, m))
    if (beta_aer > 0).any():
        depol_aer = np.nan_to_num(np.asarray(scenario.aerosol_depolarization(lat, lon, z, time), float), nan=0.03)
    color_aer = 0.4 + 0.4 * np.clip(depol_aer / 0.35, 0.0, 1.0)
    cl = scenario.clouds(lat, lon, time)
    tau = np.nan_to_num(np.asarray(cl.optical_depth, float))
    top = np.nan_to_num(np.asarray(cl.top_km, float))
    base = np.maximum(np.nan_to_num(np.asarray(cl.base_km, float)), surface)
    thick = np.maximum(top - base, RANGE_BIN_KM)
    overlap = np.clip(
        np.minimum(top_edge[None, :], top[:, None]) - np.maximum(bottom_edge[None, :], base[:, None]), 0.0, None
    )
    alpha_cld = np.where(tau[:, None] > 0, tau[:, None] / thick[:, None] * overlap / dz[None, :], 0.0)
    ice = np.asarray(cl.is_ice, bool)[:, None]
    ratio = np.where(ice, CLOUD_LIDAR_RATIO["ice"], CLOUD_LIDAR_RATIO["water"])
    eta = np.where(ice, MULTIPLE_SCATTERING_ETA["ice"], MULTIPLE_SCATTERING_ETA["water"])
    tau_in = np.cumsum(alpha_cld * dz[None, :], axis=1)
    depol_water = WATER_DEPOLARIZATION[0] + WATER_DEPOLARIZATION[1] * (1.0 - np.exp(-tau_in))
    layers = _Layers(
        beta_mol=beta_mol,
        beta_aer=beta_aer,
        depol_aer=depol_aer,
        color_aer=color_aer,
        beta_cld=alpha_cld / ratio,
        alpha_cld_eff=eta * alpha_cld,
        depol_cld=np.where(ice, ICE_DEPOLARIZATION, depol_water),
    )
    return layers, np.asarray(cl.fraction, float)


def _surface_bin(z, dz, surface) -> np.ndarray:
    """Index of the bin holding the surface, per profile.

    Bins are top first: the surface bin is the first whose bottom edge is at or below the surface.
    """
    return np.argmax((z - 0.5 * dz)[None, :] <= surface[:, None], axis=1)


def _add_surface(signal: dict, z, dz, surface, land, trans_surface: dict) -> None:
    """Add the surface return (and its short tail) to the three signal arrays, in place."""
    idx = _surface_bin(z, dz, surface)
    n = surface.size
    rows = np.arange(n)
    iab = np.where(land, SURFACE_IAB_532["land"], SURFACE_IAB_532["sea"])
    depol = np.where(land, SURFACE_DEPOLARIZATION["land"], SURFACE_DEPOLARIZATION["sea"])
    color = np.where(land, SURFACE_COLOR_RATIO["land"], SURFACE_COLOR_RATIO["sea"])
    for k, share in enumerate(SURFACE_TAIL):
        j = np.clip(idx + k, 0, z.size - 1)
        b532 = iab * share / dz[j] * trans_surface["532"]
        signal["par"][rows, j] += b532 / (1.0 + depol)
        signal["perp"][rows, j] += b532 * depol / (1.0 + depol)
        signal["1064"][rows, j] += iab * color * share / dz[j] * trans_surface["1064"]


def _attenuated(layers: _Layers, dz, with_clouds: bool) -> dict[str, np.ndarray]:
    """Attenuated backscatter (parallel and perpendicular 532, 1064) and the surface transmissions."""
    dm = MOLECULAR_DEPOLARIZATION
    cld = 1.0 if with_clouds else 0.0
    b_aer1064 = layers.color_aer * layers.beta_aer
    dtau532 = (MOLECULAR_LIDAR_RATIO * layers.beta_mol + AEROSOL_LIDAR_RATIO * layers.beta_aer) * dz
    dtau1064 = (MOLECULAR_LIDAR_RATIO * layers.beta_mol / 16.0 + AEROSOL_LIDAR_RATIO * b_aer1064) * dz
    dtau532 = dtau532 + cld * layers.alpha_cld_eff * dz
    dtau1064 = dtau1064 + cld * layers.alpha_cld_eff * dz
    f532, f1064 = _transmission_factor(dtau532), _transmission_factor(dtau1064)
    da, dc = layers.depol_aer, layers.depol_cld
    par = layers.beta_mol / (1 + dm) + layers.beta_aer / (1 + da) + cld * layers.beta_cld / (1 + dc)
    perp = layers.beta_mol * dm / (1 + dm) + layers.beta_aer * da / (1 + da) + cld * layers.beta_cld * dc / (1 + dc)
    b1064 = layers.beta_mol / 16.0 + b_aer1064 + cld * layers.beta_cld
    return {
        "par": par * f532,
        "perp": perp * f532,
        "1064": b1064 * f1064,
        "t532": np.exp(-2.0 * dtau532.sum(axis=1)),
        "t1064": np.exp(-2.0 * dtau1064.sum(axis=1)),
    }


def _noise(rng, signal, sigma_bg, shot, scale) -> np.ndarray:
    var = (shot * np.clip(signal, 0.0, None) + sigma_bg[:, None] ** 2) * scale
    return rng.standard_normal(signal.shape) * np.sqrt(var)


def simulate_profiles(scenario, lat, lon, time, rng, *, profile_step: int = 15) -> dict[str, np.ndarray]:
    """Attenuated backscatter profiles (n, 583) and per-profile surface fields, from the scenario.

    Returns a dict with the three backscatter SDS arrays (float32, keyed by SDS name) and ``surface_elevation``
    (km), ``land`` (bool), ``solar_zenith`` (degrees) of shape (n,).
    """
    z, dz = _bin_geometry()
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    time = np.asarray(time, dtype="datetime64[ns]")
    surface = np.asarray(scenario.surface_elevation_km(lat, lon), float)
    land = np.asarray(scenario.surface_is_land(lat, lon), bool)
    layers, fraction = _layers(scenario, lat, lon, time, z, dz, surface)
    clear = _attenuated(layers, dz, with_clouds=False)
    # partial cover: the share of cloudy shots among the profile_step shots averaged into a profile
    cloudy_share = rng.binomial(profile_step, np.clip(fraction, 0.0, 1.0)) / profile_step
    signal = dict(clear)
    if (cloudy_share > 0).any():
        cloudy = _attenuated(layers, dz, with_clouds=True)
        w = cloudy_share[:, None]
        for key in ("par", "perp", "1064"):
            signal[key] = (1 - w) * clear[key] + w * cloudy[key]
        for key in ("t532", "t1064"):
            signal[key] = (1 - cloudy_share) * clear[key] + cloudy_share * cloudy[key]
    _add_surface(signal, z, dz, surface, land, {"532": signal["t532"], "1064": signal["t1064"]})
    sza = solar_zenith_deg(lat, lon, time)
    sun = np.sqrt(np.clip(np.cos(np.deg2rad(sza)), 0.0, None))
    scale = (RANGE_BIN_KM / dz)[None, :] / profile_step
    bg532 = BACKGROUND_NOISE["532"][0] + BACKGROUND_NOISE["532"][1] * sun
    bg1064 = BACKGROUND_NOISE["1064"][0] + BACKGROUND_NOISE["1064"][1] * sun
    half = bg532 / np.sqrt(2.0)  # the unpolarised background splits between the two 532 channels
    par = signal["par"] + _noise(rng, signal["par"], half, SHOT_NOISE["532"], scale)
    perp = signal["perp"] + _noise(rng, signal["perp"], half, SHOT_NOISE["532"], scale)
    b1064 = signal["1064"] + _noise(rng, signal["1064"], bg1064, SHOT_NOISE["1064"], scale)
    out = {
        "Total_Attenuated_Backscatter_532": par + perp,
        "Perpendicular_Attenuated_Backscatter_532": perp,
        "Attenuated_Backscatter_1064": b1064,
    }
    for name, (lo, hi) in VALID_RANGE.items():
        out[name] = np.clip(out[name], lo, hi).astype(np.float32)
    out.update(surface_elevation=surface, land=land, solar_zenith=sza)
    return out


def _quantisation_step(name: str, profile_step: int) -> np.ndarray:
    """Per-bin quantisation step (583,): the power of two at or below ¼ of the bin's night background noise."""
    _, dz = _bin_geometry()
    channel = "1064" if name.endswith("1064") else "532"
    share = 0.5 if name.startswith("Perpendicular") else 1.0  # the perpendicular channel gets half the background
    sigma = BACKGROUND_NOISE[channel][0] * np.sqrt(share * RANGE_BIN_KM / dz / profile_step)
    return 2.0 ** np.floor(np.log2(sigma / 4.0))


def _quantise(x: np.ndarray, name: str, profile_step: int) -> np.ndarray:
    """Values rounded to the bin's quantisation step, then to ``_KEEP_MANTISSA_BITS`` (float32 kept)."""
    q = _quantisation_step(name, profile_step)[None, :]
    return _round_mantissa((np.round(x / q) * q).astype(np.float32))


def _round_mantissa(x: np.ndarray, keep_bits: int = _KEEP_MANTISSA_BITS) -> np.ndarray:
    """Round float32 values to ``keep_bits`` mantissa bits (so deflate compresses them; values stay float32)."""
    drop = 23 - keep_bits
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32((0xFFFFFFFF >> drop) << drop)
    return ((u + half) & mask).view(np.float32)


# ------------------------------------------------------------------------------------------- HDF4 writing


def _format_name(dtype) -> str:
    return {
        np.dtype(np.float32): "Float_32",
        np.dtype(np.float64): "Float_64",
        np.dtype(np.int32): "Int_32",
        np.dtype(np.int8): "Int_8",
    }[np.dtype(dtype)]


_PROFILE_SDS = {
    # name: (dtype, units, valid_range)
    "Profile_ID": (np.int32, "NoUnits", "1...2147483647"),
    "Latitude": (np.float32, "degrees", "-90.0...90.0"),
    "Longitude": (np.float32, "degrees", "-180.0...180.0"),
    "Profile_Time": (np.float64, "seconds", "4.204E8...1.072E9"),
    "Profile_UTC_Time": (np.float64, "NoUnits", "60426.0...261231.0"),
    "Day_Night_Flag": (np.int8, "NoUnits", "0...1"),
    "Solar_Zenith_Angle": (np.float32, "degrees", "0.0...180.0"),
    "Surface_Elevation": (np.float32, "kilometers", "-1.0...9.0"),
    "Land_Water_Mask": (np.int8, "NoUnits", "0...7"),
}


def _sd_type(dtype):
    from pyhdf.SD import SDC

    return {
        np.dtype(np.float32): SDC.FLOAT32,
        np.dtype(np.float64): SDC.FLOAT64,
        np.dtype(np.int32): SDC.INT32,
        np.dtype(np.int8): SDC.INT8,
    }[np.dtype(dtype)]


def _write_sds(sd, name, data, units, valid_range, compress: int | None) -> None:
    from pyhdf.SD import SDC

    data = np.ascontiguousarray(data)
    sds = sd.create(name, _sd_type(data.dtype), data.shape)
    try:
        if compress:
            sds.setcompress(SDC.COMP_DEFLATE, value=compress)
        sds[:] = data
        sds.units = units
        sds.format = _format_name(data.dtype)
        fill_type = _sd_type(data.dtype)
        fill = FILL_VALUE if data.dtype.kind == "f" else (-127 if data.dtype.itemsize == 1 else -9999)
        sds.attr("fillvalue").set(fill_type, fill)
        sds.valid_range = valid_range
    finally:
        sds.endaccess()


def _iso_ms(t) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "ms"), unit="ms")) + "Z"


def _write_metadata(path: str, window: GranuleWindow, lat, lon, n_profiles: int, minor: str) -> None:
    import pyhdf.VS  # noqa: F401  (HDF.vstart() needs the VS module loaded)
    from pyhdf.HDF import HC, HDF

    record = [
        ("Product_ID", HC.CHAR8, f"L1_Standard_V4-{minor}"),
        ("Date_Time_at_Granule_Start", HC.CHAR8, _iso_ms(window.start)),
        ("Date_Time_at_Granule_End", HC.CHAR8, _iso_ms(window.end)),
        ("Date_Time_of_Production", HC.CHAR8, _iso_ms(window.end + np.timedelta64(2, "D"))),
        ("Number_of_Good_Profiles", HC.INT32, int(n_profiles)),
        ("Number_of_Bad_Profiles", HC.INT32, 0),
        ("Initial_Subsatellite_Latitude", HC.FLOAT32, float(lat[0])),
        ("Initial_Subsatellite_Longitude", HC.FLOAT32, float(lon[0])),
        ("Final_Subsatellite_Latitude", HC.FLOAT32, float(lat[-1])),
        ("Final_Subsatellite_Longitude", HC.FLOAT32, float(lon[-1])),
        ("Lidar_Data_Altitudes", HC.FLOAT32, [float(a) for a in lidar_data_altitudes()]),
    ]
    fields = []
    for name, kind, value in record:
        order = len(value) if isinstance(value, str | list) else 1
        fields.append((name, kind, order))
    hdf = HDF(path, HC.WRITE)
    try:
        vs = hdf.vstart()
        try:
            vd = vs.create("metadata", fields)
            try:
                vd.write([[value for _, _, value in record]])
            finally:
                vd.detach()
        finally:
            vs.end()
    finally:
        hdf.close()


def _granule_arrays(scenario, window, times, lat, lon, rng, profile_step, first_shot):
    n = times.size
    arrays = {name: np.empty((n, N_BINS), np.float32) for name in VALID_RANGE}
    per_profile = {name: np.empty((n, 1), spec[0]) for name, spec in _PROFILE_SDS.items()}
    for a in range(0, n, _CHUNK_PROFILES):
        b = min(n, a + _CHUNK_PROFILES)
        sim = simulate_profiles(scenario, lat[a:b], lon[a:b], times[a:b], rng, profile_step=profile_step)
        for name in arrays:
            arrays[name][a:b] = _quantise(sim[name], name, profile_step)
        per_profile["Surface_Elevation"][a:b, 0] = sim["surface_elevation"]
        per_profile["Land_Water_Mask"][a:b, 0] = np.where(sim["land"], 1, 7)
        per_profile["Solar_Zenith_Angle"][a:b, 0] = sim["solar_zenith"]
    per_profile["Day_Night_Flag"][:, 0] = 0 if window.day_night == "D" else 1
    per_profile["Profile_ID"][:, 0] = first_shot + 1 + profile_step * np.arange(n)
    per_profile["Latitude"][:, 0] = lat
    per_profile["Longitude"][:, 0] = lon
    per_profile["Profile_Time"][:, 0] = datetime64_to_tai93(times)
    per_profile["Profile_UTC_Time"][:, 0] = datetime64_to_utc_number(times)
    return arrays, per_profile


def write_granule(
    scenario,
    window: GranuleWindow,
    path: str | os.PathLike,
    *,
    profile_step: int = 15,
    region=None,
    lat_margin_deg: float = 3.0,
    rng: np.random.Generator | None = None,
    orbit: SunSynchronousOrbit = CALIPSO,
    compress: int = 2,
    minor: str = "51",
) -> Path | None:
    """Write one granule (see the module docstring); ``None`` (nothing written) if its track misses ``region``."""
    times = window.profile_times(profile_step)
    lat, lon = orbit.subpoint(times)
    window_slice = _clip_to_region(lat, lon, region, lat_margin_deg)
    if window_slice is None:
        return None
    times, lat, lon = times[window_slice], lat[window_slice], lon[window_slice]
    rng = rng if rng is not None else np.random.default_rng()
    arrays, per_profile = _granule_arrays(
        scenario, window, times, lat, lon, rng, profile_step, first_shot=window_slice.start * profile_step
    )
    from pyhdf.SD import SD, SDC

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")  # written aside, renamed when complete: no half-written granule
    try:
        with HDF_LOCK:
            sd = SD(os.fspath(tmp), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
            try:
                for name, (dtype, units, valid_range) in _PROFILE_SDS.items():
                    _write_sds(sd, name, per_profile[name].astype(dtype), units, valid_range, compress=None)
                for name, (lo, hi) in VALID_RANGE.items():
                    _write_sds(sd, name, arrays[name], "per kilometer per steradian", f"{lo}...{hi}", compress)
            finally:
                sd.end()
            _write_metadata(os.fspath(tmp), window, lat, lon, times.size, minor)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_caliop_day(
    scenario,
    day,
    out_root: str | os.PathLike,
    *,
    profile_step: int = 15,
    region: tuple[float, float, float, float] | None = None,
    lat_margin_deg: float = 3.0,
    rng_seed: int = 20210412,
    orbit: SunSynchronousOrbit = CALIPSO,
    minor: str = "51",
) -> list[Path]:
    """Write the CALIOP L1B V4 granules that start on ``day`` under ``out_root/caliop/YYYY/MM/DD/``.

    Parameters
    ----------
    scenario : app.sample.scenario.Scenario
        The world the lidar observes.
    day : numpy.datetime64 or str
        The UTC day.
    out_root : str or os.PathLike
        Root of the sample archive.
    profile_step : int
        Shots averaged into one written profile (1 = the real 333 m profiles; 15 ≈ 5 km).
    region : (float, float, float, float), optional
        (lon_min, lat_min, lon_max, lat_max): write only the granules whose track crosses it, clipped to its
        latitude band ± ``lat_margin_deg`` (see the module docstring); ``None`` writes whole granules.
    lat_margin_deg : float
        Latitude margin kept around the region's band.
    rng_seed : int
        Seed of the noise; each granule draws from its own stream (seed, granule start), so a granule is the
        same whichever others are written.
    orbit : app.sample.orbit.SunSynchronousOrbit
        The platform's orbit model.
    minor : str
        The minor version in the file name (``V4-51``).

    Returns
    -------
    list of pathlib.Path
        The files written, in time order.
    """
    if profile_step < 1:
        raise ValueError(f"profile_step must be a positive number of shots, not {profile_step}")
    day = np.datetime64(day, "D")
    folder = Path(out_root) / "caliop" / str(dt.date.fromisoformat(str(day)).strftime("%Y/%m/%d"))
    written = []
    for window in granule_windows(day, orbit):
        start_s = int((window.start - np.datetime64("1993-01-01", "ns")).astype("int64") // 1_000_000_000)
        rng = np.random.default_rng([rng_seed, start_s])
        name = caliop_filename(window.start.astype("datetime64[s]"), window.day_night, minor=minor)
        path = write_granule(
            scenario,
            window,
            folder / name,
            profile_step=profile_step,
            region=region,
            lat_margin_deg=lat_margin_deg,
            rng=rng,
            orbit=orbit,
            minor=minor,
        )
        if path is not None:
            written.append(path)
    return written
