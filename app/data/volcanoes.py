"""The Smithsonian GVP list of Holocene volcanoes: loading, lookup by name or number, autocomplete.

The table is the canonical *Volcanoes* shape (docs/architecture.md): one row per volcano with the
columns ``number`` (GVP volcano number), ``name``, ``country``, ``type``, ``last_eruption``, ``region``,
``subregion``, ``latitude``, ``longitude`` (degrees) and ``elevation_m``.

Names are matched with accents, case and punctuation ignored, and GVP's inverted names
("Fournaise, Piton de la") are also matched in reading order ("Piton de la Fournaise").
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from app.data.errors import FumaroleError, UserInputError
from app.paths import ASSETS

DEFAULT_PATH = ASSETS / "gvp_holocene_volcanoes_votw490.csv"
"""The GVP Volcanoes of the World 4.9.0 list shipped in ``assets/`` (see ``assets/CITATION.md``)."""

COLUMNS = {
    "Volcano Number": "number",
    "Volcano Name": "name",
    "Country": "country",
    "Primary Volcano Type": "type",
    "Last Known Eruption": "last_eruption",
    "Region": "region",
    "Subregion": "subregion",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Elevation (m)": "elevation_m",
}
"""GVP column header -> canonical column name, in the canonical order."""

ALIASES = {
    # The common names under which these volcanoes are known, where GVP's name differs and a prefix
    # search would be ambiguous: "La Soufrière" is St Vincent's volcano; Guadeloupe's is "La Grande
    # Soufrière"; Montserrat's is "Soufrière Hills" (GVP's own name).
    "la soufriere": 360150,
    "soufriere saint vincent": 360150,
    "la grande soufriere": 360060,
    "grande soufriere": 360060,
}
"""Normalised common name -> GVP volcano number."""

_LEADING_WORDS = ("mount", "mt", "mont", "monte", "volcan", "volcano", "the", "la", "le", "el")
_TRAILING_WORDS = ("volcano", "volcan", "volcanoes")
_NO_MATCH = 1_000


def normalise_name(text: str) -> str:
    """Return *text* lower-cased, without accents, apostrophes or punctuation, single-spaced.

    >>> normalise_name("Hunga Tonga-Hunga Ha'apai")
    'hunga tonga hunga haapai'
    """
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"['\u2019`]", "", plain)
    plain = re.sub(r"[^0-9a-z]+", " ", plain).strip()
    return re.sub(r"\bsaint\b", "st", plain)


def _reading_order(name: str) -> str:
    """GVP writes some names inverted ("Fournaise, Piton de la"); return them in reading order."""
    if "," not in name:
        return name
    head, _, tail = name.partition(",")
    return f"{tail.strip()} {head.strip()}"


def _find_header_row(path: Path) -> int:
    """Index of the line holding the GVP header (the export starts with a one-line banner)."""
    with open(path, encoding="utf-8-sig") as f:
        for i, line in enumerate(f):
            if line.startswith("Volcano Number,"):
                return i
            if i >= 5:
                break
    raise FumaroleError(
        f"{path}: no 'Volcano Number,...' header in the first lines; is this a GVP volcano list export?"
    )


# The GVP list is a small constant table (~1,300 rows, < 1 MB) read from a handful of paths at most: a count-bounded
# lru_cache bounds it well enough, outside the byte budget of app.core.cache.
@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise FumaroleError(f"{p}: the volcano list does not exist")
    raw = pd.read_csv(p, skiprows=_find_header_row(p), encoding="utf-8-sig")
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise FumaroleError(f"{p}: the volcano list lacks the column(s) {', '.join(missing)}")
    table = raw[list(COLUMNS)].rename(columns=COLUMNS)
    table["number"] = table["number"].astype("int64")
    for column in ("latitude", "longitude", "elevation_m"):
        table[column] = table[column].astype("float64")
    return table.reset_index(drop=True)


def load_volcanoes(path: str | Path | None = None) -> pd.DataFrame:
    """Read the GVP volcano list into the canonical table.

    Parameters
    ----------
    path
        A GVP "Holocene volcanoes" CSV export (banner line optional); the shipped VOTW 4.9.0 list by default.

    Returns
    -------
    pandas.DataFrame
        Columns ``number, name, country, type, last_eruption, region, subregion, latitude, longitude,
        elevation_m``. The file is parsed once per path (cached); each call returns a fresh copy.
    """
    return _load_cached(str(Path(path or DEFAULT_PATH).resolve())).copy()


@functools.lru_cache(maxsize=4)  # the search keys of the same few lists (small constant arrays)
def _default_keys(path: str) -> tuple[np.ndarray, np.ndarray]:
    return _keys(_load_cached(path))


def _keys(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Normalised names, as written and in reading order, one per row."""
    names = table["name"].astype(str)
    written = np.array([normalise_name(n) for n in names], dtype=object)
    reading = np.array([normalise_name(_reading_order(n)) for n in names], dtype=object)
    return written, reading


def _table_and_keys(table: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    if table is None:
        path = str(DEFAULT_PATH.resolve())
        return _load_cached(path), *_default_keys(path)
    return table, *_keys(table)


def _describe(table: pd.DataFrame, rows: Sequence[int]) -> str:
    return "; ".join(f"{table['name'].iat[i]} ({table['country'].iat[i]}, GVP {table['number'].iat[i]})" for i in rows)


def _starts_with(query: str, written: np.ndarray, reading: np.ndarray) -> np.ndarray:
    pairs = zip(written, reading, strict=True)
    return np.array([w.startswith(query) or r.startswith(query) for w, r in pairs], dtype=bool)


def _match_rows(query: str, written: np.ndarray, reading: np.ndarray) -> tuple[str, np.ndarray]:
    """Rows matching *query* at the first tier that matches anything: exact, prefix, all words."""
    exact = np.flatnonzero((written == query) | (reading == query))
    if exact.size:
        return "exact", exact
    prefix = np.flatnonzero(_starts_with(query, written, reading))
    if prefix.size:
        return "prefix", prefix
    words = query.split()
    every = np.flatnonzero([all(re.search(rf"\b{re.escape(word)}", w) for word in words) for w in written])
    return "words", every


def _strip_generic_words(query: str) -> str:
    """Drop generic words around a name: "Mount St Helens" -> "st helens", "Etna volcano" -> "etna"."""
    words = query.split()
    while len(words) > 1 and words[0] in _LEADING_WORDS:
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING_WORDS:
        words = words[:-1]
    return " ".join(words)


def _by_number(number: int, table: pd.DataFrame) -> pd.Series:
    rows = np.flatnonzero(table["number"].to_numpy() == number)
    if not rows.size:
        raise UserInputError(f"There is no volcano number {number} in the GVP list.")
    return table.iloc[rows[0]].copy()


def find_volcano(name: str | int, table: pd.DataFrame | None = None) -> pd.Series:
    """Find one volcano by name (accents, case and punctuation ignored) or by GVP number.

    Matching prefers, in order: the GVP number, the exact normalised name (as written or in reading
    order, "Piton de la Fournaise"), a known common name (``ALIASES``, e.g. "La Soufrière"), a unique
    name prefix ("hunga tonga"), a unique name containing every word given ("st vincent").

    Parameters
    ----------
    name
        A volcano name, or a GVP volcano number as int or string (``360150``, ``"360150"``).
    table
        A table from `load_volcanoes`; the shipped list by default.

    Returns
    -------
    pandas.Series
        The volcano's row (index: the table's columns).

    Raises
    ------
    UserInputError
        If no volcano matches (the message suggests the closest names) or several match equally well
        (the message lists them with their GVP numbers).
    """
    table, written, reading = _table_and_keys(table)
    if isinstance(name, int | np.integer):
        return _by_number(int(name), table)
    text = str(name).strip()
    if text.isdigit():
        return _by_number(int(text), table)
    query = normalise_name(text)
    if not query:
        raise UserInputError("Give a volcano name or GVP number; the name given is empty.")

    candidates = [query]
    stripped = _strip_generic_words(query)
    if stripped != query:
        candidates.append(stripped)
    for i, candidate in enumerate(candidates):
        tier, rows = _match_rows(candidate, written, reading)
        if tier == "exact" and rows.size == 1:
            return table.iloc[rows[0]].copy()
        if i == 0 and query in ALIASES and (table["number"] == ALIASES[query]).any():
            return _by_number(ALIASES[query], table)
        if rows.size == 1:
            return table.iloc[rows[0]].copy()
        if rows.size > 1:
            shown = _describe(table, rows[:12])
            more = f" and {rows.size - 12} more" if rows.size > 12 else ""
            raise UserInputError(
                f"The volcano name {text!r} matches {rows.size} volcanoes: {shown}{more}. "
                "Give the full name or the GVP number."
            )
    raise UserInputError(f"No volcano is named {text!r} in the GVP list.{_suggestion(query, table, written)}")


def _suggestion(query: str, table: pd.DataFrame, written: np.ndarray) -> str:
    close = difflib.get_close_matches(query, list(written), n=5, cutoff=0.6)
    if not close:
        return ""
    rows = [int(np.flatnonzero(written == c)[0]) for c in close]
    return " Did you mean: " + ", ".join(str(table["name"].iat[i]) for i in rows) + "?"


def suggest_names(text: str, table: pd.DataFrame | None = None, n: int = 5) -> list[str]:
    """Return up to *n* volcano names closest to *text* (difflib similarity on normalised names)."""
    table, written, _ = _table_and_keys(table)
    close = difflib.get_close_matches(normalise_name(text), list(written), n=n, cutoff=0.6)
    return [str(table["name"].iat[int(np.flatnonzero(written == c)[0])]) for c in close]


def search_volcanoes(text: str, table: pd.DataFrame | None = None, limit: int = 10) -> pd.DataFrame:
    """Volcanoes whose name matches *text*, best first, for autocomplete.

    Ranking: exact normalised name, then names starting with *text*, then names with a word starting with
    *text*, then names containing it anywhere, then (only if fewer than *limit* so far) the closest names
    by spelling. A query of digits also matches GVP numbers starting with it.

    Parameters
    ----------
    text
        What the user typed so far.
    table
        A table from `load_volcanoes`; the shipped list by default.
    limit
        Largest number of rows returned.

    Returns
    -------
    pandas.DataFrame
        At most *limit* rows of the table, best match first (empty for an empty query).
    """
    table, written, reading = _table_and_keys(table)
    query = normalise_name(text)
    if not query or limit <= 0:
        return table.iloc[:0].copy()
    rank = np.full(len(table), _NO_MATCH, dtype=int)

    def better(mask: Sequence[bool], value: int) -> None:
        np.minimum(rank, np.where(np.asarray(mask, dtype=bool), value, _NO_MATCH), out=rank)

    if query.isdigit():
        better(table["number"].astype(str).str.startswith(query).to_numpy(), 0)
    better((written == query) | (reading == query), 0)
    alias = ALIASES.get(query)
    if alias is not None:
        better(table["number"].to_numpy() == alias, 0)
    better(_starts_with(query, written, reading), 1)
    word = re.compile(rf"\b{re.escape(query)}")
    better([bool(word.search(w)) for w in written], 2)
    better([query in w for w in written], 3)
    if (rank < _NO_MATCH).sum() < limit:
        for k, c in enumerate(difflib.get_close_matches(query, list(written), n=limit, cutoff=0.6)):
            better(written == c, 4 + k)
    order = np.lexsort((written, rank))
    order = order[rank[order] < _NO_MATCH][:limit]
    return table.iloc[order].copy()
