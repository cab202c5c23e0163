"""A read-only archive is normal: indexed, shown, read and computed on without one byte written to it.

The tests run as root in CI, and root ignores permission bits: ``chmod -R a-w`` alone proves nothing there. The
proof is a snapshot of the tree (every path, size, mtime_ns and mode) taken before and compared after: nothing
added, changed or removed. A second test points the state folder at a place that cannot exist (a path under a
regular file, so even root's mkdir fails): everything still works, and the failure is said once, without a
traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core import state
from app.data import index as gi
from app.data.archive import Archive, read_curtain_cached

REPO = Path(__file__).resolve().parents[1]
DAY = "2021-04-12"
CARIBBEAN = "Caribbean"
VOLCANO = "Soufriere St Vincent"


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` (folders too) -> (size, mtime_ns, mode), links not followed."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""] if folder == str(root) else [*dirs, *files]:
            p = os.path.join(folder, name) if name else folder
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _chmod_tree(root: Path, writable: bool) -> None:
    for folder, _dirs, files in os.walk(root):
        for p in [folder, *(os.path.join(folder, n) for n in files)]:
            mode = os.lstat(p).st_mode
            bits = stat.S_IWUSR if writable else 0
            os.chmod(p, (mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) | bits)


@pytest.fixture
def readonly_archive(tiny_archive_path, tmp_path):
    """A ``chmod -R a-w`` copy of the tiny archive and a catalogue pointing at it: (root, catalogue path)."""
    root = tmp_path / "readonly" / "tiny"
    shutil.copytree(tiny_archive_path, root)
    # an index an older Fumarole left in the archive: it must be ignored, never read, rewritten or deleted
    (root / gi.LEGACY_INDEX_FILENAME).write_bytes(b"PAR1 stale index of an older version")
    text = (REPO / "catalogs" / "tiny.yaml").read_text().replace("{CATALOG_DIR}/../data/tiny", str(root))
    catalogue = tmp_path / "tiny-readonly.yaml"
    catalogue.write_text(text)
    _chmod_tree(root, writable=False)
    yield root, catalogue
    _chmod_tree(root, writable=True)  # so that pytest can remove it


def _use_everything(root: Path, catalogue: Path) -> dict:
    """Index, VolcPlume map, CALIOP curtain, GEO frame and time series on the archive; what each gave."""
    from app.render import geo as render
    from app.services import geo as services
    from app.services.timeseries import compute_mass_timeseries
    from app.views.log_console import LogConsole
    from app.views.volcplume import VolcPlume

    archive = Archive(str(catalogue))
    rep = archive.refresh()
    out = {"index": len(archive.index), "skipped": rep.skipped}

    log = LogConsole()
    vp = VolcPlume(archive=archive, log=log, date=dt.date(2021, 4, 12), zone=CARIBBEAN)
    image = vp._image(None, None, 600, 400, vp.layers)
    values = image.dimension_values("v")
    out["so2_pixels"] = int(np.isfinite(values).sum())
    out["so2_max"] = float(np.nanmax(values)) if out["so2_pixels"] else float("nan")

    caliop = sorted((root / "caliop").rglob("CAL_LID_*.hdf"))[0]
    curtain = read_curtain_cached(str(caliop), ["total_attenuated_backscatter_532"])
    out["curtain_finite"] = int(np.isfinite(curtain["total_attenuated_backscatter_532"].values).sum())

    scene = services.load_product(archive, "G16", pd.Timestamp(f"{DAY}T15:00"), "ash")
    frame = render.frame(scene, "ash", width=200, cache=False)
    out["frame_opaque"] = int((np.asarray(frame.values)[..., 3] > 0).sum())

    table, _report = compute_mass_timeseries(str(catalogue), VOLCANO, DAY, DAY, radii_km=(100.0, 500.0))
    out["masses"] = table["mass_t"].dropna().to_numpy()
    out["log"] = log.messages()
    return out


def _check_results(out: dict, tiny_archive_path: Path) -> None:
    from app.data.filenames import PATTERNS

    # the index holds the TROPOMI and CALIOP granules; the GEO products are time-partitioned, listed by folder
    indexed = [pattern for name, pattern in PATTERNS.items() if name in ("tropomi_so2", "caliop_l1b")]
    n_files = sum(1 for p in tiny_archive_path.rglob("*") if p.is_file() and any(
        pattern.matches(p.name) for pattern in indexed))
    assert out["index"] == n_files and out["skipped"] == []
    assert out["so2_pixels"] > 100 and out["so2_max"] > 1.0  # the plume, in DU
    assert out["curtain_finite"] > 1000
    assert out["frame_opaque"] > 1000
    assert len(out["masses"]) > 0 and (out["masses"] > 0).any()


def test_a_readonly_archive_is_served_and_never_written(readonly_archive, tiny_archive_path):
    root, catalogue = readonly_archive
    legacy = root / gi.LEGACY_INDEX_FILENAME  # an old index left in the archive: ignored, not deleted
    before = snapshot(root)
    assert len(before) > 300 and legacy.exists()

    out = _use_everything(root, catalogue)

    _check_results(out, tiny_archive_path)
    after = snapshot(root)
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert (added, removed, changed) == ([], [], [])
    # the index went to the state folder, keyed by the archive
    stored = Path(gi.index_path(root))
    assert stored.exists() and not stored.is_relative_to(root)
    assert len(gi.GranuleIndex.load(stored)) == out["index"]


def test_an_unwritable_state_folder_is_said_once_and_all_goes_on(readonly_archive, tiny_archive_path, tmp_path,
                                                                  monkeypatch, caplog):
    root, catalogue = readonly_archive
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(blocker / "state"))  # mkdir fails, even for root
    state.said_once_reset()
    before = snapshot(root)

    with caplog.at_level(logging.INFO):
        out = _use_everything(root, catalogue)
        again = Archive(str(catalogue))  # a second archive object, refreshed twice: still said once
        again.refresh()
        again.refresh()

    _check_results(out, tiny_archive_path)
    assert len(again.index) == out["index"]
    said = [r for r in caplog.records if "cannot write the granule index" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert str(blocker) in said[0].getMessage() and "going on in memory" in said[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text
    assert snapshot(root) == before
    assert blocker.read_text() == "not a folder"


def _answer(url: str) -> tuple[int, str, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_the_api_on_a_readonly_archive_answers_every_route_and_writes_nothing(readonly_archive):
    import io
    import json

    from conftest import serve_api
    from PIL import Image

    from app.services.timeseries import read_timeseries_csv

    root, catalogue = readonly_archive
    before = snapshot(root)
    archive = Archive(str(catalogue))
    routes = {
        "so2/map.png?date=2021-04-12&zone=Caribbean&level=7km&width=512": "png",
        "so2/value?date=2021-04-12&lat=13.3&lon=-61.2": "json",
        "so2/orbits?date=2021-04-12&zone=Caribbean": "json",
        "so2/timeseries?volcano=Soufriere%20St.%20Vincent&start=2021-04-12&end=2021-04-12&radii=100,300": "csv",
        "caliop/granules?date=2021-04-12&zone=Caribbean": "json",
        "caliop/curtain.png?granule=CAL_LID_L1-Standard-V4-51.2021-04-12T15-17-42ZD&width=400&height=200": "png",
        "geo/image.png?satellite=G16&product=ash&time=2021-04-12T15:00&bbox=-70,5,-50,20&width=300": "png",
        "geo/slots?satellite=G16&date=2021-04-12": "json",
        "geo/mosaic.png?product=ash&time=2021-04-12T15:00&width=360": "png",
        "volcanoes?q=Soufriere": "json",
        "animation/geo.gif?satellite=G16&product=ash&date=2021-04-12&bbox=-70,5,-50,20&width=320": "gif",
        "wms?SERVICE=WMS&REQUEST=GetCapabilities": "xml",
        "wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=geo.goes-east.ash&STYLES=&CRS=EPSG:4326"
        "&BBOX=5,-70,20,-50&WIDTH=300&HEIGHT=225&FORMAT=image/png&TIME=2021-04-12T15:00:00Z": "png",
        "tiles/so2/2/1/1.png?time=2021-04-12": "png",
    }
    with serve_api(archive, ("geo", "v1", "ogc")) as url:
        answers = {route: _answer(f"{url}/api/v1/{route}") for route in routes}
    for route, kind in routes.items():
        status, ctype, body = answers[route]
        assert status == 200, (route, body[:300])
        if kind == "png":
            picture = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
            assert picture.shape[1] in (256, 300, 360, 400, 512) and len(np.unique(picture.reshape(-1, 4), axis=0)) > 5
        elif kind == "json":
            assert json.loads(body), route
        elif kind == "gif":
            assert ctype == "image/gif" and body[:6] == b"GIF89a" and len(body) > 1000, route
        elif kind == "xml":
            assert b"<WMS_Capabilities" in body and b"geo.goes-east.ash" in body, route
        else:
            assert ctype.startswith("text/csv")
            _header, table = read_timeseries_csv(io.StringIO(body.decode()))
            assert table["mass_t"].max() > 100  # tonnes of SO2 within 300 km of the eruption
    assert snapshot(root) == before
