"""Where things are: the repository, its assets and the default archive folders."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets"
CATALOGS = REPO / "catalogs"
DASHBOARDS = REPO / "dashboards"


def default_archive() -> Path:
    """The folder `fumarole sample` writes to by default (``FUMAROLE_ARCHIVE`` overrides it)."""
    return Path(os.environ.get("FUMAROLE_ARCHIVE", REPO / "data" / "sample"))


def tiny_archive() -> Path:
    """The tiny test archive's folder."""
    return REPO / "data" / "tiny"
