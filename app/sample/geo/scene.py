"""What a geostationary imager sees, independent of its format: the scenario turned into radiometry.

:func:`simulate_channels` gives, for points of the Earth seen from a geostationary satellite at one time slot,
the brightness temperature (K) or reflectance (%) of each *generic* channel (see :mod:`app.data.geo_bands`), NaN
where a point is off the Earth disk. Every writer of GEO sample files (ABI netCDF, AHI HSD, SEVIRI) calls it on its
own grid, then packs the values into its format; :func:`cloud_top` gives the NWC SAF CTTH writer the same cloud
tops the infrared channels see.

The model (all numbers are module constants below)
--------------------------------------------------
*Atmosphere.* A zonal standard atmosphere: the near-surface air temperature falls with latitude,
``T0 = 257 + 45 cos²φ`` K (302 K at the equator, 280 K at 45°), and the temperature falls at the standard lapse
rate 6.5 K/km up to the tropopause temperature ``193 + 30 sin²φ`` K (193 K, 16.8 km in the tropics; 208 K, 11 km
at 45°), isothermal above up to 20 km, then +1 K/km. Pressure is hydrostatic (1013.25 hPa at sea level; the
exponent g/(R·Γ) = 5.2559 in the troposphere, an isothermal scale height above). Cloud-top temperature and
pressure come from this atmosphere at the scenario's cloud-top height (the CTTH product reports the same numbers).

*Surface.* Sea at ``max(T0, 271.35 K)``. Land at ``T0`` − 6.5 K/km × elevation + a diurnal cycle following local
solar time, ``A cos(2π (LST − 13.5 h) / 24)`` with A = 9 K (14 K over deserts), damped under thick cloud: land is
warmer than the sea by day and colder by night. Deserts are land in the subtropical belt (|φ| ≈ 23° ± 8°).
Surface emissivity makes land colder than its skin by 0.5 K in the windows, more at 8.7 µm and 3.9 µm over
deserts (quartz).

*Clear sky.* Water vapour (a moisture factor m from 0 at cold latitudes to 1 in the tropics, with a smooth
pattern of ±25 %) lowers each window by ``W_c · m · path`` K with W = 1.0 (10.35 µm), 1.8 (10.8), 2.2 (11.2),
3.8 (12.0–12.3), 3.0 (8.7), 1.5 (3.9); path grows with the viewing zenith angle (limb cooling). So the clear
tropical split window T(10.8) − T(12.0) is about +2 K. The water-vapour channels see the atmosphere at their
weighting-function peak (6.2 µm at 9.2 km, 6.9 at 7.5, 7.3 at 5.8 in moist air; lower in dry air, higher at the
limb): about 241, 252 and 263 K in the tropics. 9.6 µm (ozone) and 13.3 µm (CO2) are colder than the window by
28 % and 33 % of its excess over 215 K.

*Clouds* (:meth:`Scenario.clouds`: fraction f, top height, optical depth τ, phase). Infrared emissivity
``ε = 1 − exp(−τ/2)``; each infrared channel mixes radiances, ``(1 − fε) B(T_below) + fε B(T_top)``, so an opaque
overcast pixel shows the cloud-top temperature. Spectral signatures on top of that: ice makes T(10.8) − T(12.0)
positive, ``f (ε + 4 ε (1 − ε))`` K (+1 K for opaque ice, up to +1.6 K for semi-transparent cirrus, to which
the clear sky seen through it and the Planck non-linearity of the mixing add their own: +1 … +3 K over most
ice, +3 … +5 K for thin cirrus), and T(8.7) warmer than T(10.8) for thin cirrus; water clouds have a small
positive split window, T(8.7) below T(10.8), and at night a 3.9 µm colder than 10.8 µm (their lower emissivity:
fog). Reflectance of the cloudy part ``0.15 τ / (2 + 0.15 τ)`` (asymmetry 0.85), less at 1.6 and 2.25 µm where
water and more so ice absorb; the 1.38 µm channel sees only clouds above ~3–7 km.

*Volcanic ash* (:meth:`Scenario.ash_loading_g_m2` L in g m⁻², at the ash height). A grey absorber in the
infrared, ``ε = 1 − exp(−0.3 L)``, at the air temperature of its height; then the reverse absorption of silicate:
the split window T(10.8) − T(12.0) goes to ``−(0.5 + 2.5 (1 − e^(−L/2)))`` K — from −0.5 K for thin ash to −3 K
as the loading grows — blended with the background's own split window by the ash weight ``1 − e^(−L/0.1)``
(so it is < −0.5 K wherever L ≳ 0.3 g m⁻²). Silicate absorbs less at 8.7 µm than at 10.8 µm, so
T(10.8) − T(8.7) falls to −(0.5 … 1.5) K: the Ash RGB (R = 12.0 − 10.8, G = 10.8 − 8.7, B = 10.8) shows ash red to
pink. In the solar channels ash (optical depth 0.6 L) is brownish: it reflects less at 0.47 µm than in the near
infrared and absorbs a little.

*SO2* (:meth:`Scenario.so2_column_du`). Absorption at 7.3 µm, ``15 (1 − e^(−DU/100))`` K for a plume above 8 km
(less for lower plumes, none below 3 km), and at 8.7 µm, ``6 (1 − e^(−DU/150))`` K scaled by the thermal contrast
between the plume and what lies below: the SO2 RGB (6.9 − 7.3, 10.4 − 8.5) and the Ash RGB green (10.8 − 8.7) see it.

*Sun.* Solar zenith angle from :func:`pyorbital.astronomy.sun_zenith_angle`; reflectances are top-of-atmosphere
reflectance factors as the formats give them (satpy's "reflectance"): the sun-normalised reflectance times
cos(SZA), so they fall to zero across the terminator and stay 0 on the night side. Rayleigh scattering brightens
the blue and green over dark surfaces. At 3.9 µm a solar component ``ρ μ0 E / π`` (E = 9.7 W m⁻² µm⁻¹,
ρ ≈ 0.2 for water clouds, 0.05 for ice) adds to the thermal radiance by day.

The model is vectorised over points (chunks of 2¹⁸ points bound the memory the scenario's cloud fields take).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from app.data.geo_bands import C1_UM, C2_UM, FULL_DISK, GENERIC_CHANNELS, GeosProjection, geo_platform

__all__ = [
    "GeoGrid",
    "CloudTop",
    "simulate_channels",
    "cloud_top",
    "grid_cloud_top",
    "scan_angles_to_lonlat",
    "surface_air_temperature_k",
    "air_temperature_k",
    "air_pressure_hpa",
    "planck_wavelength",
    "inverse_planck_wavelength",
    "SIMULATED_CHANNELS",
]

# --------------------------------------------------------------------------------------------- constants

LAPSE_K_PER_KM = 6.5
HYDROSTATIC_EXPONENT = 5.2559  # g / (R_d Γ)
SEA_LEVEL_PRESSURE_HPA = 1013.25
R_DRY = 287.053
G0 = 9.80665
SEA_FREEZING_K = 271.35
#: The scenario's cloud fraction below which a point is clear.
CLOUDY_FRACTION = 0.05
#: Least spacing of the nodes on which grid writers evaluate the scenario's (smooth) cloud fields.
CLOUD_NODE_SPACING_KM = 32.0
#: ... except where the nodes are more than this many times further apart on the ground (towards the limb).
LIMB_STRETCH_LIMIT = 4.0
DIURNAL_AMPLITUDE_K = 9.0
DESERT_EXTRA_AMPLITUDE_K = 5.0
WARMEST_HOUR = 13.5
#: Cloud infrared absorption optical depth = visible optical depth / 2.
IR_TAU_RATIO = 0.5
#: Ash grey infrared absorption: m² g⁻¹ at 10.8 µm; visible extinction m² g⁻¹.
ASH_IR_ABSORPTION_M2_G = 0.3
ASH_VIS_EXTINCTION_M2_G = 0.6
#: Ash split window T(10.8) − T(12.0) = −(MIN + RANGE (1 − exp(−L / SCALE))), blended in by 1 − exp(−L / WEIGHT_SCALE).
ASH_BTD_MIN = 0.5
ASH_BTD_RANGE = 2.5
ASH_BTD_SCALE = 2.0
ASH_WEIGHT_SCALE = 0.1
#: Solar spectral irradiance at 3.9 µm (W m⁻² µm⁻¹ at 1 AU).
SOLAR_IRRADIANCE_39 = 9.7
#: Water-vapour window deficits (K, tropical, nadir) and surface-emissivity deficits over land (K: vegetated, desert).
WV_DEFICIT_K = {"ir_39": 1.5, "ir_87": 3.0, "ir_105": 1.0, "ir_108": 1.8, "ir_112": 2.2, "ir_120": 3.8}
LAND_EMISSIVITY_DEFICIT_K = {
    "ir_39": (1.5, 6.0), "ir_87": (1.0, 6.0), "ir_105": (0.5, 1.0), "ir_108": (0.5, 1.2),
    "ir_112": (0.5, 0.8), "ir_120": (0.5, 0.5),
}
SEA_EMISSIVITY_DEFICIT_K = {"ir_39": 0.8, "ir_87": 0.5, "ir_105": 0.3, "ir_108": 0.3, "ir_112": 0.3, "ir_120": 0.4}
#: Water-vapour channels: weighting-function peak (km) in moist air, how much lower in dry air.
WV_PEAK_KM = {"wv_62": 9.2, "wv_69": 7.5, "wv_73": 5.8}
WV_DRY_DROP_KM = 2.5
#: Solar channels: surface reflectance (sun-normalised) of sea, vegetated land, desert; Rayleigh path reflectance;
#: cloud reflectance factor for water and ice; ash spectral factor.
SOLAR = {
    #          sea     veg    desert  rayleigh  water  ice    ash
    "vis_04": (0.035, 0.045, 0.16, 0.080, 1.00, 1.00, 0.70),
    "vis_05": (0.030, 0.080, 0.22, 0.055, 1.00, 1.00, 0.80),
    "vis_06": (0.020, 0.060, 0.30, 0.025, 1.00, 1.00, 0.90),
    "hrv": (0.015, 0.180, 0.33, 0.012, 1.00, 1.00, 0.95),
    "nir_08": (0.010, 0.300, 0.36, 0.008, 1.00, 1.00, 1.00),
    "vis_09": (0.008, 0.270, 0.34, 0.006, 0.95, 0.95, 1.00),  # FCI 0.914 µm: water vapour absorbs a little
    "nir_13": (0.000, 0.000, 0.00, 0.000, 0.95, 0.95, 1.00),
    "nir_16": (0.005, 0.200, 0.45, 0.000, 0.80, 0.40, 1.00),
    "nir_22": (0.003, 0.100, 0.40, 0.000, 0.65, 0.30, 0.95),
}

#: Generic channels this model simulates.
SIMULATED_CHANNELS: tuple[str, ...] = tuple(GENERIC_CHANNELS)
_LW_WINDOWS = ("ir_87", "ir_105", "ir_108", "ir_112", "ir_120")
_CHUNK = 2**18


# --------------------------------------------------------------------------------------------- Planck


def planck_wavelength(t_k, wavelength_um: float) -> np.ndarray:
    """Planck radiance (W m⁻² sr⁻¹ µm⁻¹) at one wavelength (µm)."""
    t = np.asarray(t_k, dtype=float)
    with np.errstate(over="ignore", divide="ignore"):
        return C1_UM / (wavelength_um**5 * np.expm1(C2_UM / (wavelength_um * t)))


def inverse_planck_wavelength(radiance, wavelength_um: float) -> np.ndarray:
    """Brightness temperature (K) of a radiance (W m⁻² sr⁻¹ µm⁻¹) at one wavelength (µm)."""
    r = np.asarray(radiance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return C2_UM / (wavelength_um * np.log1p(C1_UM / (wavelength_um**5 * r)))


def _mix(t_a, t_b, weight_b, wavelength_um: float) -> np.ndarray:
    """Brightness temperature of (1 − w) B(t_a) + w B(t_b)."""
    r = (1 - weight_b) * planck_wavelength(t_a, wavelength_um) + weight_b * planck_wavelength(t_b, wavelength_um)
    return inverse_planck_wavelength(r, wavelength_um)


# --------------------------------------------------------------------------------------------- atmosphere


def surface_air_temperature_k(lat) -> np.ndarray:
    """Zonal near-surface air temperature (K): 302 K at the equator, 280 K at 45°, 257 K at the poles."""
    s = np.sin(np.deg2rad(np.asarray(lat, dtype=float)))
    return 302.0 - 45.0 * s * s


def _tropopause(lat) -> tuple[np.ndarray, np.ndarray]:
    s = np.sin(np.deg2rad(np.asarray(lat, dtype=float)))
    t_trop = 193.0 + 30.0 * s * s
    z_trop = (surface_air_temperature_k(lat) - t_trop) / LAPSE_K_PER_KM
    return t_trop, z_trop


def air_temperature_k(lat, height_km) -> np.ndarray:
    """Air temperature (K) of the zonal standard atmosphere at a height (km above sea level)."""
    z = np.asarray(height_km, dtype=float)
    t0 = surface_air_temperature_k(lat)
    t_trop, _ = _tropopause(lat)
    return np.maximum(t0 - LAPSE_K_PER_KM * z, t_trop) + np.clip(z - 20.0, 0.0, None)


def air_pressure_hpa(lat, height_km) -> np.ndarray:
    """Air pressure (hPa) of the zonal standard atmosphere at a height (km above sea level)."""
    z = np.asarray(height_km, dtype=float)
    t0 = surface_air_temperature_k(lat)
    t_trop, z_trop = _tropopause(lat)
    zt = np.minimum(z, z_trop)
    p_tropo = SEA_LEVEL_PRESSURE_HPA * ((t0 - LAPSE_K_PER_KM * zt) / t0) ** HYDROSTATIC_EXPONENT
    scale_km = R_DRY * t_trop / G0 / 1000.0
    return p_tropo * np.exp(-np.clip(z - z_trop, 0.0, None) / scale_km)


# --------------------------------------------------------------------------------------------- geometry


def scan_angles_to_lonlat(x_rad, y_rad, projection: GeosProjection) -> tuple[np.ndarray, np.ndarray]:
    """Geodetic latitude and longitude (degrees) seen at scan angles x, y (radians); NaN off the Earth disk.

    The inverse of PROJ's ``+proj=geos`` (ellipsoid, either sweep axis): projection coordinates in metres are the
    scan angles times the satellite height ``h``. Longitudes are wrapped to [-180, 180).
    """
    x = np.asarray(x_rad, dtype=float)
    y = np.asarray(y_rad, dtype=float)
    rg = 1.0 + projection.h / projection.a
    rp = projection.b / projection.a
    if projection.sweep == "x":
        vz = np.tan(y)
        vy = np.tan(x) * np.hypot(1.0, vz)
    else:
        vy = np.tan(x)
        vz = np.tan(y) * np.hypot(1.0, vy)
    aa = vy * vy + (vz / rp) ** 2 + 1.0
    det = rg * rg - aa * (rg * rg - 1.0)  # (b² − 4ac) / 4 with b = −2 rg
    with np.errstate(invalid="ignore"):
        k = (rg - np.sqrt(det)) / aa
    vx = rg - k
    lam = np.arctan2(vy * k, vx)
    lat = np.rad2deg(np.arctan(vz * k * np.cos(lam) / vx / (rp * rp)))
    lon = np.mod(projection.lon_0 + np.rad2deg(lam) + 180.0, 360.0) - 180.0
    off = ~(det >= 0)
    lat = np.where(off, np.nan, lat)
    lon = np.where(off, np.nan, lon)
    return lat, lon


@dataclass(frozen=True)
class GeoGrid:
    """A fixed grid of a geostationary imager: pixel-centre scan angles along rows and columns.

    Row 0 is the northernmost line, column 0 the westernmost. ``x0_rad``/``y0_rad`` are the scan angles of the
    first column/row centre, ``dx_rad`` (> 0) and ``dy_rad`` (< 0) the steps; projection coordinates in metres are
    the scan angles times ``projection.h`` (the convention of satpy's area extents).
    """

    platform: str
    n_rows: int
    n_cols: int
    x0_rad: float
    dx_rad: float
    y0_rad: float
    dy_rad: float
    resolution_km: float
    name: str = "FULL-DISK"

    @classmethod
    def full_disk(cls, platform: str, resolution_km: float | None = None) -> GeoGrid:
        """The full-disk grid of a platform's sensor, at its infrared resolution or coarser by a whole factor."""
        p = geo_platform(platform)
        fd = FULL_DISK[p.sensor]
        res = fd.resolution_km if resolution_km is None else float(resolution_km)
        factor = res / fd.resolution_km
        n = fd.n_pixels / factor
        if abs(n - round(n)) > 1e-9 or n < 2:
            raise ValueError(
                f"{res:g} km does not divide the {p.sensor.upper()} full disk ({fd.n_pixels} pixels of "
                f"{fd.resolution_km:g} km) into whole pixels"
            )
        n = int(round(n))
        step = fd.step_rad * factor
        x0 = -(n - 1) / 2 * step
        return cls(platform, n, n, x0, step, -x0, -step, res)

    @property
    def projection(self) -> GeosProjection:
        """The platform's geostationary projection."""
        return geo_platform(self.platform).projection

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.n_rows, self.n_cols

    @property
    def x_rad(self) -> np.ndarray:
        """Column-centre scan angles (radians, eastward)."""
        return self.x0_rad + self.dx_rad * np.arange(self.n_cols)

    @property
    def y_rad(self) -> np.ndarray:
        """Row-centre scan angles (radians, northward)."""
        return self.y0_rad + self.dy_rad * np.arange(self.n_rows)

    @property
    def x_m(self) -> np.ndarray:
        """Column-centre projection coordinates (m)."""
        return self.x_rad * self.projection.h

    @property
    def y_m(self) -> np.ndarray:
        """Row-centre projection coordinates (m)."""
        return self.y_rad * self.projection.h

    @property
    def area_extent_m(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of the pixel edges, metres (satpy's ``area_extent``)."""
        h = self.projection.h
        x = self.x_rad
        y = self.y_rad
        return (
            (x[0] - self.dx_rad / 2) * h,
            (y[-1] + self.dy_rad / 2) * h,
            (x[-1] + self.dx_rad / 2) * h,
            (y[0] - self.dy_rad / 2) * h,
        )

    def lonlat(self, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (degrees, NaN off the disk) of the pixel centres of some rows."""
        y = self.y_rad[rows if rows is not None else slice(None)]
        xx, yy = np.meshgrid(self.x_rad, y)
        return scan_angles_to_lonlat(xx, yy, self.projection)

    def subset(self, rows: slice, cols: slice, name: str | None = None) -> GeoGrid:
        """The grid of a rectangular region (a slice of rows and of columns, step 1)."""
        r = range(self.n_rows)[rows]
        c = range(self.n_cols)[cols]
        if r.step != 1 or c.step != 1 or len(r) == 0 or len(c) == 0:
            raise ValueError("a grid subset needs non-empty row and column slices with step 1")
        return GeoGrid(
            self.platform, len(r), len(c), self.x0_rad + c.start * self.dx_rad, self.dx_rad,
            self.y0_rad + r.start * self.dy_rad, self.dy_rad, self.resolution_km, name or self.name,
        )

    def row_blocks(self, max_pixels: int = 2_000_000) -> list[slice]:
        """Slices of rows holding at most ``max_pixels`` pixels each (for writing large grids piecewise)."""
        step = max(1, max_pixels // self.n_cols)
        return [slice(i, min(i + step, self.n_rows)) for i in range(0, self.n_rows, step)]


def _viewing_secant(lat, lon, sat_lon: float, sat_distance_km: float) -> np.ndarray:
    """1 / cos(viewing zenith angle) of a geostationary satellite (spherical Earth)."""
    la = np.deg2rad(lat)
    cos_g = np.cos(la) * np.cos(np.deg2rad(lon - sat_lon))
    sin_g = np.sqrt(np.clip(1 - cos_g * cos_g, 0, None))
    re = 6371.0
    # the zenith angle at the ground: between the local vertical and the line to the satellite
    vza = np.arctan2(sat_distance_km * sin_g, sat_distance_km * cos_g - re)
    return 1.0 / np.clip(np.cos(vza), 0.05, 1.0)


def _to_datetime(time) -> dt.datetime:
    return np.datetime64(time, "us").astype(dt.datetime)


# --------------------------------------------------------------------------------------------- cloud tops


@dataclass
class CloudTop:
    """Cloud tops as the infrared channels see them (arrays of the points' shape; NaN where clear)."""

    fraction: np.ndarray
    height_km: np.ndarray
    temperature_k: np.ndarray
    pressure_hpa: np.ndarray
    optical_depth: np.ndarray
    emissivity: np.ndarray  # infrared emissivity of the cloudy part (10.8 µm)
    is_ice: np.ndarray

    @property
    def cloudy(self) -> np.ndarray:
        """Points with cloud (fraction > 0)."""
        return self.fraction > 0

    @property
    def effective_cloudiness(self) -> np.ndarray:
        """Fraction × emissivity: what the CTTH product calls effective cloudiness."""
        return self.fraction * self.emissivity


def _cloud_top_from(lat, fraction, top_km, tau, ice_share) -> CloudTop:
    frac = np.where(fraction >= CLOUDY_FRACTION, fraction, 0.0)
    cloudy = frac > 0
    top = np.where(cloudy, top_km, np.nan)
    tau = np.where(cloudy, tau, 0.0)
    return CloudTop(
        fraction=frac,
        height_km=top,
        temperature_k=np.where(cloudy, air_temperature_k(lat, top), np.nan),
        pressure_hpa=np.where(cloudy, air_pressure_hpa(lat, top), np.nan),
        optical_depth=tau,
        emissivity=-np.expm1(-IR_TAU_RATIO * tau),
        is_ice=cloudy & (ice_share >= 0.5),
    )


def cloud_top(scenario, lat, lon, time) -> CloudTop:
    """The scenario's clouds with their top temperature and pressure from the zonal standard atmosphere.

    Points with a NaN latitude or longitude (off the Earth disk) are clear.
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    shape = np.broadcast_shapes(lat.shape, lon.shape)
    lat, lon = np.broadcast_to(lat, shape), np.broadcast_to(lon, shape)
    ok = np.isfinite(lat) & np.isfinite(lon)
    frac, top, tau, ice = np.zeros(shape), np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    if ok.any():
        c = scenario.clouds(lat[ok], lon[ok], np.datetime64(time))
        frac[ok] = np.nan_to_num(np.asarray(c.fraction, dtype=float))
        top[ok] = c.top_km
        tau[ok] = c.optical_depth
        ice[ok] = np.asarray(c.is_ice, float)
    return _cloud_top_from(lat, frac, top, tau, ice)


def _distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    la1, la2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dlon = np.deg2rad(lon2 - lon1)
    c = np.sin(la1) * np.sin(la2) + np.cos(la1) * np.cos(la2) * np.cos(dlon)
    return 6371.0 * np.arccos(np.clip(c, -1.0, 1.0))


def _nodes(n: int, k: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, k), n - 1])


def _bilinear_index(fine: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i = np.clip(np.searchsorted(nodes, fine, side="right") - 1, 0, nodes.size - 2)
    w = (fine - nodes[i]) / (nodes[i + 1] - nodes[i])
    return i, w


#: Cloud tops of the last few (scenario, grid, slot, rows) asked for in this process, so that an imager and the
#: CTTH product written for the same slot on the same grid compute them once (and share them exactly).
_CLOUD_MEMO: OrderedDict = OrderedDict()
_CLOUD_MEMO_SIZE = 4


def grid_cloud_top(scenario, grid: GeoGrid, time, rows: slice | None = None,
                   spacing_km: float = CLOUD_NODE_SPACING_KM) -> CloudTop:
    """Cloud tops on (some rows of) a grid, the scenario evaluated every ``spacing_km`` or so and interpolated.

    The result is remembered for the last few calls of the process (its arrays are read-only): a writer of the
    imager's files and one of the CTTH file of the same slot, on the same grid and row block, get the same object.

    The scenario's cloud fields vary over 400 km and more, so evaluating them on nodes a whole number of pixels
    and at least ``spacing_km`` apart (32 km on a 16 km grid, 48 km on a 24 km one) and interpolating
    bilinearly (fraction, fraction-weighted height and phase, optical depth) changes them by a few percent and
    saves most of the cost on fine grids. Pixels whose four nodes are not all on the disk, or are
    more than ``LIMB_STRETCH_LIMIT`` times further apart on the ground than at nadir (near the limb), are
    evaluated exactly. The nodes are fixed by the whole grid, so row blocks join seamlessly, and every
    writer on the same grid (imager and CTTH) gets the same clouds.
    """
    rows = slice(*(rows if rows is not None else slice(None)).indices(grid.n_rows))
    key = (id(scenario), getattr(scenario, "name", None), grid, str(np.datetime64(time, "s")), rows.start,
           rows.stop, float(spacing_km))
    hit = _CLOUD_MEMO.get(key)
    if hit is not None:
        _CLOUD_MEMO.move_to_end(key)
        return hit
    out = _grid_cloud_top(scenario, grid, time, rows, spacing_km)
    for value in vars(out).values():
        value.flags.writeable = False
    _CLOUD_MEMO[key] = out
    while len(_CLOUD_MEMO) > _CLOUD_MEMO_SIZE:
        _CLOUD_MEMO.popitem(last=False)
    return out


def _grid_cloud_top(scenario, grid: GeoGrid, time, rows: slice, spacing_km: float) -> CloudTop:
    lat, lon = grid.lonlat(rows)
    k = max(1, int(np.ceil(spacing_km / grid.resolution_km - 1e-6)))  # whole pixels, at least spacing_km apart
    if k == 1 or grid.n_rows < 3 or grid.n_cols < 3:
        return cloud_top(scenario, lat, lon, time)
    r_fine = np.arange(rows.start, rows.stop)
    r_all = _nodes(grid.n_rows, k)
    lo = max(np.searchsorted(r_all, rows.start, side="right") - 1, 0)
    hi = min(np.searchsorted(r_all, rows.stop - 1, side="right"), r_all.size - 1)
    r_nodes = r_all[lo : hi + 1]
    if r_nodes.size < 2:
        r_nodes = r_all[max(lo - 1, 0) : lo + 2]
    c_nodes = _nodes(grid.n_cols, k)
    yy, xx = np.meshgrid(grid.y_rad[r_nodes], grid.x_rad[c_nodes], indexing="ij")
    nlat, nlon = scan_angles_to_lonlat(xx, yy, grid.projection)
    node = cloud_top(scenario, nlat, nlon, time)
    ri, rw = _bilinear_index(r_fine, r_nodes)
    ci, cw = _bilinear_index(np.arange(grid.n_cols), c_nodes)
    rw, cw = rw[:, None], cw[None, :]
    ri, ci = ri[:, None], ci[None, :]

    def interp(v):
        return ((1 - rw) * (1 - cw) * v[ri, ci] + (1 - rw) * cw * v[ri, ci + 1]
                + rw * (1 - cw) * v[ri + 1, ci] + rw * cw * v[ri + 1, ci + 1])

    f = node.fraction
    # cells whose corners are off the disk, or stretched on the ground (towards the limb), are evaluated exactly
    diag = np.maximum(_distance_km(nlat[:-1, :-1], nlon[:-1, :-1], nlat[1:, 1:], nlon[1:, 1:]),
                      _distance_km(nlat[:-1, 1:], nlon[:-1, 1:], nlat[1:, :-1], nlon[1:, :-1]))
    coarse_ok = np.nan_to_num(diag, nan=np.inf) <= LIMB_STRETCH_LIMIT * np.sqrt(2.0) * spacing_km
    frac = interp(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        top = interp(f * np.nan_to_num(node.height_km)) / frac
        ice = interp(f * node.is_ice) / frac
    out = _cloud_top_from(lat, frac, np.nan_to_num(top), interp(node.optical_depth), np.nan_to_num(ice))
    exact = np.isfinite(lat) & ~coarse_ok[ri, ci]
    if exact.any():
        direct = cloud_top(scenario, lat[exact], lon[exact], time)
        for name in ("fraction", "height_km", "temperature_k", "pressure_hpa", "optical_depth", "emissivity",
                     "is_ice"):
            getattr(out, name)[exact] = getattr(direct, name)
    off = ~np.isfinite(lat)
    if off.any():
        for name in ("fraction", "optical_depth", "emissivity"):
            getattr(out, name)[off] = 0.0
        for name in ("height_km", "temperature_k", "pressure_hpa"):
            getattr(out, name)[off] = np.nan
        out.is_ice[off] = False
    return out


# --------------------------------------------------------------------------------------------- the scene


class _Scene:
    """Shared state of one chunk of points (1-D arrays, all on the Earth disk); channels computed lazily."""

    def __init__(self, scenario, lat, lon, time, sat_lon, sat_distance_km, clouds: CloudTop | None = None):
        self.sc = scenario
        if clouds is not None:
            self.clouds = clouds  # overrides the cached property
        self.lat = lat
        self.lon = lon
        self.time = np.datetime64(time, "ns")
        self.sat_lon = sat_lon
        self.sat_distance_km = sat_distance_km
        self.t = {}  # brightness temperatures computed so far

    # ---- geometry and sun
    @cached_property
    def mu0(self) -> np.ndarray:
        from pyorbital.astronomy import sun_zenith_angle

        sza = sun_zenith_angle(_to_datetime(self.time), self.lon, self.lat)
        return np.clip(np.cos(np.deg2rad(sza)), 0.0, 1.0)

    @cached_property
    def sec_vza(self) -> np.ndarray:
        return _viewing_secant(self.lat, self.lon, self.sat_lon, self.sat_distance_km)

    @cached_property
    def path(self) -> np.ndarray:
        """Relative slant path of the water-vapour absorption (1 at nadir, limb cooling)."""
        return np.minimum(1.0 + 0.5 * (self.sec_vza - 1.0), 2.5)

    @cached_property
    def local_solar_hour(self) -> np.ndarray:
        utc = (self.time - self.time.astype("datetime64[D]")) / np.timedelta64(1, "h")
        return np.mod(utc + self.lon / 15.0, 24.0)

    # ---- surface and humidity
    @cached_property
    def land(self) -> np.ndarray:
        return np.asarray(self.sc.surface_is_land(self.lat, self.lon), bool)

    @cached_property
    def desert(self) -> np.ndarray:
        belt = np.exp(-0.5 * ((np.abs(self.lat) - 23.0) / 8.0) ** 2)
        return np.where(self.land, 0.85 * belt, 0.0)

    @cached_property
    def t_air0(self) -> np.ndarray:
        return surface_air_temperature_k(self.lat)

    @cached_property
    def humidity(self) -> np.ndarray:
        """Moisture factor: 0 in cold dry air, ~1 in the moist tropics, with a smooth ±25 % pattern."""
        days = (self.time - np.datetime64("2000-01-01", "ns")) / np.timedelta64(1, "D")
        la, lo = np.deg2rad(self.lat), np.deg2rad(self.lon)
        q = (0.4 * np.sin(9 * lo + 6 * la + 0.9 * days) + 0.3 * np.sin(-13 * lo + 10 * la + 1.7 + 1.3 * days)
             + 0.2 * np.sin(17 * lo - 15 * la + 4.1 + 0.7 * days) + 0.1 * np.sin(23 * lo + 21 * la + 2.9))
        m = np.clip((self.t_air0 - 255.0) / 45.0, 0.0, 1.0) * (1.0 - 0.5 * self.desert)
        return np.clip(m * (1.0 + 0.25 * q), 0.0, 1.2)

    @cached_property
    def t_skin(self) -> np.ndarray:
        sea = np.maximum(self.t_air0, SEA_FREEZING_K)
        elev = np.asarray(self.sc.surface_elevation_km(self.lat, self.lon), float)
        amp = DIURNAL_AMPLITUDE_K + DESERT_EXTRA_AMPLITUDE_K * self.desert / 0.85
        amp = amp * (1.0 - 0.7 * self.clouds.fraction * self.clouds.emissivity)
        diurnal = amp * np.cos(2 * np.pi * (self.local_solar_hour - WARMEST_HOUR) / 24.0)
        land = self.t_air0 - LAPSE_K_PER_KM * elev + diurnal
        return np.where(self.land, land, sea)

    # ---- clouds, ash, SO2
    @cached_property
    def clouds(self) -> CloudTop:
        return cloud_top(self.sc, self.lat, self.lon, self.time)

    @cached_property
    def _plume(self) -> dict[str, np.ndarray] | None:
        """SO2 column (DU) and height, ash loading (g m⁻²) and height, in one pass over the scenario's puffs.

        The same sums as ``Scenario.so2_column_du``, ``so2_layer_height_km``, ``ash_loading_g_m2`` and
        ``ash_height_km`` (bit for bit), which would each go over the puffs again. None for a scenario without
        puffs (any object with those four methods is a scenario here).
        """
        sc = self.sc
        if not all(hasattr(sc, name) for name in ("_weights", "_flat", "puffs")):
            return None
        from app.sample.scenario import KG_PER_KM2_PER_DU

        _, la, lo, t, pv = sc._flat(self.lat, self.lon, self.time)
        so2, so2_h, ash, ash_h = (np.zeros(la.size) for _ in range(4))
        p = sc.puffs
        for ii, sel, g, decay, ash_decay, _ in sc._weights(la, lo, t, pv):
            w = g * (p["m"][sel] * decay)
            so2[ii] = w.sum(axis=1)
            so2_h[ii] = (w * p["h"][sel]).sum(axis=1)
            w = g * (p["ash"][sel] * ash_decay)
            ash[ii] = w.sum(axis=1)
            ash_h[ii] = (w * p["h"][sel]).sum(axis=1)
        du = so2 / KG_PER_KM2_PER_DU
        load = ash / 1000.0  # kg km-2 -> g m-2
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"du": du, "so2_height": np.where(du > 0.05, so2_h / so2, np.nan), "load": load,
                    "ash_height": np.where(load > 1e-3, ash_h / ash, np.nan)}

    @cached_property
    def ash(self) -> dict[str, np.ndarray]:
        plume = self._plume
        if plume is not None:
            load = np.clip(np.nan_to_num(plume["load"]), 0.0, None)
            height = np.where(load > 1e-3, np.nan_to_num(plume["ash_height"], nan=10.0), 10.0)
        else:
            load = np.nan_to_num(np.asarray(self.sc.ash_loading_g_m2(self.lat, self.lon, self.time), float))
            load = np.clip(load, 0.0, None)
            height_fn = getattr(self.sc, "ash_height_km", self.sc.so2_layer_height_km)
            height = np.full(load.shape, 10.0)
            some = load > 1e-3
            if some.any():
                h = np.asarray(height_fn(self.lat[some], self.lon[some], self.time), float)
                height[some] = np.where(np.isfinite(h), h, 10.0)
        return {
            "load": load,
            "height": height,
            "t": air_temperature_k(self.lat, height),
            "eps": -np.expm1(-ASH_IR_ABSORPTION_M2_G * load),
            "weight": -np.expm1(-load / ASH_WEIGHT_SCALE),
            "btd_scale": -np.expm1(-load / ASH_BTD_SCALE),
            "tau_vis": ASH_VIS_EXTINCTION_M2_G * load,
        }

    @cached_property
    def so2(self) -> dict[str, np.ndarray]:
        plume = self._plume
        if plume is not None:
            du = np.clip(np.nan_to_num(plume["du"]), 0, None)
            return {"du": du, "height": np.where(du > 0.05, plume["so2_height"], np.nan)}
        du = np.clip(np.nan_to_num(np.asarray(self.sc.so2_column_du(self.lat, self.lon, self.time), float)), 0, None)
        height = np.full(du.shape, np.nan)
        some = du > 0.05
        if some.any():
            height[some] = self.sc.so2_layer_height_km(self.lat[some], self.lon[some], self.time)
        return {"du": du, "height": height}

    # ---- infrared
    def _window_mixed(self, name: str) -> np.ndarray:
        """A longwave window channel: clear sky, clouds and the grey ash layer mixed in radiance."""
        lam = GENERIC_CHANNELS[name].wavelength_um
        c = self.clouds
        veg, des = LAND_EMISSIVITY_DEFICIT_K[name]
        surf = np.where(self.land, veg + (des - veg) * self.desert / 0.85, SEA_EMISSIVITY_DEFICIT_K[name])
        wv = WV_DEFICIT_K[name] * self.humidity * self.path
        t_clear = self.t_skin - surf - wv
        top = np.nan_to_num(c.height_km)
        t_top = np.where(c.cloudy, c.temperature_k - wv * np.exp(-top / 2.0), t_clear)
        t = _mix(t_clear, t_top, c.fraction * c.emissivity, lam)
        a = self.ash
        return np.where(a["eps"] > 0, _mix(t, a["t"], a["eps"], lam), t)

    def _windows(self) -> None:
        """All longwave windows, with the spectral signatures of ice, water, ash and SO2 (relative to 10.8 µm)."""
        if "ir_108" in self.t:
            return
        t = {name: self._window_mixed(name) for name in _LW_WINDOWS}
        c = self.clouds
        f, e = c.fraction, c.emissivity
        semi = e + 4.0 * e * (1.0 - e)  # 1 for opaque, ~1.6 at ε≈0.6
        ice = np.where(c.is_ice, f, 0.0)
        water = np.where(c.cloudy & ~c.is_ice, f, 0.0)
        t["ir_120"] = t["ir_120"] - ice * semi - water * 0.4 * e
        t["ir_112"] = t["ir_112"] - 0.3 * ice * semi - 0.1 * water * e
        t["ir_105"] = t["ir_105"] + 0.2 * ice * semi
        t["ir_87"] = t["ir_87"] + ice * (0.5 * e + 10.0 * e * (1.0 - e)) - water * 1.5 * e
        # volcanic ash: blend each channel's difference with 10.8 µm towards the silicate signature
        a = self.ash
        w, s = a["weight"], a["btd_scale"]
        target = {  # T(10.8) − T(c) over ash
            "ir_120": -(ASH_BTD_MIN + ASH_BTD_RANGE * s),
            "ir_112": -(0.3 + 1.0 * s),
            "ir_105": 0.1 + 0.4 * s,
            "ir_87": -(0.5 + 1.0 * s),
        }
        ref = t["ir_108"]
        for name, btd in target.items():
            t[name] = np.where(w > 0, ref - ((1 - w) * (ref - t[name]) + w * btd), t[name])
        # SO2 absorbs at 8.7 µm, in proportion to the thermal contrast with what lies below the plume
        so2 = self.so2
        if np.any(so2["du"] > 0.05):
            t_plume = air_temperature_k(self.lat, np.nan_to_num(so2["height"], nan=5.0))
            contrast = np.clip((t["ir_87"] - t_plume) / 40.0, 0.1, 1.0)
            t["ir_87"] = t["ir_87"] - 6.0 * -np.expm1(-so2["du"] / 150.0) * contrast
        self.t.update(t)

    def _water_vapour(self, name: str) -> np.ndarray:
        lam = GENERIC_CHANNELS[name].wavelength_um
        m = np.clip(self.humidity, 0.0, 1.0)
        z_peak = WV_PEAK_KM[name] - WV_DRY_DROP_KM * (1.0 - m) + 1.2 * np.log(self.sec_vza)
        z_peak = z_peak + 0.8 * (self.humidity - m)  # supersaturated pattern: a little higher still
        t_clear = air_temperature_k(self.lat, z_peak)
        c = self.clouds
        top = np.nan_to_num(c.height_km)
        seen = c.fraction * c.emissivity * np.clip((top - z_peak + 2.0) / 2.5, 0.0, 1.0)
        t = _mix(t_clear, np.minimum(np.nan_to_num(c.temperature_k, nan=300.0), t_clear), seen, lam)
        a = self.ash
        ash_seen = a["eps"] * np.clip((a["height"] - z_peak + 2.0) / 2.5, 0.0, 1.0)
        t = np.where(ash_seen > 0, _mix(t, np.minimum(a["t"], t), ash_seen, lam), t)
        if name == "wv_73":
            so2 = self.so2
            if np.any(so2["du"] > 0.05):
                high = np.clip((np.nan_to_num(so2["height"]) - 3.0) / 5.0, 0.0, 1.0)
                t = t - 15.0 * -np.expm1(-so2["du"] / 100.0) * high
        return t

    def _ir_39(self) -> np.ndarray:
        lam = GENERIC_CHANNELS["ir_39"].wavelength_um
        c = self.clouds
        veg, des = LAND_EMISSIVITY_DEFICIT_K["ir_39"]
        surf = np.where(self.land, veg + (des - veg) * self.desert / 0.85, SEA_EMISSIVITY_DEFICIT_K["ir_39"])
        wv = WV_DEFICIT_K["ir_39"] * self.humidity * self.path
        t_clear = self.t_skin - surf - wv
        # water clouds emit less at 3.9 µm than at 10.8 µm (night-time fog is colder at 3.9 µm)
        t_top = np.where(c.cloudy, c.temperature_k - np.where(c.is_ice, 0.5, 2.5), t_clear)
        t = _mix(t_clear, t_top, c.fraction * c.emissivity, lam)
        a = self.ash
        eps_a = -np.expm1(-0.5 * ASH_IR_ABSORPTION_M2_G * a["load"])
        t = np.where(eps_a > 0, _mix(t, a["t"], eps_a, lam), t)
        # reflected sunlight
        rho_s = np.where(self.land, 0.06 + 0.15 * self.desert, 0.02)
        rho_c = np.where(c.is_ice, 0.05, 0.20) * -np.expm1(-c.optical_depth / np.where(c.is_ice, 3.0, 5.0))
        rho = c.fraction * rho_c + (1 - c.fraction * c.emissivity) * rho_s
        rho = rho * (1 - eps_a) + 0.05 * eps_a
        solar = rho * self.mu0 * SOLAR_IRRADIANCE_39 / np.pi
        return inverse_planck_wavelength(planck_wavelength(t, lam) + solar, lam)

    def brightness_temperature(self, name: str) -> np.ndarray:
        if name not in self.t:
            if name in _LW_WINDOWS:
                self._windows()
            elif name in WV_PEAK_KM:
                self.t[name] = self._water_vapour(name)
            elif name == "ir_39":
                self.t[name] = self._ir_39()
            elif name in ("ir_96", "ir_133"):
                self._windows()
                ref = self.t["ir_108"]
                frac = 0.28 if name == "ir_96" else 0.33
                self.t[name] = ref - frac * np.clip(ref - 215.0, 0.0, None)
        return self.t[name]

    # ---- solar
    def reflectance(self, name: str) -> np.ndarray:
        """Top-of-atmosphere reflectance factor (%), cos(SZA) included, 0 on the night side."""
        sea, veg, des, ray, k_water, k_ice, k_ash = SOLAR[name]
        c = self.clouds
        rho_s = np.where(self.land, veg + (des - veg) * self.desert / 0.85, sea)
        if name == "nir_13":  # water vapour hides the surface, except in very dry air
            rho_s = np.where(self.land, 0.3, 0.01) * 0.1 * np.clip(1 - self.humidity, 0, 1)
        tau = c.optical_depth
        rho_c = 0.15 * tau / (2.0 + 0.15 * tau) * np.where(c.is_ice, k_ice, k_water)
        if name == "nir_13":
            rho_c = rho_c * np.clip((np.nan_to_num(c.height_km) - 3.0) / 4.0, 0.0, 1.0)
        with_cloud = rho_c + (1 - rho_c) ** 2 * rho_s / (1 - rho_c * rho_s)
        rho = c.fraction * with_cloud + (1 - c.fraction) * rho_s
        if ray > 0:
            above = 1 - c.fraction * (1 - np.nan_to_num(c.pressure_hpa, nan=1013.25) / 1013.25)
            rho = rho + ray * np.sqrt(np.minimum(self.sec_vza, 4.0)) * above
        a = self.ash
        if np.any(a["tau_vis"] > 0):
            ta = a["tau_vis"]
            rho_a = k_ash * 0.3 * ta / (2.0 + 0.3 * ta)
            trans = (1 - rho_a) * np.exp(-0.1 * ta)
            rho = rho_a + trans * trans * rho / (1 - rho_a * rho)
        return 100.0 * self.mu0 * rho


def _check_channels(channels: Iterable[str]) -> list[str]:
    names = [channels] if isinstance(channels, str) else list(channels)
    unknown = [c for c in names if c not in GENERIC_CHANNELS]
    if unknown:
        raise ValueError(f"unknown generic channel {', '.join(map(repr, unknown))}; the scene model simulates "
                         f"{', '.join(SIMULATED_CHANNELS)}")
    return names


def simulate_channels(
    scenario, lat, lon, time, sat_lon: float, channels: Iterable[str], *, sat_height_m: float = 35786023.0,
    cloud_tops: CloudTop | None = None,
) -> dict[str, np.ndarray]:
    """Brightness temperature (K) or reflectance (%) of generic channels at points seen by a GEO imager.

    ``lat``/``lon`` (degrees, any shape; NaN marks points off the Earth disk), ``time`` the slot's time
    (``numpy.datetime64``), ``sat_lon`` the satellite's sub-satellite longitude. Returns a dict of float32 arrays
    of the points' shape, NaN off the disk. See the module docstring for the physics.

    ``cloud_tops`` (of the points' shape, e.g. from :func:`grid_cloud_top`) replaces the scenario's clouds at
    the points: writers on regular grids pass them to share the clouds with the CTTH product and to save time.
    """
    names = _check_channels(channels)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    shape = np.broadcast_shapes(lat.shape, lon.shape)
    lat = np.broadcast_to(lat, shape).ravel()
    lon = np.broadcast_to(lon, shape).ravel()
    out = {name: np.full(lat.size, np.nan, dtype=np.float32) for name in names}
    flat_clouds = None
    if cloud_tops is not None:
        flat_clouds = {k: np.broadcast_to(np.asarray(v), shape).ravel() for k, v in vars(cloud_tops).items()}
    idx = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    sat_distance_km = (sat_height_m + 6378137.0) / 1000.0
    for start in range(0, idx.size, _CHUNK):
        ii = idx[start : start + _CHUNK]
        clouds = None if flat_clouds is None else CloudTop(**{k: v[ii] for k, v in flat_clouds.items()})
        scene = _Scene(scenario, lat[ii], lon[ii], time, sat_lon, sat_distance_km, clouds)
        for name in names:
            if GENERIC_CHANNELS[name].is_solar:
                out[name][ii] = scene.reflectance(name)
            else:
                out[name][ii] = scene.brightness_temperature(name)
    return {name: values.reshape(shape) for name, values in out.items()}
