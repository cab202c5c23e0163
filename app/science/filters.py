"""The pixel filters a TROPOMI SO2 user applies: QA threshold, solar zenith angle, edge pixels, low columns.

A pixel is valid when its column is finite, ``qa_value > qa_min`` (strictly: the S5P SO2 Product Readme File and
PUM recommend keeping ``qa_value > 0.5``), ``solar_zenith_angle <= sza_max`` (when a maximum is given), it is not
among the ``edge_pixels`` outermost ground pixels on either side of the swath, and its column is ``>= min_du``
(when given: the truncation of low columns).

:data:`DEFAULT_FILTERS` (also ``Filters.default()``) is the one definition of the filters every entry point starts
with — the VolcPlume map, the time-series panel, the API and the ``fumarole timeseries`` command — so the same
request gives the same pixels and the same table everywhere: ``qa_value > 0.5``, ``solar_zenith_angle <= 80°``, no
edge pixel dropped, no truncation. ``qa_value`` is stored as an integer 0–100 with ``scale_factor`` 0.01, so
``> 0.5`` keeps 0.51 and above and drops 0.50 exactly. Edge pixels are counted along the
swath's ``ground_pixel`` dimension, so a window of scanlines (any ``scanline`` slice) filters exactly as the
whole granule; the full across-track width must be present.

:func:`app.science.mass.so2_mass_within_radii` uses ``min_du`` differently: a truncated pixel is still observed, so
it counts towards the disk's coverage and adds zero mass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from app.data.errors import UserInputError


def _format_value(value: float | int | None) -> str:
    """Stable text for a filter value: ``none`` for no limit, ``repr`` for numbers (0.5, 80.0, 2)."""
    return "none" if value is None else repr(value)


@dataclass(frozen=True)
class Filters:
    """The pixel filters as one immutable, hashable value (for caches, CSV headers and permalinks).

    ``Filters()`` is the minimal set (QA > 0.5 only); the defaults every entry point starts with are
    :data:`DEFAULT_FILTERS` (``Filters.default()``), which also caps the solar zenith angle.

    Attributes
    ----------
    qa_min : float
        Keep pixels with ``qa_value > qa_min``, strictly (0-1; the S5P SO2 documentation recommends
        ``qa_value > 0.5``; 0 applies no QA filter at all).
    sza_max : float or None
        Keep pixels with ``solar_zenith_angle <= sza_max`` degrees; None for no limit.
    edge_pixels : int
        Drop this many outermost ground pixels on each side of the swath (the largest, most distorted pixels).
    min_du : float or None
        Keep pixels whose column is ``>= min_du`` DU; None for no truncation.

    """

    qa_min: float = 0.5
    sza_max: float | None = None
    edge_pixels: int = 0
    min_du: float | None = None

    def __post_init__(self) -> None:
        qa_min = _as_float("qa_min", self.qa_min)
        if not 0.0 <= qa_min <= 1.0:
            raise UserInputError(f"qa_min must be between 0 and 1; got {self.qa_min!r}")
        sza_max = None if self.sza_max is None else _as_float("sza_max", self.sza_max)
        if sza_max is not None and not 0.0 <= sza_max <= 180.0:
            raise UserInputError(f"sza_max must be between 0 and 180 degrees (or None); got {self.sza_max!r}")
        edge_pixels = _as_count("edge_pixels", self.edge_pixels)
        min_du = None if self.min_du is None else _as_float("min_du", self.min_du)
        # Normalise to plain Python numbers so that equal filters have equal keys and hashes.
        object.__setattr__(self, "qa_min", qa_min)
        object.__setattr__(self, "sza_max", sza_max)
        object.__setattr__(self, "edge_pixels", edge_pixels)
        object.__setattr__(self, "min_du", min_du)

    def as_dict(self) -> dict[str, Any]:
        """Return the filters as keyword arguments of :func:`valid_mask` / :func:`apply_filters`."""
        return asdict(self)

    def key(self) -> str:
        """Return a stable one-line text, e.g. ``qa_min=0.5,sza_max=none,edge_pixels=0,min_du=none``."""
        return ",".join(f"{name}={_format_value(value)}" for name, value in self.as_dict().items())

    @classmethod
    def coerce(cls, filters: Filters | Mapping[str, Any] | None) -> Filters:
        """Make a Filters from a Filters, a mapping of its fields, or None (:data:`DEFAULT_FILTERS`)."""
        if filters is None:
            return DEFAULT_FILTERS
        if isinstance(filters, cls):
            return filters
        if isinstance(filters, Mapping):
            unknown = sorted(set(filters) - set(cls.__dataclass_fields__))
            if unknown:
                raise UserInputError(
                    f"unknown filter {', '.join(map(repr, unknown))}; the filters are "
                    f"{', '.join(cls.__dataclass_fields__)}"
                )
            return cls(**filters)
        raise UserInputError(f"filters must be a Filters, a mapping or None; got {type(filters).__name__}")

    @classmethod
    def default(cls) -> Filters:
        """The one default of every entry point (:data:`DEFAULT_FILTERS`): QA > 0.5, SZA <= 80°, no edge dropped."""
        return DEFAULT_FILTERS

    def describe(self) -> str:
        """The filters in words, as pictures and exports state them: ``QA > 0.5, SZA ≤ 80°, 0 edge pixels dropped``."""
        sza = "no SZA limit" if self.sza_max is None else f"SZA ≤ {self.sza_max:g}°"
        text = f"QA > {self.qa_min:g}, {sza}, {self.edge_pixels} edge pixels dropped"
        return text if self.min_du is None else f"{text}, columns below {self.min_du:g} DU truncated"



def _as_float(name: str, value: object) -> float:
    """Return a finite float, or raise a UserInputError naming the filter."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise UserInputError(f"{name} must be a finite number; got {value!r}")
    return number


def _as_count(name: str, value: object) -> int:
    """Return a whole number >= 0 (an int or a float with no fraction), or raise a UserInputError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UserInputError(f"{name} must be a whole number >= 0; got {value!r}")
    if not math.isfinite(value) or int(value) != value or value < 0:
        raise UserInputError(f"{name} must be a whole number >= 0; got {value!r}")
    return int(value)


#: The default filters of the dashboard, the time-series panel, the API and the CLI: one definition. QA > 0.5 is the
#: S5P SO2 recommendation (PRF/PUM: ``qa_value > 0.5``); SZA <= 80° drops the low-Sun pixels the air-mass factors
#: handle worst (the VolcPlume map's default since the start); no edge pixel dropped; no truncation.
DEFAULT_FILTERS = Filters(qa_min=0.5, sza_max=80.0, edge_pixels=0, min_du=None)


def _require(swath: xr.Dataset, name: str, why: str) -> xr.DataArray:
    """Return the named variable of the swath, or raise a UserInputError saying what is missing and why."""
    if name not in swath.variables:
        have = ", ".join(sorted(str(v) for v in swath.data_vars)) or "no variables"
        raise UserInputError(f"the swath has no {name!r} ({why}); it has {have}")
    return swath[name]


def valid_mask(
    swath: xr.Dataset,
    variable: str,
    qa_min: float = 0.5,
    sza_max: float | None = None,
    edge_pixels: int = 0,
    min_du: float | None = None,
) -> xr.DataArray:
    """Boolean DataArray (scanline, ground_pixel): True where the pixel of ``variable`` passes every filter.

    ``qa_value > qa_min`` strictly (the S5P SO2 recommendation is ``qa_value > 0.5``). ``qa_value`` is needed when
    ``qa_min > 0`` and ``solar_zenith_angle`` when ``sza_max`` is given; NaN in
    either fails the pixel. See the module docstring for the rules.
    """
    f = Filters(qa_min=qa_min, sza_max=sza_max, edge_pixels=edge_pixels, min_du=min_du)
    column = _require(swath, variable, "the SO2 column asked for")
    mask = np.isfinite(column)
    if f.qa_min > 0.0:
        mask = mask & (_require(swath, "qa_value", f"needed for qa_min={f.qa_min}") > f.qa_min)
    if f.sza_max is not None:
        sza = _require(swath, "solar_zenith_angle", f"needed for sza_max={f.sza_max}")
        mask = mask & (sza <= f.sza_max)
    if f.edge_pixels:
        # counted in the instrument's ground pixels: a reduced file (attribute ground_pixel_step, e.g. every 9th of
        # the 450) drops the stored columns whose pixels lie within that many instrument pixels of an edge
        step = max(1, int(swath.attrs.get("ground_pixel_step", 1)))
        edge = int(np.ceil(f.edge_pixels / step))
        n = column.sizes["ground_pixel"]
        position = xr.DataArray(np.arange(n), dims="ground_pixel")
        mask = mask & (position >= edge) & (position < n - edge)
    if f.min_du is not None:
        mask = mask & (column >= f.min_du)
    return mask.transpose(*column.dims).rename("valid")


def apply_filters(swath: xr.Dataset, variable: str, **filters: Any) -> xr.DataArray:
    """Return the column ``variable`` with pixels failing the filters set to NaN (keywords of valid_mask)."""
    mask = valid_mask(swath, variable, **filters)
    return swath[variable].where(mask)
