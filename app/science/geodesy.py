"""Distances and areas on a spherical Earth, vectorised over whole swaths.

The Earth is a sphere of the mean radius R = 6371.0088 km (IUGG R1 = (2a + b) / 3 of WGS84). The sphere is
accurate to about 0.3 % against the ellipsoid for both distances and areas, well inside the uncertainty of an
SO2 mass, and makes every formula exact and cheap.

Longitudes are never differenced raw: distances use the haversine of the wrapped difference and areas work on
unit vectors, so pixels and disks that straddle the ±180° meridian need no special case.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from app.core.lonlat import lon_difference, wrap_lon

#: Mean Earth radius (IUGG R1), km.
EARTH_RADIUS_KM = 6371.0088

#: Pixels handled at once by the exact area path (bounds the temporary arrays to ~100 MB).
_AREA_CHUNK = 1_000_000


def great_circle_distance_km(
    lat0: ArrayLike, lon0: ArrayLike, lat: ArrayLike, lon: ArrayLike, radius_km: float = EARTH_RADIUS_KM
) -> np.ndarray:
    """Great-circle distance in km from a point (or points) to arrays of points, by the haversine formula.

    d = 2 R asin √(sin²(Δφ/2) + cos φ₀ cos φ sin²(Δλ/2)); accurate for all distances including very small ones
    (the form with acos loses precision below ~1 km). Inputs are degrees and broadcast against each other;
    NaN coordinates give NaN.
    """
    phi0 = np.radians(np.asarray(lat0, dtype=float))
    phi = np.radians(np.asarray(lat, dtype=float))
    dlam = np.radians(np.asarray(lon, dtype=float) - np.asarray(lon0, dtype=float))
    h = np.sin((phi - phi0) / 2.0) ** 2 + np.cos(phi0) * np.cos(phi) * np.sin(dlam / 2.0) ** 2
    return 2.0 * radius_km * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def spherical_cap_area_km2(radius_km: ArrayLike, earth_radius_km: float = EARTH_RADIUS_KM) -> np.ndarray:
    """Area in km² of a disk of great-circle radius r on the sphere: 2πR²(1 − cos(r/R)) (≈ πr² for r ≪ R)."""
    r = np.asarray(radius_km, dtype=float)
    # 1 - cos(x) = 2 sin²(x/2), which keeps full precision for small disks.
    return 4.0 * np.pi * earth_radius_km**2 * np.sin(r / (2.0 * earth_radius_km)) ** 2


def _unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Return unit vectors (…, 3) of points on the sphere given in degrees."""
    phi = np.radians(lat_deg)
    lam = np.radians(lon_deg)
    cphi = np.cos(phi)
    return np.stack([cphi * np.cos(lam), cphi * np.sin(lam), np.sin(phi)], axis=-1)


def _signed_triangle_excess(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Signed spherical excess (steradians) of triangles abc given unit vectors (…, 3).

    Van Oosterom & Strackee (1983): tan(E/2) = a·(b×c) / (1 + a·b + b·c + c·a). Exact for any triangle smaller
    than a hemisphere, well conditioned for tiny ones (unlike L'Huilier's formula on side lengths), and the
    sign follows the orientation (positive anticlockwise seen from outside the sphere).
    """
    triple = np.einsum("...i,...i->...", a, np.cross(b, c))
    denom = 1.0 + np.einsum("...i,...i->...", a, b) + np.einsum("...i,...i->...", b, c)
    denom += np.einsum("...i,...i->...", c, a)
    return 2.0 * np.arctan2(triple, denom)


def _exact_quad_area(lat_b: np.ndarray, lon_b: np.ndarray, radius_km: float) -> np.ndarray:
    """Exact area of (n, 4) quadrilaterals with great-circle edges, as two triangles (0, 1, 2) + (0, 2, 3)."""
    v = _unit_vectors(lat_b, lon_b)
    p0, p1, p2, p3 = v[:, 0], v[:, 1], v[:, 2], v[:, 3]
    excess = _signed_triangle_excess(p0, p1, p2) + _signed_triangle_excess(p0, p2, p3)
    return np.abs(excess) * radius_km**2


def _fast_quad_area(lat_b: np.ndarray, lon_b: np.ndarray, radius_km: float) -> np.ndarray:
    """Area of (n, 4) quadrilaterals by the shoelace formula in the equal-area cylindrical plane (λ, sin φ).

    Exact for cells bounded by meridians and parallels; for TROPOMI-sized pixels (a few km) it differs from
    the great-circle polygon by far less than 0.01 % away from the poles. About three times faster than the
    exact path. Longitudes are taken relative to corner 0 and wrapped to [−180°, 180°), so antimeridian pixels
    are right.
    """
    x = np.radians(lon_difference(lon_b, lon_b[:, :1]))
    y = np.sin(np.radians(lat_b))
    x_next = np.roll(x, -1, axis=1)
    y_next = np.roll(y, -1, axis=1)
    return 0.5 * np.abs(np.sum(x * y_next - x_next * y, axis=1)) * radius_km**2


def pixel_area_km2(
    latitude_bounds: ArrayLike,
    longitude_bounds: ArrayLike,
    method: str = "exact",
    radius_km: float = EARTH_RADIUS_KM,
) -> np.ndarray:
    """Area in km² of quadrilateral pixels from their corners, arrays shaped (…, 4) in degrees.

    Corners go round the pixel in order (the canonical Swath order is 0 bottom-left, 1 bottom-right, 2
    top-right, 3 top-left; either orientation gives the same, positive, area). ``method``:

    - ``"exact"``: the spherical polygon with great-circle edges, as the sum of two spherical triangles split
      along the diagonal 0-2, each by the Van Oosterom-Strackee spherical excess on unit vectors. Handles
      pixels that cross ±180° and pixels touching a pole. Vectorised and processed in chunks of a million
      pixels.
    - ``"fast"``: shoelace in the (λ, sin φ) equal-area plane; several times faster, the same to < 0.01 % for
      pixels of a few km away from the poles.

    Pixels with any NaN corner get NaN.
    """
    lat_b = np.asarray(latitude_bounds, dtype=float)
    lon_b = np.asarray(longitude_bounds, dtype=float)
    if lat_b.shape != lon_b.shape or lat_b.ndim == 0 or lat_b.shape[-1] != 4:
        raise ValueError(
            f"pixel corners must be two arrays of the same shape (..., 4); got latitude_bounds {lat_b.shape} "
            f"and longitude_bounds {lon_b.shape}"
        )
    if method not in ("exact", "fast"):
        raise ValueError(f"unknown pixel area method {method!r}; use 'exact' or 'fast'")
    shape = lat_b.shape[:-1]
    lat_flat = lat_b.reshape(-1, 4)
    lon_flat = lon_b.reshape(-1, 4)
    if method == "fast":
        return _fast_quad_area(lat_flat, lon_flat, radius_km).reshape(shape)
    out = np.empty(lat_flat.shape[0])
    for start in range(0, lat_flat.shape[0], _AREA_CHUNK):
        stop = start + _AREA_CHUNK
        out[start:stop] = _exact_quad_area(lat_flat[start:stop], lon_flat[start:stop], radius_km)
    return out.reshape(shape)


def corners_from_centres(latitude: ArrayLike, longitude: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Estimate pixel corners (…, 4) from a 2-D grid of pixel centres (scanline, ground_pixel), in degrees.

    For data without corner coordinates. Each interior corner is the normalised mean of the unit vectors of
    the four surrounding centres; the grid is first padded by one row and column on each side by linear
    extrapolation (2·edge − next), so edge pixels get the same size as their neighbours. Working on unit
    vectors makes this right across ±180° and near the poles. Corners come back in the canonical order 0
    (scanline i, pixel j) "bottom-left", 1 (i, j+1), 2 (i+1, j+1), 3 (i+1, j), for ``(scanline,
    ground_pixel)`` grids of at least 2 × 2.
    """
    lat = np.asarray(latitude, dtype=float)
    lon = np.asarray(longitude, dtype=float)
    if lat.ndim != 2 or lat.shape != lon.shape or min(lat.shape) < 2:
        raise ValueError(f"corners need 2-D centre grids of the same shape, at least 2 x 2; got {lat.shape}")
    v = _unit_vectors(lat, lon)
    v = np.concatenate([2 * v[:1] - v[1:2], v, 2 * v[-1:] - v[-2:-1]], axis=0)
    v = np.concatenate([2 * v[:, :1] - v[:, 1:2], v, 2 * v[:, -1:] - v[:, -2:-1]], axis=1)
    c = v[:-1, :-1] + v[1:, :-1] + v[:-1, 1:] + v[1:, 1:]
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    clat = np.degrees(np.arcsin(np.clip(c[..., 2], -1.0, 1.0)))
    clon = np.degrees(np.arctan2(c[..., 1], c[..., 0]))
    lat_b = np.stack([clat[:-1, :-1], clat[:-1, 1:], clat[1:, 1:], clat[1:, :-1]], axis=-1)
    lon_b = np.stack([clon[:-1, :-1], clon[:-1, 1:], clon[1:, 1:], clon[1:, :-1]], axis=-1)
    return lat_b, lon_b


def destination(
    lat: ArrayLike, lon: ArrayLike, bearing_deg: ArrayLike, distance_km: ArrayLike, radius_km: float = EARTH_RADIUS_KM
) -> tuple[np.ndarray, np.ndarray]:
    """The point reached from (lat, lon) along a great circle with an initial bearing and a distance.

    Bearing in degrees clockwise from north; inputs broadcast against each other. Returns ``(lat, lon)`` in
    degrees, longitude in [-180, 180). The inverse of `great_circle_distance_km` for the distance: every
    returned point lies exactly ``distance_km`` from the start on the sphere.
    """
    phi1 = np.radians(np.asarray(lat, dtype=float))
    lam1 = np.radians(np.asarray(lon, dtype=float))
    theta = np.radians(np.asarray(bearing_deg, dtype=float))
    delta = np.asarray(distance_km, dtype=float) / radius_km
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(theta)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(np.sin(theta) * np.sin(delta) * np.cos(phi1), np.cos(delta) - np.sin(phi1) * sin_phi2)
    lon2 = wrap_lon(np.degrees(lam2))
    return np.degrees(phi2), lon2
