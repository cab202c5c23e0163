"""The geostationary constellation as data: which satellite held which ring position when.

``assets/platforms.yaml`` lists every platform Fumarole reads (GOES-16 … -19, Himawari-8 and -9, Meteosat-8 … -12)
with its instrument, the ids its files carry, its NWC SAF id, the projection of its fixed grid, and the periods it
held each ring position, each with the operator announcement that says so. This module loads and checks it, and
answers:

- :func:`platform` — a :class:`Platform` by key (``G18``), file id (``MTI1``), NWC SAF id (``GOES18``), satellite
  name (``GOES-18``) or alias (``GOES-T``, ``MTG-I1``);
- :func:`ring_on` — the five positions, west to east, each as an :class:`Assignment` with the platform in service
  there at an instant (``None``, with a note saying so, when none we read was);
- :func:`positions` — the ring's :class:`Position` names and nominal longitudes;
- :func:`with_overrides` — the constellation with a catalogue's ``platforms:`` map applied (one archive may say
  that its ``G17`` files are GOES-West whatever the date, or add a satellite the file does not know).

Adding a satellite, or a handover, is an edit of ``assets/platforms.yaml``. The module functions use that file
(loaded once); :func:`load` reads another (tests, a site's own list) into a :class:`Constellation` with the same
methods. A period runs from ``from`` (inclusive) to ``until`` (exclusive, ``None`` = still in service), in UTC;
periods of one position never overlap, nor do those of one satellite: a file that says otherwise is refused with a
:class:`~app.data.errors.CatalogError` naming the file and the entries.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from app.data.errors import CatalogError, UserInputError

__all__ = [
    "GeosProjection",
    "Period",
    "Platform",
    "Position",
    "Assignment",
    "Constellation",
    "PLATFORMS_FILE",
    "load",
    "default",
    "platform",
    "platforms",
    "positions",
    "ring_on",
    "with_overrides",
]


def _platforms_file() -> Path:
    from app.paths import ASSETS

    return ASSETS / "platforms.yaml"


#: The constellation file of this installation.
PLATFORMS_FILE = _platforms_file()


@dataclass(frozen=True)
class GeosProjection:
    """The geostationary projection of a fixed grid (PROJ ``+proj=geos``): Earth ellipsoid, height, sweep."""

    lon_0: float  # projection longitude (degrees)
    h: float  # satellite height above the equator (m)
    a: float  # semi-major axis (m)
    b: float  # semi-minor axis (m)
    sweep: str  # "x" (GOES) or "y" (Meteosat, Himawari, MTG)

    @property
    def proj4(self) -> str:
        """The PROJ string of the projection (metres)."""
        return (f"+proj=geos +lon_0={self.lon_0:g} +h={self.h:.3f} +a={self.a:.3f} +b={self.b:.5f} "
                f"+sweep={self.sweep} +units=m +no_defs")


@dataclass(frozen=True)
class Period:
    """One stretch of time a satellite held a ring position: ``start`` ≤ t < ``until`` (None: open)."""

    position: str
    lon: float  # the satellite's longitude there (degrees east)
    start: pd.Timestamp | None
    until: pd.Timestamp | None
    source: str = ""

    def covers(self, t: pd.Timestamp) -> bool:
        """True when the instant ``t`` (naive UTC) is in the period."""
        return (self.start is None or self.start <= t) and (self.until is None or t < self.until)

    def overlaps(self, other: Period) -> bool:
        """True when the two periods share an instant."""
        a0 = self.start if self.start is not None else pd.Timestamp.min
        b0 = other.start if other.start is not None else pd.Timestamp.min
        a1 = self.until if self.until is not None else pd.Timestamp.max
        b1 = other.until if other.until is not None else pd.Timestamp.max
        return a0 < b1 and b0 < a1

    @property
    def span(self) -> str:
        """``2017-12-18 → 2025-04-07`` (``→ now`` when open)."""
        start = "…" if self.start is None else _day(self.start)
        until = "now" if self.until is None else _day(self.until)
        return f"{start} → {until}"


@dataclass(frozen=True)
class Platform:
    """One geostationary satellite: names, imager, file ids, fixed grid and the ring positions it held."""

    key: str  # the platform id of our index and of the sample archive's folders: G16, H09, MSG2, MTI1
    name: str  # satpy's platform_name: GOES-16, Himawari-9, Meteosat-9, Meteosat-12
    instrument: str  # abi, ahi, seviri, fci
    file_ids: tuple[str, ...]
    nwcsaf_id: str
    projection: GeosProjection
    periods: tuple[Period, ...] = ()
    aliases: tuple[str, ...] = ()
    orbital_slot: str = ""  # GOES files carry it
    instrument_id: str = ""  # the ABI flight model (GOES files carry it)

    @property
    def sensor(self) -> str:
        """The imager (``abi``, ``ahi``, ``seviri``, ``fci``): the sensor of :mod:`app.data.geo_bands`."""
        return self.instrument

    @property
    def sub_lon(self) -> float:
        """The nominal sub-satellite longitude: that of its latest ring period (the projection's when it has none)."""
        if not self.periods:
            return self.projection.lon_0
        return max(self.periods, key=lambda p: p.start if p.start is not None else pd.Timestamp.min).lon

    def names(self) -> tuple[str, ...]:
        """Every name it is known by: key, satellite name, file ids, NWC SAF id, aliases."""
        return tuple(dict.fromkeys((self.key, self.name, *self.file_ids, self.nwcsaf_id, *self.aliases)))

    def period_on(self, when) -> Period | None:
        """The ring period that covers ``when``, or None."""
        t = as_utc(when)
        return next((p for p in self.periods if p.covers(t)), None)

    def lon_on(self, when) -> float:
        """The sub-satellite longitude at ``when`` (its nominal one when it held no ring position then)."""
        period = self.period_on(when)
        return self.sub_lon if period is None else period.lon


@dataclass(frozen=True)
class Position:
    """One ring position: its name and nominal longitude (degrees east)."""

    name: str
    lon: float


@dataclass(frozen=True)
class Assignment:
    """Who held a ring position at an instant: the platform (or None, with a note) and its period there."""

    position: str
    position_lon: float
    when: pd.Timestamp
    platform: Platform | None = None
    period: Period | None = None
    note: str = ""

    @property
    def key(self) -> str | None:
        """The platform id (``G18``), or None when no platform we read held the position."""
        return None if self.platform is None else self.platform.key

    @property
    def satellite(self) -> str | None:
        """The satellite's name (``GOES-18``), or None."""
        return None if self.platform is None else self.platform.name

    @property
    def sensor(self) -> str | None:
        """The imager (``abi`` …), or None."""
        return None if self.platform is None else self.platform.instrument

    @property
    def sub_lon(self) -> float:
        """The satellite's longitude there (the position's nominal longitude when none held it)."""
        return self.position_lon if self.period is None else self.period.lon


# --- time ------------------------------------------------------------------------------------------------------


def as_utc(value) -> pd.Timestamp:
    """An instant as a naive UTC :class:`pandas.Timestamp` (aware values are converted; dates are 00:00 UTC)."""
    t = pd.Timestamp(value)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t


def _day(t: pd.Timestamp) -> str:
    return f"{t:%Y-%m-%d}" if t == t.normalize() else f"{t:%Y-%m-%d %H:%M} UTC"


# --- the constellation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constellation:
    """Positions and platforms, from one file (and perhaps a catalogue's overrides)."""

    positions: tuple[Position, ...]
    platforms: Mapping[str, Platform]
    source: str = ""  # the file (and catalogue) it came from, for messages
    #: catalogue periods: they win over the file's periods of the same position while they last
    overrides: tuple[tuple[str, Period], ...] = field(default=())

    # -- look-ups --

    def platform(self, name: str) -> Platform:
        """The platform known by ``name`` (key, file id, NWC SAF id, satellite name or alias; any case)."""
        text = str(name).strip()
        if text in self.platforms:
            return self.platforms[text]
        low = text.lower()
        for p in self.platforms.values():
            if low in (n.lower() for n in p.names()):
                return p
        known = ", ".join(f"{p.key} ({p.name})" for p in self.platforms.values())
        raise UserInputError(f"unknown geostationary platform {name!r}; {self.source} knows {known}")

    def position(self, name: str) -> Position:
        """The ring position called ``name`` (any case)."""
        low = str(name).strip().lower()
        for pos in self.positions:
            if pos.name.lower() == low:
                return pos
        names = ", ".join(p.name for p in self.positions)
        raise UserInputError(f"unknown ring position {name!r}; the ring has {names}")

    def is_position(self, name: str) -> bool:
        """True when ``name`` is a ring position's name."""
        low = str(name).strip().lower()
        return any(p.name.lower() == low for p in self.positions)

    # -- the ring at an instant --

    def holders(self, position: str) -> list[tuple[Platform, Period]]:
        """Every (platform, period) at ``position``, in time order, catalogue overrides clipping the file's periods."""
        pos = self.position(position).name
        over = [(k, p) for k, p in self.overrides if p.position == pos]
        out: list[tuple[Platform, Period]] = [(self.platforms[k], p) for k, p in over]
        for plat in self.platforms.values():
            for period in plat.periods:
                if period.position != pos:
                    continue
                out.extend((plat, piece) for piece in _clip(period, [p for _, p in over]))
        return sorted(out, key=lambda kp: kp[1].start if kp[1].start is not None else pd.Timestamp.min)

    def assignment(self, position: str, when) -> Assignment:
        """Who held ``position`` at ``when`` (an :class:`Assignment`; its platform is None when nobody we read did)."""
        t = as_utc(when)
        pos = self.position(position)
        held = self.holders(pos.name)
        for plat, period in held:
            if period.covers(t):
                return Assignment(pos.name, pos.lon, t, plat, period)
        if held:
            spans = "; ".join(f"{plat.name} {period.span}" for plat, period in held)
            note = f"no satellite we read held {pos.name} on {_day(t)} (it was held by {spans})"
        else:
            note = f"no satellite we read ever held {pos.name}"
        return Assignment(pos.name, pos.lon, t, None, None, note)

    def ring_on(self, when) -> tuple[Assignment, ...]:
        """The ring at ``when``, west to east: one :class:`Assignment` per position."""
        return tuple(self.assignment(pos.name, when) for pos in self.positions)

    def position_of(self, platform: str, when=None) -> tuple[Platform, Period | None]:
        """A platform and the ring period it held at ``when`` (None: its latest ring period; none: ``None``)."""
        plat = self.platform(platform)
        periods = [period for p, period in self._all_periods() if p.key == plat.key]
        if when is not None:
            t = as_utc(when)
            return plat, next((period for period in periods if period.covers(t)), None)
        latest = max(periods, key=lambda p: p.start if p.start is not None else pd.Timestamp.min, default=None)
        return plat, latest

    def _all_periods(self) -> list[tuple[Platform, Period]]:
        return [kp for pos in self.positions for kp in self.holders(pos.name)]

    # -- catalogue overrides --

    def with_overrides(self, catalog_platforms: Mapping[str, Any] | None,
                       where: str = "the catalogue") -> Constellation:
        """The constellation with a catalogue's ``platforms:`` map applied.

        Each key is a platform id, file id or NWC SAF id; its value a mapping of:

        - ``platform``: the platform this id is another name of (``GOES17: {platform: G17}``, NWC SAF ids);
        - ``satellite``: the satellite's name — a check for a known platform (a different name is an error), the
          name of a new one;
        - ``ring_position`` with optional ``from``/``until`` (open when absent): the platform holds that position
          then, whatever the file says (the file's periods of that position are cut around it);
        - ``sub_lon``: its longitude (in that period, or in all its periods when no ``ring_position`` is given);
        - for a new platform: ``instrument`` (``abi``, ``ahi``, ``seviri``, ``fci``), optional ``projection``
          (``lon_0``, ``h``, ``a``, ``b``, ``sweep``; by default the family of the instrument at ``lon_0 = sub_lon``)
          and ``nwcsaf_id``.
        """
        if not catalog_platforms:
            return self
        plats = dict(self.platforms)
        overrides = list(self.overrides)
        for key, entry in catalog_platforms.items():
            if not isinstance(entry, Mapping):
                raise CatalogError(f"{where}: platforms: {key!r} must be a mapping (satellite, ring_position, sub_lon, "
                                   f"from, until), not {entry!r}")
            _override(self, plats, overrides, str(key), dict(entry), where)
        return Constellation(self.positions, plats, f"{self.source} with the overrides of {where}", tuple(overrides))


def _clip(period: Period, cuts: list[Period]) -> list[Period]:
    """The parts of ``period`` outside every period of ``cuts``."""
    pieces = [period]
    for cut in cuts:
        out = []
        for piece in pieces:
            if not piece.overlaps(cut):
                out.append(piece)
                continue
            if cut.start is not None and (piece.start is None or piece.start < cut.start):
                out.append(replace(piece, until=cut.start))
            if cut.until is not None and (piece.until is None or cut.until < piece.until):
                out.append(replace(piece, start=cut.until))
        pieces = out
    return pieces


_FAMILIES = {"abi": "goes_r", "ahi": "himawari", "seviri": "meteosat", "fci": "mtg"}
_OVERRIDE_KEYS = {"platform", "satellite", "ring_position", "sub_lon", "from", "until", "instrument", "projection",
                  "nwcsaf_id", "source", "lon_0"}


def _find(c: Constellation, plats: dict[str, Platform], key: str) -> Platform | None:
    if key in plats:
        return plats[key]
    try:
        found = c.platform(key)
    except UserInputError:
        found = next((p for p in plats.values() if key.lower() in (n.lower() for n in p.names())), None)
    return None if found is None else plats.get(found.key, found)


def _override(c: Constellation, plats: dict[str, Platform], overrides: list, key: str, entry: dict, where: str):
    unknown = sorted(set(entry) - _OVERRIDE_KEYS)
    if unknown:
        raise CatalogError(f"{where}: platforms: {key}: unknown field {', '.join(unknown)}; the fields are "
                           f"{', '.join(sorted(_OVERRIDE_KEYS))}")
    target = entry.get("platform")
    plat = _find(c, plats, str(target) if target else key)
    if target and plat is None:
        raise CatalogError(f"{where}: platforms: {key}: platform {target!r} is unknown; known: {', '.join(plats)}")
    if plat is None:
        plat = _new_platform(c, key, entry, where)
    satellite = entry.get("satellite")
    if satellite is not None and str(satellite).lower() not in (n.lower() for n in plat.names()):
        raise CatalogError(f"{where}: platforms: {key} says satellite {satellite!r}, but {key} is {plat.name} in "
                           f"{c.source}; give the new satellite a key of its own")
    if key not in plat.names():
        plat = replace(plat, file_ids=(*plat.file_ids, key))
    if "ring_position" in entry:
        plat = _override_period(c, plat, overrides, key, entry, where)
    elif "sub_lon" in entry:
        lon = _number(entry["sub_lon"], f"{where}: platforms: {key}: sub_lon")
        plat = replace(plat, periods=tuple(replace(p, lon=lon) for p in plat.periods))
        overrides[:] = [(k, replace(p, lon=lon) if k == plat.key else p) for k, p in overrides]
    plats[plat.key] = plat


def _override_period(c: Constellation, plat: Platform, overrides: list, key: str, entry: dict, where: str) -> Platform:
    what = f"{where}: platforms: {key}"
    pos = c.position(str(entry["ring_position"])) if c.is_position(str(entry["ring_position"])) else None
    if pos is None:
        raise CatalogError(f"{what}: ring_position {entry['ring_position']!r} is not a ring position; the ring has "
                           f"{', '.join(p.name for p in c.positions)}")
    lon = _number(entry.get("sub_lon", pos.lon), f"{what}: sub_lon")
    period = Period(pos.name, lon, _instant(entry.get("from"), f"{what}: from"),
                    _instant(entry.get("until"), f"{what}: until"), str(entry.get("source", f"as {where} says")))
    if period.start is not None and period.until is not None and period.until <= period.start:
        raise CatalogError(f"{what}: until ({_day(period.until)}) is not after from ({_day(period.start)})")
    for other_key, other in overrides:
        if other.position == pos.name and other.overlaps(period):
            raise CatalogError(f"{what}: its {pos.name} period {period.span} overlaps that of {other_key} "
                               f"({other.span}) in the same catalogue")
    overrides.append((plat.key, period))
    # the platform cannot be elsewhere meanwhile: its own file periods elsewhere are cut around this one
    return replace(plat, periods=tuple(piece for p in plat.periods for piece in _clip(p, [period])))


def _new_platform(c: Constellation, key: str, entry: dict, where: str) -> Platform:
    what = f"{where}: platforms: {key}"
    instrument = entry.get("instrument")
    if not entry.get("satellite") or instrument not in _FAMILIES:
        known = ", ".join(f"{p.key} ({p.name})" for p in c.platforms.values())
        raise CatalogError(f"{what}: {key!r} is not a platform {c.source} knows ({known}); to add one, give its "
                           f"satellite and instrument ({', '.join(_FAMILIES)})")
    sub_lon = _number(entry.get("sub_lon", entry.get("lon_0", 0.0)), f"{what}: sub_lon")
    family = next((p.projection for p in c.platforms.values() if p.instrument == instrument), None)
    proj = dict(entry.get("projection") or {})
    if family is None and not {"h", "a", "b", "sweep"} <= set(proj):
        raise CatalogError(f"{what}: no platform of instrument {instrument} to take a projection from; give "
                           "projection: {lon_0, h, a, b, sweep}")
    base = {} if family is None else {"h": family.h, "a": family.a, "b": family.b, "sweep": family.sweep}
    base.update(lon_0=float(entry.get("lon_0", sub_lon)))
    base.update(proj)
    projection = _projection(base, what)
    return Platform(key, str(entry["satellite"]), str(instrument), (key,), str(entry.get("nwcsaf_id", key)),
                    projection, (), ())


# --- loading ---------------------------------------------------------------------------------------------------


def _number(value, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CatalogError(f"{what} must be a number of degrees, not {value!r}") from None
    return out


def _instant(value, what: str) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    try:
        return as_utc(value)
    except (TypeError, ValueError):
        raise CatalogError(f"{what} must be a date (2023-01-04) or a UTC time, not {value!r}") from None


def _projection(spec, what: str) -> GeosProjection:
    if not isinstance(spec, Mapping):
        raise CatalogError(f"{what}: projection must be a mapping of lon_0, h, a, b, sweep, not {spec!r}")
    missing = [k for k in ("lon_0", "h", "a", "b", "sweep") if k not in spec]
    if missing:
        raise CatalogError(f"{what}: projection lacks {', '.join(missing)}")
    if spec["sweep"] not in ("x", "y"):
        raise CatalogError(f"{what}: projection sweep must be x or y, not {spec['sweep']!r}")
    return GeosProjection(*(_number(spec[k], f"{what}: projection {k}") for k in ("lon_0", "h", "a", "b")),
                          str(spec["sweep"]))


def _strings(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{what} must be a list of names, not {value!r}")
    return tuple(value)


_PLATFORM_KEYS = {"name", "aliases", "instrument", "file_ids", "nwcsaf_id", "orbital_slot", "instrument_id",
                  "projection", "periods"}


def _period(spec, what: str, positions: dict[str, Position]) -> Period:
    if not isinstance(spec, Mapping):
        raise CatalogError(f"{what} must be a mapping of position, lon, from, until, source, not {spec!r}")
    missing = [k for k in ("position", "lon", "from", "until", "source") if k not in spec]
    if missing:
        raise CatalogError(f"{what} lacks {', '.join(missing)} (until: null for a satellite still in service)")
    if spec["position"] not in positions:
        raise CatalogError(f"{what}: position {spec['position']!r} is not one of the ring's: {', '.join(positions)}")
    start = _instant(spec["from"], f"{what}: from")
    until = _instant(spec["until"], f"{what}: until")
    if start is None:
        raise CatalogError(f"{what}: from must be a date")
    if until is not None and until <= start:
        raise CatalogError(f"{what}: until ({_day(until)}) is not after from ({_day(start)})")
    if not str(spec["source"] or "").strip():
        raise CatalogError(f"{what}: source must name the operator announcement the period comes from")
    return Period(str(spec["position"]), _number(spec["lon"], f"{what}: lon"), start, until, str(spec["source"]))


def _platform(key: str, spec, where: str, positions: dict[str, Position]) -> Platform:
    what = f"{where}: platforms: {key}"
    if not isinstance(spec, Mapping):
        raise CatalogError(f"{what} must be a mapping, not {spec!r}")
    unknown = sorted(set(spec) - _PLATFORM_KEYS)
    if unknown:
        raise CatalogError(f"{what}: unknown field {', '.join(unknown)}; the fields are "
                           f"{', '.join(sorted(_PLATFORM_KEYS))}")
    missing = [k for k in ("name", "instrument", "file_ids", "nwcsaf_id", "projection", "periods") if k not in spec]
    if missing:
        raise CatalogError(f"{what} lacks {', '.join(missing)}")
    if spec["instrument"] not in _FAMILIES:
        raise CatalogError(f"{what}: instrument {spec['instrument']!r} is not one we read ({', '.join(_FAMILIES)})")
    if not isinstance(spec["periods"], list):
        raise CatalogError(f"{what}: periods must be a list")
    periods = tuple(_period(p, f"{what}: periods[{i}]", positions) for i, p in enumerate(spec["periods"]))
    for i, a in enumerate(periods):
        for b in periods[i + 1:]:
            if a.overlaps(b):
                raise CatalogError(f"{what}: its periods {a.position} {a.span} and {b.position} {b.span} overlap "
                                   "(one satellite holds one position at a time)")
    return Platform(key=key, name=str(spec["name"]), instrument=str(spec["instrument"]),
                    file_ids=_strings(spec["file_ids"], f"{what}: file_ids"), nwcsaf_id=str(spec["nwcsaf_id"]),
                    projection=_projection(spec["projection"], what), periods=periods,
                    aliases=_strings(spec.get("aliases"), f"{what}: aliases"),
                    orbital_slot=str(spec.get("orbital_slot", "") or ""),
                    instrument_id=str(spec.get("instrument_id", "") or ""))


def _check_positions(where: str, plats: dict[str, Platform], positions: dict[str, Position]) -> None:
    for pos in positions:
        held = sorted(((p, q) for p in plats.values() for q in p.periods if q.position == pos),
                      key=lambda pq: pq[1].start)
        for (p1, q1), (p2, q2) in zip(held, held[1:], strict=False):
            if q1.overlaps(q2):
                raise CatalogError(f"{where}: {pos} is held by {p1.key} ({p1.name}, {q1.span}) and {p2.key} "
                                   f"({p2.name}, {q2.span}) at once; periods of one position must not overlap")


def _check_names(where: str, plats: dict[str, Platform]) -> None:
    seen: dict[str, str] = {}
    for p in plats.values():
        for n in p.names():
            other = seen.setdefault(n.lower(), p.key)
            if other != p.key:
                raise CatalogError(f"{where}: the name {n!r} is given to both {other} and {p.key}")


def parse(data, where: str) -> Constellation:
    """A :class:`Constellation` from the parsed YAML of a platforms file (``where`` names it in errors)."""
    if not isinstance(data, Mapping) or "positions" not in data or "platforms" not in data:
        raise CatalogError(f"{where}: a platforms file is a mapping with positions: and platforms:")
    if not isinstance(data["positions"], list) or not data["positions"]:
        raise CatalogError(f"{where}: positions must be a list of {{name, lon}}, west to east")
    positions: dict[str, Position] = {}
    for i, spec in enumerate(data["positions"]):
        if not isinstance(spec, Mapping) or "name" not in spec or "lon" not in spec:
            raise CatalogError(f"{where}: positions[{i}] must be a mapping of name and lon, not {spec!r}")
        positions[str(spec["name"])] = Position(str(spec["name"]), _number(spec["lon"], f"{where}: positions[{i}]"))
    if not isinstance(data["platforms"], Mapping):
        raise CatalogError(f"{where}: platforms must be a mapping of platform id to its entry")
    plats = {str(k): _platform(str(k), v, where, positions) for k, v in data["platforms"].items()}
    _check_positions(where, plats, positions)
    _check_names(where, plats)
    return Constellation(tuple(positions.values()), plats, where)


def load(path: str | Path | None = None) -> Constellation:
    """The constellation of a platforms file (default: ``assets/platforms.yaml``); a bad file raises CatalogError."""
    path = Path(path) if path is not None else PLATFORMS_FILE
    where = path.name if path == PLATFORMS_FILE else str(path)
    if path == PLATFORMS_FILE:
        where = "assets/platforms.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: is not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse(data, where)


@functools.cache
def default() -> Constellation:
    """The constellation of ``assets/platforms.yaml`` (loaded once per process)."""
    return load()


# --- the module's answers, on the default file ------------------------------------------------------------------


def platform(name: str) -> Platform:
    """The platform known by ``name``: key (``G18``), file id (``MTI1``), NWC SAF id, satellite name or alias."""
    return default().platform(name)


def platforms() -> dict[str, Platform]:
    """Every platform of ``assets/platforms.yaml``, by key."""
    return dict(default().platforms)


def positions() -> tuple[Position, ...]:
    """The ring's positions, west to east."""
    return default().positions


def ring_on(when) -> tuple[Assignment, ...]:
    """The ring at ``when`` (a date or an instant, UTC), west to east: who held each position.

    ``ring_on("2021-04-12")`` → G17, G16, MSG4, MSG1, H08; ``ring_on("2025-07-08")`` → G18, G19, MTI1, MSG2, H09
    (``[a.key for a in ring_on(day)]``). A position nobody we read held then has ``platform=None`` and a ``note``.
    """
    return default().ring_on(when)


def with_overrides(catalog_platforms: Mapping[str, Any] | None, where: str = "the catalogue") -> Constellation:
    """The default constellation with a catalogue's ``platforms:`` map applied.

    See :meth:`Constellation.with_overrides` for the fields.
    """
    return default().with_overrides(catalog_platforms, where)
