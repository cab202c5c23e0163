"""SO2 flux by the disk method (Grandin et al., 2024, JGR Solid Earth 129, e2024JB029309).

A steady point source of flux ṁ (kg s⁻¹) in a uniform wind u (m s⁻¹), with crosswind diffusion D_y (m² s⁻¹)
and first-order loss k (s⁻¹), gives the column (kg m⁻², x downwind, y crosswind, m)

    D(x, y) = (ṁ/u) / √(4π D_y x/u) · exp(−u y² / (4 D_y x)) · exp(−k x/u)      for x > 0, 0 upwind,

whose mass within a distance r of the source is M(r) = (ṁ/k)(1 − e^(−k r/u)) ≈ (ṁ/u) r for k r/u ≪ 1. Noise in
real columns, once low columns are truncated, adds a mass that grows with the disk's area, so the masses
within radii r are fitted by least squares with

    M(r) = a·r + b·r²,     r in m, M in kg,

where a = ṁ/u is the proto-flux (kg m⁻¹) and b the noise term (kg m⁻²). The flux is ṁ = a·u (kg s⁻¹), reported
in t/day (× 86.4).

The loss makes the true curve bend down (M = a r − a k r²/(2u) + a k² r³/(6u²) − …): the quadratic part goes
into b (negative), and the cubic part, projected by least squares onto r and r², biases a low. For the SCIENCE.md
radii 25 … 500 km the relative bias of a is about −0.027 (k r_max/u)² with the default cumulative error model
(−0.066 (k r_max/u)² with the independent one): with u = 8 m/s and an SO2 e-folding time 1/k of 1 day, 2 days
and 5 days, −1.2 %, −0.3 % and −0.06 % (independent: −2.7 %, −0.8 %, −0.13 %).

Truncation has a cost too: pixels well inside the plume gain nothing from it, so the plume displaces part of the
noise term, which reads as a slightly smaller a. With 0.5 DU of noise truncated at 0 DU the flux of a 2 kt/day
plume comes back about 2 % low (tests/test_science_flux.py), within its 1-sigma uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from app.data.errors import UserInputError
from app.science.units import KG_PER_TONNE, kg_s_to_t_day

#: Columns of the table returned by :func:`flux_from_mass_table`, in order.
FLUX_COLUMNS = (
    "orbit",
    "time",
    "a_kg_m",
    "a_err_kg_m",
    "b_kg_m2",
    "b_err_kg_m2",
    "wind_ms",
    "flux_t_day",
    "flux_err_t_day",
    "n_radii",
    "r2",
    "reason",
)

#: Fewest radii a fit accepts: two parameters and at least one degree of freedom.
MIN_RADII = 3

#: How the errors of the masses at different radii relate (see :func:`fit_disk_method`).
ERROR_MODELS = ("cumulative", "independent")


@dataclass(frozen=True)
class DiskMethodFit:
    """The least-squares fit M(r) = a·r + b·r² of the disk method, in SI units.

    Attributes
    ----------
    a_kg_m, a_err_kg_m : float
        Proto-flux a = ṁ/u (kg m⁻¹) and its 1-sigma uncertainty.
    b_kg_m2, b_err_kg_m2 : float
        Noise term b (kg m⁻²) and its 1-sigma uncertainty.
    cov_ab : float
        Covariance of a and b (kg² m⁻³).
    n_radii : int
        Radii used (finite positive radius, finite mass and sigma).
    r2 : float
        Coefficient of determination of the masses, 1 − Σ(M − M̂)² / Σ(M − M̄)².
    chi2_reduced : float
        χ²/(n − 2) of the weighted fit when sigmas are given (≈ 1 when they are right); NaN without sigmas.
    error_model : str
        ``"cumulative"`` or ``"independent"`` (see :func:`fit_disk_method`).
    weighted : bool
        True when the fit used the masses' uncertainties as absolute; False when the covariance was scaled by
        the residual variance.

    """

    a_kg_m: float
    a_err_kg_m: float
    b_kg_m2: float
    b_err_kg_m2: float
    cov_ab: float
    n_radii: int
    r2: float
    chi2_reduced: float
    error_model: str
    weighted: bool

    def mass_t(self, radii_km: ArrayLike) -> np.ndarray:
        """Return the fitted mass (tonnes) within the given radii (km)."""
        r_m = np.asarray(radii_km, dtype=float) * 1e3
        return (self.a_kg_m * r_m + self.b_kg_m2 * r_m**2) / KG_PER_TONNE

    def flux_t_per_day(self, wind_ms: float, wind_err_ms: float | None = None) -> tuple[float, float]:
        """Return the flux ṁ = a·u and its uncertainty, t/day (see :func:`flux_t_per_day`)."""
        return flux_t_per_day(self.a_kg_m, self.a_err_kg_m, wind_ms, wind_err_ms)


def _usable_points(
    radii_km: ArrayLike, masses_t: ArrayLike, sigma_t: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return radii (m), masses (kg) and sigmas (kg, ones without sigma) of the usable points, by radius."""
    r = np.atleast_1d(np.asarray(radii_km, dtype=float)) * 1e3
    m = np.atleast_1d(np.asarray(masses_t, dtype=float)) * KG_PER_TONNE
    s = np.ones_like(m) if sigma_t is None else np.atleast_1d(np.asarray(sigma_t, dtype=float)) * KG_PER_TONNE
    if not (r.ndim == 1 and r.shape == m.shape and s.shape in (m.shape, (1,))):
        raise ValueError(f"radii {r.shape}, masses {m.shape} and sigmas {s.shape} must have the same length")
    s = np.broadcast_to(s, m.shape)
    use = np.isfinite(r) & (r > 0) & np.isfinite(m) & np.isfinite(s) & (s > 0)
    order = np.argsort(r[use], kind="stable")
    r, m, s = r[use][order], m[use][order], s[use][order]
    if r.size < MIN_RADII:
        raise ValueError(f"the disk method needs at least {MIN_RADII} radii with a finite mass; got {r.size}")
    if np.any(np.diff(r) == 0):
        raise ValueError(f"the radii must be distinct; got {np.sort(np.asarray(radii_km, dtype=float))}")
    return r, m, s


def _design(
    r: np.ndarray, m: np.ndarray, s: np.ndarray, weighted: bool, error_model: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the regressors (scaled r, r²), the data and the error variances the least squares works on."""
    scale = r.max()  # regressors scaled to O(1) keep the normal equations well conditioned
    x = np.column_stack([r / scale, (r / scale) ** 2])
    if error_model == "independent":
        return x, m, s**2
    # Nested disks: M(r_i) = M(r_i-1) + the annulus between them, and only the annuli are independent. Their
    # variance is the growth of the variance of M: σ_i² − σ_i-1², or (without sigmas) the annulus area.
    variance = s**2 if weighted else (r / scale) ** 2
    increments = np.diff(variance, prepend=0.0)
    if np.any(increments <= 0):
        raise ValueError(
            "with error_model='cumulative' the mass uncertainties must grow with the radius; got "
            f"{np.round(s / KG_PER_TONNE, 6).tolist()} t"
        )
    return np.diff(x, axis=0, prepend=0.0), np.diff(m, prepend=0.0), increments


def fit_disk_method(
    radii_km: ArrayLike,
    masses_t: ArrayLike,
    sigma_t: ArrayLike | None = None,
    error_model: str = "cumulative",
) -> DiskMethodFit:
    """Fit M(r) = a·r + b·r² to masses within radii (no intercept: a disk of radius 0 holds nothing).

    Parameters
    ----------
    radii_km : array
        Disk radii, km (converted to m); distinct.
    masses_t : array
        SO2 mass within each radius, tonnes (converted to kg). Non-finite masses are skipped.
    sigma_t : array, optional
        1-sigma uncertainty of each mass, tonnes. Given, the fit is weighted and the covariance of (a, b) takes
        the σ as absolute, (XᵀC⁻¹X)⁻¹. Not given, the errors are known only up to a factor, which the residual
        variance RSS/(n − 2) sets.
    error_model : {"cumulative", "independent"}
        ``"cumulative"`` (default): the masses are sums over nested disks, so the mass within r_j repeats every
        pixel of the disks inside it and their errors are correlated, Cov(M_i, M_j) = Var(M(min(r_i, r_j))).
        The fit is generalised least squares, done exactly as a weighted fit of the increments between
        successive radii (the annuli), which are independent. Without sigmas the variance of an annulus is
        taken proportional to its area (uniform pixel noise). ``"independent"``: ordinary (or, with sigmas,
        weighted) least squares on the masses as if each had its own independent error, the plain fit of the
        published figure. With nested disks it gives too small uncertainties (by a factor of 2-3 in
        tests/test_science_flux.py) and a noisier estimate.

    Raises
    ------
    ValueError
        If fewer than 3 usable radii remain, radii repeat, the arrays do not match, or (cumulative) the sigmas
        do not grow with the radius.

    """
    if error_model not in ERROR_MODELS:
        raise ValueError(f"unknown error_model {error_model!r}; use one of {', '.join(ERROR_MODELS)}")
    weighted = sigma_t is not None
    r, m, s = _usable_points(radii_km, masses_t, sigma_t)
    n = int(r.size)
    x, y, variance = _design(r, m, s, weighted, error_model)
    sd = np.sqrt(variance)
    xw, yw = x / sd[:, None], y / sd
    coef, *_ = np.linalg.lstsq(xw, yw, rcond=None)
    cov = np.linalg.pinv(xw.T @ xw)
    chi2_reduced = float(np.sum((yw - xw @ coef) ** 2)) / (n - 2)
    if not weighted:
        cov = cov * chi2_reduced
    unscale = np.array([1.0 / r.max(), 1.0 / r.max() ** 2])
    coef = coef * unscale
    cov = cov * np.outer(unscale, unscale)
    fitted = coef[0] * r + coef[1] * r**2
    tss = float(np.sum((m - m.mean()) ** 2))
    return DiskMethodFit(
        a_kg_m=float(coef[0]),
        a_err_kg_m=float(np.sqrt(cov[0, 0])),
        b_kg_m2=float(coef[1]),
        b_err_kg_m2=float(np.sqrt(cov[1, 1])),
        cov_ab=float(cov[0, 1]),
        n_radii=n,
        r2=1.0 - float(np.sum((m - fitted) ** 2)) / tss if tss > 0 else float("nan"),
        chi2_reduced=chi2_reduced if weighted else float("nan"),
        error_model=error_model,
        weighted=weighted,
    )


def flux_t_per_day(
    a_kg_m: ArrayLike, a_err_kg_m: ArrayLike, wind_ms: ArrayLike, wind_err_ms: ArrayLike | None = None
) -> tuple[Any, Any]:
    """Flux ṁ = a·u in t/day and its 1-sigma uncertainty, from the proto-flux a (kg m⁻¹) and wind u (m s⁻¹).

    σ_ṁ = √((u σ_a)² + (a σ_u)²) (independent errors, first order), × 86.4 from kg/s to t/day. Broadcasts over
    arrays; scalars in give floats out.
    """
    a = np.asarray(a_kg_m, dtype=float)
    a_err = np.asarray(a_err_kg_m, dtype=float)
    u = np.asarray(wind_ms, dtype=float)
    u_err = np.zeros_like(u) if wind_err_ms is None else np.asarray(wind_err_ms, dtype=float)
    flux = kg_s_to_t_day(a * u)
    err = kg_s_to_t_day(np.hypot(u * a_err, a * u_err))
    if flux.ndim == 0:
        return float(flux), float(err)
    return flux, err


def analytic_plume_column(
    x_m: ArrayLike,
    y_m: ArrayLike,
    mdot_kg_s: float,
    u_ms: float,
    Dy_m2_s: float,  # noqa: N803 - the symbol D_y of SCIENCE.md
    k_per_s: float = 0.0,
) -> np.ndarray:
    """Column (kg m⁻²) at (x downwind, y crosswind) metres of a steady point source, SCIENCE.md's formula.

    D = (ṁ/u) / √(4π D_y x/u) · exp(−u y² / (4 D_y x)) · exp(−k x/u) for x > 0 and 0 for x ≤ 0 (upwind). Each
    crosswind section carries (ṁ/u) e^(−k x/u) kg per metre downwind. This is the column at a point: a pixel
    sees its average over the footprint, which differs greatly near the source, where the plume is narrow.
    """
    x, y = np.broadcast_arrays(np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float))
    out = np.zeros(x.shape)
    down = x > 0
    t = x[down] / u_ms  # travel time, s
    out[down] = (
        (mdot_kg_s / u_ms)
        / np.sqrt(4.0 * np.pi * Dy_m2_s * t)
        * np.exp(-(y[down] ** 2) / (4.0 * Dy_m2_s * t))
        * np.exp(-k_per_s * t)
    )
    return out


def analytic_mass_within_radius(r_m: ArrayLike, mdot_kg_s: float, u_ms: float, k_per_s: float = 0.0) -> np.ndarray:
    """Mass (kg) of the analytic plume within r (m) of the source: (ṁ/k)(1 − e^(−k r/u)), or ṁ r/u if k = 0.

    The integral of the crosswind sections out to r downwind; a disk of radius r holds this to within the
    sliver of plume wider than the disk near its rim (negligible while the plume width √(2 D_y r/u) ≪ r).
    """
    r = np.clip(np.asarray(r_m, dtype=float), 0.0, None)
    if k_per_s == 0:
        return mdot_kg_s * r / u_ms
    return -(mdot_kg_s / k_per_s) * np.expm1(-k_per_s * r / u_ms)


# --- the flux time series from a table of masses ----------------------------------------------------------

WindInput = float | Mapping[Any, float] | pd.Series | Callable[[pd.Timestamp], float]


def _wind_at(wind: WindInput | None, orbit: Any, time: pd.Timestamp) -> float:
    """Return the wind (m/s) for one orbit.

    ``wind`` is a number, a mapping/Series by orbit, a Series by time (interpolated linearly), or a callable.

    NaN when the wind is not known for that orbit or time.
    """
    if wind is None:
        return 0.0
    if isinstance(wind, pd.Series) and isinstance(wind.index, pd.DatetimeIndex):
        series = wind.dropna().sort_index()
        if pd.isna(time) or series.empty or not series.index[0] <= time <= series.index[-1]:
            return float("nan")
        t = series.index.as_unit("ns").asi8.astype(float)  # the index may be in s, ms or us (pandas >= 2)
        return float(np.interp(float(pd.Timestamp(time).as_unit("ns").value), t, series.to_numpy(dtype=float)))
    if isinstance(wind, pd.Series | Mapping):
        value = wind.get(orbit, float("nan")) if not pd.isna(orbit) else float("nan")
        return float(value)
    if callable(wind):
        return float(wind(time))
    return float(wind)


def _fit_one_orbit(
    group: pd.DataFrame,
    wind_ms: float,
    wind_err_ms: float,
    min_coverage: float,
    sigma_column: str | None,
    error_model: str,
) -> dict[str, Any]:
    """Fit one orbit's masses (already restricted to the radii to consider) into a row of the flux table."""
    nan = float("nan")
    row: dict[str, Any] = {name: nan for name in FLUX_COLUMNS[2:]}
    row.update(wind_ms=wind_ms, n_radii=0, reason="")
    usable = group[(group["coverage"] >= min_coverage) & np.isfinite(group["mass_t"])]
    row["n_radii"] = len(usable)
    if len(usable) < MIN_RADII:
        row["reason"] = f"only {len(usable)} radii with coverage >= {min_coverage:g} and a mass (need {MIN_RADII})"
        return row
    sigma = usable[sigma_column].to_numpy(dtype=float) if sigma_column else None
    try:
        fit = fit_disk_method(
            usable["radius_km"].to_numpy(dtype=float), usable["mass_t"].to_numpy(dtype=float), sigma, error_model
        )
    except ValueError as exc:  # repeated radii, sigmas that do not grow: the row says why
        row["reason"] = str(exc)
        return row
    row.update(
        a_kg_m=fit.a_kg_m,
        a_err_kg_m=fit.a_err_kg_m,
        b_kg_m2=fit.b_kg_m2,
        b_err_kg_m2=fit.b_err_kg_m2,
        n_radii=fit.n_radii,
        r2=fit.r2,
    )
    if not (np.isfinite(wind_ms) and wind_ms > 0):
        row["reason"] = f"no usable wind speed ({wind_ms} m/s)"
        return row
    row["flux_t_day"], row["flux_err_t_day"] = flux_t_per_day(fit.a_kg_m, fit.a_err_kg_m, wind_ms, wind_err_ms)
    return row


def flux_from_mass_table(
    masses: pd.DataFrame,
    wind_ms: WindInput,
    wind_err_ms: WindInput | None = None,
    min_coverage: float = 0.5,
    max_radius_km: float | None = None,
    sigma_column: str | None = None,
    error_model: str = "cumulative",
) -> pd.DataFrame:
    """Disk-method flux per orbit from a table of masses with one row per (orbit, radius).

    Parameters
    ----------
    masses : pandas.DataFrame
        Columns ``orbit``, ``time``, ``radius_km``, ``mass_t`` (tonnes) and ``coverage`` (0-1), as made by
        :func:`app.science.mass.so2_mass_within_radii` for each orbit and concatenated.
    wind_ms : number, mapping, Series or callable
        Wind speed at plume height, m/s: one number for all orbits; a mapping or Series keyed by orbit; a
        Series indexed by time (interpolated linearly, NaN outside its range); or a function of the orbit's
        time.
    wind_err_ms : same forms as ``wind_ms``, optional
        1-sigma uncertainty of the wind, propagated into the flux uncertainty.
    min_coverage : float
        Radii whose disk is covered by valid pixels less than this fraction are skipped (default 0.5).
    max_radius_km : float, optional
        Only fit radii up to this.
    sigma_column : str, optional
        A column of 1-sigma mass uncertainties (tonnes) to weight the fit by.
    error_model : {"cumulative", "independent"}
        How the errors of the masses at nested radii relate (:func:`fit_disk_method`).

    Returns
    -------
    pandas.DataFrame
        One row per orbit, in time order: ``orbit``, ``time``, ``a_kg_m``, ``a_err_kg_m``, ``b_kg_m2``,
        ``b_err_kg_m2``, ``wind_ms``, ``flux_t_day``, ``flux_err_t_day``, ``n_radii`` (radii used, or usable
        when too few), ``r2`` and ``reason`` (empty when the flux was computed, else why it is NaN). Orbits
        with fewer than 3 usable radii or no wind get NaN flux and a reason.

    """
    if error_model not in ERROR_MODELS:
        raise UserInputError(f"unknown error_model {error_model!r}; use one of {', '.join(ERROR_MODELS)}")
    needed = ["orbit", "time", "radius_km", "mass_t", "coverage"] + ([sigma_column] if sigma_column else [])
    missing = [name for name in needed if name not in masses.columns]
    if missing:
        raise UserInputError(
            f"the mass table lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, masses.columns))}"
        )
    table = masses if max_radius_km is None else masses[masses["radius_km"] <= max_radius_km]
    rows = []
    for orbit, group in table.groupby("orbit", dropna=False, sort=True):
        times = group["time"].dropna()
        time = times.iloc[0] if len(times) else pd.NaT
        wind = _wind_at(wind_ms, orbit, time)
        wind_err = _wind_at(wind_err_ms, orbit, time)
        row = _fit_one_orbit(group.sort_values("radius_km"), wind, wind_err, min_coverage, sigma_column, error_model)
        rows.append({"orbit": orbit, "time": time, **row})
    out = pd.DataFrame(rows, columns=list(FLUX_COLUMNS))
    out["orbit"] = out["orbit"].astype("Int64")
    out["time"] = pd.to_datetime(out["time"])
    out["n_radii"] = out["n_radii"].astype(np.int64)
    return out.sort_values(["time", "orbit"], na_position="last").reset_index(drop=True)
