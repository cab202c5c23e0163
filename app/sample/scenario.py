"""The scenario model: one physically consistent world that every sample instrument observes.

A volcano emits SO2 (and ash) in pulses. Each pulse is released as *puffs* — small Gaussian clouds released every
few minutes at heights spread over the pulse's injection layer. A puff is carried by the wind at its own height
(uniform in space, varying with height, so wind shear spreads the plume), grows by horizontal diffusion
(σ² = σ0² + 2·K·age) and decays by first-order loss (SO2 e-folding time τ, shorter for ash that falls out).

Every instrument asks the same model, so they agree:

- TROPOMI: :meth:`Scenario.so2_column_du` (averaged over each pixel footprint) and
  :meth:`Scenario.so2_layer_height_km` (which box profile is right);
- CALIOP: :meth:`Scenario.aerosol_backscatter_532` / :meth:`Scenario.aerosol_depolarization` where its track
  crosses the plume;
- GEO imagers: :meth:`Scenario.ash_loading_g_m2` (split-window signal), :meth:`Scenario.clouds`;
- all of them: :meth:`Scenario.clouds` (the same meteorological clouds), :meth:`Scenario.surface_is_land`.

Units: heights km, masses kg, columns DU (1 DU over 1 km² = 28.583 kg of SO2), winds m/s, times numpy
``datetime64`` (UTC). Horizontal distances use a local tangent plane around each puff (plumes here span a few
thousand km at most; longitudes are wrapped, so plumes crossing ±180° are continuous).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from app.sample.orbit import EARTH_RADIUS_KM, seconds_since_2000

KM_PER_DEG = np.pi * EARTH_RADIUS_KM / 180.0  # 111.195 km per degree of latitude
# 1 DU = 4.4615e-4 mol m-2; SO2 64.066 g mol-1 -> 0.028583 g m-2 = 28.583 kg km-2.
KG_PER_KM2_PER_DU = 4.4615e-4 * 64.066 * 1e-3 * 1e6

# Aerosol optics used for the lidar (km-1 sr-1 of backscatter per kg km-3 of aerosol mass):
# sulfate formed from SO2 (grows with age, e-folding 2 days, to 0.25 of the SO2 mass), and ash.
BETA_PER_SULFATE_KG_KM3 = 7.0e-5
BETA_PER_ASH_KG_KM3 = 2.5e-5
SULFATE_YIELD = 0.25
SULFATE_FORMATION_S = 2 * 86400.0
DEPOL_ASH = 0.36
DEPOL_SULFATE = 0.03


@dataclass(frozen=True)
class Volcano:
    """The source volcano (GVP identity and position)."""

    name: str
    number: int
    latitude: float
    longitude: float
    elevation_m: float


@dataclass(frozen=True)
class Pulse:
    """One emission episode: SO2 (and ash) released at a constant rate between bottom and top heights."""

    start: str  # ISO UTC
    duration_min: float
    bottom_km: float
    top_km: float
    so2_kt: float
    ash_ratio: float = 1.0  # ash mass / SO2 mass


@dataclass(frozen=True)
class Wind:
    """A height-dependent wind, uniform in space: u (eastward) and v (northward) in m/s at heights in km."""

    heights_km: tuple[float, ...]
    u_ms: tuple[float, ...]
    v_ms: tuple[float, ...]

    def uv(self, height_km) -> tuple[np.ndarray, np.ndarray]:
        """Wind components (m/s) at the given heights (linear interpolation, constant beyond the ends)."""
        h = np.asarray(height_km, dtype=float)
        return np.interp(h, self.heights_km, self.u_ms), np.interp(h, self.heights_km, self.v_ms)

    def speed(self, height_km) -> np.ndarray:
        """Wind speed (m/s) at the given heights."""
        u, v = self.uv(height_km)
        return np.hypot(u, v)


@dataclass
class Clouds:
    """Meteorological clouds at a set of points (arrays of the points' shape)."""

    fraction: np.ndarray  # 0-1
    top_km: np.ndarray  # NaN where clear
    base_km: np.ndarray  # NaN where clear
    optical_depth: np.ndarray  # 0 where clear
    is_ice: np.ndarray  # bool


def standard_atmosphere_temperature_k(height_km) -> np.ndarray:
    """US standard atmosphere 1976 temperature (K) up to 32 km: 288.15 K, -6.5 K/km to 11 km, isothermal to 20 km."""
    z = np.asarray(height_km, dtype=float)
    t = 288.15 - 6.5 * np.clip(z, None, 11.0)
    return t + 1.0 * np.clip(z - 20.0, 0.0, None)


def standard_atmosphere_pressure_hpa(height_km) -> np.ndarray:
    """US standard atmosphere 1976 pressure (hPa) up to 32 km."""
    z = np.asarray(height_km, dtype=float)
    p_trop = 1013.25 * (1 - 6.5 * np.clip(z, None, 11.0) / 288.15) ** 5.2559
    p11 = 1013.25 * (1 - 6.5 * 11.0 / 288.15) ** 5.2559
    p_strat = p11 * np.exp(-(np.clip(z, 11.0, None) - 11.0) / 6.3416)
    return np.where(z <= 11.0, p_trop, p_strat)


class _CloudField:
    """Smooth random fields on the sphere (sums of plane waves in 3-D, so no seam at ±180° or the poles)."""

    def __init__(self, seed: int, n_modes: int = 48):
        rng = np.random.default_rng(seed)
        # wavelengths 400-4000 km; directions uniform on the sphere; phases drift with time (a few m/s)
        wavelength = np.exp(rng.uniform(np.log(400.0), np.log(4000.0), size=(3, n_modes)))
        k = 2 * np.pi / wavelength * EARTH_RADIUS_KM  # radians per unit radius
        d = rng.normal(size=(3, n_modes, 3))
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        self.k = d * k[..., None]  # (field, mode, xyz)
        self.phase = rng.uniform(0, 2 * np.pi, size=(3, n_modes))
        self.omega = rng.normal(0.0, 2 * np.pi / (2 * 86400.0), size=(3, n_modes))  # evolve over ~2 days
        self.amp = (wavelength / 4000.0) ** 0.8
        self.amp /= np.sqrt((self.amp**2).sum(axis=1, keepdims=True) / 2)

    def fields(self, lat, lon, t_s) -> np.ndarray:
        lat_r, lon_r = np.deg2rad(lat), np.deg2rad(lon)
        xyz = np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)], axis=-1)
        out = np.zeros((3,) + np.shape(lat))
        for f in range(3):
            arg = xyz @ self.k[f].T + self.phase[f] + np.multiply.outer(t_s, self.omega[f])
            out[f] = (self.amp[f] * np.cos(arg)).sum(axis=-1)
        return out


@dataclass
class Scenario:
    """A volcanic event and the weather around it. See the module docstring for the physics."""

    name: str
    title: str
    volcano: Volcano
    first_day: str
    n_days: int
    pulses: tuple[Pulse, ...]
    wind: Wind
    degassing_kt_per_day: float = 0.0
    degassing_height_km: tuple[float, float] = (2.0, 4.0)
    so2_lifetime_days: float = 3.0
    ash_lifetime_hours: float = 10.0
    diffusivity_m2_s: float = 8000.0
    initial_sigma_km: float = 5.0
    release_step_min: float = 15.0
    degassing_step_min: float = 120.0
    cloud_seed: int = 2021
    caption: str = ""
    region: tuple[float, float, float, float] | None = None  # lon_min, lat_min, lon_max, lat_max

    # ----------------------------------------------------------------- time and emissions
    @property
    def days(self) -> tuple[np.datetime64, ...]:
        """The days the sample archive covers."""
        d0 = np.datetime64(self.first_day, "D")
        return tuple(d0 + np.arange(self.n_days))

    @property
    def domain(self) -> tuple[float, float, float, float]:
        """The region the plume stays in over the scenario's days: (lon_min, lat_min, lon_max, lat_max).

        Longitudes wrap: lon_min > lon_max means the region crosses the antimeridian.
        """
        if self.region is not None:
            return self.region
        v = self.volcano
        wrap = lambda x: (x + 180.0) % 360.0 - 180.0  # noqa: E731
        return (wrap(v.longitude - 45.0), max(-90.0, v.latitude - 25.0), wrap(v.longitude + 45.0),
                min(90.0, v.latitude + 25.0))

    @cached_property
    def puffs(self) -> dict[str, np.ndarray]:
        """The released puffs: time (s since 2000), height, vertical sigma, SO2 and ash masses (kg), wind."""
        t, h, sz, m, ash = [], [], [], [], []
        step = self.release_step_min * 60.0
        for p in self.pulses:
            t0 = float(seconds_since_2000(np.datetime64(p.start)))
            n_t = max(1, int(round(p.duration_min * 60.0 / step)))
            levels = np.linspace(p.bottom_km, p.top_km, 3)
            # the umbrella: more mass near the top of the column than near its base
            w = np.linspace(0.5, 1.5, levels.size)
            w /= w.sum()
            for i in range(n_t):
                for lev, wl in zip(levels, w, strict=True):
                    t.append(t0 + (i + 0.5) * step)
                    h.append(lev)
                    sz.append(max(0.3, (p.top_km - p.bottom_km) / 8.0))
                    mass = p.so2_kt * 1e6 * wl / n_t
                    m.append(mass)
                    ash.append(mass * p.ash_ratio)
        if self.degassing_kt_per_day > 0:
            d0 = float(seconds_since_2000(np.datetime64(self.first_day, "D"))) - 2 * 86400.0
            d_step = self.degassing_step_min * 60.0
            n = int((self.n_days + 2) * 86400.0 / d_step)
            lo, hi = self.degassing_height_km
            for i in range(n):
                for lev in (lo, hi):
                    t.append(d0 + (i + 0.5) * d_step)
                    h.append(lev)
                    sz.append(max(0.3, (hi - lo) / 6.0))
                    m.append(self.degassing_kt_per_day * 1e6 * d_step / 86400.0 / 2)
                    ash.append(0.0)
        h_arr = np.asarray(h)
        u, v = self.wind.uv(h_arr)
        return {
            "t": np.asarray(t),
            "h": h_arr,
            "sz": np.asarray(sz),
            "m": np.asarray(m),
            "ash": np.asarray(ash),
            "u": u,
            "v": v,
        }

    def so2_emitted_kg(self, start, end) -> float:
        """SO2 (kg) released between two times."""
        p = self.puffs
        a, b = seconds_since_2000(np.datetime64(start)), seconds_since_2000(np.datetime64(end))
        return float(p["m"][(p["t"] >= a) & (p["t"] < b)].sum())

    def total_so2_kg(self, time) -> float:
        """SO2 (kg) aloft at a time: everything released before it, less what has decayed."""
        p = self.puffs
        age = float(seconds_since_2000(np.datetime64(time))) - p["t"]
        live = age > 0
        return float((p["m"][live] * np.exp(-age[live] / (self.so2_lifetime_days * 86400.0))).sum())

    def wind_speed_ms(self, height_km) -> np.ndarray:
        """Wind speed (m/s) at plume height, e.g. for the disk-method flux."""
        return self.wind.speed(height_km)

    # ----------------------------------------------------------------- plume geometry
    def _puff_state(self, t_pt: np.ndarray, sel: np.ndarray):
        """Puff centres, sigmas and masses seen at the points' times: arrays (n_points, n_puffs)."""
        p = self.puffs
        age = t_pt[:, None] - p["t"][sel][None, :]
        live = age > 0
        age = np.where(live, age, 0.0)
        lat_c = self.volcano.latitude + p["v"][sel] * age / 1000.0 / KM_PER_DEG
        lat_c = np.clip(lat_c, -89.0, 89.0)
        coslat = np.cos(np.deg2rad(0.5 * (lat_c + self.volcano.latitude)))
        lon_c = self.volcano.longitude + p["u"][sel] * age / 1000.0 / (KM_PER_DEG * coslat)
        sig2 = self.initial_sigma_km**2 + 2 * self.diffusivity_m2_s * age / 1e6
        decay = np.where(live, np.exp(-age / (self.so2_lifetime_days * 86400.0)), 0.0)
        ash_decay = np.where(live, np.exp(-age / (self.ash_lifetime_hours * 3600.0)), 0.0)
        return lat_c, lon_c, sig2, decay, ash_decay, age

    def _candidates(self, lat, lon, t):
        """Puffs alive at the points' times, and the points near any of them (a 1° cell mask)."""
        p = self.puffs
        t_min, t_max = float(t.min()), float(t.max())
        left = p["m"] * np.exp(-np.clip(t_min - p["t"], 0, None) / (self.so2_lifetime_days * 86400.0))
        alive = (p["t"] < t_max) & (left > 1e-4 * p["m"].max())
        sel = np.flatnonzero(alive)
        if sel.size == 0:
            return sel, np.zeros(lat.shape, bool)
        t_mid = np.full(1, 0.5 * (t_min + t_max))
        lat_c, lon_c, sig2, _, _, age = self._puff_state(t_mid, sel)
        speed = np.hypot(p["u"][sel], p["v"][sel])
        reach_km = 5.0 * np.sqrt(sig2[0] + 100.0) + speed * (t_max - t_min) / 2000.0 + 60.0
        cells = np.zeros((180, 360), bool)
        for la, lo, r in zip(lat_c[0], lon_c[0], reach_km, strict=True):
            dlat = r / KM_PER_DEG
            dlon = min(180.0, dlat / max(np.cos(np.deg2rad(min(abs(la) + dlat, 89.0))), 0.02))
            i0, i1 = int(np.floor(la - dlat + 90)), int(np.floor(la + dlat + 90))
            rows = slice(max(i0, 0), min(i1, 179) + 1)
            j = (np.arange(int(np.floor(lo - dlon)), int(np.floor(lo + dlon)) + 1) + 180) % 360
            cells[rows, j] = True
        ii = np.clip(np.floor(lat + 90).astype(int), 0, 179)
        jj = np.floor(np.mod(lon + 180.0, 360.0)).astype(int) % 360
        return sel, cells[ii, jj]

    def _weights(self, lat, lon, t, pixel_var_km2, chunk: int = 4096):
        """Yield chunks of points with W[i, j], the footprint-averaged areal density (km-2) of puff j at point i."""
        sel, near = self._candidates(lat, lon, t)
        idx = np.flatnonzero(near)
        for c0 in range(0, idx.size, chunk):
            ii = idx[c0 : c0 + chunk]
            lat_c, lon_c, sig2, decay, ash_decay, age = self._puff_state(t[ii], sel)
            s2 = sig2 + 0.5 * pixel_var_km2[ii][:, None]
            dlon = np.mod(lon[ii][:, None] - lon_c + 180.0, 360.0) - 180.0
            dx = dlon * KM_PER_DEG * np.cos(np.deg2rad(lat_c))
            dy = (lat[ii][:, None] - lat_c) * KM_PER_DEG
            g = np.exp(-(dx * dx + dy * dy) / (2 * s2)) / (2 * np.pi * s2)
            yield ii, sel, g, decay, ash_decay, age

    @staticmethod
    def _flat(lat, lon, time, pixel_var_km2=0.0):
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        shape = np.broadcast_shapes(lat.shape, lon.shape)
        t = np.broadcast_to(seconds_since_2000(time), shape).ravel()
        pv = np.broadcast_to(np.asarray(pixel_var_km2, dtype=float), shape).ravel()
        return shape, np.broadcast_to(lat, shape).ravel(), np.broadcast_to(lon, shape).ravel(), t, pv

    def so2_column_du(self, lat, lon, time, pixel_var_km2=0.0) -> np.ndarray:
        """True SO2 vertical column (DU), averaged over a pixel footprint.

        ``pixel_var_km2`` is the footprint's variance summed over its two axes, (L_along² + L_across²)/12 for a
        box; each axis gets half. Convolving the Gaussian puffs with it conserves mass, so the sum of column ×
        pixel area over the pixels equals the mass in the plume.
        """
        shape, la, lo, t, pv = self._flat(lat, lon, time, pixel_var_km2)
        out = np.zeros(la.size)
        p = self.puffs
        for ii, sel, g, decay, _, _ in self._weights(la, lo, t, pv):
            out[ii] = (g * (p["m"][sel] * decay)).sum(axis=1)
        return (out / KG_PER_KM2_PER_DU).reshape(shape)

    def _loading_and_height(self, lat, lon, time, species: str) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Areal density (kg km-2) of ``species`` ('so2' or 'ash') and its mass-weighted height (km)."""
        shape, la, lo, t, pv = self._flat(lat, lon, time)
        num = np.zeros(la.size)
        den = np.zeros(la.size)
        p = self.puffs
        mass = p["m"] if species == "so2" else p["ash"]
        for ii, sel, g, decay, ash_decay, _ in self._weights(la, lo, t, pv):
            w = g * (mass[sel] * (decay if species == "so2" else ash_decay))
            den[ii] = w.sum(axis=1)
            num[ii] = (w * p["h"][sel]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            height = num / den
        return den, height, shape

    def so2_layer_height_km(self, lat, lon, time, min_du: float = 0.05) -> np.ndarray:
        """Mass-weighted SO2 plume height (km above sea level), NaN where the column is below ``min_du``."""
        den, height, shape = self._loading_and_height(lat, lon, time, "so2")
        return np.where(den / KG_PER_KM2_PER_DU >= min_du, height, np.nan).reshape(shape)

    def ash_loading_g_m2(self, lat, lon, time) -> np.ndarray:
        """Volcanic ash mass loading (g m-2 = t km-2) — what the split-window channels see."""
        den, _, shape = self._loading_and_height(lat, lon, time, "ash")
        return (den / 1000.0).reshape(shape)  # kg km-2 -> g m-2

    def ash_height_km(self, lat, lon, time) -> np.ndarray:
        """Ash-weighted plume height (km), NaN where there is no ash."""
        den, height, shape = self._loading_and_height(lat, lon, time, "ash")
        return np.where(den > 1e-3, height, np.nan).reshape(shape)

    def _aerosol_profiles(self, lat, lon, alt_km, time):
        la = np.asarray(lat, dtype=float).ravel()
        lo = np.asarray(lon, dtype=float).ravel()
        t = np.broadcast_to(seconds_since_2000(time), la.shape).ravel()
        z = np.asarray(alt_km, dtype=float).ravel()
        sulf = np.zeros((la.size, z.size))
        ash = np.zeros((la.size, z.size))
        p = self.puffs
        for ii, sel, g, decay, ash_decay, age in self._weights(la, lo, t, np.zeros(la.size)):
            # vertical shape of each puff (km-1), (n_puffs, n_alt)
            vz = np.exp(-0.5 * ((z[None, :] - p["h"][sel][:, None]) / p["sz"][sel][:, None]) ** 2)
            vz /= np.sqrt(2 * np.pi) * p["sz"][sel][:, None]
            sulfate = SULFATE_YIELD * (1 - np.exp(-age / SULFATE_FORMATION_S)) * p["m"][sel] * decay
            sulf[ii] = (g * sulfate) @ vz  # kg km-3
            ash[ii] = (g * (p["ash"][sel] * ash_decay)) @ vz
        return sulf, ash

    def aerosol_backscatter_532(self, lat, lon, alt_km, time) -> np.ndarray:
        """Particulate backscatter (km-1 sr-1) of the volcanic aerosol, shape (n_points, n_alt)."""
        sulf, ash = self._aerosol_profiles(lat, lon, alt_km, time)
        return BETA_PER_SULFATE_KG_KM3 * sulf + BETA_PER_ASH_KG_KM3 * ash

    def aerosol_depolarization(self, lat, lon, alt_km, time) -> np.ndarray:
        """Particulate depolarisation ratio of the volcanic aerosol (ash ~0.36, sulfate 0.03), NaN where none."""
        sulf, ash = self._aerosol_profiles(lat, lon, alt_km, time)
        b_s = BETA_PER_SULFATE_KG_KM3 * sulf
        b_a = BETA_PER_ASH_KG_KM3 * ash
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(b_s + b_a > 1e-7, (DEPOL_SULFATE * b_s + DEPOL_ASH * b_a) / (b_s + b_a), np.nan)

    # ----------------------------------------------------------------- weather and surface
    @cached_property
    def _cloud_field(self) -> _CloudField:
        return _CloudField(self.cloud_seed)

    def clouds(self, lat, lon, time) -> Clouds:
        """Meteorological clouds, the same for every instrument.

        A climatology by latitude (ITCZ, subtropical stratocumulus, mid-latitude storm tracks) modulated by smooth
        random fields that evolve over a couple of days.
        """
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        shape = np.broadcast_shapes(lat.shape, lon.shape)
        t = np.broadcast_to(seconds_since_2000(time) - 6.6e8, shape)
        lat_b = np.broadcast_to(lat, shape)
        f_cover, f_height, f_tau = self._cloud_field.fields(lat_b, np.broadcast_to(lon, shape), t)
        a = np.abs(lat_b)
        itcz = np.exp(-0.5 * ((lat_b - 5.0) / 7.0) ** 2)
        storm = np.exp(-0.5 * ((a - 52.0) / 12.0) ** 2)
        subtrop = np.exp(-0.5 * ((a - 24.0) / 8.0) ** 2)
        bias = -0.9 + 1.0 * itcz + 1.1 * storm - 0.4 * subtrop
        fraction = np.clip((f_cover + bias) / 0.6, 0.0, 1.0)
        cloudy = fraction > 0.05
        top_clim = 2.0 + 9.0 * itcz + 5.0 * storm - 1.0 * subtrop
        top = np.clip(top_clim + 2.5 * f_height + 3.0 * np.clip(f_cover, 0, None), 0.6, 16.5)
        thickness = np.clip(0.8 + 0.35 * top + 1.2 * f_tau, 0.3, 12.0)
        base = np.clip(top - thickness, 0.3, None)
        tau = np.clip(fraction * (3.0 + 12.0 * np.exp(f_tau) * (0.5 + 0.15 * thickness)), 0.0, 120.0)
        is_ice = standard_atmosphere_temperature_k(top) < 250.0
        return Clouds(
            fraction=np.where(cloudy, fraction, 0.0),
            top_km=np.where(cloudy, top, np.nan),
            base_km=np.where(cloudy, base, np.nan),
            optical_depth=np.where(cloudy, tau, 0.0),
            is_ice=cloudy & is_ice,
        )

    def surface_is_land(self, lat, lon) -> np.ndarray:
        """Land (True) or sea, from the Natural Earth land polygons shipped in assets/."""
        from app.data.basemap import land_mask

        return land_mask(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))

    def surface_elevation_km(self, lat, lon) -> np.ndarray:
        """Surface elevation (km): 0 at sea, 0.2 km on land, and the volcano's cone near its summit."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        v = self.volcano
        dlon = (np.mod(lon - v.longitude + 180.0, 360.0) - 180.0) * np.cos(np.deg2rad(v.latitude))
        d2 = (dlon**2 + (lat - v.latitude) ** 2) * KM_PER_DEG**2
        cone = v.elevation_m / 1000.0 * np.exp(-d2 / (2 * 4.0**2))
        base = np.where(self.surface_is_land(lat, lon), 0.2, 0.0)
        return np.maximum(base, cone)


# ---------------------------------------------------------------------- the scenarios

# Trade easterlies below ~5 km, upper-tropospheric westerlies above: La Soufrière's high plume went east over
# Barbados and the Atlantic while low-level gas drifted west over the Caribbean Sea.
_CARIBBEAN_APRIL = Wind(
    heights_km=(0.0, 2.0, 5.0, 8.0, 12.0, 16.0, 20.0, 30.0),
    u_ms=(-7.0, -8.0, -3.0, 8.0, 16.0, 20.0, 6.0, -12.0),
    v_ms=(1.0, 1.5, 2.0, 3.0, 2.5, 0.5, -1.0, 0.0),
)

_SOUFRIERE_PULSES = (
    Pulse("2021-04-09T12:40", 45, 8.0, 16.0, 35.0),
    Pulse("2021-04-09T20:45", 40, 8.0, 14.0, 20.0),
    Pulse("2021-04-10T05:50", 60, 9.0, 16.0, 45.0),
    Pulse("2021-04-10T18:30", 30, 6.0, 12.0, 12.0),
    Pulse("2021-04-11T04:15", 50, 10.0, 16.0, 40.0),
    Pulse("2021-04-11T15:40", 25, 6.0, 10.0, 8.0),
    Pulse("2021-04-12T02:10", 40, 9.0, 15.0, 30.0),
    Pulse("2021-04-12T09:30", 35, 8.0, 13.0, 18.0),
    Pulse("2021-04-12T19:00", 30, 7.0, 12.0, 10.0),
    Pulse("2021-04-13T06:20", 30, 8.0, 14.0, 15.0),
    Pulse("2021-04-13T21:10", 20, 6.0, 11.0, 6.0),
    Pulse("2021-04-14T11:00", 20, 6.0, 10.0, 5.0),
)

_SOUFRIERE = Volcano("Soufrière St. Vincent", 360150, 13.33, -61.18, 1220.0)
_HUNGA = Volcano("Hunga Tonga-Hunga Ha'apai", 243040, -20.54, -175.38, 114.0)
_ETNA = Volcano("Etna", 211060, 37.748, 14.999, 3320.0)
_LEWOTOBI = Volcano("Lewotobi Laki-laki", 264180, -8.542, 122.775, 1703.0)

SCENARIOS: dict[str, Scenario] = {}


def _register(sc: Scenario) -> Scenario:
    SCENARIOS[sc.name] = sc
    return sc


_register(
    Scenario(
        name="soufriere",
        title="La Soufrière, St Vincent — April 2021",
        volcano=_SOUFRIERE,
        first_day="2021-04-10",
        n_days=5,
        pulses=_SOUFRIERE_PULSES,
        wind=_CARIBBEAN_APRIL,
        degassing_kt_per_day=1.5,
        degassing_height_km=(1.5, 3.5),
        region=(-90.0, -10.0, 0.0, 40.0),
        caption="Explosive eruptions from 9 April 2021 sent SO2 up to 16 km; upper winds carried it east over "
        "Barbados and across the Atlantic.",
    )
)
_register(
    replace(
        SCENARIOS["soufriere"],
        name="soufriere-tiny",
        title="La Soufrière, St Vincent — 12 April 2021 (tiny test archive)",
        first_day="2021-04-12",
        n_days=1,
        caption="The La Soufrière scenario, one day, for tests.",
    )
)
_register(
    Scenario(
        name="hunga-tonga",
        title="Hunga Tonga–Hunga Haʻapai — January 2022",
        volcano=_HUNGA,
        first_day="2022-01-15",
        n_days=3,
        pulses=(
            Pulse("2022-01-14T04:20", 60, 14.0, 18.0, 40.0, ash_ratio=0.5),
            Pulse("2022-01-15T04:15", 90, 20.0, 30.0, 420.0, ash_ratio=0.6),
        ),
        # stratospheric easterlies carry the umbrella west across the antimeridian
        wind=Wind(
            heights_km=(0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0),
            u_ms=(-6.0, -4.0, 5.0, 3.0, -12.0, -20.0, -24.0),
            v_ms=(1.0, 0.0, -1.0, 0.0, 1.5, 1.0, 0.5),
        ),
        so2_lifetime_days=10.0,
        cloud_seed=2022,
        caption="The climactic eruption of 15 January 2022 put about 0.4 Tg of SO2 into the stratosphere; "
        "it drifted west across the date line.",
    )
)
_register(
    Scenario(
        name="etna",
        title="Etna — steady degassing",
        volcano=_ETNA,
        first_day="2021-07-01",
        n_days=5,
        pulses=(),
        wind=Wind(
            heights_km=(0.0, 2.0, 4.0, 8.0, 12.0),
            u_ms=(5.0, 7.0, 9.0, 14.0, 20.0),
            v_ms=(-1.0, -1.5, -2.0, -2.0, -1.0),
        ),
        degassing_kt_per_day=3.0,
        degassing_height_km=(3.3, 4.3),
        so2_lifetime_days=1.0,
        degassing_step_min=15.0,
        initial_sigma_km=2.0,
        cloud_seed=2023,
        caption="Etna degasses steadily, a few thousand tonnes of SO2 a day: the textbook case for flux.",
    )
)


_register(
    Scenario(
        name="lewotobi-2025",
        title="Lewotobi Laki-laki, Flores — July 2025",
        volcano=_LEWOTOBI,
        first_day="2025-07-07",
        n_days=3,
        # an explosive eruption in the late morning (local time, UTC+8) of 7 July 2025, then weaker explosions
        pulses=(
            Pulse("2025-07-07T03:05", 50, 8.0, 18.0, 25.0, ash_ratio=2.0),
            Pulse("2025-07-07T14:30", 30, 4.0, 9.0, 3.0, ash_ratio=1.5),
            Pulse("2025-07-08T06:00", 20, 3.0, 7.0, 1.0, ash_ratio=1.5),
        ),
        # dry-season easterlies below, weak westerlies in the upper troposphere (illustrative)
        wind=Wind(
            heights_km=(0.0, 3.0, 6.0, 10.0, 14.0, 18.0),
            u_ms=(-7.0, -8.0, -5.0, 2.0, 8.0, 4.0),
            v_ms=(1.5, 1.0, 0.5, -1.0, -2.0, -1.0),
        ),
        degassing_kt_per_day=1.0,
        degassing_height_km=(1.7, 3.0),
        so2_lifetime_days=4.0,
        cloud_seed=2025,
        region=(100.0, -25.0, 145.0, 5.0),
        caption="Lewotobi Laki-laki (Flores, Indonesia) erupted explosively on 7 July 2025, with an ash column "
        "reported to reach about 18 km. The plume here is a model: its masses and winds are illustrative.",
    )
)
_register(
    replace(
        SCENARIOS["lewotobi-2025"],
        name="lewotobi-2025-tiny",
        title="Lewotobi Laki-laki — 7 July 2025 (tiny test archive)",
        n_days=1,
        caption="The Lewotobi 2025 scenario, one day, for tests: the 2025 ring (GOES-18, GOES-19, Meteosat-12 FCI, "
        "Meteosat-9, Himawari-9).",
    )
)


def get_scenario(name: str) -> Scenario:
    """The scenario registered under ``name`` (:data:`SCENARIOS`: ``soufriere``, ``lewotobi-2025`` … and tiny ones)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known scenarios: {', '.join(sorted(SCENARIOS))}") from None
