"""Titled frames drawn around a picture: the kiosk's screens and the frames of an exported animation.

A :class:`Picture` is what a frame shows before it is laid out: an image on lon/lat (or projected) axes, a CALIOP
curtain, or a chart, with its time, credits and colour bar (colour map, norm, label with units) or legend.

- :func:`compose` draws a **screen frame** (the kiosk's, :mod:`app.services.kiosk`) at a size class such as
  1920 × 1080 or 1080 × 1920 (matplotlib, Agg, no pyplot): title and caption in large type, the picture, its colour
  bar with units (a composite's legend), the UTC time, the credits and a QR code of a link; PNG with the words in
  its text chunks.
- :func:`export_layout` and :func:`compose_export` draw an **export frame** (one frame of an animation,
  :mod:`app.services.animation`) at a given width: title and subtitle, the UTC time stamp top right, the map placed
  pixel for pixel (no resampling: its pixels are the API's PNG of the same slot), the colour bar with units or the
  composite's legend below it, and the credits. Returns RGB ``uint8`` for the video encoder
  (:mod:`app.render.animate`).

This module reads no file but the basemap's coastlines (:mod:`app.data.basemap`).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.render import overlays

__all__ = ["Picture", "compose", "ExportLayout", "export_layout", "compose_export", "Composed", "values_rgba",
           "geo_credits", "TITLE_PX", "CAPTION_PX", "TIME_PX", "LABEL_PX", "CREDITS_PX"]

#: Type sizes in pixels on a 1080-pixel short side (read from 3 m): title, caption, time, labels, credits.
TITLE_PX, CAPTION_PX, TIME_PX, LABEL_PX, CREDITS_PX = 60, 34, 34, 24, 20
_BG, _FG, _MUTED = "#0d1117", "#f5f5f5", "#b8c0cc"
_PANEL = "#dfe3e8"  # the map's no-data background: light, so the SO2 scale's pale low end stays visible


@dataclass
class Picture:
    """What a frame shows, before it is laid out: an image on axes, or a chart, and what goes around it."""

    kind: str  # "map" (lon/lat, coastlines), "curtain" (latitude × altitude) or "chart" (mass over time)
    time_text: str
    credits: str
    image: np.ndarray | None = None  # (y, x, 4) uint8, top row first, or (y, x) float values with ``cmap``
    extent: tuple[float, float, float, float] = (0, 1, 0, 1)  # left, right, bottom, top
    cmap: object = None
    norm: object = None
    colorbar_label: str = ""
    colorbar_ticks: Sequence[float] | None = None
    legend: list[str] = field(default_factory=list)
    central_longitude: float = 0.0
    volcano: tuple[float, float, str] | None = None
    series: pd.DataFrame | None = None
    background: str = _PANEL
    page: str = ""  # the dashboard of the kiosk's permalink: volcplume or georing
    state: dict = field(default_factory=dict)  # its query


def _pt(px: float) -> float:
    return px * 72.0 / 100.0  # the figure is drawn at 100 dpi


def _wrap(text: str, width_px: float, px: float, max_lines: int, bold: bool = False) -> list[str]:
    chars = max(10, int(width_px / (px * (0.64 if bold else 0.55))))
    lines = textwrap.wrap(text, chars) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, chars - 1)].rstrip() + "…"
    return lines


@dataclass
class _Layout:
    """Pixel boxes (left, bottom, width, height, from the bottom-left corner) of a frame's parts."""

    w: int
    h: int
    title_lines: list[str]
    caption_lines: list[str]
    picture: tuple[float, float, float, float]
    colorbar: tuple[float, float, float, float]
    vertical_bar: bool
    time_xy: tuple[float, float]
    legend_xy: tuple[float, float]
    legend_width: float
    qr: tuple[int, int, int]  # left, top (from the top-left, image rows) and side, in pixels
    credits_xy: tuple[float, float]
    credits_width: float


def _layout(w: int, h: int, title: str, caption: str) -> _Layout:
    m = 44
    if w >= h:  # landscape: picture left, a column on the right (time, colour bar, QR)
        title_lines = _wrap(title, w - 2 * m, TITLE_PX, 1, bold=True)
        caption_lines = _wrap(caption, w - 2 * m, CAPTION_PX, 2)
        header = m + len(title_lines) * TITLE_PX * 1.25 + len(caption_lines) * CAPTION_PX * 1.3 + 24
        col = w - 470
        qr_side = 250
        return _Layout(w, h, title_lines, caption_lines,
                       picture=(m + 90, 140, col - m - 130, h - header - 150),
                       colorbar=(col + 20, h - header - 500, 34, 300), vertical_bar=True,
                       time_xy=(col, h - header - 30), legend_xy=(col, h - header - 150), legend_width=w - col - m,
                       qr=(w - m - qr_side, h - m - qr_side - 20, qr_side), credits_xy=(m, 22),
                       credits_width=col - 2 * m)
    title_lines = _wrap(title, w - 2 * m, TITLE_PX, 2, bold=True)
    caption_lines = _wrap(caption, w - 2 * m, CAPTION_PX, 5)
    header = m + len(title_lines) * TITLE_PX * 1.25 + len(caption_lines) * CAPTION_PX * 1.3 + 30
    qr_side = 300
    pic_h = 0.45 * h
    pic_bottom = h - header - pic_h
    return _Layout(w, h, title_lines, caption_lines,
                   picture=(m + 100, pic_bottom, w - 2 * m - 110, pic_h),
                   colorbar=(m + 60, pic_bottom - 150, w - 2 * m - 120, 34), vertical_bar=False,
                   time_xy=(m, pic_bottom - 230), legend_xy=(m, pic_bottom - 330),
                   legend_width=w - 2 * m - qr_side - 40,
                   qr=(w - m - qr_side, h - m - qr_side - 40, qr_side), credits_xy=(m, 40),
                   credits_width=w - 2 * m - qr_side - 30)


def _ftext(fig, x_px, y_px, text, px, lay: _Layout, **kw):
    return fig.text(x_px / lay.w, y_px / lay.h, text, fontsize=_pt(px), parse_math=False, **kw)


def _draw_header(fig, lay: _Layout) -> None:
    y = lay.h - 40
    for line in lay.title_lines:
        _ftext(fig, 44, y, line, TITLE_PX, lay, color=_FG, weight="bold", va="top")
        y -= TITLE_PX * 1.25
    y -= 6
    for line in lay.caption_lines:
        _ftext(fig, 44, y, line, CAPTION_PX, lay, color=_MUTED, va="top")
        y -= CAPTION_PX * 1.3


def _axes(fig, box, lay: _Layout):
    left, bottom, width, height = box
    return fig.add_axes((left / lay.w, bottom / lay.h, width / lay.w, height / lay.h))


def _style_axes(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel, fontsize=_pt(LABEL_PX), color=_FG)
    ax.set_ylabel(ylabel, fontsize=_pt(LABEL_PX), color=_FG)
    ax.tick_params(labelsize=_pt(LABEL_PX - 4), colors=_FG)
    for spine in ax.spines.values():
        spine.set_color(_MUTED)


def _draw_map(ax, pic: Picture) -> object:
    from app.data.basemap import coastline_paths

    left, right, bottom, top = pic.extent
    ax.set_facecolor(pic.background)
    img = pic.image
    mappable = ax.imshow(np.ma.masked_invalid(img) if img.ndim == 2 else img, extent=pic.extent, origin="upper",
                         cmap=pic.cmap if img.ndim == 2 else None, norm=pic.norm if img.ndim == 2 else None,
                         interpolation="nearest", aspect="equal")
    coast = coastline_paths(overlays.auto_scale((left, right)), (left, right), (bottom, top), pic.central_longitude)
    if coast:
        colour = "#f2e34c" if pic.background == "black" else "#222222"
        ax.plot(coast[0][:, 0], coast[0][:, 1], color=colour, lw=1.2)
    if pic.volcano is not None:
        lat, lon, name = pic.volcano
        x = float((lon - (pic.central_longitude - 180.0)) % 360.0 + (pic.central_longitude - 180.0))
        ax.plot([x], [lat], marker="^", ms=18, color="#d7301f", mec="white", mew=1.5, ls="none")
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    _style_axes(ax, "Longitude (°)", "Latitude (°)")
    return mappable if img.ndim == 2 else None


def _draw_curtain(ax, pic: Picture) -> object:
    ax.imshow(pic.image, extent=pic.extent, origin="upper", interpolation="nearest", aspect="auto")
    ax.set_facecolor("black")
    _style_axes(ax, "Latitude along the track (°)", "Altitude (km)")
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=pic.norm, cmap=pic.cmap)


def _draw_chart(ax, pic: Picture) -> None:
    table = pic.series
    ax.set_facecolor("#161b22")
    colours = ("#ffd166", "#ef476f", "#06d6a0", "#118ab2", "#f78c6b")
    for k, (radius, rows) in enumerate(table.groupby("radius_km")):
        rows = rows.sort_values("time")
        ax.plot(pd.to_datetime(rows["time"]), rows["mass_t"], marker="o", ms=12, lw=3,
                color=colours[k % len(colours)], label=f"within {radius:g} km")
    ax.legend(fontsize=_pt(LABEL_PX), facecolor="#161b22", labelcolor=_FG, edgecolor=_MUTED)
    ax.grid(color="#30363d")
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%H:%M"))
    _style_axes(ax, "Time of the satellite's pass (UTC)", pic.colorbar_label)


def _draw_bar(fig, lay: _Layout, mappable, pic: Picture) -> None:
    cax = _axes(fig, lay.colorbar, lay)
    bar = fig.colorbar(mappable, cax=cax, orientation="vertical" if lay.vertical_bar else "horizontal",
                       extend="both")
    if pic.colorbar_ticks is not None:
        bar.set_ticks(pic.colorbar_ticks)
        bar.ax.tick_params(which="minor", length=0)
    fmt = "{x:.3g}"
    (bar.ax.yaxis if lay.vertical_bar else bar.ax.xaxis).set_major_formatter(fmt)
    bar.ax.tick_params(labelsize=_pt(LABEL_PX - 4), colors=_FG)
    label_lines = _wrap(pic.colorbar_label, 420 if lay.vertical_bar else lay.colorbar[2], LABEL_PX, 2)
    bar.set_label("\n".join(label_lines), fontsize=_pt(LABEL_PX), color=_FG)
    bar.outline.set_edgecolor(_MUTED)


def _draw_side(fig, lay: _Layout, pic: Picture) -> None:
    when = _wrap(pic.time_text, lay.legend_width, TIME_PX, 2, bold=True)
    _ftext(fig, *lay.time_xy, "\n".join(when), TIME_PX, lay, color=_FG, weight="bold", va="top", linespacing=1.2)
    if pic.legend:
        lines: list[str] = []
        for item in pic.legend[:4]:
            lines.extend(_wrap(item, lay.legend_width, LABEL_PX - 2, 3))
        _ftext(fig, *lay.legend_xy, "\n".join(lines[:9]), LABEL_PX - 2, lay, color=_MUTED, va="top",
              linespacing=1.3)
    credits = _wrap(f"Credits: {pic.credits}. Fumarole.", lay.credits_width, CREDITS_PX, 2)
    _ftext(fig, *lay.credits_xy, "\n".join(credits), CREDITS_PX, lay, color=_MUTED, style="italic", va="bottom")
    qx, qy, side = lay.qr
    _ftext(fig, qx + side / 2, lay.h - qy + 8, "Scan to explore", CREDITS_PX, lay, color=_FG, ha="center",
          va="bottom")


def _qr_pixels(url: str, side: int) -> tuple[np.ndarray, int, int]:
    """The QR code of ``url`` as an RGB square of at most ``side`` pixels (4-module quiet zone), module px, count."""
    import segno

    qr = segno.make(url, error="m", micro=False)
    matrix = np.array([list(row) for row in qr.matrix], dtype=bool)
    n = matrix.shape[0]
    module = max(1, side // (n + 8))
    full = np.pad(matrix, 4)
    picture = np.where(np.repeat(np.repeat(full, module, 0), module, 1), 0, 255).astype(np.uint8)
    return np.dstack([picture] * 3), module, n


def _below_the_map(ax, lay: _Layout) -> None:
    """Portrait: a map (kept in its shape) goes to the top of its box; bar, time and legend follow right below."""
    ax.set_anchor("N")
    ax.apply_aspect()
    bottom = ax.get_position().y0 * lay.h
    shift = bottom - lay.picture[1]
    if shift <= 0:
        return
    left, cb_bottom, width, height = lay.colorbar
    lay.colorbar = (left, cb_bottom + shift, width, height)
    lay.time_xy = (lay.time_xy[0], lay.time_xy[1] + shift)
    lay.legend_xy = (lay.legend_xy[0], lay.legend_xy[1] + shift)


def compose(pic: Picture, size: tuple[int, int], title: str, caption: str, url: str | None = None,
            extra: dict | None = None) -> bytes:
    """A screen frame's PNG (the kiosk's): header, picture, colour bar or legend, time, credits, QR code of ``url``.

    The words are also written in the PNG's text chunks (``Title``, ``Caption``, ``Time``, ``URL``, ``Credits``,
    ``Colour bar``, ``QR box``, ``Map box`` and ``extra``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    w, h = size
    lay = _layout(w, h, title, caption)
    fig = Figure(figsize=(w / 100, h / 100), dpi=100, facecolor=_BG)
    canvas = FigureCanvasAgg(fig)
    _draw_header(fig, lay)
    ax = _axes(fig, lay.picture, lay)
    mappable = None
    if pic.kind == "map":
        mappable = _draw_map(ax, pic)
    elif pic.kind == "curtain":
        mappable = _draw_curtain(ax, pic)
    else:
        _draw_chart(ax, pic)
    if pic.kind == "map" and not lay.vertical_bar:
        _below_the_map(ax, lay)
    if mappable is not None:
        _draw_bar(fig, lay, mappable, pic)
    _draw_side(fig, lay, pic)
    canvas.draw()
    ax_box = ax.get_window_extent()  # after the aspect is applied, in pixels from the bottom-left
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    words = {"Title": title, "Caption": caption, "Time": pic.time_text, "URL": url or "", **(extra or {}),
             "Credits": pic.credits, "Colour bar": pic.colorbar_label,
             "Map box": (f"{ax_box.x0:.1f},{h - ax_box.y1:.1f},{ax_box.x1:.1f},{h - ax_box.y0:.1f};"
                         + ",".join(f"{v:g}" for v in pic.extent))}
    if url:
        qr, module, n = _qr_pixels(url, lay.qr[2])
        qx, qy, _ = lay.qr
        rgb[qy:qy + qr.shape[0], qx:qx + qr.shape[1]] = qr
        words["QR box"] = f"{qx + 4 * module},{qy + 4 * module},{module},{n}"
    info = PngInfo()
    for key, value in words.items():
        if value:
            info.add_itxt(key, value)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG", pnginfo=info, compress_level=3)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------- export frames


def values_rgba(values: np.ndarray, cmap, norm, background: str = "white") -> np.ndarray:
    """Values (top row first) as RGBA ``uint8`` through a matplotlib colour map and norm; NaN in ``background``."""
    from matplotlib.colors import to_rgba

    rgba = np.asarray(cmap(norm(np.ma.masked_invalid(values)), bytes=True), dtype=np.uint8).copy()
    rgba[~np.isfinite(values)] = np.array([round(255 * c) for c in to_rgba(background)], dtype=np.uint8)
    return rgba


@dataclass(frozen=True)
class ExportLayout:
    """An export frame's size and its map's box (left, top, width, height, image pixels), and its type sizes."""

    w: int
    h: int
    map_box: tuple[int, int, int, int]
    title_px: int
    sub_px: int
    time_px: int
    label_px: int
    credits_px: int
    margin: int
    axes: bool  # lon/lat tick labels around the map


def export_layout(width: int, aspect: float, axes: bool = True) -> ExportLayout:
    """The frame of ``width`` pixels (made even) for a map of ``aspect`` (height / width), axes labelled or not.

    The map takes the width less the margins (and the latitude labels' gutter), its height from ``aspect``, at
    most 1.2 × the frame's width (then narrower and centred); the height of the frame follows (made even, as H.264
    in yuv420p needs).
    """
    w = max(64, int(width) // 2 * 2)
    s = w / 1200.0
    title_px, sub_px, time_px = max(12, round(30 * s)), max(9, round(18 * s)), max(11, round(26 * s))
    label_px, credits_px, m = max(8, round(15 * s)), max(8, round(13 * s)), max(6, round(18 * s))
    header = m + round(title_px * 1.3) + round(sub_px * 1.5) + round(6 * s)
    gutter = round(label_px * 3.6) if axes else m
    mw = max(16, w - gutter - m)
    mh = max(16, round(mw * aspect))
    if mh > 1.2 * w:
        mh = int(1.2 * w)
        mw = max(16, round(mh / aspect))
    left = gutter + max(0, (w - gutter - m - mw) // 2)
    below = (round(label_px * 2.0) if axes else round(6 * s)) + round(18 * s) + round(label_px * 3.4)
    footer = round(credits_px * 1.8) + m // 2
    h = header + mh + below + footer
    h += h % 2
    return ExportLayout(w, h, (left, header, mw, mh), title_px, sub_px, time_px, label_px, credits_px, m, axes)


@dataclass
class Composed:
    """An export frame: RGB ``uint8`` (rows top first), its map's box in pixels and the words drawn."""

    rgb: np.ndarray
    map_box: tuple[int, int, int, int]
    words: dict


def _export_header(fig, lay: ExportLayout, title: str, subtitle: str, time_text: str) -> None:
    w, h, m = lay.w, lay.h, lay.margin
    fig.text((w - m) / w, (h - m) / h, _wrap(time_text, 0.42 * w, lay.time_px, 1, bold=True)[0],
             fontsize=_pt(lay.time_px), color=_FG, weight="bold", va="top", ha="right", parse_math=False)
    fig.text(m / w, (h - m) / h, _wrap(title, 0.55 * w, lay.title_px, 1, bold=True)[0], fontsize=_pt(lay.title_px),
             color=_FG, weight="bold", va="top", parse_math=False)
    if subtitle:
        fig.text(m / w, (h - m - lay.title_px * 1.35) / h, _wrap(subtitle, w - 2 * m, lay.sub_px, 1)[0],
                 fontsize=_pt(lay.sub_px), color=_MUTED, va="top", parse_math=False)


def _export_axes(fig, lay: ExportLayout, pic: Picture):
    left, top, mw, mh = lay.map_box
    ax = fig.add_axes((left / lay.w, (lay.h - top - mh) / lay.h, mw / lay.w, mh / lay.h), zorder=2)
    ax.patch.set_alpha(0.0)
    x0, x1, y0, y1 = pic.extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if pic.kind == "map" and lay.axes:
        from app.data.basemap import coastline_paths

        coast = coastline_paths(overlays.auto_scale((x0, x1)), (x0, x1), (y0, y1), pic.central_longitude)
        if coast:
            colour = "#f2e34c" if pic.background == "black" else "#222222"
            ax.plot(coast[0][:, 0], coast[0][:, 1], color=colour, lw=max(0.5, lay.w / 1600))
        if pic.volcano is not None:
            lat, lon, _name = pic.volcano
            x = float((lon - (pic.central_longitude - 180.0)) % 360.0 + (pic.central_longitude - 180.0))
            ax.plot([x], [lat], marker="^", ms=lay.label_px * 0.6, color="#d7301f", mec="white", mew=1.0, ls="none")
        ax.xaxis.set_major_formatter("{x:g}°")
        ax.yaxis.set_major_formatter("{x:g}°")
        ax.tick_params(labelsize=_pt(lay.label_px * 0.85), colors=_FG)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color(_MUTED)
    return ax


def _export_bar(fig, lay: ExportLayout, pic: Picture) -> None:
    left, top, mw, mh = lay.map_box
    s = lay.w / 1200.0
    y_top = top + mh + (round(lay.label_px * 2.0) if lay.axes else round(6 * s)) + round(4 * s)
    if pic.cmap is not None and pic.norm is not None:
        from matplotlib.cm import ScalarMappable

        bar_w, bar_h = min(mw, round(0.6 * lay.w)), max(6, round(16 * s))
        cax = fig.add_axes((left / lay.w, (lay.h - y_top - bar_h) / lay.h, bar_w / lay.w, bar_h / lay.h))
        bar = fig.colorbar(ScalarMappable(norm=pic.norm, cmap=pic.cmap), cax=cax, orientation="horizontal",
                           extend="both")
        if pic.colorbar_ticks is not None:
            bar.set_ticks(pic.colorbar_ticks)
        bar.ax.xaxis.set_major_formatter("{x:.3g}")
        bar.ax.tick_params(labelsize=_pt(lay.label_px * 0.85), colors=_FG)
        bar.set_label(_wrap(pic.colorbar_label, bar_w, lay.label_px, 1)[0], fontsize=_pt(lay.label_px), color=_FG)
        bar.outline.set_edgecolor(_MUTED)
        return
    lines: list[str] = []
    for item in pic.legend[:3]:
        lines.extend(_wrap(item, lay.w - 2 * lay.margin, lay.label_px * 0.9, 3))
    fig.text(left / lay.w, (lay.h - y_top) / lay.h, "\n".join(lines[:3]), fontsize=_pt(lay.label_px * 0.9),
             color=_MUTED, va="top", linespacing=1.25, parse_math=False)


def compose_export(pic: Picture, lay: ExportLayout, title: str, subtitle: str = "") -> Composed:
    """One export frame of ``pic`` (its ``image`` RGBA of exactly the layout's map size, or values with a colour map).

    The map's pixels are placed as they are (RGBA over the picture's background; values through the colour map);
    coastlines, the volcano and the tick labels are drawn over them, the colour bar with its label (or the
    composite's legend) under them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    left, top, mw, mh = lay.map_box
    image = pic.image
    if image.ndim == 2:
        image = values_rgba(image, pic.cmap, pic.norm, pic.background)
    if image.shape[:2] != (mh, mw):
        raise ValueError(f"the picture is {image.shape[1]} × {image.shape[0]} pixels; the layout's map is "
                         f"{mw} × {mh}")
    fig = Figure(figsize=(lay.w / 100, lay.h / 100), dpi=100, facecolor=_BG)
    canvas = FigureCanvasAgg(fig)
    _export_header(fig, lay, title, subtitle, pic.time_text)
    _export_axes(fig, lay, pic)
    _export_bar(fig, lay, pic)
    credits = _wrap(f"Credits: {pic.credits}. Fumarole.", lay.w - 2 * lay.margin, lay.credits_px, 1)[0]
    fig.text(lay.margin / lay.w, (lay.margin / 2) / lay.h, credits, fontsize=_pt(lay.credits_px), color=_MUTED,
             style="italic", va="bottom", parse_math=False)
    # the map under the axes (which are transparent): composited over the background, then drawn over by the axes
    back = np.array([round(255 * c) for c in to_rgba(pic.background)][:3], dtype=np.float32)
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    flat = (image[..., :3].astype(np.float32) * alpha + back * (1.0 - alpha)).round().astype(np.uint8)
    fig.figimage(np.dstack([flat, np.full((mh, mw), 255, np.uint8)]), xo=left, yo=lay.h - top - mh,
                 origin="upper", zorder=1)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    words = {"Title": title, "Subtitle": subtitle, "Time": pic.time_text, "Credits": pic.credits,
             "Colour bar": pic.colorbar_label, "Legend": " | ".join(pic.legend)}
    return Composed(rgb, lay.map_box, {k: v for k, v in words.items() if v})


def geo_credits(sensors: Sequence[str], product: str) -> str:
    """The credits of GEO imagery: each sensor's agency (in order, once), NWC SAF for a cloud top, Natural Earth."""
    from app.render import geo as render_geo

    names = {"abi": "NOAA (GOES ABI)", "ahi": "JMA (Himawari AHI)", "seviri": "EUMETSAT (Meteosat SEVIRI)",
             "fci": "EUMETSAT (Meteosat FCI)"}
    parts = [names.get(s, s.upper()) for s in dict.fromkeys(sensors)]
    if render_geo.is_cloud_top(product):
        parts.append("NWC SAF (GEO CTTH)")
    return ", ".join([*parts, "Natural Earth"])
