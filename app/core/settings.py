"""Operator settings: what only the person who runs the server decides, never a visitor of its pages.

Read from the environment (``fumarole serve`` passes its flags on that way) and from an optional YAML file named by
``FUMAROLE_CONFIG``; the environment wins. Today:

- ``clusters``: the Dask clusters time series may run on, by name (``FUMAROLE_CLUSTERS="big=tcp://10.1.2.3:8786,
  gpu=tls://dask.example.org:8786"``, or a ``clusters:`` mapping in the file). Pages offer these names only; an
  address never comes from a page. ``local`` (this process's threads) is always there.
"""

from __future__ import annotations

import os
from functools import lru_cache

__all__ = ["clusters", "cluster_address", "LOCAL", "SettingsError", "reload"]

LOCAL = "local"


class SettingsError(ValueError):
    """A setting the operator gave cannot be used (names the setting and the value)."""


@lru_cache(maxsize=1)
def _file_settings() -> dict:
    path = os.environ.get("FUMAROLE_CONFIG", "").strip()
    if not path:
        return {}
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"FUMAROLE_CONFIG={path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"FUMAROLE_CONFIG={path}: must hold a mapping of settings")
    return data


def _parse_clusters(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (p.strip() for p in text.replace(";", ",").split(",")):
        if not item:
            continue
        name, sep, address = item.partition("=")
        if not sep or not name.strip() or not address.strip():
            raise SettingsError(f"FUMAROLE_CLUSTERS item {item!r} is not NAME=ADDRESS")
        out[name.strip()] = address.strip()
    return out


def clusters() -> dict[str, str]:
    """Cluster name -> Dask scheduler address (``local`` -> ``threads``), as the operator configured them."""
    found: dict[str, str] = {LOCAL: "threads"}
    from_file = _file_settings().get("clusters") or {}
    if not isinstance(from_file, dict):
        raise SettingsError("FUMAROLE_CONFIG: 'clusters' must map names to scheduler addresses")
    found.update({str(k): str(v) for k, v in from_file.items()})
    found.update(_parse_clusters(os.environ.get("FUMAROLE_CLUSTERS", "")))
    return found


def cluster_address(name: str) -> str:
    """The address of the configured cluster ``name``; anything else is refused (names the known ones)."""
    known = clusters()
    if name not in known:
        raise SettingsError(f"unknown cluster {name!r}; the configured clusters are {', '.join(sorted(known))}")
    return known[name]


def reload() -> None:
    """Read the settings file again (tests)."""
    _file_settings.cache_clear()
