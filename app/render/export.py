"""Map pictures as PNG with matplotlib, for downloads, the HTTP API and the kiosk.

The picture holds what the dashboard's map shows — the aggregated field in the same colours, coastlines (and
borders), the volcano with its dashed circles, time labels along the orbits — and what a picture on its own needs:
a title, a subtitle (date), a colour bar with units, the list of orbits and the credits line, drawn in.

matplotlib is used through ``matplotlib.figure.Figure`` and the Agg canvas only, never its global-state interface,
so no figure registry, backend switch or state shared between requests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure

from app.data.basemap import border_paths, coastline_paths
from app.render.overlays import auto_scale, circle_lines

__all__ = ["map_figure", "map_png", "figure_png"]

_TEXT = "#222222"
_MUTED = "#555555"
_HALO = [patheffects.withStroke(linewidth=2.5, foreground="white")]


def _colormap(cmap: str | Sequence[str] | Colormap) -> Colormap:
    if isinstance(cmap, Colormap):
        return cmap
    if isinstance(cmap, str):
        from matplotlib import colormaps

        return colormaps[cmap]
    return ListedColormap(list(cmap))


def _extent(agg: xr.DataArray) -> tuple[float, float, float, float]:
    """Outer edges (left, right, bottom, top) of a regular (y, x) grid given its cell centres."""
    x = agg["x"].to_numpy().astype(float)
    y = agg["y"].to_numpy().astype(float)
    dx = (x[-1] - x[0]) / (x.size - 1) if x.size > 1 else 1.0
    dy = (y[-1] - y[0]) / (y.size - 1) if y.size > 1 else 1.0
    return x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2


def _draw_lines(ax, data: list[np.ndarray], **style) -> None:
    if data:
        ax.plot(data[0][:, 0], data[0][:, 1], **style)


def _draw_volcano(ax, volcano, radii_km, central_longitude: float) -> None:
    lat, lon, name = volcano
    if len(radii_km):
        xy = circle_lines(lat, lon, radii_km, central_longitude)
        ax.plot(xy[:, 0], xy[:, 1], color="black", lw=1.2, ls=(0, (5, 3)))
    x = float((lon - (central_longitude - 180.0)) % 360.0 + (central_longitude - 180.0))
    ax.plot([x], [lat], marker="^", ms=10, color="#d7301f", mec="black", mew=0.8, ls="none", zorder=5)
    if name:
        ax.annotate(
            name, (x, lat), xytext=(7, 7), textcoords="offset points", fontsize=9, color=_TEXT, weight="bold",
            path_effects=_HALO, zorder=5,
        )  # fmt: skip


def _draw_time_labels(ax, time_labels, x_range, y_range) -> None:
    for x, y, text in time_labels:
        if x_range[0] <= x <= x_range[1] and y_range[0] <= y <= y_range[1]:
            ax.text(x, y, f" {text}", fontsize=8, color=_TEXT, weight="bold", va="center", ha="left", clip_on=True,
                    path_effects=_HALO, zorder=4)  # fmt: skip


def _place_colorbar(fig: Figure, ax, mappable, label: str, extend: str):
    """A vertical colour bar just right of the map axes, as tall as the map (after the aspect is applied)."""
    ax.apply_aspect()
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + 0.012, box.y0, 0.014, box.height))
    bar = fig.colorbar(mappable, cax=cax, extend=extend)
    low, high = mappable.get_clim()
    bar.set_ticks(np.linspace(low, high, 5))  # the ends labelled, as on the dashboard's bar
    bar.ax.yaxis.set_major_formatter("{x:.3g}")
    bar.set_label(label, fontsize=10, color=_TEXT)
    bar.ax.tick_params(labelsize=9, colors=_TEXT)
    return bar


def map_figure(
    agg: xr.DataArray,
    *,
    clim: tuple[float, float],
    cmap: str | Sequence[str] | Colormap,
    title: str,
    subtitle: str = "",
    credits: str = "",
    colorbar_label: str = "",
    central_longitude: float = 0.0,
    coast: bool = True,
    borders: bool = False,
    volcano: tuple[float, float, str] | None = None,
    radii_km: Sequence[float] = (),
    orbit_labels: Sequence[str] = (),
    time_labels: Sequence[tuple[float, float, str]] = (),
    size: tuple[float, float] = (12, 7),
) -> Figure:
    """The map picture as a matplotlib ``Figure`` (not attached to pyplot); `map_png` renders it.

    ``agg`` is a screen grid from `app.render.swath.aggregate` (dims ``y, x`` in lat/lon degrees, in the frame of
    ``central_longitude``); NaN cells stay white. Values outside ``clim`` take the end colours, as on the dashboard.
    ``volcano`` is ``(lat, lon, name)``, with dashed geodesic circles of ``radii_km`` around it; ``orbit_labels``
    the orbit list (e.g. "#18112: 00:30 → 01:21"), written right of the colour bar; ``time_labels``
    ``(lon, lat, "HH:MM")`` triples (`app.render.overlays.time_label_positions`) written on the map.
    """
    fig = Figure(figsize=size, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.07, 0.11, 0.66, 0.76))
    ax.set_facecolor("white")
    left, right, bottom, top = _extent(agg)
    x_range, y_range = (left, right), (bottom, top)
    colormap = _colormap(cmap)
    image = ax.imshow(
        np.ma.masked_invalid(agg.transpose("y", "x").to_numpy()),
        extent=(left, right, bottom, top),
        origin="lower" if agg["y"].to_numpy()[-1] >= agg["y"].to_numpy()[0] else "upper",
        cmap=colormap,
        vmin=clim[0],
        vmax=clim[1],
        interpolation="nearest",
        aspect="equal",
        zorder=1,
    )
    scale = auto_scale(x_range)
    if coast:
        _draw_lines(ax, coastline_paths(scale, x_range, y_range, central_longitude), color="black", lw=0.7, zorder=3)
    if borders:
        _draw_lines(ax, border_paths(scale, x_range, y_range, central_longitude), color=_MUTED, lw=0.6, ls=":",
                    zorder=3)  # fmt: skip
    if volcano is not None:
        _draw_volcano(ax, volcano, radii_km, central_longitude)
    _draw_time_labels(ax, time_labels, x_range, y_range)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_xlabel("Longitude (°)", fontsize=10, color=_TEXT)
    ax.set_ylabel("Latitude (°)", fontsize=10, color=_TEXT)
    ax.tick_params(labelsize=9, colors=_TEXT)
    bar = _place_colorbar(fig, ax, image, colorbar_label, "both")
    box = ax.get_position()
    fig.text(box.x0, 0.955, title, fontsize=16, weight="bold", color=_TEXT, va="top", ha="left")
    if subtitle:
        fig.text(box.x0, 0.905, subtitle, fontsize=11, color=_MUTED, va="top", ha="left")
    if orbit_labels:
        x_text = bar.ax.get_position().x1 + 0.075
        fig.text(x_text, box.y1, "Orbits", fontsize=10, weight="bold", color=_TEXT, va="top", ha="left")
        fig.text(x_text, box.y1 - 0.035, "\n".join(orbit_labels), fontsize=9, color=_TEXT, va="top", ha="left",
                 linespacing=1.5, family="DejaVu Sans")  # fmt: skip
    if credits:
        fig.text(box.x0, 0.02, credits, fontsize=8.5, style="italic", color=_MUTED, va="bottom", ha="left")
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure at ``dpi`` (the picture is exactly ``figsize × dpi`` pixels)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    return buffer.getvalue()


def map_png(
    agg: xr.DataArray,
    *,
    clim: tuple[float, float],
    cmap: str | Sequence[str] | Colormap,
    title: str,
    subtitle: str = "",
    credits: str = "",
    colorbar_label: str = "",
    central_longitude: float = 0.0,
    coast: bool = True,
    borders: bool = False,
    volcano: tuple[float, float, str] | None = None,
    radii_km: Sequence[float] = (),
    orbit_labels: Sequence[str] = (),
    time_labels: Sequence[tuple[float, float, str]] = (),
    dpi: int = 100,
    size: tuple[float, float] = (12, 7),
) -> bytes:
    """The map as PNG bytes, ``size`` inches × ``dpi`` (1200 × 700 pixels by default); see `map_figure`."""
    fig = map_figure(
        agg,
        clim=clim,
        cmap=cmap,
        title=title,
        subtitle=subtitle,
        credits=credits,
        colorbar_label=colorbar_label,
        central_longitude=central_longitude,
        coast=coast,
        borders=borders,
        volcano=volcano,
        radii_km=radii_km,
        orbit_labels=orbit_labels,
        time_labels=time_labels,
        size=size,
    )
    return figure_png(fig, dpi)
