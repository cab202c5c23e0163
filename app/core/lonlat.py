"""Longitudes: the one wrap every layer uses.

``wrap_lon(lon, central=0)`` puts longitudes into ``[central − 180, central + 180)``; with ``central=0`` that is
``[-180, 180)``. Maps centred on the Pacific (a zone with ``central_longitude=180``) use the same function with their
centre, so a volcano at −175° and a pixel at 175° lie 10° apart on the map.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wrap_lon", "lon_difference"]


def wrap_lon(lon, central: float = 0.0):
    """``lon`` (degrees; scalar or array) wrapped into ``[central − 180, central + 180)``.

    A Python scalar gives a float, an array a float64 array. ``np.mod`` can round a tiny negative offset up to exactly
    360; such a value is brought back into the interval.
    """
    west = float(central) - 180.0
    wrapped = np.mod(np.asarray(lon, dtype=np.float64) - west, 360.0) + west
    wrapped = np.where(wrapped >= west + 360.0, wrapped - 360.0, wrapped)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


def lon_difference(lon, lon0):
    """The signed difference ``lon − lon0`` the short way round, in ``[-180, 180)`` degrees."""
    return wrap_lon(np.asarray(lon, dtype=np.float64) - np.asarray(lon0, dtype=np.float64))
