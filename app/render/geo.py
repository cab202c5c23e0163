"""Geostationary pictures: a scene regridded to the screen, RGB composites and cloud tops, coastlines, the mosaic.

**Regrid first, compose after.** A full disk has up to 5424 × 5424 pixels per channel; a screen shows about a
thousand. :func:`view_of` cuts the channels a product needs to the view (``x_range``, ``y_range`` in metres of the
satellite's geostationary projection) and block-averages them to the screen grid, *then*
:func:`app.science.rgb.compose` makes the composite of that small scene. Averaging brightness temperatures before the
differences of a recipe is exact (differences are linear); the stretch and gamma, which are not, are applied to
screen pixels as a viewer sees them. :func:`frame` does both and keeps the result in a per-process cache
(:data:`FRAMES`), so an animation that comes back to a slot only looks it up.

- :func:`rgb_element` / :func:`field_element`: ``hv.RGB`` (bounds in projection metres) for composites, ``hv.Image``
  with a colour bar and units for the NWC SAF cloud tops (height km, temperature K, pressure hPa; colorcet maps,
  :data:`CLOUD_TOP`).
- :func:`coastline_xy` / :func:`coastline_path`: Natural Earth coastlines projected with pyproj to the satellite's
  geostationary projection (cached per projection, i.e. per sub-satellite longitude), one ``hv.Path``.
- :func:`geos_forward`: longitude/latitude → projection metres (scan angle × satellite height), numpy only, as
  PROJ's ``geos`` computes it (the tests check the two agree); :func:`lonlat_regrid` uses it for nearest-neighbour
  regridding of a scene to a latitude–longitude grid, :func:`viewing_zenith` for the satellite's viewing angle.
- :func:`mosaic`: every satellite regridded to one lat/lon grid, each cell from the satellite that sees it at the
  smallest viewing zenith angle among those with a value there (so a missing slot or a no-data pixel falls back to
  the next satellite), with a ``source`` layer saying which.
- :func:`pixel_values`: the values of a scene's channels under a point (the dashboard's hover readout, the API).
- :func:`colorize`, :func:`png_bytes`, :func:`frame_png`: pictures for the HTTP API and the PNG export (legend,
  satellite, product and time drawn in).
"""

from __future__ import annotations

import base64
import functools
import io
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import colorcet
import holoviews as hv
import numpy as np
import xarray as xr

from app.core.cache import bounded_cache, cached
from app.data import geo
from app.data.basemap import coastline_lines
from app.data.errors import UserInputError
from app.data.geo_bands import GENERIC_CHANNELS, band_for_generic
from app.science import rgb as rgbmod

__all__ = [
    "CLOUD_TOP",
    "CloudTopStyle",
    "SOURCE_COLOURS",
    "FRAMES",
    "stamp_rgba",
    "stamp_element",
    "products",
    "product_title",
    "is_cloud_top",
    "product_channels",
    "disk_ranges",
    "view_of",
    "frame",
    "rgb_element",
    "field_element",
    "image_element",
    "coastline_xy",
    "coastline_path",
    "geos_forward",
    "geos_inverse",
    "viewing_zenith",
    "lonlat_grid",
    "lonlat_regrid",
    "lonlat_frame",
    "mosaic",
    "CLEAR_SKY",
    "disk_mask",
    "disk_rgba",
    "source_rgba",
    "pixel_values",
    "colorize",
    "frame_rgba",
    "png_bytes",
    "thumbnail_png",
    "frame_png",
    "image_columns",
    "wire_columns",
]


# --------------------------------------------------------------------------------------------- products


@dataclass(frozen=True)
class CloudTopStyle:
    """How a cloud-top field is shown: the CloudTop variable, the unit shown, its scale, range and colours."""

    name: str
    variable: str
    title: str
    units: str
    scale: float  # canonical value × scale = value shown (m -> km)
    clim: tuple[float, float]
    cmap: tuple[str, ...]


#: The NWC SAF CTTH products, by product name. Colour maps are colorcet's perceptually uniform ones: height and
#: pressure on ``bgyw`` (dark blue for low tops, white for the highest, as clouds look in the imagery; pressure
#: reversed so that high clouds are bright on both), temperature on ``rainbow4`` (CET-R1: cold blue, warm red).
CLOUD_TOP: dict[str, CloudTopStyle] = {
    s.name: s
    for s in (
        CloudTopStyle("cloud_top_height", "cloud_top_height", "Cloud-top height", "km", 1e-3, (0.0, 16.0),
                      tuple(colorcet.palette["bgyw"])),
        CloudTopStyle("cloud_top_temperature", "cloud_top_temperature", "Cloud-top temperature", "K", 1.0,
                      (190.0, 300.0), tuple(colorcet.palette["rainbow4"])),
        CloudTopStyle("cloud_top_pressure", "cloud_top_pressure", "Cloud-top pressure", "hPa", 1.0, (100.0, 1000.0),
                      tuple(colorcet.palette["bgyw"][::-1])),
    )
}

#: Colours of the mosaic's source layer, one per ring position (west to east), as hex.
SOURCE_COLOURS: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def products() -> list[str]:
    """Every product name: the RGB recipes, then the three cloud-top fields."""
    return [*rgbmod.load_recipes(), *CLOUD_TOP]


def is_cloud_top(product: str) -> bool:
    """True for the NWC SAF CTTH fields."""
    return product in CLOUD_TOP


def product_title(product: str) -> str:
    """``Ash RGB``, ``Cloud-top height`` … (UserInputError for an unknown product)."""
    if product in CLOUD_TOP:
        return CLOUD_TOP[product].title
    recipes = rgbmod.load_recipes()
    if product not in recipes:
        raise UserInputError(f"unknown product {product!r}; products are {', '.join(products())}")
    return recipes[product].title


def product_channels(product: str, sensor: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The generic channels a composite needs on ``sensor``, and those it uses when present (none for CTTH)."""
    if product in CLOUD_TOP:
        return (), ()
    product_title(product)
    variant = rgbmod.load_recipes()[product].variant(sensor)
    return tuple(variant.channels), tuple(variant.optional_channels)


# --------------------------------------------------------------------------------------------- the view


def _edges(coord: np.ndarray) -> tuple[float, float, float]:
    """(first edge, step, n) of a regular coordinate of cell centres."""
    c = np.asarray(coord, dtype=np.float64)
    step = float(c[1] - c[0]) if c.size > 1 else 1.0
    return float(c[0] - step / 2), step, int(c.size)


def disk_ranges(scene: xr.Dataset) -> tuple[tuple[float, float], tuple[float, float]]:
    """The whole grid's (x_range, y_range) in projection metres (outer edges, ascending)."""
    x0, dx, nx = _edges(scene["x"].values)
    y0, dy, ny = _edges(scene["y"].values)
    xs = sorted((x0, x0 + dx * nx))
    ys = sorted((y0, y0 + dy * ny))
    return (xs[0], xs[1]), (ys[0], ys[1])


def _window(coord: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Indices [i0, i1) of the cells of a regular coordinate that overlap [lo, hi] (at least one cell)."""
    start, step, n = _edges(coord)
    a, b = sorted(((lo - start) / step, (hi - start) / step))
    i0 = int(np.clip(np.floor(a), 0, n - 1))
    i1 = int(np.clip(np.ceil(b), i0 + 1, n))
    return i0, i1


def _block_mean(values: np.ndarray, f: int) -> np.ndarray:
    """Mean of f × f blocks (NaN if any pixel of a block is NaN), by f² strided additions (no temporaries)."""
    if f == 1:
        return np.asarray(values, dtype=np.float32)
    ny, nx = values.shape[0] // f, values.shape[1] // f
    out = np.zeros((ny, nx), dtype=np.float32)
    for di in range(f):
        for dj in range(f):
            out += values[di : di + ny * f : f, dj : dj + nx * f : f]
    out *= np.float32(1.0 / (f * f))
    return out


def view_of(scene: xr.Dataset, x_range=None, y_range=None, width: int = 800, height: int | None = None,
            channels: Sequence[str] | None = None, workers: int = 2) -> xr.Dataset:
    """The scene's channels over a view, at about the screen's resolution: a small GeoScene to compose.

    ``x_range``, ``y_range``: the view in projection metres (default: the whole grid); ``width`` × ``height``
    the screen pixels (``height`` by default from the view's aspect). The channels are cut to the view and
    averaged over blocks of f × f pixels, f the largest whole number of scene pixels per screen pixel, then the
    block grid is sampled (nearest) to at most ``width`` columns; zoomed in beyond one scene pixel per screen
    pixel, the cut is returned at the scene's resolution. The result keeps the scene's attributes (projection,
    times: what :func:`app.science.rgb.compose` needs) and adds ``view_factor`` (f).
    """
    names = list(scene.data_vars) if channels is None else list(channels)
    full_x, full_y = disk_ranges(scene)
    x_range = tuple(x_range) if x_range is not None else full_x
    y_range = tuple(y_range) if y_range is not None else full_y
    x, y = scene["x"].values, scene["y"].values
    j0, j1 = _window(x, *x_range)
    i0, i1 = _window(y, *y_range)
    nx, ny = j1 - j0, i1 - i0
    width = max(1, int(width))
    height = max(1, int(height)) if height else max(1, round(width * ny / nx))
    f = max(1, int(min(nx / width, ny / height)))
    nbx, nby = nx // f, ny // f
    out_w = min(width, nbx)
    out_h = max(1, min(nby, round(nby * out_w / nbx)))
    cols = np.minimum(((np.arange(out_w) + 0.5) * nbx / out_w).astype(np.intp), nbx - 1)
    rows = np.minimum(((np.arange(out_h) + 0.5) * nby / out_h).astype(np.intp), nby - 1)
    x_start, dx, _ = _edges(x)
    y_start, dy, _ = _edges(y)
    # the output cells cover the block grid's extent evenly: centres at even steps
    x_out = x_start + dx * (j0 + (np.arange(out_w) + 0.5) * nbx * f / out_w)
    y_out = y_start + dy * (i0 + (np.arange(out_h) + 0.5) * nby * f / out_h)
    same = out_w == nbx and out_h == nby

    def one(name: str) -> np.ndarray:
        block = _block_mean(scene[name].transpose("y", "x").values[i0 : i0 + nby * f, j0 : j0 + nbx * f], f)
        return block if same else block[np.ix_(rows, cols)]

    if workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(min(workers, len(names))) as pool:
            arrays = dict(zip(names, pool.map(one, names), strict=True))
    else:
        arrays = {n: one(n) for n in names}
    data = {n: xr.DataArray(arrays[n], dims=("y", "x"), attrs=dict(scene[n].attrs)) for n in names}
    out = xr.Dataset(data, coords={"y": ("y", y_out), "x": ("x", x_out)}, attrs=dict(scene.attrs))
    out.attrs["view_factor"] = f
    return out


# --------------------------------------------------------------------------------------------- frames


#: Frames of this process (RGB composites as uint8 RGBA, cloud tops as float32), keyed by slot, product and view:
#: 12 % of the process's memory budget (app.core.cache).
FRAMES = bounded_cache("geo-frames", 0.12)

#: The cache of derived grids (lat/lon grid indices, disk masks, projected coastlines, and the sun-zenith
#: longitudes/latitudes of app.science.rgb): one cache, 5 % of the memory budget.
GRIDS = "geo-grids"
GRIDS_SHARE = 0.05


def _frame_key(scene: xr.Dataset, product, x_range, y_range, width, height):
    src = scene.attrs.get("source", ())
    src = (src,) if isinstance(src, str) else tuple(src)

    def rnd(r):
        return None if r is None else tuple(round(float(v), 1) for v in r)

    return (scene.attrs.get("platform"), scene.attrs.get("slot_time") or scene.attrs.get("start_time"), src,
            tuple(sorted(scene.data_vars)), product, rnd(x_range), rnd(y_range), int(width), height and int(height))


def frame(scene: xr.Dataset, product: str, x_range=None, y_range=None, width: int = 800,
          height: int | None = None, cache: bool = True) -> xr.DataArray:
    """One picture of a product over a view, regridded first, composed after.

    Composites: ``(y, x, rgba)`` uint8 (alpha 0 where there is no value), with attrs ``kind='rgb'`` and the
    composite's (title, legend, channels). Cloud tops: ``(y, x)`` float32 in the unit shown (km, K, hPa), attrs
    ``kind='field'``. Coordinates ``x``, ``y`` in projection metres. Kept in :data:`FRAMES` unless ``cache=False``.
    """
    key = _frame_key(scene, product, x_range, y_range, width, height) if cache else None
    if key is not None:
        hit = FRAMES.get(key)
        if hit is not None:
            return hit
    if product in CLOUD_TOP:
        style = CLOUD_TOP[product]
        small = view_of(scene, x_range, y_range, width, height, [style.variable])
        values = small[style.variable].values * np.float32(style.scale)
        out = xr.DataArray(values.astype(np.float32), dims=("y", "x"), name=product,
                           coords={"y": small.y, "x": small.x, "on_disk": (("y", "x"), disk_mask(small))},
                           attrs={"kind": "field", "title": style.title, "units": style.units})
    else:
        sensor = scene.attrs.get("sensor")
        needed, optional = product_channels(product, sensor)
        present = [c for c in (*needed, *optional) if c in scene.data_vars]
        if any(c not in scene.data_vars for c in needed):
            rgbmod.compose(scene, product, sensor)  # the recipe's own sentence on what is missing
        small = view_of(scene, x_range, y_range, width, height, present)
        composite = rgbmod.compose(small, product, sensor)
        rgba = rgbmod.to_rgba_uint8(composite)
        attrs = {k: composite.attrs[k] for k in ("title", "legend", "band_legend", "channels") if k in composite.attrs}
        out = xr.DataArray(rgba, dims=("y", "x", "rgba"), coords={"y": small.y, "x": small.x}, name=product,
                           attrs={"kind": "rgb", **attrs})
    out.attrs.update(platform=scene.attrs.get("platform", ""), slot_time=scene.attrs.get("slot_time", ""),
                     view_factor=small.attrs.get("view_factor", 1), crs_proj4=scene.attrs.get("crs_proj4", ""))
    if key is not None:
        out.values.flags.writeable = False
        FRAMES.put(key, out)
    return out


def _bounds(da: xr.DataArray) -> tuple[float, float, float, float]:
    x0, dx, nx = _edges(da["x"].values)
    y0, dy, ny = _edges(da["y"].values)
    xs, ys = sorted((x0, x0 + dx * nx)), sorted((y0, y0 + dy * ny))
    return xs[0], ys[0], xs[1], ys[1]


def rgb_element(rgba: xr.DataArray, kdims=("x", "y")) -> hv.RGB:
    """An RGBA frame (rows north first) as ``hv.RGB`` with bounds in its coordinates' units."""
    data = np.asarray(rgba.values)
    if rgba["y"].values.size > 1 and rgba["y"].values[1] > rgba["y"].values[0]:
        data = data[::-1]
    return hv.RGB(data, bounds=_bounds(rgba), kdims=list(kdims), vdims=["R", "G", "B", "A"])


def field_element(field: xr.DataArray, product: str, kdims=("x", "y")) -> hv.Image:
    """A cloud-top frame as ``hv.Image`` with the product's colour map, range and a colour bar with units."""
    style = CLOUD_TOP[product]
    values = np.asarray(field.values)
    y = field["y"].values
    x = field["x"].values
    if y.size > 1 and y[1] < y[0]:
        values, y = values[::-1], y[::-1]
    dim = hv.Dimension(product, label=style.title, unit=style.units)
    image = hv.Image((x, y, values), kdims=list(kdims), vdims=[dim])
    return image.opts(cmap=list(style.cmap), clim=style.clim, colorbar=True, clabel=f"{style.title} ({style.units})",
                      clipping_colors={"NaN": "#00000000"})


def image_element(frame_da: xr.DataArray, kdims=("x", "y")):
    """``hv.RGB`` or ``hv.Image`` of a :func:`frame`, as its kind says."""
    if frame_da.attrs.get("kind") == "field":
        return field_element(frame_da, str(frame_da.name), kdims)
    return rgb_element(frame_da, kdims)


# --------------------------------------------------------------------------------------------- coastlines


def _proj4(scene_or_proj4) -> str:
    if isinstance(scene_or_proj4, str):
        return scene_or_proj4
    proj4 = scene_or_proj4.attrs.get("crs_proj4")
    if not proj4:
        raise UserInputError("this scene has no 'crs_proj4' attribute: coastlines cannot be projected onto it")
    return str(proj4)


@cached(GRIDS, GRIDS_SHARE, key=lambda proj4, scale: ("coastline", proj4, scale))
def _coast_geos(proj4: str, scale: str) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    lon, lat = coastline_lines(scale)
    tr = Transformer.from_crs("EPSG:4326", proj4, always_xy=True)
    x, y = tr.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), errcheck=False)
    x, y = np.asarray(x), np.asarray(y)
    bad = ~(np.abs(x) < 1e12) | ~(np.abs(y) < 1e12)  # beyond the limb PROJ gives inf
    x[bad] = np.nan
    y[bad] = np.nan
    keep = ~(np.isnan(x) & np.roll(np.isnan(x), 1))  # one NaN between lines is enough
    x, y = x[keep], y[keep]
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def coastline_xy(scene_or_proj4, scale: str = "110m", x_range=None, y_range=None) -> tuple[np.ndarray, np.ndarray]:
    """Coastlines in a satellite's projection metres, NaN-separated; points outside the view (if given) cut."""
    x, y = _coast_geos(_proj4(scene_or_proj4), scale)
    if x_range is None or y_range is None:
        return x, y
    mx = 0.05 * (x_range[1] - x_range[0])
    my = 0.05 * (y_range[1] - y_range[0])
    with np.errstate(invalid="ignore"):
        inside = ((x >= x_range[0] - mx) & (x <= x_range[1] + mx) & (y >= y_range[0] - my) & (y <= y_range[1] + my))
    x2 = np.where(inside, x, np.nan)
    y2 = np.where(inside, y, np.nan)
    keep = ~(np.isnan(x2) & np.roll(np.isnan(x2), 1))
    return x2[keep], y2[keep]


def coastline_path(scene_or_proj4, x_range=None, y_range=None, color: str = "#f2e34c",
                   line_width: float = 0.8) -> hv.Path:
    """Coastlines over a geostationary view as one ``hv.Path`` (one Bokeh glyph).

    1:110m for views wider than 4,000 km, 1:50m (cut to the view) when zoomed in.
    """
    wide = x_range is None or abs(x_range[1] - x_range[0]) > 4.0e6
    x, y = coastline_xy(scene_or_proj4, "110m" if wide else "50m", None if wide else x_range,
                        None if wide else y_range)
    return hv.Path([np.column_stack([x, y])], kdims=["x", "y"]).opts(color=color, line_width=line_width)


# --------------------------------------------------------------------------------------------- lat/lon grids


def _geometry(scene: xr.Dataset) -> tuple[float, float, float, float, str]:
    """(a, b, h, lon_0, sweep) of a scene's geostationary projection."""
    attrs = scene.attrs
    try:
        return (float(attrs["a"]), float(attrs["b"]), float(attrs["h"]), float(attrs["lon_0"]),
                str(attrs.get("sweep", "y")))
    except KeyError:
        pass
    from pyproj import CRS

    p = CRS.from_proj4(_proj4(scene)).to_dict()
    return float(p["a"]), float(p.get("b", p["a"])), float(p["h"]), float(p.get("lon_0", 0.0)), str(p.get("sweep", "y"))


def geos_forward(lon, lat, a: float, b: float, h: float, lon_0: float, sweep: str = "y"):
    """Longitude/latitude (degrees) → geostationary projection metres (x, y); NaN where the satellite cannot see.

    PROJ's ``geos`` on an ellipsoid: geocentric latitude, the point's vector from the satellite, the scan angles
    about the sweep axis (``x`` for GOES, ``y`` for Meteosat and Himawari) times the height ``h``.
    """
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64) - lon_0)
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
    rp = b / a
    radius_g = 1.0 + h / a
    phi_c = np.arctan(rp * rp * np.tan(phi))
    cos_c = np.cos(phi_c)
    r = rp / np.hypot(rp * cos_c, np.sin(phi_c))
    vx = r * cos_c * np.cos(lam)
    vy = r * cos_c * np.sin(lam)
    vz = r * np.sin(phi_c)
    tmp = radius_g - vx
    visible = (tmp * vx - vy * vy - vz * vz / (rp * rp)) >= 0
    if sweep == "x":
        x = h * np.arctan(vy / np.hypot(vz, tmp))
        y = h * np.arctan(vz / tmp)
    else:
        x = h * np.arctan(vy / tmp)
        y = h * np.arctan(vz / np.hypot(vy, tmp))
    x = np.where(visible, x, np.nan)
    y = np.where(visible, y, np.nan)
    return x, y


def geos_inverse(scene: xr.Dataset, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Projection metres → (longitude, latitude) degrees with pyproj; NaN off the disk."""
    from pyproj import Transformer

    tr = Transformer.from_crs(_proj4(scene), "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), errcheck=False)
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    bad = ~(np.abs(lon) < 1e12) | ~(np.abs(lat) < 1e12)
    return np.where(bad, np.nan, lon), np.where(bad, np.nan, lat)


def viewing_zenith(sub_lon: float, lon, lat, h: float = 35_786_000.0, radius: float = 6_371_000.0) -> np.ndarray:
    """Viewing zenith angle (degrees) of a geostationary satellite at ``sub_lon`` (spherical Earth); NaN unseen."""
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64) - sub_lon)
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
    cos_g = np.cos(phi) * np.cos(lam)
    rs = radius + h
    d = np.sqrt(radius**2 + rs**2 - 2 * radius * rs * cos_g)
    cos_vza = (rs * cos_g - radius) / d
    vza = np.rad2deg(np.arccos(np.clip(cos_vza, -1.0, 1.0)))
    return np.where(cos_vza > 0, vza, np.nan)


def lonlat_grid(lon_range, lat_range, width: int, height: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (lon ascending, lat descending: north row first) of a regular lat/lon grid.

    ``height`` by default keeps the cells square in degrees. A ``lon_range`` whose end is below its start
    crosses the antimeridian (170, −170 is 20° wide).
    """
    lon0, lon1 = float(lon_range[0]), float(lon_range[1])
    if lon1 <= lon0:
        lon1 += 360.0
    lat0, lat1 = sorted((float(lat_range[0]), float(lat_range[1])))
    width = max(1, int(width))
    height = max(1, int(height)) if height else max(1, round(width * (lat1 - lat0) / (lon1 - lon0)))
    lon = lon0 + (np.arange(width) + 0.5) * (lon1 - lon0) / width
    lat = lat1 - (np.arange(height) + 0.5) * (lat1 - lat0) / height
    return lon, lat


@cached(GRIDS, GRIDS_SHARE, key=lambda *args: ("grid-index", *args))
def _grid_index(geometry: tuple, xgrid: tuple, ygrid: tuple, lon_key: bytes, lat_key: bytes):
    lon = np.frombuffer(lon_key, dtype=np.float64)
    lat = np.frombuffer(lat_key, dtype=np.float64)
    lon2, lat2 = np.meshgrid(lon, lat)
    x, y = geos_forward(lon2, lat2, *geometry)
    x0, dx, nx = xgrid
    y0, dy, ny = ygrid
    with np.errstate(invalid="ignore"):
        col = np.floor((x - x0) / dx)
        row = np.floor((y - y0) / dy)
        ok = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    flat = np.where(ok, np.where(ok, row, 0).astype(np.intp) * nx + np.where(ok, col, 0).astype(np.intp), 0)
    flat.flags.writeable = False
    ok.flags.writeable = False
    return flat, ok


def lonlat_regrid(scene: xr.Dataset, lon: np.ndarray, lat: np.ndarray,
                  channels: Sequence[str] | None = None) -> xr.Dataset:
    """A scene resampled (nearest neighbour) to a lat/lon grid (NaN off the disk).

    The geos forward projection of every cell centre gives the scene pixel it falls in. The result has dims
    ``(y, x)`` = (latitude, longitude) with coordinates ``latitude``/``longitude`` as well, so
    :func:`app.science.rgb.compose` finds the sun from them, and the scene's attributes (plus ``on_grid``, the
    cells the satellite sees).
    """
    names = list(scene.data_vars) if channels is None else list(channels)
    flat, ok = _grid_index(_geometry(scene), _edges(scene["x"].values), _edges(scene["y"].values),
                           np.ascontiguousarray(lon, dtype=np.float64).tobytes(),
                           np.ascontiguousarray(lat, dtype=np.float64).tobytes())
    data = {}
    for name in names:
        values = np.take(scene[name].transpose("y", "x").values.reshape(-1), flat).astype(np.float32)
        values[~ok] = np.nan
        data[name] = xr.DataArray(values, dims=("y", "x"), attrs=dict(scene[name].attrs))
    coords = {"y": ("y", lat), "x": ("x", lon), "latitude": ("y", lat), "longitude": ("x", lon)}
    return xr.Dataset(data, coords=coords, attrs={**scene.attrs, "on_grid": ok})


def _picture(small: xr.Dataset, product: str) -> np.ndarray:
    """(3, y, x) 0–1 composite or (y, x) field in the unit shown, of a (small, regridded) scene."""
    if product in CLOUD_TOP:
        style = CLOUD_TOP[product]
        return small[style.variable].values.astype(np.float32) * np.float32(style.scale)
    return rgbmod.compose(small, product, small.attrs.get("sensor")).values


def lonlat_frame(scene: xr.Dataset, product: str, lon_range, lat_range, width: int,
                 height: int | None = None) -> xr.DataArray:
    """One satellite's product on a lat/lon grid (regridded first, composed after), as :func:`frame` returns it."""
    lon, lat = lonlat_grid(lon_range, lat_range, width, height)
    names = ([CLOUD_TOP[product].variable] if product in CLOUD_TOP
             else [c for c in sum(product_channels(product, scene.attrs.get("sensor")), ()) if c in scene.data_vars])
    small = lonlat_regrid(scene, lon, lat, names)
    picture = _picture(small, product)
    coords = {"y": lat, "x": lon}
    if product in CLOUD_TOP:
        coords["on_disk"] = (("y", "x"), small.attrs.pop("on_grid"))
        style = CLOUD_TOP[product]
        return xr.DataArray(picture, dims=("y", "x"), coords=coords, name=product,
                            attrs={"kind": "field", "title": style.title, "units": style.units})
    rgba = rgbmod.to_rgba_uint8(picture)
    return xr.DataArray(rgba, dims=("y", "x", "rgba"), coords=coords, name=product,
                        attrs={"kind": "rgb", "title": product_title(product)})


def mosaic(scenes_by_platform: Mapping[str, xr.Dataset | None], lon_range, lat_range, width: int,
           height: int | None = None, product: str = "ash") -> xr.Dataset:
    """All satellites on one lat/lon grid, each cell from the satellite that sees it best.

    ``scenes_by_platform``: platform id → its scene (GeoScene for a composite, CloudTop for a CTTH product) or
    None when its slot is missing. Each scene is regridded to the grid (nearest neighbour), composed there, and a
    cell takes its value from the satellite with the smallest viewing zenith angle *among those with a value in
    that cell*: a missing slot, a no-data pixel or a satellite that cannot make the product falls back to the next.

    Returns a Dataset: ``rgba`` (y, x, rgba) uint8 for a composite or ``value`` (y, x) for a cloud-top field;
    ``source`` (y, x) int8, the index in ``attrs['platforms']`` of the satellite each cell came from (−1: none);
    ``viewing_zenith`` (y, x) of that satellite; attrs ``platforms``, ``product``, ``skipped`` (platform →
    reason).
    """
    lon, lat = lonlat_grid(lon_range, lat_range, width, height)
    lon2, lat2 = np.meshgrid(lon, lat)
    platforms = list(scenes_by_platform)
    best = np.full(lon2.shape, np.inf)
    source = np.full(lon2.shape, -1, dtype=np.int8)
    field = product in CLOUD_TOP
    out = np.full(lon2.shape if field else (3, *lon2.shape), np.nan, dtype=np.float32)
    skipped: dict[str, str] = {}
    for k, platform in enumerate(platforms):
        scene = scenes_by_platform[platform]
        if scene is None:
            skipped[platform] = "no slot"
            continue
        try:
            names = ([CLOUD_TOP[product].variable] if field
                     else [c for c in sum(product_channels(product, scene.attrs.get("sensor")), ())
                           if c in scene.data_vars])
            picture = _picture(lonlat_regrid(scene, lon, lat, names), product)
        except UserInputError as exc:
            skipped[platform] = str(exc)
            continue
        valid = np.isfinite(picture) if field else np.isfinite(picture).all(axis=0)
        vza = viewing_zenith(float(scene.attrs.get("sub_lon", geo.ring_position(platform).sub_lon)), lon2, lat2)
        better = valid & (np.nan_to_num(vza, nan=np.inf) < best)
        best[better] = vza[better]
        source[better] = k
        if field:
            out[better] = picture[better]
        else:
            out[:, better] = picture[:, better]
    coords = {"y": ("y", lat), "x": ("x", lon)}
    data = {"source": (("y", "x"), source), "viewing_zenith": (("y", "x"), np.where(source >= 0, best, np.nan))}
    if field:
        data["value"] = (("y", "x"), out)
    else:
        data["rgba"] = (("y", "x", "rgba"), rgbmod.to_rgba_uint8(out))
    return xr.Dataset(data, coords=coords, attrs={"platforms": platforms, "product": product, "skipped": skipped})


#: Colour of the Earth's disk where a cloud-top field has no value (clear sky), as RGBA.
CLEAR_SKY = (176, 176, 176, 255)


@cached(GRIDS, GRIDS_SHARE, key=lambda *args: ("disk", *args))
def _disk(proj4: str, x_key: bytes, y_key: bytes) -> np.ndarray:
    from pyproj import Transformer

    x = np.frombuffer(x_key, dtype=np.float64)
    y = np.frombuffer(y_key, dtype=np.float64)
    xx, yy = np.meshgrid(x, y)
    tr = Transformer.from_crs(proj4, "EPSG:4326", always_xy=True)
    lon, _ = tr.transform(xx, yy, errcheck=False)
    inside = np.abs(np.asarray(lon)) < 1e12
    inside.flags.writeable = False
    return inside


def disk_mask(scene_or_frame: xr.Dataset | xr.DataArray, proj4: str | None = None) -> np.ndarray:
    """True for the cells of a (y, x) grid in projection metres that lie on the Earth (the satellite sees)."""
    proj4 = proj4 or _proj4(scene_or_frame)
    return _disk(proj4, np.ascontiguousarray(scene_or_frame["x"].values, dtype=np.float64).tobytes(),
                 np.ascontiguousarray(scene_or_frame["y"].values, dtype=np.float64).tobytes())


def disk_rgba(frame_da: xr.DataArray, colour=CLEAR_SKY) -> np.ndarray:
    """RGBA of the Earth's disk under a frame: ``colour`` on the disk, transparent in space (rows as the frame)."""
    mask = disk_mask(frame_da)
    out = np.zeros((*mask.shape, 4), dtype=np.uint8)
    out[mask] = colour
    return out


def source_rgba(source: np.ndarray, colours: Sequence[str] = SOURCE_COLOURS) -> np.ndarray:
    """The mosaic's source layer as RGBA uint8: one colour per satellite, transparent where none."""
    src = np.asarray(source)
    out = np.zeros((*src.shape, 4), dtype=np.uint8)
    for k, colour in enumerate(colours):
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        out[src == k] = [*rgb, 255]
    return out


# --------------------------------------------------------------------------------------------- values


def pixel_values(scene: xr.Dataset, x: float | None = None, y: float | None = None, *, lat: float | None = None,
                 lon: float | None = None, channels: Sequence[str] | None = None) -> dict | None:
    """The values of a scene's variables in the pixel under a point (projection metres, or lat/lon degrees).

    Returns ``{"row", "col", "x", "y", "latitude", "longitude", "values": {name: {"value", "units", "band",
    "wavelength_um"}}}`` (NaN values as None), or None when the point is off the grid or not seen by the
    satellite.
    """
    if lat is not None and lon is not None:
        gx, gy = geos_forward(np.array([lon]), np.array([lat]), *_geometry(scene))
        x, y = float(gx[0]), float(gy[0])
    if x is None or y is None or not (np.isfinite(x) and np.isfinite(y)):
        return None
    x0, dx, nx = _edges(scene["x"].values)
    y0, dy, ny = _edges(scene["y"].values)
    col, row = int(np.floor((x - x0) / dx)), int(np.floor((y - y0) / dy))
    if not (0 <= col < nx and 0 <= row < ny):
        return None
    px, py = float(scene["x"].values[col]), float(scene["y"].values[row])
    plon, plat = geos_inverse(scene, [px], [py])
    if not np.isfinite(plat[0]):
        return None
    sensor = scene.attrs.get("sensor")
    values = {}
    for name in (list(scene.data_vars) if channels is None else channels):
        if name not in scene.data_vars:
            continue
        v = float(scene[name].transpose("y", "x").values[row, col])
        entry = {"value": None if not np.isfinite(v) else round(v, 3), "units": scene[name].attrs.get("units", "")}
        if name in GENERIC_CHANNELS:
            try:
                band = band_for_generic(sensor, name)
                entry.update(band=band.band_id, wavelength_um=band.central_wavelength_um)
            except KeyError:
                entry.update(band=None, wavelength_um=GENERIC_CHANNELS[name].wavelength_um)
        values[name] = entry
    return {"row": row, "col": col, "x": px, "y": py, "latitude": round(float(plat[0]), 4),
            "longitude": round(float(plon[0]), 4), "values": values}


# --------------------------------------------------------------------------------------------- pictures


def colorize(values: np.ndarray, cmap: Sequence[str], clim: tuple[float, float]) -> np.ndarray:
    """A field as RGBA uint8 through a list of hex colours over ``clim`` (ends clipped; NaN transparent)."""
    lut = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in cmap], dtype=np.uint8)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    t = np.clip((np.where(ok, v, clim[0]) - clim[0]) / (clim[1] - clim[0]), 0.0, 1.0)
    idx = np.minimum((t * len(lut)).astype(np.intp), len(lut) - 1)
    out = np.zeros((*v.shape, 4), dtype=np.uint8)
    out[..., :3] = lut[idx]
    out[..., 3] = np.where(ok, 255, 0)
    return out


def frame_rgba(frame_da: xr.DataArray) -> np.ndarray:
    """A frame (composite or cloud-top field) as RGBA uint8, north row first."""
    if frame_da.attrs.get("kind") == "field":
        style = CLOUD_TOP[str(frame_da.name)]
        rgba = colorize(frame_da.values, style.cmap, style.clim)
        if "on_disk" in frame_da.coords:  # clear sky on the disk in grey, space transparent
            clear = frame_da["on_disk"].values & (rgba[..., 3] == 0)
            rgba[clear] = CLEAR_SKY
    else:
        rgba = np.asarray(frame_da.values)
    y = frame_da["y"].values
    return rgba[::-1] if y.size > 1 and y[1] > y[0] else rgba


def png_bytes(rgba: np.ndarray) -> bytes:
    """RGBA uint8 (rows north first) as PNG bytes (Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), mode="RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def thumbnail_png(frame_da: xr.DataArray, coastlines: bool = True) -> bytes:
    """A frame as a small PNG that needs no plot: space black, clear sky grey, coastlines drawn in (Pillow).

    The ring's thumbnails: five of these are five ``<img>`` (a few tens of kB each, encoded once and cached), not
    five Bokeh figures to build, send and lay out.
    """
    from PIL import Image, ImageDraw

    rgba = frame_rgba(frame_da)
    picture = Image.new("RGBA", (rgba.shape[1], rgba.shape[0]), (0, 0, 0, 255))
    picture.alpha_composite(Image.fromarray(np.ascontiguousarray(rgba), mode="RGBA"))
    if coastlines and frame_da.attrs.get("crs_proj4"):
        x, y = coastline_xy(frame_da.attrs["crs_proj4"])
        x0, dx, _ = _edges(frame_da["x"].values)
        y0, dy, _ = _edges(frame_da["y"].values)
        col = (x - x0) / dx
        row = (y - y0) / dy
        if frame_da["y"].values.size > 1 and frame_da["y"].values[1] > frame_da["y"].values[0]:
            row = rgba.shape[0] - row  # frame_rgba put the north row first
        colour = (51, 51, 51, 255) if frame_da.attrs.get("kind") == "field" else (242, 227, 76, 255)
        draw = ImageDraw.Draw(picture)
        for part in np.split(np.column_stack([col, row]), np.flatnonzero(np.isnan(col)) + 1):
            part = part[np.isfinite(part).all(axis=1)]
            if len(part) > 1:
                draw.line([tuple(p) for p in part], fill=colour, width=1)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def frame_png(frame_da: xr.DataArray, *, title: str, subtitle: str = "", legend: Sequence[str] = (),
              coast: tuple[np.ndarray, np.ndarray] | None = None, credits: str = "",
              size: tuple[float, float] = (12.0, 8.0), dpi: int = 100) -> bytes:
    """A frame as a picture that stands on its own (matplotlib, Agg).

    Title (satellite, product), subtitle (time), the image with coastlines, the composite's legend (or a colour
    bar with units) and the credits, drawn in; the same words in the PNG's text fields (``Title``, ``Time``,
    ``Colour bar``, ``Credits``), so a program can check what a picture claims to show.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.08, 0.56, 0.8))
    left, bottom, right, top = _bounds(frame_da)
    field = frame_da.attrs.get("kind") == "field"
    if field:
        style = CLOUD_TOP[str(frame_da.name)]
        if "on_disk" in frame_da.coords:
            under = np.zeros((*frame_da.shape, 4), dtype=np.uint8)
            under[frame_da["on_disk"].values] = CLEAR_SKY
            ax.imshow(under[::-1] if frame_da["y"].values[-1] > frame_da["y"].values[0] else under,
                      extent=(left, right, bottom, top), origin="upper", interpolation="nearest")
        values = np.asarray(frame_da.values)
        if frame_da["y"].values.size > 1 and frame_da["y"].values[1] > frame_da["y"].values[0]:
            values = values[::-1]
        image = ax.imshow(np.ma.masked_invalid(values), extent=(left, right, bottom, top), origin="upper",
                          cmap=ListedColormap(list(style.cmap)), vmin=style.clim[0], vmax=style.clim[1],
                          interpolation="nearest")
    else:
        ax.imshow(frame_rgba(frame_da), extent=(left, right, bottom, top), origin="upper", interpolation="nearest")
    ax.set_facecolor("black")
    if coast is not None:
        ax.plot(coast[0], coast[1], color="#333333" if field else "#f2e34c", lw=0.6)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.text(0.02, 0.965, title, fontsize=16, weight="bold", color="#222222", va="top")
    if subtitle:
        fig.text(0.02, 0.92, subtitle, fontsize=12, color="#555555", va="top")
    x_text = 0.61
    if field:
        ax.apply_aspect()
        box = ax.get_position()
        cax = fig.add_axes((box.x1 + 0.015, box.y0, 0.018, box.height))
        bar = fig.colorbar(image, cax=cax, extend="both")
        bar.set_label(f"{style.title} ({style.units})", fontsize=11)
        x_text = box.x1 + 0.11
    chars = max(20, int((0.98 - x_text) * size[0] * 72 / (9.5 * 0.6)))  # 9.5 pt text, ~0.6 em a character
    lines = []
    for item in legend:
        lines.extend(textwrap.wrap(str(item), chars) or [""])
    fig.text(x_text, 0.86, "\n".join(lines), fontsize=9.5, color="#222222", va="top", ha="left", linespacing=1.45)
    if credits:
        fig.text(0.02, 0.02, credits, fontsize=8.5, style="italic", color="#555555", va="bottom")
    words = {"Title": title, "Time": subtitle, "Credits": credits}
    if field:
        words["Colour bar"] = f"{style.title} ({style.units})"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white",
                metadata={k: v.replace("—", "-").encode("latin-1", "replace").decode("latin-1")
                          for k, v in words.items() if v})
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- frame stamps


def stamp_rgba(text: str, small: bool = False) -> np.ndarray:
    """The stamp of a frame: ``text`` (satellite, product, UTC time) in white on a dark box (RGBA, top left).

    Only words for the eye: no machine-readable strip is drawn (issue 11). A test proves which slot a page shows by
    comparing the stamp's image data in the page with this function's output for the slot it expects (the same
    pixels, byte for byte), and reads the slot itself from the page's state (``.georing-state``'s attributes).
    """
    from PIL import Image, ImageDraw

    font = _stamp_font(12 if small else 14)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    box = probe.textbbox((0, 0), text, font=font)
    image = Image.new("RGBA", (box[2] + 12, box[3] + 10), (0, 0, 0, 200))
    ImageDraw.Draw(image).text((6, 4), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(image)


@functools.lru_cache(maxsize=4)  # a font per size: a constant of the process
def _stamp_font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def stamp_element(width: int, height: int, x_range, y_range, text: str, kdims=("x", "y")) -> hv.RGB:
    """:func:`stamp_rgba` as an ``hv.RGB`` at the top left of a view of ``width`` x ``height`` screen pixels.

    Only the stamp's own pixels are sent (not a transparent layer the size of the frame).
    """
    rgba = stamp_rgba(text, small=int(width) < 500)
    (x0, x1), (y0, y1) = x_range, y_range
    dx, dy = (x1 - x0) / max(int(width), 1), (y1 - y0) / max(int(height), 1)
    h, w = rgba.shape[:2]
    return hv.RGB(rgba, bounds=(x0, y1 - h * dy, x0 + w * dx, y1), kdims=list(kdims), vdims=["R", "G", "B", "A"])


# --------------------------------------------------------------------------------------------- frames for the browser


def image_columns(element) -> dict:
    """The columns HoloViews puts in the Bokeh data source of an ``hv.RGB`` or ``hv.Image`` (``image, x, y, dw, dh``).

    The same arrays as ``RGBPlot.get_data`` / ``RasterPlot.get_data`` (HoloViews 1.23): the RGBA planes stacked and
    viewed as one ``uint32`` per pixel, or the field's values, rows bottom first. A page that is sent these columns
    ahead (:func:`wire_columns`) and swaps them into its image's source shows byte for byte what a redraw by the
    server would have sent (``tests/test_georing.py`` checks it against HoloViews' own plot).
    """
    if isinstance(element, hv.RGB):
        img = np.dstack([element.dimension_values(d, flat=False) for d in element.vdims])
        img[np.isnan(img)] = 0
        if img.dtype.name != "uint8":
            img = img.astype(np.uint8)
        if img.shape[2] == 3:
            img = np.dstack([img, np.full(img.shape[:2], 255, dtype="uint8")])
        n, m, _ = img.shape
        img = np.ascontiguousarray(img).view(dtype=np.uint32).reshape((n, m))
    else:
        img = element.dimension_values(2, flat=False)
        if img.dtype.kind == "b":
            img = img.astype(np.int8)
    left, bottom, right, top = element.bounds.lbrt()
    return {"image": np.ascontiguousarray(img), "x": float(left), "y": float(bottom), "dw": float(right - left),
            "dh": float(top - bottom)}


def wire_columns(element, level: int = 1) -> dict:
    """:func:`image_columns` for a page: the image's bytes deflated (zlib) and in base64, with dtype and shape.

    The browser inflates them with its own ``DecompressionStream('deflate')``: exact bytes (a PNG decoded through a
    canvas would lose them to premultiplied alpha), a fraction of the raw size.
    """
    cols = image_columns(element)
    img = cols.pop("image")
    return {**cols, "dtype": img.dtype.name, "shape": list(img.shape),
            "b64": base64.b64encode(zlib.compress(img.tobytes(), level)).decode("ascii")}
