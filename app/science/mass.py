"""SO2 mass within disks around a volcano, for many radii at once, from one Swath (SCIENCE.md).

For a disk of great-circle radius r around the volcano, the mass is the sum over valid pixels whose centres
lie within r of the volcano of column (DU) × pixel area (km²) × 28.58 kg (:mod:`app.science.units`). Pixel
areas come from the corner coordinates as spherical polygons (:func:`app.science.geodesy.pixel_area_km2`), or
from corners estimated from the centres when a swath has none. With each mass goes the fraction of the disk
covered by valid pixels, so an orbit that only grazes the disk is not mistaken for a low emission.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from app.data.errors import UserInputError
from app.science.filters import Filters, valid_mask
from app.science.geodesy import (
    corners_from_centres,
    great_circle_distance_km,
    pixel_area_km2,
    spherical_cap_area_km2,
)
from app.science.units import SO2_KG_PER_DU_KM2, kg_to_tonnes

#: The radii (km) of SCIENCE.md, the default of the mass time series.
DEFAULT_RADII_KM: tuple[float, ...] = (25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 1000, 2000)

#: Columns of the table returned by :func:`so2_mass_within_radii`, in order.
MASS_COLUMNS = ("orbit", "time", "radius_km", "mass_t", "n_valid", "n_summed", "n_pixels", "coverage")

_DIMS = ("scanline", "ground_pixel")


def _check_radii(radii_km: float | Iterable[float]) -> np.ndarray:
    """Return radii as sorted distinct positive finite floats, or raise a UserInputError naming a bad one."""
    radii = np.atleast_1d(np.asarray(radii_km, dtype=float))
    if radii.ndim != 1 or radii.size == 0:
        raise UserInputError(f"radii must be a non-empty list of distances in km; got {radii_km!r}")
    bad = radii[~(np.isfinite(radii) & (radii > 0))]
    if bad.size:
        raise UserInputError(f"radii must be positive distances in km; got {bad[0]!r}")
    return np.unique(radii)


def swath_pixel_area_km2(swath: xr.Dataset, method: str = "exact") -> xr.DataArray:
    """Area in km² of every pixel of a Swath, from ``latitude_bounds``/``longitude_bounds`` (or centres)."""
    lat = swath["latitude"]
    if "latitude_bounds" in swath.variables and "longitude_bounds" in swath.variables:
        dims = (*lat.dims, "corner")
        area = pixel_area_km2(
            swath["latitude_bounds"].transpose(*dims).values,
            swath["longitude_bounds"].transpose(*dims).values,
            method=method,
        )
    else:
        lat_b, lon_b = corners_from_centres(lat.values, swath["longitude"].transpose(*lat.dims).values)
        area = pixel_area_km2(lat_b, lon_b, method=method)
    return xr.DataArray(area, dims=lat.dims, coords=lat.coords, name="pixel_area", attrs={"units": "km2"})


def _orbit_of(swath: xr.Dataset) -> Any:
    """Return the swath's orbit number as an int, or pandas NA when it has none."""
    orbit = swath.attrs.get("orbit")
    try:
        return int(orbit)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return pd.NA


def _mean_time(times: np.ndarray) -> pd.Timestamp:
    """Mean of datetime64 values, ignoring NaT; NaT when there is none."""
    times = np.asarray(times, dtype="datetime64[ns]")
    times = times[~np.isnat(times)]
    if times.size == 0:
        return pd.NaT
    ns = times.astype("int64")
    return pd.Timestamp(int(ns.min() + np.round(np.mean(ns - ns.min()))))


def _window_to_disk(swath: xr.Dataset, distance: np.ndarray, r_max: float, pad: int) -> tuple[xr.Dataset, np.ndarray]:
    """Cut the scanlines with a pixel centre within r_max (and ``pad`` more each side) and their distances."""
    rows = np.flatnonzero(np.any(distance <= r_max, axis=1))
    if rows.size == 0:
        return swath.isel(scanline=slice(0, 0)), distance[:0]
    window = slice(max(0, int(rows[0]) - pad), int(rows[-1]) + 1 + pad)
    return swath.isel(scanline=window), distance[window]


def so2_mass_within_radii(
    swath: xr.Dataset,
    variable: str,
    volcano_lat: float,
    volcano_lon: float,
    radii_km: float | Iterable[float] = DEFAULT_RADII_KM,
    filters: Filters | Mapping[str, Any] | None = None,
    area_method: str = "exact",
) -> pd.DataFrame:
    """SO2 mass within each radius of a volcano, one row per radius (ascending), from one Swath.

    Parameters
    ----------
    swath : xarray.Dataset
        A canonical Swath (docs/architecture.md), whole or any window of scanlines.
    variable : str
        The column to use: ``so2_pbl``, ``so2_1km``, ``so2_7km`` or ``so2_15km`` (DU).
    volcano_lat, volcano_lon : float
        The centre of the disks, degrees.
    radii_km : float or sequence of float
        Great-circle radii of the disks, km.
    filters : Filters, mapping or None
        Pixel filters (:class:`app.science.filters.Filters`); None means
        :data:`~app.science.filters.DEFAULT_FILTERS` (qa_value > 0.5, SZA <= 80°).
    area_method : str
        ``"exact"`` or ``"fast"`` pixel areas (:func:`app.science.geodesy.pixel_area_km2`).

    Returns
    -------
    pandas.DataFrame
        Columns ``orbit`` (swath attr, nullable int), ``time`` (mean time of all pixels with centres in the
        largest disk, NaT if none), ``radius_km``, ``mass_t`` (tonnes; NaN when no valid pixel lies in the
        disk), ``n_valid`` (valid pixels with centres in the disk), ``n_summed`` (those of them whose column
        passes ``min_du`` and is summed), ``n_pixels`` (all pixels with centres in the disk) and ``coverage``
        (valid pixel area in the disk / disk area 2πR²(1 − cos(r/R)), capped at 1).

    Notes
    -----
    Distances are computed once; only the scanlines that reach the largest disk are filtered and get pixel
    areas; pixels are sorted by distance and every radius is read off cumulative sums.

    Valid here means observed: finite, QA, SZA and edge filters. ``min_du`` (the truncation of low columns)
    does not make a pixel invalid: a truncated pixel is seen and low, so it counts towards ``coverage`` and
    ``n_valid`` and adds zero mass. (``app.science.filters.valid_mask`` with ``min_du`` is the pixel mask for
    maps.) Otherwise a clean sky truncated at, say, 0 DU would read as half covered, and at 1 DU as not seen.
    Negative columns count as they are when no ``min_du`` is given.

    """
    radii = _check_radii(radii_km)
    f = Filters.coerce(filters)
    if variable not in swath.data_vars:
        have = ", ".join(sorted(str(v) for v in swath.data_vars)) or "no variables"
        raise UserInputError(f"the swath has no SO2 column {variable!r}; it has {have}")
    if set(swath[variable].dims) != set(_DIMS):
        raise UserInputError(f"{variable!r} must have dims {_DIMS} (a Swath); it has {swath[variable].dims}")
    pixels = _pixels_by_distance(swath, variable, volcano_lat, volcano_lon, radii[-1], f, area_method)

    def cumulative(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(values)])

    end = np.searchsorted(pixels["distance"], radii, side="right")
    n_valid = cumulative(pixels["valid"])[end].astype(np.int64)
    n_summed = cumulative(pixels["summed"])[end].astype(np.int64)
    mass_kg = np.where(pixels["summed"], pixels["column"] * pixels["area"], 0.0) * SO2_KG_PER_DU_KM2
    mass_t = kg_to_tonnes(cumulative(mass_kg)[end])
    coverage = np.minimum(1.0, cumulative(pixels["area"])[end] / spherical_cap_area_km2(radii))
    return pd.DataFrame(
        {
            "orbit": pd.array([_orbit_of(swath)] * radii.size, dtype="Int64"),
            "time": pd.Series([pixels["time"]] * radii.size, dtype="datetime64[ns]"),
            "radius_km": radii,
            "mass_t": np.where(n_valid > 0, mass_t, np.nan),
            "n_valid": n_valid,
            "n_summed": n_summed,
            "n_pixels": end.astype(np.int64),
            "coverage": coverage,
        },
        columns=list(MASS_COLUMNS),
    )


def _pixels_by_distance(
    swath: xr.Dataset,
    variable: str,
    volcano_lat: float,
    volcano_lon: float,
    r_max: float,
    f: Filters,
    area_method: str,
) -> dict[str, Any]:
    """Return the pixels with centres within r_max, sorted by distance: distance, column, valid, summed, area.

    ``area`` is the pixel area for valid pixels and 0 for the others; ``time`` is their mean time.
    """
    lat = swath["latitude"].transpose(*_DIMS).values
    lon = swath["longitude"].transpose(*_DIMS).values
    distance = great_circle_distance_km(volcano_lat, volcano_lon, lat, lon)
    # Without corner coordinates, areas come from neighbouring centres: keep one more scanline on each side.
    has_corners = "latitude_bounds" in swath.variables and "longitude_bounds" in swath.variables
    window, distance = _window_to_disk(swath, distance, r_max, pad=0 if has_corners else 1)

    inside = distance <= r_max  # NaN centres compare False
    column = window[variable].transpose(*_DIMS).values[inside].astype(float)
    # Valid = observed (finite, QA, SZA, edges); min_du only decides which valid columns are summed, so a clean
    # sky truncated to nothing still counts as covered, with zero mass.
    observing = {**f.as_dict(), "min_du": None}
    valid = valid_mask(window, variable, **observing).transpose(*_DIMS).values[inside]
    summed = valid & (column >= f.min_du) if f.min_du is not None else valid
    area = np.zeros(column.shape)
    if valid.any():
        area[valid] = _pixel_areas(window, inside, valid, area_method)
    time = pd.NaT
    if "time" in window.variables:
        time = _mean_time(window["time"].broadcast_like(window[variable]).transpose(*_DIMS).values[inside])

    order = np.argsort(distance[inside], kind="stable")
    return {
        "distance": distance[inside][order],
        "column": column[order],
        "valid": valid[order].astype(float),
        "summed": summed[order],
        "area": area[order],
        "time": time,
    }


def _pixel_areas(window: xr.Dataset, inside: np.ndarray, valid: np.ndarray, method: str) -> np.ndarray:
    """Areas (km²) of the valid pixels inside the largest disk, in the order of ``inside``'s True cells."""
    if "latitude_bounds" in window.variables and "longitude_bounds" in window.variables:
        corner_dims = (*_DIMS, "corner")
        lat_b = window["latitude_bounds"].transpose(*corner_dims).values[inside][valid]
        lon_b = window["longitude_bounds"].transpose(*corner_dims).values[inside][valid]
        return pixel_area_km2(lat_b, lon_b, method=method)
    return swath_pixel_area_km2(window, method=method).transpose(*_DIMS).values[inside][valid]
