"""Colour maps and colour scales, as data, for the dashboards (Bokeh) and the exported pictures (matplotlib).

SO2 (:data:`SO2`)
    colorcet's ``fire`` (CET-L3, perceptually uniform black → red → yellow → white) reversed, so columns run light to
    dark as VolcPlume users know them: pale yellow → orange → red → dark brown. Two trims, both in lightness only:
    the pure-white end is dropped (the lowest shown column stays visible on the white no-data background) and the
    pure-black end too (the strongest columns read as dark brown, as on the VolcPlume bar). CET-L18
    (white → yellow → red) was the other candidate; it stops at a mid red, leaving the top of the range little
    contrast, and CET-L19 runs through blue and pink, which nobody reading an SO2 map expects.

SO2 layer height (:data:`LAYER_HEIGHT`, km)
    A height is not an amount, so it does not share the columns' light-to-dark scale: colorcet's ``bgy`` (CET-L8,
    perceptually uniform dark blue → green → yellow), low layers dark blue, high ones yellow, default range
    0 … 20 km (:data:`LAYER_HEIGHT_RANGE_KM`), with its own colour bar in km.

CALIOP attenuated backscatter (:data:`CALIOP_532`, :data:`CALIOP_1064`)
    The piecewise scale of the NASA CALIPSO browse images (as in ccplot's ``calipso-backscatter``; FORMATS.md):
    bounds 1e-4 … 9e-4 by 1e-4, 1e-3 … 8e-3 by 5e-4, 0.01 … 0.1 by 0.01 (34 bounds, 33 bins); dark blue for clear
    air aloft, green near the ground, yellow → red → pink for aerosol and thin cloud, greys to white for dense cloud.
    The RGB values are our own, drawn to the same scheme. The scale is not linear nor logarithmic, so a linear
    colour mapper cannot show it; instead values are turned into **bin indices** (:func:`bin_index`: 0 below the
    first bound, k for ``bounds[k-1] <= v < bounds[k]``, ``len(bounds)`` at or above the last) and the indices are
    coloured by a Bokeh ``LinearColorMapper`` over ``[0, len(bounds) + 1)`` with a palette of ``len(bounds) + 1``
    colours (under, 33 bins, over). The colour bar gets one equal band per bin and its ticks sit on the bin edges,
    labelled with the physical bounds (:func:`colorbar_ticks`: a ``FixedTicker`` and ``major_label_overrides``).
    The 1064 nm channel uses the same scale, as on the NASA browse images.

Depolarisation ratio (:data:`DEPOLARIZATION`)
    Continuous over 0 … 0.6: colorcet's ``rainbow4`` (CET-R1, a rainbow with even perceptual steps): blue for
    spherical particles (sulphate, droplets), green-yellow for mixtures, red for ash, dust and ice, in the order of
    ccplot's ``calipso-dratio`` scale that CALIOP users read.

Everything a scale is made of (bounds, colours, units, ticks) is module-level data; the functions only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import colorcet
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "SO2",
    "LAYER_HEIGHT",
    "LAYER_HEIGHT_RANGE_KM",
    "CALIOP_532_BOUNDS",
    "CALIOP_532_COLOURS",
    "CALIOP_532",
    "CALIOP_1064",
    "DEPOLARIZATION",
    "SCALES",
    "SteppedScale",
    "ContinuousScale",
    "scale_for",
    "bin_index",
    "colour_of",
    "colorbar_ticks",
    "color_mapper",
    "hex_to_rgb",
    "relative_luminance",
]


def hex_to_rgb(colour: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` -> (r, g, b) in 0 … 1."""
    c = colour.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"expected a colour as #rrggbb, got {colour!r}")
    return tuple(int(c[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


def relative_luminance(colour: str) -> float:
    """WCAG relative luminance (0 black … 1 white) of a hex colour."""
    rgb = np.array(hex_to_rgb(colour))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2])


def _resample(colours: list[str], n: int) -> list[str]:
    """``n`` colours evenly spaced along a list of hex colours, interpolated linearly in sRGB."""
    rgb = np.array([hex_to_rgb(c) for c in colours])
    pos = np.linspace(0.0, 1.0, len(colours))
    new = np.linspace(0.0, 1.0, n)
    out = np.column_stack([np.interp(new, pos, rgb[:, k]) for k in range(3)])
    return ["#{:02x}{:02x}{:02x}".format(*np.round(c * 255).astype(int)) for c in out]


#: Where ``fire`` (dark → light) is cut for the SO2 map: from the pale-yellow end down to the dark-brown one.
SO2_FIRE_SLICE = (10, 250)

#: The SO2 colour map: 256 hex colours, light (low columns) to dark (high columns).
SO2: list[str] = _resample(list(colorcet.fire[SO2_FIRE_SLICE[0] : SO2_FIRE_SLICE[1] + 1])[::-1], 256)

#: The SO2 layer height (km): colorcet's bgy (CET-L8), dark blue (low) → yellow (high).
LAYER_HEIGHT: list[str] = list(colorcet.bgy)
#: The default colour range of the layer height (km).
LAYER_HEIGHT_RANGE_KM = (0.0, 20.0)

# ------------------------------------------------------------------------------------------ CALIOP backscatter

#: Bounds (km⁻¹ sr⁻¹) of the piecewise CALIOP attenuated backscatter scale: 34 values.
CALIOP_532_BOUNDS: tuple[float, ...] = tuple(
    [round(1e-4 * k, 6) for k in range(1, 10)]  # 1e-4 … 9e-4 by 1e-4
    + [round(1e-3 + 5e-4 * k, 6) for k in range(15)]  # 1e-3 … 8e-3 by 5e-4
    + [round(0.01 * k, 6) for k in range(1, 11)]  # 0.01 … 0.1 by 0.01
)

#: One colour per bin between consecutive bounds (33): blues (clear air aloft) → teal, green (clear air near the
#: ground) → yellow, orange, red, pinks (aerosol, thin cloud) → greys to white (dense cloud).
CALIOP_532_COLOURS: tuple[str, ...] = (
    # 1e-4 … 1e-3: clear air
    "#10308a", "#213f9c", "#3b74b7", "#449fd6", "#44c4ee", "#6bc8da", "#6cc3b4", "#6ec08f", "#127f7d",
    # 1e-3 … 8e-3: molecular near the ground, aerosol, thin cloud
    "#1ca854", "#f1e81c", "#f3de12", "#f8c70a", "#f8a61b", "#f27f20", "#ee5427", "#e72325", "#e9305b", "#eb5480",
    "#ef80a9", "#474747", "#636363", "#808080",
    # 8e-3 … 0.1: cloud
    "#999999", "#b3b3b3", "#c8c8c8", "#dedede", "#e9e9e9", "#efefef", "#f2f2f2", "#f5f5f5", "#f8f8f8", "#fcfcfc",
)  # fmt: skip

#: Bounds given a tick label on the colour bar (every bound is a tick; these are the ones written).
CALIOP_532_LABELLED: tuple[float, ...] = (1e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3,
                                          0.02, 0.04, 0.06, 0.08, 0.1)  # fmt: skip


@dataclass(frozen=True)
class SteppedScale:
    """A piecewise colour scale: a colour per interval between increasing bounds, plus under and over colours."""

    name: str
    bounds: tuple[float, ...]
    colours: tuple[str, ...]
    under: str
    over: str
    bad: str
    units: str
    label: str
    labelled: tuple[float, ...] = field(default=())

    def __post_init__(self):
        if len(self.colours) != len(self.bounds) - 1:
            raise ValueError(
                f"colour scale {self.name!r}: {len(self.bounds)} bounds need {len(self.bounds) - 1} colours, "
                f"got {len(self.colours)}"
            )
        if np.any(np.diff(self.bounds) <= 0):
            raise ValueError(f"colour scale {self.name!r}: the bounds must increase")

    @property
    def palette(self) -> list[str]:
        """The ``len(bounds) + 1`` colours indexed by :func:`bin_index`: under, one per bin, over."""
        return [self.under, *self.colours, self.over]

    @property
    def n_colours(self) -> int:
        """Number of colours in :attr:`palette` (= the high end of the index colour mapper)."""
        return len(self.bounds) + 1


@dataclass(frozen=True)
class ContinuousScale:
    """A continuous colour map over a fixed range."""

    name: str
    palette: tuple[str, ...]
    low: float
    high: float
    bad: str
    units: str
    label: str


CALIOP_532 = SteppedScale(
    name="caliop_532",
    bounds=CALIOP_532_BOUNDS,
    colours=CALIOP_532_COLOURS,
    under="#002a7f",
    over="#ffffff",
    bad="#000000",
    units="km⁻¹ sr⁻¹",
    label="attenuated backscatter 532 nm (km⁻¹ sr⁻¹)",
    labelled=CALIOP_532_LABELLED,
)
"""CALIOP 532 nm total (or perpendicular) attenuated backscatter; NaN (below the surface, no data) is black."""

CALIOP_1064 = SteppedScale(
    name="caliop_1064",
    bounds=CALIOP_532_BOUNDS,
    colours=CALIOP_532_COLOURS,
    under="#002a7f",
    over="#ffffff",
    bad="#000000",
    units="km⁻¹ sr⁻¹",
    label="attenuated backscatter 1064 nm (km⁻¹ sr⁻¹)",
    labelled=CALIOP_532_LABELLED,
)
"""CALIOP 1064 nm attenuated backscatter: the 532 nm scale, as on the NASA browse images."""

DEPOLARIZATION = ContinuousScale(
    name="depolarization",
    palette=tuple(colorcet.rainbow4),
    low=0.0,
    high=0.6,
    bad="#000000",
    units="1",
    label="volume depolarisation ratio 532 nm",
)
"""CALIOP 532 nm volume depolarisation ratio, 0 … 0.6."""

#: Canonical Curtain variable -> its colour scale.
SCALES: dict[str, SteppedScale | ContinuousScale] = {
    "total_attenuated_backscatter_532": CALIOP_532,
    "perpendicular_attenuated_backscatter_532": CALIOP_532,
    "attenuated_backscatter_1064": CALIOP_1064,
    "depolarization_ratio_532": DEPOLARIZATION,
}


def scale_for(variable: str) -> SteppedScale | ContinuousScale:
    """The colour scale of a canonical Curtain variable; a ValueError names the known ones otherwise."""
    try:
        return SCALES[variable]
    except KeyError:
        raise ValueError(f"no colour scale for the variable {variable!r}; known: {', '.join(SCALES)}") from None


def bin_index(values: ArrayLike, scale: SteppedScale = CALIOP_532) -> np.ndarray:
    """Index into ``scale.palette`` of each value, as float32 (NaN stays NaN).

    0 below ``bounds[0]``; ``k`` for ``bounds[k-1] <= v < bounds[k]``; ``len(bounds)`` at or above the last
    bound. A value equal to a bound falls in the bin that starts there.
    """
    v = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(scale.bounds), v, side="right").astype(np.float32)
    return np.where(np.isnan(v), np.float32(np.nan), idx)


def colour_of(values: ArrayLike, scale: SteppedScale = CALIOP_532) -> list[str]:
    """The hex colour each value gets on a stepped scale (``scale.bad`` for NaN)."""
    palette = scale.palette
    return [scale.bad if np.isnan(k) else palette[int(k)] for k in np.ravel(bin_index(values, scale))]


def _bound_label(b: float) -> str:
    return f"{b:.0e}".replace("e-0", "e-") if b < 0.01 else f"{b:g}"


def colorbar_ticks(scale: SteppedScale) -> tuple[list[int], dict[int, str]]:
    """Tick positions (bin edges in index units) and labels for the colour bar of a stepped scale.

    Bound ``k`` separates index ``k`` from ``k + 1``, i.e. it sits at ``k + 1`` on an index axis whose colour
    ``j`` spans ``[j, j + 1)``. Every bound gets a tick; those in ``scale.labelled`` (all when empty) get a label,
    the others an empty one. Use as ``FixedTicker(ticks=ticks)`` and ``major_label_overrides=labels``.
    """
    labelled = scale.labelled or scale.bounds
    ticks = [k + 1 for k in range(len(scale.bounds))]
    labels = {}
    for k, b in enumerate(scale.bounds):
        show = any(np.isclose(b, x, rtol=1e-6, atol=0) for x in labelled)
        labels[k + 1] = _bound_label(b) if show else ""
    return ticks, labels


def color_mapper(scale: SteppedScale | ContinuousScale):
    """A Bokeh ``LinearColorMapper`` for a scale: over the bin indices of a stepped one, over its range otherwise."""
    from bokeh.models import LinearColorMapper

    if isinstance(scale, SteppedScale):
        return LinearColorMapper(palette=scale.palette, low=0, high=scale.n_colours, nan_color=scale.bad)
    return LinearColorMapper(palette=list(scale.palette), low=scale.low, high=scale.high, nan_color=scale.bad)
