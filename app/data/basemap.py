"""Offline basemap: coastlines, land borders and a land/sea mask from Natural Earth, no network needed.

The data are Natural Earth 4.1.0 at 1:50m and 1:110m, as redistributed in the npm package ``world-atlas``
v2 and converted once by ``assets/tools/convert_world_atlas.py`` into ``assets/basemap/``:

- ``coastline_{scale}.npz``: ``lon``, ``lat`` (float32, degrees), lines separated by NaN, cut at ±180°;
  the edges Natural Earth adds along ±180° and along the South Pole are removed.
- ``borders_{scale}.npz``: land borders (arcs shared by two countries), same layout.
- ``land_{scale}.npz``: land polygons clipped to [-180, 180]; ``lon``, ``lat`` hold closed rings separated
  by NaN, ``exterior`` says for each ring whether it is an outer ring (else a hole of the one before);
  Antarctica is closed over the pole.

Lines are returned as one NaN-separated array so a map draws them as a single merged path (one Bokeh
``MultiLine`` glyph): 50 m coastlines as thousands of separate features cost seconds in the browser.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.core.lonlat import wrap_lon
from app.data.errors import FumaroleError, UserInputError
from app.paths import ASSETS

ASSET_DIR = ASSETS / "basemap"
"""Where the converted Natural Earth files live."""

SCALES = ("50m", "110m")
"""Natural Earth scales shipped: 1:50m (default) and 1:110m."""

LAND_GRID_RESOLUTION = 0.1
"""Cell size (degrees) of the land/sea grid that `land_mask` looks points up in."""


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise UserInputError(f"Unknown basemap scale {scale!r}; choose one of {', '.join(SCALES)}.")
    return scale


# Constant tables shipped with Fumarole (coastlines, borders, land of 2 scales: a few MB in all, keys bounded by
# the assets): count-bounded lru_caches are enough here, outside the byte budget of app.core.cache.
@functools.lru_cache(maxsize=16)
def _load(kind: str, scale: str) -> dict[str, np.ndarray]:
    path = ASSET_DIR / f"{kind}_{_check_scale(scale)}.npz"
    if not path.exists():
        raise FumaroleError(
            f"{path}: the basemap file is missing; regenerate it with "
            "`python assets/tools/convert_world_atlas.py` (see assets/CITATION.md)."
        )
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def coastline_lines(scale: str = "50m") -> tuple[np.ndarray, np.ndarray]:
    """Natural Earth coastlines as ``(lon, lat)`` float32 arrays, lines separated by NaN.

    Longitudes are in [-180, 180]; no segment crosses the antimeridian. The arrays are cached and
    read-only.
    """
    data = _load("coastline", scale)
    return data["lon"], data["lat"]


def border_lines(scale: str = "50m") -> tuple[np.ndarray, np.ndarray]:
    """Natural Earth land borders between countries as ``(lon, lat)`` float32 arrays, NaN-separated.

    Longitudes are in [-180, 180]; the arrays are cached and read-only.
    """
    data = _load("borders", scale)
    return data["lon"], data["lat"]


def land_polygons(scale: str = "50m") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land polygons as ``(lon, lat, exterior)``: closed rings separated by NaN, and per ring a bool.

    ``exterior[k]`` is True when ring *k* is an outer ring and False when it is a hole in the last outer
    ring before it. Longitudes are in [-180, 180]; Antarctica is closed along the South Pole.
    """
    data = _load("land", scale)
    return data["lon"], data["lat"], data["exterior"]


# --------------------------------------------------------------------------------------------------------
# Lines: wrapping, cutting at the map edge, cropping


def wrap_longitude(lon: np.ndarray, central_longitude: float = 0.0) -> np.ndarray:
    """Return *lon* wrapped into ``[central_longitude - 180, central_longitude + 180)`` (a float64 array)."""
    return np.asarray(wrap_lon(lon, central_longitude), dtype=np.float64)


def split_at_antimeridian(
    lon: np.ndarray, lat: np.ndarray, central_longitude: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut NaN-separated lines where they cross the map edge ``central_longitude ± 180``.

    *lon* must already lie in ``[central_longitude - 180, central_longitude + 180]``. Wherever two
    consecutive points are more than 180° of longitude apart, the segment is taken to cross the edge the
    short way round: the crossing point is interpolated, and the line ends on one edge and restarts on
    the other, with a NaN between. Returns float64 arrays.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    step = np.diff(lon)
    with np.errstate(invalid="ignore"):
        jumps = np.flatnonzero(np.abs(step) > 180.0)
    if not jumps.size:
        return lon, lat
    west = float(central_longitude) - 180.0
    east_bound = step[jumps] < 0  # from near the east edge to near the west edge: crossing eastwards
    a_lon, a_lat = lon[jumps], lat[jumps]
    b_lon = np.where(east_bound, lon[jumps + 1] + 360.0, lon[jumps + 1] - 360.0)
    b_lat = lat[jumps + 1]
    edge = np.where(east_bound, west + 360.0, west)
    span = b_lon - a_lon
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span != 0, (edge - a_lon) / span, 0.0)
    lat_cross = a_lat + np.clip(frac, 0.0, 1.0) * (b_lat - a_lat)
    other_edge = np.where(east_bound, west, west + 360.0)
    insert_lon = np.column_stack([edge, np.full_like(edge, np.nan), other_edge]).ravel()
    insert_lat = np.column_stack([lat_cross, np.full_like(edge, np.nan), lat_cross]).ravel()
    where = np.repeat(jumps + 1, 3)
    return np.insert(lon, where, insert_lon), np.insert(lat, where, insert_lat)


def compact_lines(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tidy NaN-separated lines: one NaN between lines, none at the ends, no single-point lines."""
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    point = finite & (before | after)  # drop isolated points
    separator = ~finite & before  # first NaN after a line
    keep = point | separator
    lon, lat = lon[keep], lat[keep]
    finite = np.isfinite(lon)
    if not finite.any():
        return lon[:0], lat[:0]
    first, last = np.flatnonzero(finite)[[0, -1]]
    lon, lat = lon[first : last + 1], lat[first : last + 1]
    # an isolated point removed between two NaNs leaves two separators in a row
    finite = np.isfinite(lon)
    double = ~finite & np.concatenate([[False], ~finite[:-1]])
    return lon[~double], lat[~double]


def crop_lines(
    lon: np.ndarray,
    lat: np.ndarray,
    lon_range: Sequence[float] | None = None,
    lat_range: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the parts of NaN-separated lines inside a lon/lat box.

    One point beyond the box is kept at each end so lines reach the box edge; lines leaving and
    re-entering the box are split there.
    """
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    inside = np.isfinite(lon) & np.isfinite(lat)
    if lon_range is not None:
        inside &= (lon >= min(lon_range)) & (lon <= max(lon_range))
    if lat_range is not None:
        inside &= (lat >= min(lat_range)) & (lat <= max(lat_range))
    near = inside.copy()
    near[1:] |= inside[:-1]
    near[:-1] |= inside[1:]
    near &= np.isfinite(lon) & np.isfinite(lat)
    out_lon = np.where(near, lon, np.nan).astype(lon.dtype, copy=False)
    out_lat = np.where(near, lat, np.nan).astype(lat.dtype, copy=False)
    return compact_lines(out_lon, out_lat)


def merged_path(
    lon: np.ndarray,
    lat: np.ndarray,
    lon_range: Sequence[float] | None = None,
    lat_range: Sequence[float] | None = None,
    central_longitude: float = 0.0,
) -> list[np.ndarray]:
    """NaN-separated lines as the data of one HoloViews/GeoViews ``Path`` element.

    Longitudes are re-wrapped into ``[central_longitude - 180, central_longitude + 180)`` and lines are
    cut where they cross that map's edge (with the default 0 the stored lines, in [-180, 180], are used
    as they are); then the lines are cropped to the box, given in the wrapped
    frame (e.g. ``lon_range=(100, 260)`` with ``central_longitude=180``).

    Returns
    -------
    list of numpy.ndarray
        ``[xy]`` with one float32 ``(N, 2)`` array of (lon, lat), lines separated by NaN rows, or ``[]``
        when nothing is in the box: ``hv.Path(merged_path(...))`` draws everything as one glyph.
    """
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    if float(central_longitude) != 0.0:
        lon, lat = split_at_antimeridian(wrap_longitude(lon, central_longitude), lat, central_longitude)
    if lon_range is not None or lat_range is not None:
        lon, lat = crop_lines(lon, lat, lon_range, lat_range)
    if not lon.size:
        return []
    xy = np.column_stack([lon, lat]).astype(np.float32)
    if float(central_longitude) != 0.0:
        # float32 rounding can lift 359.99999 to 360: keep the promised half-open range
        east = np.float32(float(central_longitude) + 180.0)
        xy[:, 0] = np.where(xy[:, 0] >= east, np.nextafter(east, np.float32(-np.inf)), xy[:, 0])
    return [xy]


def coastline_paths(
    scale: str = "50m",
    lon_range: Sequence[float] | None = None,
    lat_range: Sequence[float] | None = None,
    central_longitude: float = 0.0,
) -> list[np.ndarray]:
    """Coastlines as the data of one merged ``hv.Path`` / ``gv.Path`` element.

    Parameters
    ----------
    scale
        ``"50m"`` or ``"110m"``.
    lon_range, lat_range
        Optional ``(min, max)`` box to crop to, in the frame given by *central_longitude*.
    central_longitude
        Centre of the map; 180 gives a Pacific-centred map with longitudes in [0, 360).

    Returns
    -------
    list of numpy.ndarray
        See `merged_path`; use as ``gv.Path(coastline_paths("50m"))``. For a cartopy CRS built with the
        same ``central_longitude`` subtract it from the x column first.
    """
    return merged_path(*coastline_lines(scale), lon_range, lat_range, central_longitude)


def border_paths(
    scale: str = "50m",
    lon_range: Sequence[float] | None = None,
    lat_range: Sequence[float] | None = None,
    central_longitude: float = 0.0,
) -> list[np.ndarray]:
    """Land borders as the data of one merged ``hv.Path`` / ``gv.Path`` element (see `coastline_paths`)."""
    return merged_path(*border_lines(scale), lon_range, lat_range, central_longitude)


# --------------------------------------------------------------------------------------------------------
# Land / sea mask


def rasterise_rings(lon: np.ndarray, lat: np.ndarray, resolution: float = LAND_GRID_RESOLUTION) -> np.ndarray:
    """Fill NaN-separated closed rings (even-odd rule) on a global lat/lon grid.

    Returns a bool array of shape ``(180 / resolution, 360 / resolution)``: row 0 is the southernmost
    band, column 0 starts at -180°; a cell is True when its centre is inside the rings.
    """
    n_rows, n_cols = round(180.0 / resolution), round(360.0 / resolution)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    x0, y0, x1, y1 = lon[:-1], lat[:-1], lon[1:], lat[1:]
    ok = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1) & (y0 != y1)
    x0, y0, x1, y1 = x0[ok], y0[ok], x1[ok], y1[ok]
    # An edge crosses the centre line of row i, y_i = -90 + (i + 0.5) * res, when lo <= y_i < hi.
    first_row = np.ceil((np.minimum(y0, y1) + 90.0) / resolution - 0.5).astype(np.int64)
    end_row = np.ceil((np.maximum(y0, y1) + 90.0) / resolution - 0.5).astype(np.int64)
    first_row = np.clip(first_row, 0, n_rows)
    counts = np.clip(end_row, 0, n_rows) - first_row
    counts = np.maximum(counts, 0)
    edge = np.repeat(np.arange(counts.size), counts)
    offset = np.arange(edge.size) - np.repeat(np.cumsum(counts) - counts, counts)
    row = first_row[edge] + offset
    y = -90.0 + (row + 0.5) * resolution
    x = x0[edge] + (y - y0[edge]) / (y1[edge] - y0[edge]) * (x1[edge] - x0[edge])
    # first cell whose centre is at or east of x
    col = np.clip(np.ceil((x + 180.0) / resolution - 0.5).astype(np.int64), 0, n_cols)
    order = np.lexsort((x, row))
    row, col = row[order], col[order]
    if row.size % 2 or np.any(row[0::2] != row[1::2]):
        raise FumaroleError("land polygons: a ring is not closed (odd number of crossings on a grid row)")
    width = n_cols + 1
    size = n_rows * width
    toggles = np.bincount(row[0::2] * width + col[0::2], minlength=size) - np.bincount(
        row[1::2] * width + col[1::2], minlength=size
    )
    return np.cumsum(toggles.reshape(n_rows, width), axis=1)[:, :n_cols] > 0


@functools.lru_cache(maxsize=2)  # one 6.5 MB grid per shipped scale: constant, bounded by SCALES
def land_grid(scale: str = "50m") -> np.ndarray:
    """The land/sea grid `land_mask` uses: bool ``(1800, 3600)``, row 0 at -90°, column 0 at -180° (cached)."""
    lon, lat, _ = land_polygons(scale)
    grid = rasterise_rings(lon, lat, LAND_GRID_RESOLUTION)
    grid.setflags(write=False)
    return grid


def land_mask(lat: np.ndarray, lon: np.ndarray, scale: str = "50m") -> np.ndarray:
    """True where (lat, lon) is on land, by the 0.1° cell that holds the point.

    Parameters
    ----------
    lat, lon
        Arrays (or scalars) of any broadcastable shapes, degrees; longitudes in any range.
    scale
        Natural Earth scale of the land polygons, ``"50m"`` or ``"110m"``.

    Returns
    -------
    numpy.ndarray
        Bool array of the broadcast shape; NaN positions are False (sea).
    """
    grid = land_grid(scale)
    n_rows, n_cols = grid.shape
    lat, lon = np.broadcast_arrays(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))
    shape = lat.shape
    lat, lon = lat.ravel(), lon.ravel()
    scale_factor = 1.0 / LAND_GRID_RESOLUTION
    with np.errstate(invalid="ignore"):
        # truncation equals floor here: negatives only occur below -90 / outside the range, clipped to 0
        row = np.clip((lat + 90.0) * scale_factor, 0, n_rows - 1).astype(np.intp)
        col = np.clip(np.mod(lon + 180.0, 360.0) * scale_factor, 0, n_cols - 1).astype(np.intp)
    invalid = ~(np.isfinite(lat) & np.isfinite(lon))
    if invalid.any():
        row[invalid] = 0
        col[invalid] = 0
    mask = grid.ravel()[row * n_cols + col]
    mask[invalid] = False
    return mask.reshape(shape)


# --------------------------------------------------------------------------------------------------------
# Cartopy without network


def _split_lines(lon: np.ndarray, lat: np.ndarray) -> list[np.ndarray]:
    finite = np.isfinite(lon)
    breaks = np.flatnonzero(~finite)
    xy = np.column_stack([lon, lat]).astype(np.float64)
    parts = (piece[np.isfinite(piece[:, 0])] for piece in np.split(xy, breaks))
    return [part for part in parts if part.shape[0] >= 2]


def install_cartopy_shapefiles(target_dir: str | Path, scales: Sequence[str] = SCALES) -> list[Path]:
    """Write the basemap as the Natural Earth shapefiles cartopy looks for, so it needs no download.

    Writes ``shapefiles/natural_earth/physical/ne_{scale}_coastline.shp``, ``…/physical/ne_{scale}_land.shp``
    and ``…/cultural/ne_{scale}_admin_0_boundary_lines_land.shp`` under *target_dir*. Point cartopy at
    them with the environment variable ``CARTOPY_DATA_DIR=target_dir`` (read when cartopy is imported) or
    ``cartopy.config["pre_existing_data_dir"] = target_dir``.

    Returns
    -------
    list of pathlib.Path
        The ``.shp`` files written (each with its ``.shx``, ``.dbf`` and ``.prj``).
    """
    import shapefile  # pyshp, installed with cartopy

    base = Path(target_dir) / "shapefiles" / "natural_earth"
    wgs84 = (
        'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
        'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
    )
    written = []
    for scale in scales:
        line_sets = {
            base / "physical" / f"ne_{scale}_coastline": ("Coastline", coastline_lines(scale)),
            base / "cultural" / f"ne_{scale}_admin_0_boundary_lines_land": (
                "International boundary (verify)",
                border_lines(scale),
            ),
        }
        for stem, (feature_class, (lon, lat)) in line_sets.items():
            stem.parent.mkdir(parents=True, exist_ok=True)
            with shapefile.Writer(str(stem), shapeType=shapefile.POLYLINE) as shp:
                shp.field("featurecla", "C", size=40)
                for part in _split_lines(lon, lat):
                    shp.line([part.tolist()])
                    shp.record(feature_class)
            stem.with_suffix(".prj").write_text(wgs84)
            written.append(stem.with_suffix(".shp"))
        stem = base / "physical" / f"ne_{scale}_land"
        with shapefile.Writer(str(stem), shapeType=shapefile.POLYGON) as shp:
            shp.field("featurecla", "C", size=40)
            for rings in _polygons_for_shapefile(*land_polygons(scale)):
                shp.poly(rings)
                shp.record("Land")
        stem.with_suffix(".prj").write_text(wgs84)
        written.append(stem.with_suffix(".shp"))
    return written


def _polygons_for_shapefile(lon: np.ndarray, lat: np.ndarray, exterior: np.ndarray) -> list[list[list]]:
    """Group rings into polygons, outer rings clockwise and holes counter-clockwise (shapefile rule)."""
    polygons: list[list[list]] = []
    for ring, is_exterior in zip(_split_lines(lon, lat), exterior, strict=True):
        x, y = ring[:, 0], ring[:, 1]
        signed_area = 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])  # > 0: counter-clockwise
        if (signed_area > 0) == bool(is_exterior):
            ring = ring[::-1]
        if is_exterior or not polygons:
            polygons.append([ring.tolist()])
        else:
            polygons[-1].append(ring.tolist())
    return polygons
