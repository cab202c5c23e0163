"""File names of the products we read: parse them into fields, and format them from fields.

Each product declares its file-name pattern once, in the style of satpy's reader YAMLs (trollsift syntax)::

    S5P_{mode}_L2__SO2____{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_{orbit:05d}_..._{created:%Y%m%dT%H%M%S}.nc

and :class:`FilenamePattern` compiles it to a plain ``re`` regular expression (no trollsift needed at run time).
Supported field formats:

- ``{name}``: any non-empty text (shortest match);
- ``{name:Ns}``: exactly N characters of text;
- ``{name:0Nd}`` / ``{name:Nd}``: N digits, parsed to ``int``;
- ``{name:%Y%m%dT%H%M%S}`` (any ``strftime`` directives among ``%Y %m %d %H %M %S %j %f %y``): a time, parsed to a
  naive :class:`datetime.datetime` in UTC.

A field name may appear once only. Times are naive UTC everywhere in Fumarole (as the canonical ``datetime64``
coordinates are); aware datetimes given to the formatters are converted to UTC first.

The geostationary products (``geo_abi_l1b``, ``geo_ahi_hsd``, ``geo_seviri_nc``, ``geo_fci_l1c``, ``nwcsaf_ctth``)
are named by platform and slot: one ABI file per band, one HSD file per band and segment (``.DAT`` or ``.DAT.bz2``),
one SEVIRI file per slot, one FCI L1c FDHSI body chunk per file (40 per repeat cycle), one CTTH file per slot
(platform as NWC SAF names it: ``GOES16``, ``HIMAWARI8``, ``MTI1``).

Adding a product is one :func:`register_pattern` call (see the bottom of this module), plus, for the granule
index, one geolocation function in :mod:`app.data.index`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.data.errors import GranuleError

__all__ = [
    "FilenamePattern",
    "PATTERNS",
    "register_pattern",
    "parse_filename",
    "tropomi_filename",
    "caliop_filename",
    "nwcsaf_ctth_filename",
    "fci_l1c_filename",
]

# strftime directive -> regex of the digits it produces (only fixed-width directives: a file name must parse back).
_TIME_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "j": r"\d{3}",
    "f": r"\d{6}",
}
_FIELD = re.compile(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<spec>[^{}]*))?\}")


def _time_regex(spec: str) -> str:
    out, i = [], 0
    while i < len(spec):
        if spec[i] == "%":
            directive = spec[i + 1 : i + 2]
            if directive not in _TIME_DIRECTIVES:
                raise ValueError(f"time format {spec!r}: %{directive} is not a fixed-width directive we support")
            out.append(_TIME_DIRECTIVES[directive])
            i += 2
        else:
            out.append(re.escape(spec[i]))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # "text", "int", "time"
    spec: str  # format spec as written ("" for free text)

    def regex(self) -> str:
        if self.kind == "time":
            body = _time_regex(self.spec)
        elif self.kind == "int":
            width = self.spec.rstrip("d").lstrip("0")
            body = rf"\d{{{int(width)}}}" if width else r"\d+"
        elif self.spec:
            body = rf".{{{int(self.spec.rstrip('s'))}}}"
        else:
            body = r".+?"
        return f"(?P<{self.name}>{body})"

    def convert(self, text: str) -> Any:
        if self.kind == "time":
            return dt.datetime.strptime(text, self.spec)
        if self.kind == "int":
            return int(text)
        return text

    def format(self, value: Any) -> str:
        if self.kind == "time":
            return _as_naive_utc(value).strftime(self.spec)
        if self.kind == "int":
            return format(int(value), self.spec)
        text = str(value)
        if self.spec and len(text) != int(self.spec.rstrip("s")):
            raise ValueError(f"field {self.name!r} must be {self.spec.rstrip('s')} characters long, got {text!r}")
        return text


def _parse_field(name: str, spec: str | None) -> _Field:
    spec = spec or ""
    if "%" in spec:
        _time_regex(spec)  # validates
        return _Field(name, "time", spec)
    if re.fullmatch(r"0?\d*d", spec):
        return _Field(name, "int", spec)
    if re.fullmatch(r"\d*s?", spec):
        return _Field(name, "text", spec.rstrip("s") and spec)
    raise ValueError(f"field {{{name}:{spec}}}: unsupported format {spec!r}")


@dataclass(frozen=True)
class FilenamePattern:
    """The file-name pattern of one product, compiled to a regular expression.

    Parameters
    ----------
    product : our product id (``tropomi_so2``, ``caliop_l1b``, ...).
    pattern : the pattern in trollsift syntax (see the module docstring).
    description : short words for error messages ("S5P L2").
    constants : fields every file of the product has, added to each parse result (e.g. ``platform``).
    derive : optional function ``fields -> extra fields``, run after parsing (e.g. ``day_night`` -> ``daytime``).
    """

    product: str
    pattern: str
    description: str
    constants: Mapping[str, Any] = field(default_factory=dict)
    derive: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __post_init__(self):
        fields: dict[str, _Field] = {}
        parts, pos = [], 0
        for m in _FIELD.finditer(self.pattern):
            parts.append(re.escape(self.pattern[pos : m.start()]))
            f = _parse_field(m["name"], m["spec"])
            if f.name in fields:
                raise ValueError(f"pattern {self.pattern!r}: field {f.name!r} appears twice")
            fields[f.name] = f
            parts.append(f.regex())
            pos = m.end()
        parts.append(re.escape(self.pattern[pos:]))
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_regex", re.compile("".join(parts) + r"\Z"))

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the fields in the pattern, in order."""
        return tuple(self._fields)

    @property
    def regex(self) -> re.Pattern:
        """The compiled regular expression (anchored at both ends)."""
        return self._regex

    @property
    def glob(self) -> str:
        """A glob that matches every file name of the pattern (each field becomes ``*``)."""
        return _FIELD.sub("*", self.pattern)

    def matches(self, name: str) -> bool:
        """Whether a file name (not a path) has this pattern's shape."""
        return self._regex.match(name) is not None

    def parse(self, path: str | os.PathLike) -> dict[str, Any]:
        """Fields of a file name (the folders of ``path`` are ignored), plus ``product`` and the constants.

        Raises :class:`~app.data.errors.GranuleError` naming the file and the pattern when the name does not fit.
        """
        name = _basename(path)
        m = self._regex.match(name)
        if m is None:
            raise GranuleError(path, f"file name does not match the {self.description} pattern {self.pattern}")
        out: dict[str, Any] = {"product": self.product, **self.constants}
        for key, text in m.groupdict().items():
            f = self._fields[key]
            try:
                out[key] = f.convert(text)
            except ValueError:
                raise GranuleError(
                    path, f"file name field {key} = {text!r} is not a valid time in the format {f.spec}"
                ) from None
        if self.derive is not None:
            try:
                out.update(self.derive(out))
            except ValueError as e:
                raise GranuleError(path, f"file name: {e}") from None
        return out

    def format(self, **values: Any) -> str:
        """The file name with the given field values (each field of the pattern must be given)."""
        missing = [k for k in self._fields if k not in values]
        if missing:
            raise ValueError(f"{self.product} file name: missing field(s) {', '.join(missing)}")
        pos, out = 0, []
        for m in _FIELD.finditer(self.pattern):
            out.append(self.pattern[pos : m.start()])
            out.append(self._fields[m["name"]].format(values[m["name"]]))
            pos = m.end()
        out.append(self.pattern[pos:])
        name = "".join(out)
        if not self.matches(name):  # e.g. an orbit number with more digits than the pattern allows
            raise ValueError(f"{self.product} file name {name!r} does not parse back with {self.pattern}")
        return name


def _basename(path: str | os.PathLike) -> str:
    return os.fspath(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _as_naive_utc(value: Any) -> dt.datetime:
    """A naive UTC datetime from a datetime, pandas/numpy time or ISO string."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif not isinstance(value, dt.datetime):
        import pandas as pd

        value = pd.Timestamp(value).to_pydatetime()
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


#: The registry: product id -> file-name pattern. The index and the catalogue look patterns up here.
PATTERNS: dict[str, FilenamePattern] = {}


def register_pattern(pattern: FilenamePattern) -> FilenamePattern:
    """Add a product's file-name pattern to :data:`PATTERNS` (replacing any of the same product)."""
    PATTERNS[pattern.product] = pattern
    return pattern


def parse_filename(path: str | os.PathLike, product: str | None = None) -> dict[str, Any]:
    """Fields of a granule's file name.

    With ``product``, the name must fit that product's pattern; without, the first registered pattern that fits is
    used. Raises :class:`~app.data.errors.GranuleError` naming the file and the pattern(s) tried.
    """
    if product is not None:
        try:
            pattern = PATTERNS[product]
        except KeyError:
            raise GranuleError(
                path, f"unknown product {product!r}; known products: {', '.join(sorted(PATTERNS))}"
            ) from None
        return pattern.parse(path)
    name = _basename(path)
    for pattern in PATTERNS.values():
        if pattern.matches(name):
            return pattern.parse(path)
    tried = "; ".join(f"{p.product}: {p.pattern}" for p in PATTERNS.values())
    raise GranuleError(path, f"file name does not match any known product pattern ({tried})")


# --- the products --------------------------------------------------------------------------------------------

TROPOMI_SO2 = register_pattern(
    FilenamePattern(
        product="tropomi_so2",
        pattern=(
            "S5P_{mode}_L2__SO2____{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_{orbit:05d}_{collection:02d}"
            "_{processor:06d}_{created:%Y%m%dT%H%M%S}.nc"
        ),
        description="S5P L2",
        constants={"platform": "S5P", "instrument": "TROPOMI"},
    )
)


def _caliop_derive(fields: dict[str, Any]) -> dict[str, Any]:
    if fields["day_night"] not in ("D", "N"):
        raise ValueError(f"the letter after Z must be D (day) or N (night), not {fields['day_night']!r}")
    return {"version": f"{fields['major']}.{fields['minor']:02d}", "daytime": fields["day_night"] == "D"}


CALIOP_L1B = register_pattern(
    FilenamePattern(
        product="caliop_l1b",
        pattern="CAL_LID_L1-Standard-V{major:1d}-{minor:2d}.{start:%Y-%m-%dT%H-%M-%S}Z{day_night:1s}.hdf",
        description="CALIOP L1B V4",
        constants={"platform": "CALIPSO", "instrument": "CALIOP"},
        derive=_caliop_derive,
    )
)

NWCSAF_CTTH = register_pattern(
    FilenamePattern(
        product="nwcsaf_ctth",
        pattern="S_NWC_CTTH_{platform}_{region}_{start:%Y%m%dT%H%M%S}Z.nc",
        description="NWC SAF GEO CTTH",
    )
)


GEO_ABI_L1B = register_pattern(
    FilenamePattern(
        product="geo_abi_l1b",
        pattern=(
            "OR_ABI-L1b-RadF-M{scan_mode:1d}C{band:02d}_{platform:3s}_s{start:%Y%j%H%M%S}{start_tenth:1d}"
            "_e{end:%Y%j%H%M%S}{end_tenth:1d}_c{created:%Y%j%H%M%S}{created_tenth:1d}.nc"
        ),
        description="GOES-R ABI L1b full disk",
        constants={"instrument": "ABI"},
    )
)


def _hsd_derive(fields: dict[str, Any]) -> dict[str, Any]:
    if fields["extension"] not in ("DAT", "DAT.bz2"):
        raise ValueError(f"an HSD file ends in .DAT or .DAT.bz2, not .{fields['extension']}")
    return {"compressed": fields["extension"] == "DAT.bz2"}


GEO_AHI_HSD = register_pattern(
    FilenamePattern(
        product="geo_ahi_hsd",
        pattern=(
            "HS_{platform:3s}_{start:%Y%m%d_%H%M}_B{band:02d}_{area:4s}_R{res_code:02d}"
            "_S{segment:02d}{total_segments:02d}.{extension}"
        ),
        description="Himawari AHI HSD",
        constants={"instrument": "AHI"},
        derive=_hsd_derive,
    )
)

GEO_SEVIRI_NC = register_pattern(
    FilenamePattern(
        product="geo_seviri_nc",
        pattern="W_XX-EUMETSAT-Darmstadt,VIS+IR+HRV+IMAGERY,{platform:4s}+SEVIRI_C_EUMG_{start:%Y%m%d%H%M%S}.nc",
        description="Meteosat SEVIRI Level 1.5 netCDF",
        constants={"instrument": "SEVIRI"},
    )
)


def _fci_derive(fields: dict[str, Any]) -> dict[str, Any]:
    """The nominal slot (and ``start``/``end``): the chunk's day plus (repeat cycle − 1) × 10 min, as satpy has it.

    The 40 chunks of a repeat cycle thus index as one slot.
    """
    midnight = fields["chunk_start"].replace(hour=0, minute=0, second=0, microsecond=0)
    slot = midnight + dt.timedelta(minutes=10 * (fields["repeat_cycle"] - 1))
    return {"slot": slot, "start": slot, "end": slot + dt.timedelta(minutes=10)}


#: MTG-I FCI Level 1c FDHSI body chunks (FCI L1 PUG, EUMETSAT doc 45923; satpy's ``fci_l1c_nc`` pattern), e.g.
#: ``W_XX-EUMETSAT-Darmstadt,IMG+SAT,MTI1+FCI-1C-RRAD-FDHSI-FD--CHK-BODY---NC4E_C_EUMT_20250707121215_IDPFI_OPE_
#: 20250707120007_20250707120017_N__O_0073_0001.nc``: processing time, facility and environment, the chunk's scan
#: start and end (fields ``chunk_start``/``chunk_end``), the repeat cycle of the day (1-based; 144 of 10 min) and
#: the chunk number (1 south … 40 north). ``start``/``end``/``slot`` are derived: the repeat cycle's 10 minutes.
GEO_FCI_L1C = register_pattern(
    FilenamePattern(
        product="geo_fci_l1c",
        pattern=(
            "W_XX-EUMETSAT-Darmstadt,IMG+SAT,{platform:4s}+FCI-1C-RRAD-FDHSI-{coverage:2s}--CHK-BODY--{purpose}"
            "_C_EUMT_{created:%Y%m%d%H%M%S}_{facility}_{environment}_{chunk_start:%Y%m%d%H%M%S}_{chunk_end:%Y%m%d%H%M%S}"
            "_{processing_mode:1s}_{compression_disposition}_{repeat_cycle:04d}_{chunk:04d}.nc"
        ),
        description="MTG FCI L1c FDHSI body chunk",
        constants={"instrument": "FCI"},
        derive=_fci_derive,
    )
)


def tropomi_filename(
    start,
    end,
    orbit: int,
    collection: int = 2,
    processor: str | int = "020104",
    created=None,
    mode: str = "OFFL",
) -> str:
    """The file name of a Sentinel-5P L2 SO2 granule.

    ``processor`` is the six-digit processor version (``'020104'`` for 02.01.04, or the int 20104). ``created``
    (the production time) defaults to one hour after ``end``, so names are reproducible. ``mode`` is the
    processing stream: ``OFFL``, ``NRTI`` or ``RPRO``.
    """
    end = _as_naive_utc(end)
    if created is None:
        created = end + dt.timedelta(hours=1)
    if len(mode) != 4:
        raise ValueError(f"S5P processing mode must be four letters (OFFL, NRTI, RPRO), got {mode!r}")
    return TROPOMI_SO2.format(
        mode=mode, start=start, end=end, orbit=orbit, collection=collection, processor=processor, created=created
    )


def caliop_filename(start, day_night: str, minor: str | int = "51", major: int = 4) -> str:
    """The file name of a CALIOP L1B V4 half-orbit granule; ``day_night`` is ``'D'`` or ``'N'``."""
    if day_night not in ("D", "N"):
        raise ValueError(f"CALIOP day_night must be 'D' (day) or 'N' (night), got {day_night!r}")
    return CALIOP_L1B.format(major=major, minor=minor, start=start, day_night=day_night)


def nwcsaf_ctth_filename(start, platform: str, region: str) -> str:
    """The file name of an NWC SAF GEO cloud-top (CTTH) product, e.g. platform ``MSG4``, region ``MSG-N-BS``."""
    return NWCSAF_CTTH.format(platform=platform, region=region, start=start)


def fci_l1c_filename(start, end, chunk: int, repeat_cycle: int | None = None, platform: str = "MTI1",
                     created=None, coverage: str = "FD", environment: str = "OPE") -> str:
    """The file name of one FCI L1c FDHSI body chunk (operational IDPF-I form, ``…-NC4E_…_N__O_…``).

    ``start``/``end`` are the chunk's scan start and end; ``repeat_cycle`` (1-based within the day, 10 min each)
    defaults to the one ``start`` falls in; ``created`` (processing time) to 5 minutes after ``end``.
    """
    start, end = _as_naive_utc(start), _as_naive_utc(end)
    if repeat_cycle is None:
        repeat_cycle = (start.hour * 60 + start.minute) // 10 + 1
    if created is None:
        created = end + dt.timedelta(minutes=5)
    return GEO_FCI_L1C.format(platform=platform, coverage=coverage, purpose="-NC4E", created=created,
                              facility="IDPFI", environment=environment, chunk_start=start, chunk_end=end,
                              processing_mode="N",
                              compression_disposition="_O", repeat_cycle=repeat_cycle, chunk=chunk)
