"""app.data.storage against a real local S3 server (moto) and a real HTTP server: stamps, ranged reads, the kept
local copies and their bound, and every failure as a GranuleError naming the URL and the reason."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytest.register_assert_rewrite("tests.remote_servers")

from app.data import storage  # noqa: E402
from app.data.errors import GranuleError  # noqa: E402
from tests.remote_servers import BUCKET, free_port, serve_http  # noqa: E402

pytest_plugins = ["tests.remote_servers"]

SCRATCH = "fumarole-scratch"
BIG = 8 * 2**20


@pytest.fixture(scope="module")
def big_object(s3_server):
    """An 8 MiB object of random bytes in a scratch bucket (written with the admin's credentials)."""
    data = np.random.default_rng(7).integers(0, 256, BIG, dtype=np.uint8).tobytes()
    fs = s3_server.filesystem()
    if not fs.exists(SCRATCH):
        fs.mkdir(SCRATCH)
    fs.pipe_file(f"{SCRATCH}/big.bin", data)
    storage.register(f"s3://{SCRATCH}", s3_server.reader_options)
    return f"s3://{SCRATCH}/big.bin", data


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUMAROLE_CACHE_DIR", str(tmp_path / "cache"))
    storage.reset_transfer_stats()
    return tmp_path / "cache"


def test_options_longest_prefix_and_defaults():
    storage.register("s3://bucket-a", {"endpoint_url": "http://one", "key": "k1"})
    storage.register("s3://bucket-a/deeper", {"endpoint_url": "http://two"})
    assert storage.options_for("s3://bucket-a/x.nc")["endpoint_url"] == "http://one"
    assert storage.options_for("s3://bucket-a/deeper/x.nc")["endpoint_url"] == "http://two"
    assert "key" not in storage.options_for("s3://bucket-a/deeper/x.nc")
    assert storage.options_for("s3://bucket-ab/x.nc").get("endpoint_url") is None  # a prefix of the name only
    config = storage.options_for("s3://bucket-a/x.nc")["config_kwargs"]
    assert config["connect_timeout"] == storage.CONNECT_TIMEOUT_S and config["retries"]["max_attempts"] == 2
    storage.register("s3://bucket-a", {"config_kwargs": {"connect_timeout": 1}})
    config = storage.options_for("s3://bucket-a/x.nc")["config_kwargs"]
    assert config["connect_timeout"] == 1 and config["read_timeout"] == storage.READ_TIMEOUT_S
    assert storage.is_remote("s3://b/k") and storage.is_remote("simplecache::s3://b/k")
    assert not storage.is_remote("/data/x.nc") and not storage.is_remote("file:///data/x.nc")
    assert storage.options_for("/data/x.nc") == {}


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FUMAROLE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert storage.cache_dir() == tmp_path / "xdg" / "fumarole"
    monkeypatch.setenv("FUMAROLE_CACHE_DIR", str(tmp_path / "mine"))
    assert storage.cache_dir() == tmp_path / "mine"


def test_stamp_local_and_s3(s3_tiny_archive, tiny_archive_path):
    rel = "wind/era5_wind.nc"
    local = tiny_archive_path / rel
    st = os.stat(local)
    assert storage.stamp(str(local)) == (str(local), repr(st.st_mtime), st.st_size)
    url = s3_tiny_archive.url(rel)
    storage.register(s3_tiny_archive.root, s3_tiny_archive.storage_options)
    got = storage.stamp(url)
    etag = s3_tiny_archive.listing()[f"{BUCKET}/archive/{rel}"][0].strip('"')
    assert got == (url, etag, st.st_size)


def test_stamp_http_uses_last_modified(http_tiny_archive, tiny_archive_path):
    rel = "wind/era5_wind.nc"
    url, version, size = storage.stamp(http_tiny_archive.url(rel))
    assert size == os.path.getsize(tiny_archive_path / rel)
    assert version.endswith("GMT") and time.strptime(version, "%a, %d %b %Y %H:%M:%S GMT")


def test_open_binary_reads_a_range_not_the_object(big_object, cache):
    url, data = big_object
    with storage.open_binary(url) as f:
        f.seek(5_000_000)
        assert f.read(100) == data[5_000_000:5_000_100]
        assert f.seekable()
    fetched = storage.transfer_stats()[url]
    assert 100 <= fetched < 0.05 * BIG
    assert fetched <= storage.BLOCK_SIZE
    with storage.open_binary(url) as f:  # opened again: its blocks are in the process's shared block cache
        f.seek(5_000_050)
        assert f.read(10) == data[5_000_050:5_000_060]
    assert storage.transfer_stats()[url] == fetched


def test_open_binary_over_http_server_counts_agree(tmp_path, cache):
    data = np.random.default_rng(3).integers(0, 256, BIG, dtype=np.uint8).tobytes()
    (tmp_path / "big.bin").write_bytes(data)
    with serve_http(tmp_path) as server:
        url = server.url("big.bin")
        with storage.open_binary(url) as f:
            f.seek(BIG - 1000)
            assert f.read() == data[-1000:]
        served = server.bytes_served["/big.bin"]
    assert storage.transfer_stats()[url] == served
    assert served < 0.05 * BIG


def test_local_copy_is_kept_reused_and_bounded(s3_server, big_object, cache, monkeypatch):
    url, data = big_object
    with storage.local_copy(url) as path:
        assert path.startswith(str(cache)) and open(path, "rb").read() == data
    assert storage.transfer_stats()[url] == BIG
    storage.reset_transfer_stats()
    with storage.local_copy(url) as again:
        assert again == path
    assert storage.transfer_stats() == {}  # reused: nothing fetched
    # a second object and a bound for one of them: the least recently used copy goes
    s3_server.filesystem().pipe_file(f"{SCRATCH}/other.bin", data[: BIG // 2])
    monkeypatch.setenv("FUMAROLE_CACHE_MAX_BYTES", str(BIG + BIG // 4))
    with storage.local_copy(f"s3://{SCRATCH}/other.bin") as other:
        assert os.path.getsize(other) == BIG // 2
    assert not os.path.exists(path) and os.path.exists(other)


def test_local_copy_follows_a_changed_object(s3_server, cache):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{SCRATCH}/changing.bin", b"first version")
    storage.register(f"s3://{SCRATCH}", s3_server.reader_options)
    url = f"s3://{SCRATCH}/changing.bin"
    with storage.local_copy(url) as first:
        assert open(first, "rb").read() == b"first version"
    fs.pipe_file(f"{SCRATCH}/changing.bin", b"second version, longer")
    storage.forget_stamps(url)
    with storage.local_copy(url) as second:
        assert open(second, "rb").read() == b"second version, longer"
    assert second != first


def _error_of(call, url):
    with pytest.raises(GranuleError) as info:
        call(url)
    assert info.value.path == url
    return info.value.problem


def _open_and_read(url):
    with storage.open_binary(url) as f:
        return f.read(10)


def _copy(url):
    with storage.local_copy(url) as path:
        return path


@pytest.mark.parametrize("call", [storage.stamp, _open_and_read, _copy])
def test_wrong_credentials(s3_server, big_object, cache, call):
    storage.register("s3://fumarole-scratch-badkey", {})  # unrelated root: the longest prefix still decides
    url = big_object[0]
    storage.register(f"s3://{SCRATCH}", {**s3_server.reader_options, "secret": "not-the-secret"})
    storage.forget_stamps()
    try:
        problem = _error_of(call, url)
    finally:
        storage.register(f"s3://{SCRATCH}", s3_server.reader_options)
    assert problem.startswith("access denied: the credentials")


def test_missing_bucket_and_object(s3_server, cache):
    storage.register("s3://no-such-bucket", s3_server.reader_options)
    storage.register(f"s3://{SCRATCH}", s3_server.reader_options)
    assert "the bucket does not exist" in _error_of(storage.stamp, "s3://no-such-bucket/x.nc")
    assert _error_of(_open_and_read, f"s3://{SCRATCH}/missing.nc") == "no such object or file"
    assert _error_of(_copy, f"s3://{SCRATCH}/missing.nc") == "no such object or file"


def test_unreachable_endpoint_fails_fast(cache):
    port = free_port()  # closed again: nothing listens there
    storage.register("s3://unreachable", {"endpoint_url": f"http://127.0.0.1:{port}", "key": "k", "secret": "s",
                                          "config_kwargs": {"connect_timeout": 1, "read_timeout": 1}})
    t0 = time.monotonic()
    problem = _error_of(storage.stamp, "s3://unreachable/x.nc")
    assert time.monotonic() - t0 < 20
    assert problem.startswith("the storage cannot be reached")
    t0 = time.monotonic()
    problem = _error_of(storage.stamp, f"http://127.0.0.1:{port}/x.nc")
    assert time.monotonic() - t0 < 20
    assert problem.startswith("the storage cannot be reached")


def test_http_missing_file_is_asked_a_bounded_number_of_times(http_tiny_archive, cache):
    url = http_tiny_archive.url("tropomi/nothing.nc")
    assert _error_of(storage.stamp, url) == "no such object or file"
    assert 1 <= http_tiny_archive.requests["/tropomi/nothing.nc"] <= 1 + storage.RETRIES


def test_connection_cut_short(tmp_path, cache):
    data = np.random.default_rng(5).integers(0, 256, 2 * 2**20, dtype=np.uint8).tobytes()
    (tmp_path / "cut.bin").write_bytes(data)
    with serve_http(tmp_path) as server:
        server.cut_short.add("/cut.bin")
        url = server.url("cut.bin")
        problem = _error_of(_copy, url)
        assert problem.startswith(("the transfer was cut short", "the storage cannot be reached",
                                   "cannot be read from the storage"))
        problem = _error_of(_open_and_read, url)
    assert not list((cache / "files").glob("*.bin"))  # nothing half-written kept as a copy


def test_nothing_is_written_to_the_source(s3_tiny_archive, cache):
    before = s3_tiny_archive.listing()
    storage.register(s3_tiny_archive.root, s3_tiny_archive.storage_options)
    url = s3_tiny_archive.url("wind/era5_wind.nc")
    with storage.open_binary(url) as f:
        assert f.read(4) == b"\x89HDF"
    with storage.local_copy(url) as path:
        assert open(path, "rb").read(4) == b"\x89HDF"
    # the reader's credentials may not write: a write through them is refused by the server
    fs = s3_tiny_archive.server.filesystem(s3_tiny_archive.storage_options)
    with pytest.raises(PermissionError):
        fs.pipe_file(f"{BUCKET}/archive/intruder.txt", b"x")
    assert s3_tiny_archive.listing() == before


def test_a_truncated_granule_on_s3_is_a_granule_error(s3_server, tiny_archive_path, cache):
    from app.data.tropomi import read_swath

    original = sorted((tiny_archive_path / "tropomi").rglob("S5P_*.nc"))[0]
    data = original.read_bytes()
    fs = s3_server.filesystem()
    fs.pipe_file(f"{SCRATCH}/tropomi/{original.name}", data[: len(data) // 2])
    storage.register(f"s3://{SCRATCH}", s3_server.reader_options)
    url = f"s3://{SCRATCH}/tropomi/{original.name}"
    problem = _error_of(lambda u: read_swath(u, ["so2_7km"]), url)
    assert problem.startswith("cannot be opened as a netCDF-4 file (truncated or not netCDF?): the file is "
                              f"truncated ({len(data) // 2} of its {len(data)} bytes are there)")
    fs.pipe_file(f"{SCRATCH}/tropomi/{original.name}", data)  # whole again: the same URL reads
    storage.forget_stamps(url)
    assert float(read_swath(url, ["so2_7km"])["so2_7km"].max()) > 0


def test_small_reads_cost_a_small_block_and_large_reads_their_own_bytes(big_object, cache):
    """HDF5 metadata (reads of a few KB) costs small blocks; a chunk (a large read) costs its own bytes, once."""
    url, data = big_object
    storage.clear_block_cache()
    with storage.open_binary(url) as f:
        f.seek(3_000_001)
        assert f.read(2_000) == data[3_000_001:3_002_001]
        small = storage.transfer_stats()[url]
        assert small == storage.BLOCK_SIZE  # the one block holding those 2,000 bytes
        f.seek(1_000_123)
        assert f.read(700_000) == data[1_000_123:1_700_123]
        assert storage.transfer_stats()[url] - small == 700_000  # not a byte of the blocks at its ends
        assert f.cache.miss_count == 2  # one request each
        f.seek(1_000_123)
        assert f.read(700_000) == data[1_000_123:1_700_123]  # the same chunk read again: kept
        f.seek(3_000_500)
        assert f.read(100) == data[3_000_500:3_000_600]  # inside the block already held
    assert storage.transfer_stats()[url] == small + 700_000


def test_prefetched_ranges_come_in_one_request_and_are_then_read_from_memory(big_object, cache):
    url, data = big_object
    storage.clear_block_cache()
    chunks = [(2_000_000, 2_150_000), (2_150_000, 2_151_500), (2_151_500, 2_400_000), (6_000_000, 6_010_000)]
    with storage.open_binary(url) as f:
        assert storage.prefetch(f, chunks) == 2  # the three adjacent ranges in one request, the far one in another
        fetched = storage.transfer_stats()[url]
        assert fetched == sum(b - a for a, b in chunks)
        for a, b in chunks:
            f.seek(a)
            assert f.read(b - a) == data[a:b]
        assert storage.prefetch(f, chunks) == 0  # held already
    assert storage.transfer_stats()[url] == fetched
    with open(__file__, "rb") as local:  # a local file needs nothing
        assert storage.prefetch(local, chunks) == 0


def test_small_reads_going_on_through_a_file_fetch_ahead(big_object, cache):
    """Small chunks of one variable read in order: 2, 4, then 8 blocks a request, not one block each."""
    url, data = big_object
    storage.clear_block_cache()
    start, piece, n = 4_000_000, 3_000, 120  # 360 KB read 3 KB at a time
    with storage.open_binary(url) as f:
        for i in range(n):
            f.seek(start + i * piece)
            assert f.read(piece) == data[start + i * piece: start + (i + 1) * piece]
        requests = f.cache.miss_count
    blocks = (start + n * piece - 1) // storage.BLOCK_SIZE - start // storage.BLOCK_SIZE + 1
    assert requests < blocks / 2
    assert storage.transfer_stats()[url] <= (blocks + storage.READAHEAD_BLOCKS) * storage.BLOCK_SIZE
