"""The ready-made catalogues of ``catalogs/`` used AS WRITTEN against a local S3 server.

The tiny archive's files are uploaded under the REAL bucket names and key layouts (``meeo-s5p/OFFL/L2__SO2___/
YYYY/MM/DD/``, ``noaa-goes16/ABI-L1b-RadF/YYYY/DDD/HH/``, ``noaa-himawari8/AHI-L1b-FLDK/YYYY/MM/DD/HHMM/``,
``eodata/Sentinel-5P/TROPOMI/L2__SO2___/YYYY/MM/DD/``); their file names already follow the real patterns: the
GOES-16, GOES-17 and Himawari-8 files go to their satellites' buckets. GOES-18 and GOES-19 (GOES-West and -East
since 2023 and 2025) get the GOES-17 and GOES-16 files renamed to them and to 8 July 2025 (the same longitudes:
the same fixed grids), the bytes unchanged. botocore is pointed at
the server through the environment only (``AWS_ENDPOINT_URL_S3``, which aiobotocore honours), so the public
catalogues are opened from ``catalogs/`` without a change. The public buckets are anonymous: they are served by a
moto server of their own, in a subprocess, without authorisation (the session's ``s3_server`` has IAM on, which in
moto is process-wide). ``cdse.yaml`` needs credentials: it runs against ``s3_server`` with its endpoint URL swapped
for the server's and the reader's key and secret in ``CDSE_S3_ACCESS_KEY``/``CDSE_S3_SECRET_KEY``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.register_assert_rewrite("tests.remote_servers")

from app.data import geo, geo_slots, storage  # noqa: E402
from app.data.archive import Archive  # noqa: E402
from app.data.catalog import CATALOGS_DIR  # noqa: E402
from app.data.errors import GranuleError  # noqa: E402
from app.data.index import unpack_cells  # noqa: E402
from app.science import rgb  # noqa: E402
from app.services import geo as geo_service  # noqa: E402
from tests.conftest import stop_process, wait_for_http  # noqa: E402
from tests.remote_servers import TINY, free_port  # noqa: E402

pytest_plugins = ["tests.remote_servers"]

DAY = dt.date(2021, 4, 12)
SLOT = "2021-04-12 15:00"
S5P = CATALOGS_DIR / "public-s5p-meeo.yaml"
NOAA = CATALOGS_DIR / "public-noaa-geo.yaml"
CDSE = CATALOGS_DIR / "cdse.yaml"
CDSE_ENDPOINT = "https://eodata.dataspace.copernicus.eu"


def _tropomi() -> list[Path]:
    return sorted((TINY / "tropomi").rglob("S5P_*_L2__SO2____*.nc"))


def abi_key(bucket: str, path: Path) -> str:
    """NOAA's key of an ABI file: ``ABI-L1b-RadF/YYYY/DDD/HH/<name>`` (the hour of the scan start in the name)."""
    start = path.name.split("_s", 1)[1][:11]  # YYYYDDDHHMM
    return f"{bucket}/ABI-L1b-RadF/{start[:4]}/{start[4:7]}/{start[7:9]}/{path.name}"


def ahi_key(bucket: str, path: Path) -> str:
    """NOAA's key of an HSD segment: ``AHI-L1b-FLDK/YYYY/MM/DD/HHMM/<name>``."""
    day, hhmm = path.name.split("_")[2:4]
    return f"{bucket}/AHI-L1b-FLDK/{day[:4]}/{day[4:6]}/{day[6:8]}/{hhmm}/{path.name}"


#: GOES-West and GOES-East of the per-bucket tests: GOES-18 and GOES-19 (the files of 12 April 2021 renamed to it)
DAY_2025 = dt.date(2025, 7, 8)


def _renamed(name: str, platform: str, to: str) -> str:
    """An ABI file name of ``platform`` on 12 April 2021 as ``to``'s on 8 July 2025 (day 189), the times kept."""
    return name.replace(f"_{platform}_", f"_{to}_").replace("2021102", f"{DAY_2025:%Y%j}")


def _public_read(endpoint: str, bucket: str) -> None:
    """The policy of the real public buckets: anyone may list and read (moto checks it for unsigned requests)."""
    import boto3

    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="uploader",
                 aws_secret_access_key="uploader").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


@pytest.fixture(scope="module")
def public_s3(tmp_path_factory):
    """An anonymous S3 server (moto, own process) holding the tiny archive under the public buckets' layouts."""
    import s3fs

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "w")  # noqa: SIM115 - closed below
    # its request log goes to a file: a pipe nobody reads would fill up and stall the server
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"{endpoint}/moto-api/data.json", proc, timeout_s=60)
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="uploader", secret="uploader", skip_instance_cache=True)
        for bucket in ("meeo-s5p", *(f"noaa-goes{n}" for n in (16, 17, 18, 19)), "noaa-himawari8", "noaa-himawari9"):
            fs.mkdir(bucket)
            _public_read(endpoint, bucket)
        uploads = {str(p): f"meeo-s5p/OFFL/L2__SO2___/{p.parent.relative_to(TINY / 'tropomi').as_posix()}/{p.name}"
                   for p in _tropomi()}
        abi = {platform: sorted((TINY / "abi" / platform).rglob("*.nc")) for platform in ("G16", "G17")}
        uploads |= {str(p): abi_key("noaa-goes16", p) for p in abi["G16"]}
        uploads |= {str(p): abi_key("noaa-goes17", p) for p in abi["G17"]}
        uploads |= {str(p): ahi_key("noaa-himawari8", p) for p in sorted((TINY / "ahi").rglob("*.DAT.bz2"))}
        fs.put(list(uploads), list(uploads.values()))
        for bucket, platform, source in (("noaa-goes19", "G19", "G16"), ("noaa-goes18", "G18", "G17")):
            for p in abi[source]:
                fs.put_file(str(p), abi_key(bucket, p.with_name(_renamed(p.name, source, platform))))
        yield endpoint, fs
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture
def public_env(public_s3, tmp_path, monkeypatch):
    """botocore pointed at the server through the environment only; private state and cache folders."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", public_s3[0])
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FUMAROLE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # anonymous: nothing of the machine's AWS set-up is used
    geo.clear_cache()
    geo_slots.clear()
    storage.forget_stamps()
    return public_s3


@pytest.fixture(scope="module")
def local():
    archive = Archive("tiny")
    archive.refresh(lambda *_: None)
    return archive


def _by_name(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    t["name"] = [p.rsplit("/", 1)[-1] for p in t["path"]]
    return t.set_index("name").sort_index()


# --- Sentinel-5P from s3://meeo-s5p --------------------------------------------------------------------------------


def test_the_meeo_catalogue_indexes_the_s5p_granules_with_footprints(public_env, local):
    archive = Archive(str(S5P))
    assert archive.root == "s3://meeo-s5p/OFFL/L2__SO2___"
    report = archive.refresh(lambda *_: None)
    assert report.skipped == []
    got = _by_name(archive.granules("tropomi_so2"))
    want = _by_name(local.granules("tropomi_so2"))
    assert list(got.index) == list(want.index) and len(got) == len(_tropomi()) == 15
    assert all(p.startswith("s3://meeo-s5p/OFFL/L2__SO2___/2021/04/12/S5P_OFFL_L2__SO2____") for p in got["path"])
    assert got["orbit"].equals(want["orbit"]) and got["start"].equals(want["start"])
    for name in got.index:
        cells, local_cells = unpack_cells(got.at[name, "footprint"]), unpack_cells(want.at[name, "footprint"])
        assert cells.sum() > 0 and (cells >= local_cells).all()  # the swath's outline covers its pixels


def test_an_so2_map_from_the_meeo_catalogue_equals_the_local_one(public_env, local):
    from app.views.volcplume import VolcPlume

    archive = Archive(str(S5P))
    archive.refresh(lambda *_: None)
    storage.reset_transfer_stats()
    got = VolcPlume(archive=archive, date=DAY, zone="Caribbean")
    want = VolcPlume(archive=local, date=DAY, zone="Caribbean")
    assert got.pixel_counts() == want.pixel_counts() and sum(got.pixel_counts().values()) > 0
    layers = {layer.orbit: layer for layer in got.layers}
    assert sorted(layers) == sorted(layer.orbit for layer in want.layers) and layers
    for layer in want.layers:
        np.testing.assert_array_equal(layers[layer.orbit].values, layer.values)  # SO2 in DU, pixel for pixel
        np.testing.assert_array_equal(layers[layer.orbit].lat, layer.lat)
    fetched = storage.transfer_stats()
    assert fetched and all(u.startswith("s3://meeo-s5p/OFFL/L2__SO2___/2021/04/12/") for u in fetched)


def _keys(fs, bucket: str) -> set[str]:
    fs.invalidate_cache()
    return set(fs.find(bucket))


def test_a_granule_landing_in_todays_folder_appears_at_the_live_poll(public_env, local):
    """public-s5p-meeo is live: the poll lists only the newest day folders and reads only the new granule.

    The anonymous bucket's policy is the real one (s3:GetObject, s3:ListBucket for everyone). The poll lists each
    day folder with one ``ls`` (its listing gives the new object's size and ETag), so reading it needs no HEAD
    request: moto refuses anonymous HEADs under a GetObject policy (it checks an ``s3:HeadObject`` action, which
    AWS does not have), which is why the poll's reads were refused before while a full index's were not.
    """
    endpoint, fs = public_env
    archive = Archive(str(S5P))
    info = archive.product_info("tropomi_so2")
    assert info.partition == "{time:%Y/%m/%d}/" and info.live == {"poll_seconds": 600.0, "days": 2}
    archive.refresh(lambda *_: None)
    before = set(archive.granules("tropomi_so2")["path"])
    source = _tropomi()[3]
    today = pd.Timestamp.now(tz="UTC")
    key = f"meeo-s5p/OFFL/L2__SO2___/{today:%Y/%m/%d}/{source.name}"
    fs.put_file(str(source), key)
    keys = _keys(fs, "meeo-s5p")
    try:
        said = []
        report = archive.refresh(lambda level, text: said.append((level, text)), full=False)  # the poll, now
        assert report.skipped == [] and report.added == [f"s3://{key}"]
        assert said == [("info", "granule index: 1 new granules of tropomi_so2 (live)")]
        rows = archive.granules("tropomi_so2")
        assert set(rows["path"]) == before | {f"s3://{key}"}
        new = rows.set_index("path").loc[f"s3://{key}"]
        want = _by_name(local.granules("tropomi_so2")).loc[source.name]
        assert new["orbit"] == want["orbit"] and new["start"] == want["start"]
        cells, local_cells = unpack_cells(new["footprint"]), unpack_cells(want["footprint"])
        assert cells.sum() > 0 and (cells >= local_cells).all()
        assert _keys(fs, "meeo-s5p") == keys  # nothing written into the bucket
    finally:
        fs.rm_file(key)


# --- GOES and Himawari from NOAA's buckets ---------------------------------------------------------------------------


def _ash(archive, platform):
    scene = geo_service.load_product(archive, platform, SLOT, "ash")
    return scene, np.asarray(rgb.compose(scene, "ash", geo.ring_position(platform, SLOT, archive).sensor))


@pytest.mark.parametrize("platform, bucket", [("G16", "noaa-goes16/ABI-L1b-RadF"),
                                              ("G17", "noaa-goes17/ABI-L1b-RadF"),
                                              ("H08", "noaa-himawari8/AHI-L1b-FLDK")])
def test_the_noaa_catalogue_gives_slots_and_an_ash_frame(platform, bucket, public_env, local):
    archive = Archive(str(NOAA))
    found = geo.slots(archive, platform, "2021-04-12", "2021-04-13")
    assert list(found["time"]) == list(geo.slots(local, platform, "2021-04-12", "2021-04-13")["time"])
    assert len(found) == 2 and all(p.startswith(f"s3://{bucket}/2021/") for ps in found["paths"] for p in ps)
    product = "geo_abi_l1b" if platform != "H08" else "geo_ahi_hsd"
    listed = geo._lister(archive, product).listed
    # the day's folder names, then only the hour (ABI) or slot (AHI) folders that exist, in that satellite's
    # bucket: never a whole bucket, never another satellite's
    folders = ({"2021/102/12", "2021/102/15"} if platform != "H08" else {"2021/04/12/1200", "2021/04/12/1500"})
    assert listed[0] == f"s3://{bucket}/" + ("2021/102" if platform != "H08" else "2021/04/12")
    assert set(listed[1:]) == {f"s3://{bucket}/{f}" for f in folders}
    scene, got = _ash(archive, platform)
    _, want = _ash(local, platform)
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).mean() > 0.3
    assert all(s.startswith(f"s3://{bucket}/2021/") for s in scene.attrs["source"])


def test_goes_west_and_east_come_from_their_own_buckets(public_env, local):
    """One product, s3://noaa-{platform}/ABI-L1b-RadF: in 2025 the ring's GOES-West is GOES-18 and its GOES-East
    GOES-19, each read from its bucket, each bucket listed only around the time asked."""
    archive = Archive(str(NOAA))
    lister = geo._lister(archive, "geo_abi_l1b")
    assert lister.platform_folders() == ["goes16", "goes17", "goes18", "goes19"]
    day = f"{DAY_2025:%Y/%j}"
    for position, platform, bucket, source in (("GOES-West", "G18", "noaa-goes18", "G17"),
                                               ("GOES-East", "G19", "noaa-goes19", "G16")):
        n = len(lister.listed)
        found = geo.slots(archive, position, f"{DAY_2025} 15:00", f"{DAY_2025} 15:10")
        assert list(found["platform"]) == [platform] and list(found["time"]) == [pd.Timestamp(f"{DAY_2025} 15:00")]
        assert found["n_files"].iloc[0] == 12
        assert all(p.startswith(f"s3://{bucket}/ABI-L1b-RadF/{day}/15/OR_ABI-L1b-RadF-M6C") and f"_{platform}_" in p
                   for p in found["paths"].iloc[0])
        assert lister.listed[n:] == [f"s3://{bucket}/ABI-L1b-RadF/{day}/15"]  # that hour of that bucket only
        scene = geo_service.load_product(archive, platform, f"{DAY_2025} 15:00", "ash")
        assert all(u.startswith(f"s3://{bucket}/") for u in scene.attrs["source"])
        _, want = _ash(local, source)  # the same bytes under the other name
        got = np.asarray(rgb.compose(scene, "ash", "abi"))
        np.testing.assert_array_equal(got, want)
    ring = geo.ring_latest(archive, now=f"{DAY_2025} 15:30").set_index("name")
    assert ring.loc["GOES-West", "platform"] == "G18" and ring.loc["GOES-East", "platform"] == "G19"
    assert ring.loc["GOES-West", "time"] == ring.loc["GOES-East", "time"] == pd.Timestamp(f"{DAY_2025} 15:00")


def test_a_new_slot_appears_after_the_poll_interval(public_env):
    """A live product re-lists an open folder only once ``poll_seconds`` have passed (the clock is injected)."""
    endpoint, fs = public_env
    archive = Archive(str(NOAA))
    poll = archive.product_info("geo_ahi_hsd").live["poll_seconds"]
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("10min")
    folder = f"noaa-himawari9/AHI-L1b-FLDK/{now:%Y/%m/%d/%H%M}"  # Himawari-9's own bucket
    segment = sorted((TINY / "ahi").rglob("HS_H08_20210412_1500_B13_*_S0110.DAT.bz2"))[0]
    name = lambda band: f"HS_H09_{now:%Y%m%d_%H%M}_B{band:02d}_FLDK_R20_S0110.DAT.bz2"  # noqa: E731
    fs.put_file(str(segment), f"{folder}/{name(13)}")
    lister = geo._lister(archive, "geo_ahi_hsd")
    clock = time.time()
    try:
        span = (now, now + pd.Timedelta(minutes=10))
        first = lister.rows("himawari9", "H09", *span, clock=clock)
        assert [p.rsplit("/", 1)[-1] for p in first["path"]] == [name(13)]
        fs.put_file(str(segment), f"{folder}/{name(14)}")  # a segment lands
        assert len(lister.rows("himawari9", "H09", *span, clock=clock + poll - 1)) == 1  # not listed again yet
        later = lister.rows("himawari9", "H09", *span, clock=clock + poll + 1)
        assert sorted(p.rsplit("/", 1)[-1] for p in later["path"]) == [name(13), name(14)]
        assert lister.listed.count(f"s3://{folder}") == 2
    finally:
        fs.rm(folder, recursive=True)


# --- the Copernicus Data Space catalogue (credentials from the environment) ------------------------------------------


@pytest.fixture(scope="module")
def eodata(s3_server):
    """The tiny TROPOMI granules under CDSE's layout, on the IAM-authorised server."""
    fs = s3_server.filesystem()
    if not fs.exists("eodata"):
        fs.mkdir("eodata")
    files = _tropomi()
    fs.put([str(p) for p in files],
           [f"eodata/Sentinel-5P/TROPOMI/L2__SO2___/{p.parent.relative_to(TINY / 'tropomi').as_posix()}/{p.name}"
            for p in files])
    return s3_server


def _cdse_copy(folder: Path, endpoint: str) -> Path:
    """cdse.yaml as written, its endpoint URL swapped for the local server's (nothing else changes)."""
    text = CDSE.read_text()
    assert text.count(CDSE_ENDPOINT) == 1
    assert "{env(CDSE_S3_ACCESS_KEY)}" in text and "{env(CDSE_S3_SECRET_KEY)}" in text
    path = folder / "cdse.yaml"
    path.write_text(text.replace(CDSE_ENDPOINT, endpoint))
    return path


def test_cdse_credentials_come_from_the_environment(eodata, tmp_path, monkeypatch):
    reader = eodata.reader_options
    monkeypatch.setenv("CDSE_S3_ACCESS_KEY", reader["key"])
    monkeypatch.setenv("CDSE_S3_SECRET_KEY", reader["secret"])
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    storage.forget_stamps()
    archive = Archive(str(_cdse_copy(tmp_path, eodata.endpoint_url)))
    report = archive.refresh(lambda *_: None)
    assert report.skipped == []
    paths = archive.granules("tropomi_so2")["path"]
    assert len(paths) == 15 and paths.iloc[0].startswith("s3://eodata/Sentinel-5P/TROPOMI/L2__SO2___/2021/04/12/")
    fs, _ = storage.filesystem(paths.iloc[0])
    assert (fs.key, fs.secret) == (reader["key"], reader["secret"])  # what s3fs signs with
    assert storage.stamp(paths.iloc[0])[2] == _tropomi()[0].stat().st_size
    written = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert written and not any(reader["secret"].encode() in p.read_bytes() for p in written)  # never stored
    assert reader["secret"] not in (tmp_path / "cdse.yaml").read_text()


CDSE_ROOT = "s3://eodata/Sentinel-5P/TROPOMI/L2__SO2___"


def _denied(why: str) -> bool:
    """The sentence of a refused listing: app.data.storage's "access denied" sentence, the index's rows kept."""
    return why.startswith("cannot be listed: access denied: ") and why.endswith("; its index rows are kept") \
        and "credentials" in why and "PermissionError" not in why


def test_a_wrong_cdse_secret_is_one_clear_message(eodata, tmp_path, monkeypatch):
    monkeypatch.setenv("CDSE_S3_ACCESS_KEY", eodata.reader_options["key"])
    monkeypatch.setenv("CDSE_S3_SECRET_KEY", "not-the-secret")
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "state"))
    storage.forget_stamps()
    said = []
    archive = Archive(str(_cdse_copy(tmp_path, eodata.endpoint_url)))
    report = archive.refresh(lambda level, text: said.append((level, text)))
    assert len(report.skipped) == 1
    where, why = report.skipped[0]  # the source, by its URL as the catalogue gives it
    assert where == CDSE_ROOT and _denied(why), why
    assert [t for lvl, t in said if lvl == "warning"] == [f"skipped {where}: {why}"]
    assert archive.granules("tropomi_so2").empty
    url = f"{CDSE_ROOT}/2021/04/12/{_tropomi()[0].name}"
    with pytest.raises(GranuleError) as exc:
        storage.stamp(url)
    assert str(exc.value).startswith(url) and "access denied: " in str(exc.value)
    # the same words as a refused read of one of its files (app.data.storage)
    assert why.split("access denied: ", 1)[1].split(" (", 1)[0] == \
        str(exc.value).split("access denied: ", 1)[1].split(" (", 1)[0]


def test_fumarole_index_says_wrong_credentials_once_on_stderr(eodata, tmp_path):
    """``fumarole index`` with a wrong secret: one line on stderr naming the source and the reason; status 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDSE_"))}
    env |= {"CDSE_S3_ACCESS_KEY": eodata.reader_options["key"], "CDSE_S3_SECRET_KEY": "not-the-secret",
            "FUMAROLE_STATE_DIR": str(tmp_path / "state"), "FUMAROLE_CACHE_DIR": str(tmp_path / "cache"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["fumarole", "index", "--catalog", str(_cdse_copy(tmp_path, eodata.endpoint_url))],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"skipped {CDSE_ROOT}: "), done.stderr
    assert _denied(lines[0].split(": ", 1)[1]), lines[0]
    assert "not-the-secret" not in done.stderr + done.stdout
    assert done.stdout.strip().endswith(": 0 granules")  # nothing indexed from a source it may not read


# --- docs/real-data.md: its tested recipes run as written ------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "real-data.md"
_TESTED = re.compile(r"<!-- tested(?::\s*expect \"(?P<expect>[^\"]*)\")? -->\n```(?P<lang>sh|python)\n(?P<body>.*?)```",
                     re.S)


def _recipes() -> list[tuple[str, str, str]]:
    return [(m["lang"], m["body"], m["expect"] or "") for m in _TESTED.finditer(DOC.read_text())]


def test_the_page_has_tested_recipes():
    langs = [lang for lang, _, _ in _recipes()]
    assert "sh" in langs and "python" in langs


@pytest.mark.parametrize("n", range(len(_recipes())))
def test_a_recipe_of_the_page_runs_as_written(n, public_env, tmp_path):
    lang, body, expect = _recipes()[n]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_PROFILE"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"
    work.mkdir()
    command = ["bash", "-e", "-c", body] if lang == "sh" else [sys.executable, "-c", body]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{lang} recipe failed:\n{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert expect in done.stdout, f"{expect!r} is not in the output of\n{body}\n--- stdout\n{done.stdout}"
    assert list(work.iterdir()) == []  # nothing written where it ran: state and cache go to their own folders


# --- docs/real-data.md "How big, how long": one year of each product on the local S3 server ------------------------


def _year_catalogue(folder: Path, source: Path, buckets: dict[str, str]) -> Path:
    text = source.read_text()
    for real, year in buckets.items():
        text = text.replace(real, year)
    path = folder / f"year-{source.name}"
    path.write_text(text)
    return path


def _abi_name(t: dt.datetime, band: int = 13, platform: str = "G16") -> str:
    s, e = t.strftime("%Y%j%H%M%S"), (t + dt.timedelta(minutes=9, seconds=30)).strftime("%Y%j%H%M%S")
    return f"OR_ABI-L1b-RadF-M6C{band:02d}_{platform}_s{s}0_e{e}0_c{e}5.nc"


def _ahi_name(t: dt.datetime, band: int = 13, segment: int = 1) -> str:
    return f"HS_H08_{t:%Y%m%d_%H%M}_B{band:02d}_FLDK_R20_S{segment:02d}10.DAT.bz2"


@pytest.mark.slow
def test_year_sized_trees(public_env, tmp_path, local):
    """A year of keys under each real layout; what a first index, a day's slots and the days cost (printed)."""
    from app.data.archive import Archive as _Archive

    endpoint, fs = public_env
    year = [dt.datetime(2021, 1, 1) + dt.timedelta(minutes=10 * k) for k in range(365 * 144)]
    lines = []

    # GEO: one ABI file in each of the year's 8,760 hour folders; one AHI segment in a slot folder of every hour of
    # the year (8,760 of the real 52,560 slot folders: the queries below list a year's folder names, one day's
    # folders and the newest one, so the slot folders of the other days are never listed) and all 144 of 1 July
    t0 = time.perf_counter()
    for bucket in ("year-goes16", "year-himawari8"):
        fs.mkdir(bucket)
        _public_read(endpoint, bucket)
    fs.pipe({f"year-goes16/ABI-L1b-RadF/{t:%Y/%j/%H}/{_abi_name(t)}": b"" for t in year if t.minute == 0})
    fs.pipe({f"year-himawari8/AHI-L1b-FLDK/{t:%Y/%m/%d/%H%M}/{_ahi_name(t)}": b"" for t in year
             if t.minute == 0 or (t.month, t.day) == (7, 1)})
    upload = time.perf_counter() - t0
    cat = _year_catalogue(tmp_path, NOAA, {"s3://noaa-{platform}/": "s3://year-{platform}/"})  # year-goes16 ...
    for platform, product, per_folder in (("G16", "geo_abi_l1b", [_abi_name(year[0], b) for b in range(1, 17)
                                                                   for _ in range(6)]),
                                          ("H08", "geo_ahi_hsd", [_ahi_name(year[0], b, s) for b in range(1, 17)
                                                                   for s in range(1, 11)])):
        geo_slots.clear()
        archive = _Archive(str(cat))
        lister = geo._lister(archive, product)
        t0 = time.perf_counter()
        days = geo.days(archive, platform)
        t_days, n_days = time.perf_counter() - t0, len(lister.listed)
        assert len(days) == 365
        t0 = time.perf_counter()
        slots = geo.slots(archive, platform, "2021-07-01", "2021-07-02")
        t_day, n_day = time.perf_counter() - t0, len(lister.listed) - n_days
        assert len(slots) == (24 if platform == "G16" else 144)
        t0 = time.perf_counter()
        latest = geo.latest_slot(archive, platform)
        t_latest = time.perf_counter() - t0
        assert latest.time == pd.Timestamp("2021-12-31 23:00")
        folders = 8760 if platform == "G16" else 52560
        kept = len(json.dumps({"names": per_folder}, separators=(",", ":")))
        lines.append(f"| {product} ({platform}) | {folders:,} folders a year | days of the year: {n_days} listings, "
                     f"{t_days:.2f} s; one day's slots: {n_day} listings, {t_day:.2f} s; latest slot: "
                     f"{t_latest:.2f} s | {kept:,} B per closed folder kept ({len(per_folder)} names) |")
        assert n_days <= 14 and n_day <= 145

    # TROPOMI: a year of keys (14 or 15 orbits a day, empty objects) listed as the first index lists them
    names = []
    for d in range(365):
        day = dt.datetime(2021, 1, 1) + dt.timedelta(days=d)
        for k in range(15 if d % 7 else 14):
            s = day + dt.timedelta(minutes=101 * k)
            e = s + dt.timedelta(minutes=101)
            orbit = 16700 + d * 15 + k
            names.append(f"year-s5p/OFFL/L2__SO2___/{day:%Y/%m/%d}/S5P_OFFL_L2__SO2____{s:%Y%m%dT%H%M%S}_"
                         f"{e:%Y%m%dT%H%M%S}_{orbit:05d}_02_020201_{e:%Y%m%dT%H%M%S}.nc")
    fs.mkdir("year-s5p")
    _public_read(endpoint, "year-s5p")
    fs.pipe(dict.fromkeys(names, b""))
    info = _Archive(str(_year_catalogue(tmp_path, S5P, {"meeo-s5p": "year-s5p"}))).product_info("tropomi_so2")
    s3, root = storage.filesystem(info.root_url)
    s3.invalidate_cache()
    t0 = time.perf_counter()
    listed = s3.glob(f"{root}/{info.glob}")
    t_list = time.perf_counter() - t0
    assert len(listed) == len(names)
    # the reads of a first index, per granule: the 15 real granules of the sample on S3
    storage.clear_block_cache()
    storage.reset_transfer_stats()
    t0 = time.perf_counter()
    one_day = _Archive(str(S5P))
    one_day.refresh(lambda *_: None)
    t_read = (time.perf_counter() - t0) / 15
    per_granule = sum(storage.transfer_stats().values()) / 15
    # the stored index of a year: the day's rows repeated with their own paths and orbits
    rows = one_day.index.table
    table = pd.concat([rows.assign(path=[f"{n}-{i}" for n in rows["path"]], orbit=rows["orbit"] + 15 * i)
                       for i in range(len(names) // 15 + 1)], ignore_index=True).iloc[:len(names)]
    from app.data.index import GranuleIndex

    stored = GranuleIndex(path=str(tmp_path / "year-index.parquet"))
    stored._table = table
    stored.save()
    size = (tmp_path / "year-index.parquet").stat().st_size
    lines.append(f"| tropomi_so2 | {len(names):,} granules | first index: listing {t_list:.1f} s, then "
                 f"{per_granule / 1e3:.0f} kB and {t_read:.2f} s read per granule "
                 f"(≈ {len(names) * t_read / 60:.0f} min for the year, one thread) | index {size / 1e6:.2f} MB "
                 f"on disk, {table.memory_usage(deep=True).sum() / 1e6:.1f} MB in memory |")
    print(f"\nupload of the GEO trees: {upload:.0f} s\n" + "\n".join(lines))


# --- the dashboards' data age ----------------------------------------------------------------------------------------


def test_the_data_age_sentence():
    from app.views.volcplume import data_age_text

    now = pd.Timestamp("2026-03-26 16:45")
    assert data_age_text(pd.Timestamp("2026-03-26 14:35"), now) == "data as of 14:35 UTC (2 h 10 min ago)"
    assert data_age_text(pd.Timestamp("2026-03-26 16:37"), now, kind="slot") == "newest slot 16:37 UTC, 8 min old"
    assert data_age_text(pd.Timestamp("2026-03-26 16:44:30"), now, kind="slot") == \
        "newest slot 16:44 UTC, less than a minute old"
    assert data_age_text(pd.Timestamp("2026-03-25 23:50"), now) == "data as of 2026-03-25 23:50 UTC (16 h 55 min ago)"
    assert data_age_text(pd.Timestamp("2021-04-12 15:00"), now, kind="slot") == \
        "newest slot 2021-04-12 15:00 UTC, 1,809 days old"
    assert data_age_text(pd.Timestamp("2026-03-25 16:45", tz="UTC"), now.tz_localize("UTC")) == \
        "data as of 2026-03-25 16:45 UTC (1 day ago)"
    assert data_age_text(pd.NaT, now) == "no data in the archive yet"
    assert data_age_text(None, now, kind="slot") == "no slot in the archive yet"


def _days_since(t: str) -> str:
    return f"{(pd.Timestamp.now(tz='UTC').tz_localize(None) - pd.Timestamp(t)).days:,} days"


@pytest.mark.browser
def test_both_dashboards_say_how_old_the_tiny_archive_is(dashboard_server, page, local):
    """The sample's data are years old: the line says so in days, at first paint."""
    newest = local.granules("tropomi_so2")["end"].max()
    page.goto(f"{dashboard_server}/volcplume", timeout=120_000)
    line = page.locator(".volcplume-data-age")
    line.wait_for(timeout=120_000)
    assert line.inner_text() == f"data as of {newest:%Y-%m-%d %H:%M} UTC ({_days_since(newest)} ago)"
    page.goto(f"{dashboard_server}/georing", timeout=120_000)
    ring = page.locator(".georing-data-age")
    ring.wait_for(timeout=120_000)
    assert ring.inner_text() == f"newest slot 2021-04-12 15:00 UTC, {_days_since('2021-04-12 15:00')} old"



# --- STAC: the footprints from a STAC API's search (rustac's server, in memory) --------------------------------------

STAC_COLLECTION = "sentinel-5p-l2-so2-offl"


def _stac_item(path: Path) -> dict:
    """The STAC item of a tiny granule as MEEO/CDSE publish them: its outline (GML posList), times, file asset."""
    from app.data import tropomi

    with tropomi.open_granule(str(path)) as ds:
        ring = tropomi.footprint_of(ds)  # (lat, lon)
    # a real granule's sensing times are those of its name (the tiny files' attributes are synthetic)
    start, end = (dt.datetime.strptime(t, "%Y%m%dT%H%M%S").isoformat() + "Z" for t in path.name.split("_")[8:10])
    coords = [[float(lon), float(lat)] for lat, lon in ring] + [[float(ring[0, 1]), float(ring[0, 0])]]
    href = f"s3://meeo-s5p/OFFL/L2__SO2___/{path.parent.relative_to(TINY / 'tropomi').as_posix()}/{path.name}"
    return {"type": "Feature", "stac_version": "1.0.0", "id": path.stem, "collection": STAC_COLLECTION,
            "geometry": {"type": "Polygon", "coordinates": [coords]},
            "bbox": [float(ring[:, 1].min()), float(ring[:, 0].min()), float(ring[:, 1].max()),
                     float(ring[:, 0].max())],
            "properties": {"datetime": None, "start_datetime": str(start), "end_datetime": str(end)},
            "assets": {"product": {"href": href, "type": "application/x-netcdf", "file:size": path.stat().st_size,
                                   "roles": ["data"]}},
            "links": []}


@pytest.fixture(scope="module")
def stac_api(tmp_path_factory):
    """A STAC API over the tiny granules' items: ``rustac serve`` with its in-memory back end."""
    folder = tmp_path_factory.mktemp("stac")
    items = folder / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": [_stac_item(p) for p in _tropomi()]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(Path(sys.executable).parent / "rustac"), "serve", "--addr", f"127.0.0.1:{port}",
                             "--create-collections", str(items)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"{url}/collections/{STAC_COLLECTION}", proc, timeout_s=60)
        yield url
    finally:
        stop_process(proc)
        log.close()


def _stac_catalogue(folder: Path, url: str) -> Path:
    text = S5P.read_text()
    anchor = "      partition: '{time:%Y/%m/%d}/'\n"
    assert anchor in text
    path = folder / "s5p-stac.yaml"
    path.write_text(text.replace(anchor, f"{anchor}      stac: {{url: '{url}', collection: {STAC_COLLECTION}}}\n"))
    return path


def test_a_stac_search_gives_the_index_without_opening_a_file(public_env, stac_api, tmp_path, local):
    archive = Archive(str(_stac_catalogue(tmp_path, stac_api)))
    assert archive.product_info("tropomi_so2").stac == {"url": stac_api, "collection": STAC_COLLECTION}
    storage.reset_transfer_stats()
    report = archive.refresh(lambda *_: None)
    assert report.skipped == [] and len(report.added) == 15
    assert storage.transfer_stats() == {}  # no byte of a granule read: all from the search
    got = _by_name(archive.granules("tropomi_so2"))
    want = _by_name(local.granules("tropomi_so2"))
    assert list(got.index) == list(want.index)
    assert all(p.startswith("s3://meeo-s5p/OFFL/L2__SO2___/2021/04/12/S5P_OFFL_L2__SO2____") for p in got["path"])
    assert got["orbit"].equals(want["orbit"]) and got["start"].equals(want["start"]) and got["end"].equals(want["end"])
    assert (got["size"] == [p.stat().st_size for p in sorted(_tropomi(), key=lambda p: p.name)]).all()
    for name in got.index:
        cells, local_cells = unpack_cells(got.at[name, "footprint"]), unpack_cells(want.at[name, "footprint"])
        assert cells.sum() > 0 and (cells >= local_cells).all()  # the outline covers the swath's pixels
    # the same rows again: nothing re-read; a day's newest items (the live poll) add nothing known
    again = archive.refresh(lambda *_: None)
    assert again.added == [] and again.unchanged == 15
    recent = archive.index.refresh_recent([archive.product_info("tropomi_so2")], days=1, now="2021-04-12 23:00")
    assert recent.added == [] and recent.skipped == []


def test_a_stac_api_that_cannot_be_reached_is_said_once(public_env, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    said = []
    archive = Archive(str(_stac_catalogue(tmp_path, url)))
    report = archive.refresh(lambda level, text: said.append((level, text)))
    assert len(report.skipped) == 1 and report.skipped[0][0] == url
    assert report.skipped[0][1].startswith(f"cannot be searched for {STAC_COLLECTION}: ")
    assert [t for lvl, t in said if lvl == "warning"] == [f"skipped {url}: {report.skipped[0][1]}"]
    assert archive.granules("tropomi_so2").empty
