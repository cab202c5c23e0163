"""The parameter layer of the HTTP API v1: one declaration per parameter, for both the checks and the document.

The same declarations check a request and write the OpenAPI document (:mod:`app.api.openapi`), so the two cannot
disagree. A :class:`Param` says a parameter's name, type, bounds, choices, pattern, default and description.
:func:`parse` checks a query (name -> text, the last value of a repeated parameter) against a route's declarations
and returns the values converted; :meth:`Param.schema` gives the same rules as a JSON Schema for the document.
Every refusal is an :class:`ApiError`, answered as JSON ``{"error": "<sentence>", "parameter": "<name>"}``:

- 400: a parameter the route does not know, an empty value, a value that is not of its type or does not match its
  pattern (a date that is not a date, a word where a number goes, a choice not offered), a value over
  :data:`MAX_CHARS`, text that is not UTF-8 or holds a control character;
- 404: a name the archive or the lists do not hold (a volcano, a satellite, a granule) — raised by the routes;
- 422: a well-formed value out of range (``width=100000``), a period longer than :data:`MAX_PERIOD`, an end before
  its start, a request whose work would pass its budget (too many granules or slots to read), with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from app.data.errors import UserInputError

__all__ = ["ApiError", "Param", "parse", "MAX_CHARS", "MAX_PERIOD", "YEARS", "DATE_PATTERN", "TIME_PATTERN",
           "BBOX_PATTERN", "period", "bbox_value"]

#: The longest value any parameter may have (characters).
MAX_CHARS = 256
#: The longest period a request may span.
MAX_PERIOD = pd.Timedelta(days=366)
#: The years a date may name.
YEARS = (1970, 2100)

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$"
_NUMBER = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
BBOX_PATTERN = rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*$"


class ApiError(UserInputError):
    """A refused request: an HTTP status, a sentence, and the parameter at fault (None when it is no one's)."""

    def __init__(self, status: int, message: str, parameter: str | None = None):
        super().__init__(message)
        self.status = int(status)
        self.parameter = parameter


def _shown(text: str, n: int = 40) -> str:
    text = str(text)
    return repr(text if len(text) <= n else text[:n] + "…")


@dataclass(frozen=True)
class Param:
    """One query parameter: its type, bounds, choices or pattern, default and meaning (the OpenAPI description).

    Types: ``string``, ``integer``, ``number``, ``date``, ``time``, ``bbox``.
    """

    name: str
    kind: str
    description: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    example: Any = None
    unit: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ document
    def schema(self) -> dict:
        """The JSON Schema of the parameter's value (what :meth:`convert` accepts, as far as a schema can say)."""
        s: dict[str, Any]
        if self.kind in ("integer", "number"):
            s = {"type": self.kind}
            if self.minimum is not None:
                s["minimum"] = self.minimum
            if self.maximum is not None:
                s["maximum"] = self.maximum
        elif self.kind == "date":
            s = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
        elif self.kind == "time":
            s = {"type": "string", "pattern": self.pattern or TIME_PATTERN}
        elif self.kind == "bbox":
            s = {"type": "string", "pattern": BBOX_PATTERN}
        else:
            s = {"type": "string", "minLength": 1, "maxLength": MAX_CHARS}
            if self.choices:
                s = {"type": "string", "enum": list(self.choices)}
            elif self.pattern:
                s["pattern"] = self.pattern
        if self.default is not None:
            s["default"] = self.default
        if self.example is not None:
            s["examples"] = [self.example]
        s.update(self.extra)
        return s

    def openapi(self) -> dict:
        """The OpenAPI parameter object."""
        text = self.description + (f" ({self.unit})" if self.unit else "")
        return {"name": self.name, "in": "query", "required": self.required, "description": text,
                "schema": self.schema()}

    # ------------------------------------------------------------------------------------------ checking
    def convert(self, text: str) -> Any:
        """The value of ``text``, checked; an :class:`ApiError` naming the parameter otherwise."""
        text = str(text)
        if self.kind in ("integer", "number"):
            return self._number(text)
        if self.kind == "date":
            return self._date(text)
        if self.kind == "time":
            return self._time(text)
        if self.kind == "bbox":
            return bbox_value(self.name, text)
        if self.choices:
            if text not in self.choices:
                raise ApiError(400, f"{self.name} {_shown(text)} is not one of {', '.join(self.choices)}", self.name)
            return text
        if self.pattern and not re.fullmatch(self.pattern.strip("^$"), text):
            raise ApiError(400, f"{self.name} {_shown(text)} is not of the expected form ({self.description})",
                           self.name)
        return text

    def _number(self, text: str) -> float | int:
        what = "a whole number" if self.kind == "integer" else "a number"
        pattern = r"[-+]?\d+" if self.kind == "integer" else _NUMBER
        if not re.fullmatch(pattern, text):
            raise ApiError(400, f"{self.name} {_shown(text)} is not {what}", self.name)
        value = int(text) if self.kind == "integer" else float(text)
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not (math.isfinite(value) and low <= value <= high):
            shown = text if len(text) <= 24 else text[:24] + "…"
            raise ApiError(422, f"{self.name} {shown} is out of range ({low:g} … {high:g}"
                                f"{' ' + self.unit if self.unit else ''})", self.name)
        return value

    def _date(self, text: str) -> pd.Timestamp:
        if not re.fullmatch(DATE_PATTERN.strip("^$"), text):
            raise ApiError(400, f"{self.name} {_shown(text)} is not a date (expected YYYY-MM-DD)", self.name)
        return self._stamp(text, "YYYY-MM-DD")

    def _time(self, text: str) -> pd.Timestamp | str:
        if self.pattern and text == "latest" and "latest" in self.pattern:
            return "latest"
        if not re.fullmatch(TIME_PATTERN.strip("^$"), text):
            raise ApiError(400, f"{self.name} {_shown(text)} is not a date and time (expected YYYY-MM-DD or "
                                f"YYYY-MM-DDTHH:MM[:SS][Z], UTC)", self.name)
        return self._stamp(text, "YYYY-MM-DDTHH:MM")

    def _stamp(self, text: str, expected: str) -> pd.Timestamp:
        try:
            t = pd.Timestamp(text)
        except (ValueError, OverflowError):
            t = None
        if t is None or pd.isna(t):
            raise ApiError(400, f"{self.name} {_shown(text)} is not a valid date (expected {expected}, UTC)",
                           self.name)
        if t.tzinfo is not None:
            t = t.tz_convert("UTC").tz_localize(None)
        if not YEARS[0] <= t.year <= YEARS[1]:
            raise ApiError(422, f"{self.name} {_shown(text)} is out of range (years {YEARS[0]} … {YEARS[1]})",
                           self.name)
        return pd.Timestamp(t).as_unit("ns")


def bbox_value(name: str, text: str) -> tuple[float, float, float, float]:
    """``lon_min,lat_min,lon_max,lat_max`` as four floats, checked.

    Latitudes −90 … 90 rising, longitudes −180 … 360, differing, at most 360° apart (``lon_min > lon_max`` crosses
    the antimeridian).
    """
    if not re.fullmatch(BBOX_PATTERN.strip("^$"), text):
        raise ApiError(400, f"{name} {_shown(text)} must be four numbers: lon_min,lat_min,lon_max,lat_max "
                            "(degrees)", name)
    lon0, lat0, lon1, lat1 = (float(p) for p in text.split(","))
    if not all(math.isfinite(v) for v in (lon0, lat0, lon1, lat1)):
        raise ApiError(422, f"{name} {_shown(text)} must be four finite numbers", name)
    if not -90 <= lat0 < lat1 <= 90:
        raise ApiError(422, f"{name} {_shown(text)}: latitudes must satisfy -90 ≤ lat_min < lat_max ≤ 90", name)
    if not (-180 <= lon0 <= 360 and -180 <= lon1 <= 360) or lon0 == lon1 or lon1 - lon0 > 360:
        raise ApiError(422, f"{name} {_shown(text)}: longitudes must lie in -180 … 360, differ and span at most "
                            "360° (lon_min > lon_max crosses the antimeridian)", name)
    return lon0, lat0, lon1, lat1


def parse(params: tuple[Param, ...], args: Mapping[str, str]) -> dict[str, Any]:
    """The checked values of a query: every declared parameter (its default when not given; None if none).

    Refused with an :class:`ApiError`: a parameter not declared, a value longer than :data:`MAX_CHARS`, a value
    :meth:`Param.convert` refuses, a required one left out or empty.
    """
    declared = {p.name: p for p in params}
    unknown = [k for k in args if k not in declared]
    if unknown:
        shown = ", ".join(_shown(k) for k in unknown[:5])
        raise ApiError(400, f"unknown parameter {shown}; this route takes {', '.join(declared) or 'none'}",
                       str(unknown[0])[:40])
    out: dict[str, Any] = {}
    for name, p in declared.items():
        text = args.get(name)
        if text is not None and len(str(text)) > MAX_CHARS:
            raise ApiError(400, f"parameter {name!r} is too long ({len(str(text))} characters; at most "
                                f"{MAX_CHARS})", name)
        if text is not None and str(text).strip() == "":
            raise ApiError(400, f"parameter {name!r} is empty: give a value or leave it out", name)
        if text is None:
            if p.required:
                raise ApiError(400, f"parameter {name!r} is required: {p.description}", name)
            out[name] = p.default
            continue
        out[name] = p.convert(str(text))
    return out


def period(values: Mapping[str, Any], raw: Mapping[str, str], *, date: str = "date", start: str = "start",
           end: str = "end", required: bool = True) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The period ``[t0, t1)`` of a query: a ``date`` (that day) or ``start`` and ``end``.

    A date alone as ``end`` includes that day (``raw``, the query's text, tells). At most :data:`MAX_PERIOD` long;
    None when none is given and it is not required.
    """
    d, s, e = values.get(date), values.get(start), values.get(end)
    if d is not None:
        if s is not None or e is not None:
            raise ApiError(400, f"give either {date} or {start} and {end}, not both", start if s is not None else end)
        return d.normalize(), d.normalize() + pd.Timedelta(days=1)
    if s is None and e is None:
        if required:
            raise ApiError(400, f"give a day ({date}=YYYY-MM-DD) or a period ({start}=…&{end}=…)", date)
        return None
    if s is None or e is None:
        missing = start if s is None else end
        raise ApiError(400, f"parameter {missing!r} is required with {end if s is None else start}", missing)
    t0 = pd.Timestamp(s)
    t1 = pd.Timestamp(e)
    if re.fullmatch(DATE_PATTERN.strip("^$"), str(raw.get(end, "")).strip()):
        t1 = t1 + pd.Timedelta(days=1)  # an end given as a day includes it
    if t1 <= t0:
        raise ApiError(422, f"the end {t1:%Y-%m-%d %H:%M} is not after the start {t0:%Y-%m-%d %H:%M}", end)
    if t1 - t0 > MAX_PERIOD:
        raise ApiError(422, f"the period {t0:%Y-%m-%d} … {t1:%Y-%m-%d} is longer than a year "
                            f"({MAX_PERIOD.days} days at most per request)", end)
    return t0, t1
