"""The reader registry (app.data.readers): catalogue ``reader:`` keys name registered readers, nothing else."""

from __future__ import annotations

import pytest
import yaml

from app.data.errors import UserInputError
from app.data.readers import READERS, reader_for, register_reader
from app.paths import CATALOGS as CATALOG_DIR


@pytest.mark.parametrize("key", sorted(READERS))
def test_every_registered_reader_imports(key):
    func = reader_for(key)
    assert callable(func)
    assert func.__name__ == READERS[key].target.split(":")[1]


@pytest.mark.parametrize("catalog", sorted(p.name for p in CATALOG_DIR.glob("*.yaml")
                                           if not p.name.endswith(".playlist.yaml")))  # kiosk playlists
def test_every_catalogue_reader_key_resolves(catalog):
    entries = yaml.safe_load((CATALOG_DIR / catalog).read_text())["entries"]
    keys = {name: e["metadata"]["reader"] for name, e in entries.items() if "reader" in e.get("metadata", {})}
    assert keys, f"{catalog} names no reader"
    for name, key in keys.items():
        assert callable(reader_for(key)), name


def test_old_module_function_spelling_of_our_readers_still_resolves():
    assert reader_for("app.data.tropomi:read_swath") is reader_for("tropomi_l2_so2")


@pytest.mark.parametrize("name", ["os:system", "subprocess:run", "app.data.tropomi:_open", "pickle:loads", "nope"])
def test_unknown_reader_refused_with_the_registered_keys(name):
    with pytest.raises(UserInputError) as err:
        reader_for(name)
    assert repr(name) in str(err.value)
    assert "tropomi_l2_so2" in str(err.value)


def test_only_app_functions_can_be_registered():
    with pytest.raises(ValueError, match="app package"):
        register_reader("evil", "os:system", "swath", "none")
    assert "evil" not in READERS
