"""A CALIOP curtain as a PNG: one granule, named as the granule index knows it (never a path), one variable.

The granule is looked up by its file name among the index's CALIOP rows (:func:`find_granule`): what a client
sends is compared with names, never joined to a folder, so no request can reach a file outside the archive. The
curtain is read through the per-process cache (:func:`app.data.archive.read_curtain_cached`), averaged onto the
picture's columns and rows (:func:`app.render.curtain.aggregate_curtain`) and coloured with the dashboard's scale
(:data:`app.render.colormaps.SCALES`: the stepped NASA browse scale for backscatter, a continuous one for the
depolarisation ratio; no data in the scale's ``bad`` colour). Row 0 is the top of the altitude range.
"""

from __future__ import annotations

import pandas as pd

from app.data.archive import CALIOP, Archive, read_curtain_cached
from app.data.errors import UserInputError
from app.render.colormaps import scale_for
from app.render.curtain import curtain_rgba
from app.render.geo import png_bytes

__all__ = ["VARIABLES", "GranuleNotFound", "find_granule", "granules", "curtain_png"]

VARIABLES = ("total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532",
             "attenuated_backscatter_1064", "depolarization_ratio_532")
_DEPOL_PARTS = ["total_attenuated_backscatter_532", "perpendicular_attenuated_backscatter_532"]


class GranuleNotFound(UserInputError):
    """No CALIOP granule of that name in the index (answered with 404)."""


def _name(path: str) -> str:
    return str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def granules(archive: Archive, t0=None, t1=None, bbox=None) -> pd.DataFrame:
    """The index's CALIOP rows of a period that touch ``bbox`` (all of them by default)."""
    return archive.granules(CALIOP, t0, t1, bbox)


def find_granule(archive: Archive, name: str) -> pd.Series:
    """The index row of the CALIOP granule whose file name is ``name`` (with or without its extension)."""
    rows = granules(archive)
    names = rows["path"].map(_name)
    hit = rows[(names == name) | (names.str.rsplit(".", n=1).str[0] == name)]
    if hit.empty:
        shown = name if len(name) <= 60 else name[:60] + "…"
        raise GranuleNotFound(f"no CALIOP granule named {shown!r} in the archive's index "
                              f"(it has {len(rows)}; /api/v1/caliop/granules lists them)")
    return hit.iloc[0]


def curtain_png(archive: Archive, path: str, variable: str, alt_range_km: tuple[float, float], width: int,
                height: int) -> tuple[bytes, dict]:
    """The curtain picture (``width`` columns of profiles × ``height`` rows of altitude, top first), and what it shows.

    The second item: ``start``, ``end``, the scale's ``units`` and ``label``, the number of ``profiles`` and the
    first and last positions.
    """
    if variable not in VARIABLES:
        raise UserInputError(f"unknown curtain variable {variable!r}; variables are {', '.join(VARIABLES)}")
    reader = archive.reader_key(CALIOP)
    wanted = _DEPOL_PARTS if variable == "depolarization_ratio_532" else [variable]
    curtain = read_curtain_cached(path, wanted, reader=reader)
    rgba = curtain_rgba(curtain, variable, alt_range_km, width, height)
    scale = scale_for(variable)
    t = pd.to_datetime(curtain["time"].values)
    info = {"start": f"{t.min():%Y-%m-%dT%H:%M:%SZ}", "end": f"{t.max():%Y-%m-%dT%H:%M:%SZ}",
            "units": scale.units, "label": scale.label, "profiles": int(curtain.sizes["profile"]),
            "first": (float(curtain["latitude"].values[0]), float(curtain["longitude"].values[0])),
            "last": (float(curtain["latitude"].values[-1]), float(curtain["longitude"].values[-1]))}
    return png_bytes(rgba), info
