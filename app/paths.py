"""Where things are: the dashboards, catalogues and assets, and the default archive folders.

Two layouts are supported. In a checkout of the repository the dashboards, catalogues and assets are its top-level
folders ``dashboards/``, ``catalogs/`` and ``assets/``. A non-editable install (a wheel, the Docker image) ships
the same folders inside the package as ``app/_resources/...`` (see ``[tool.setuptools]`` in pyproject.toml), and
there is no repository around it: the archives then default to the user's data folder, not to ``site-packages``.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: The repository, when Fumarole runs from a checkout (an editable install); else the folder above the package.
REPO = PACKAGE.parent
_BUNDLED = PACKAGE / "_resources"


def _is_checkout(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "dashboards").is_dir() and (root / "assets").is_dir()


#: True in a checkout of the repository, False in a non-editable install.
CHECKOUT = _is_checkout(REPO)
#: The folder holding ``dashboards/``, ``catalogs/`` and ``assets/``.
RESOURCES = REPO if CHECKOUT else _BUNDLED
ASSETS = RESOURCES / "assets"
CATALOGS = RESOURCES / "catalogs"
DASHBOARDS = RESOURCES / "dashboards"


def data_home() -> Path:
    """Where an install keeps the archives it writes: ``$XDG_DATA_HOME/fumarole`` (``~/.local/share/fumarole``)."""
    base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "fumarole"


def default_archive() -> Path:
    """The sample archive's folder: ``FUMAROLE_ARCHIVE``, else ``data/sample`` of the checkout (or the data home).

    The default catalogue (``catalogs/sample.yaml``) follows the same rule, so ``fumarole sample`` writes where
    ``fumarole serve`` reads.
    """
    explicit = os.environ.get("FUMAROLE_ARCHIVE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return (REPO / "data" / "sample") if CHECKOUT else data_home() / "sample"


def tiny_archive() -> Path:
    """The tiny test archive's folder (``data/tiny`` of the checkout, or ``tiny`` in the data home)."""
    return (REPO / "data" / "tiny") if CHECKOUT else data_home() / "tiny"
