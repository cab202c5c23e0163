"""The small core: the byte-bounded caches and their budget, merged concurrent calls, the state folder, settings."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.core import cache as core_cache
from app.core import settings, state
from app.core.cache import ByteBoundedCache, SingleFlight, memory_budget, nbytes_of


def test_cache_drops_least_recently_used_past_its_bytes():
    c = ByteBoundedCache(1000)
    a, b, d = np.zeros(50), np.zeros(50), np.zeros(50)  # 400 bytes each
    c.put("a", a)
    c.put("b", b)
    assert c.get("a") is a  # a is now the most recent
    c.put("d", d)  # 1200 > 1000: b (least recent) goes
    assert c.get("b") is None and c.get("a") is a and c.get("d") is d
    assert c.nbytes == 800 and len(c) == 2


def test_value_larger_than_the_whole_cache_is_not_kept():
    c = ByteBoundedCache(100)
    c.put("small", b"x" * 60)
    c.put("huge", np.zeros(1000))
    assert c.get("huge") is None
    assert c.get("small") == b"x" * 60
    assert c.nbytes == 60


def test_nbytes_of_counts_arrays_bytes_and_tuples():
    assert nbytes_of(np.zeros((10, 10), dtype=np.float32)) == 400
    assert nbytes_of(b"abc") == 3
    assert nbytes_of((np.zeros(10), b"ab")) == 80 + 2 + 16


def test_memory_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("FUMAROLE_MEMORY_BUDGET_MB", "250")
    assert memory_budget() == 250_000_000
    monkeypatch.setenv("FUMAROLE_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="FUMAROLE_MEMORY_BUDGET_MB='lots'"):
        memory_budget()
    monkeypatch.delenv("FUMAROLE_MEMORY_BUDGET_MB")
    assert 0 < memory_budget() <= 8_000_000_000


def test_shares_of_the_budget_cannot_exceed_it():
    taken = sum(core_cache._SHARES.values())
    with pytest.raises(ValueError, match="memory budget"):
        core_cache.bounded_cache("test-too-greedy", 1.0 - taken + 0.01)
    assert "test-too-greedy" not in core_cache.caches()


def test_identical_concurrent_calls_are_computed_once():
    flight = SingleFlight()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        release.wait(10)
        return 42

    results = []
    leader = threading.Thread(target=lambda: results.append(flight.do("k", slow)))
    leader.start()
    assert started.wait(10)
    followers = [threading.Thread(target=lambda: results.append(flight.do("k", slow))) for _ in range(5)]
    for t in followers:
        t.start()
    # wait until the five followers are waiting on the leader's key, then let it finish
    deadline = time.monotonic() + 10
    while flight.merged < 5 and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    assert flight.merged == 5
    release.set()
    for t in [leader, *followers]:
        t.join(10)
    assert results == [42] * 6
    assert len(calls) == 1
    assert flight._running == {}


def test_single_flight_passes_the_error_to_every_waiter():
    flight = SingleFlight()

    def boom():
        raise KeyError("no such slot")

    with pytest.raises(KeyError, match="no such slot"):
        flight.do("x", boom)
    assert flight.do("x", lambda: 7) == 7  # the failure is not remembered


def test_cached_decorator_memoises_in_bytes(monkeypatch):
    calls = []

    @core_cache.cached("test-cached", 0.001)
    def square(n):
        calls.append(n)
        return np.full(4, n * n)

    assert square(3)[0] == 9 and square(3)[0] == 9
    assert calls == [3]
    square.cache_clear()
    square(3)
    assert calls == [3, 3]


def test_state_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path / "s"))
    assert state.state_dir() == tmp_path / "s"
    monkeypatch.delenv("FUMAROLE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state.state_dir() == tmp_path / "xdg" / "fumarole"


def test_each_archive_has_its_own_state_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path))
    a = state.archive_state_dir("/data/archive-a")
    b = state.archive_state_dir("/data/archive-b")
    s3 = state.archive_state_dir("s3://meeo-s5p/OFFL/")
    assert len({a, b, s3}) == 3
    assert a.parent == tmp_path / "archives" and a.name.startswith("archive-a-")
    assert s3.name.startswith("OFFL-")
    assert state.archive_state_dir("s3://meeo-s5p/OFFL") == s3  # a trailing slash is the same archive


def test_a_failed_state_write_is_said_once_and_returns_false(monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    state.said_once_reset()
    with caplog.at_level("WARNING", logger="app.core.state"):
        for _ in range(3):
            assert state.write_state(blocker / "sub" / "index.parquet", lambda p: open(p, "w").close()) is False
    said = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(said) == 1 and "going on in memory" in said[0].getMessage()
    target = tmp_path / "ok" / "x.txt"
    assert state.write_state(target, lambda p: open(p, "w").write("hello")) is True
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["x.txt"]  # no temporary file left


def test_secret_key_is_kept_private_and_stable(monkeypatch, tmp_path):
    monkeypatch.setenv("FUMAROLE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("FUMAROLE_SECRET", raising=False)
    k1 = state.secret_key("t")
    assert len(k1) == 32 and state.secret_key("t") == k1
    assert (tmp_path / "t.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("FUMAROLE_SECRET", "shared")
    assert state.secret_key("t") != k1 and len(state.secret_key("t")) == 32


def test_clusters_come_from_the_operator_only(monkeypatch, tmp_path):
    monkeypatch.delenv("FUMAROLE_CONFIG", raising=False)
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "big=tcp://127.0.0.1:8786, other=tls://h:1")
    settings.reload()
    assert settings.clusters() == {"local": "threads", "big": "tcp://127.0.0.1:8786", "other": "tls://h:1"}
    assert settings.cluster_address("big") == "tcp://127.0.0.1:8786"
    with pytest.raises(settings.SettingsError, match="unknown cluster 'tcp://evil:1'"):
        settings.cluster_address("tcp://evil:1")
    cfg = tmp_path / "fumarole.yaml"
    cfg.write_text("clusters:\n  lab: tcp://10.0.0.1:8786\n")
    monkeypatch.setenv("FUMAROLE_CONFIG", str(cfg))
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "")
    settings.reload()
    assert settings.clusters() == {"local": "threads", "lab": "tcp://10.0.0.1:8786"}
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "broken")
    with pytest.raises(settings.SettingsError, match="NAME=ADDRESS"):
        settings.clusters()
    settings.reload()


# --- time and longitude helpers (app.core.timefmt, app.core.lonlat) ---------------------------------------------

def test_iso_utc_same_text_for_every_kind_of_time():
    import datetime as dt

    import numpy as np
    import pandas as pd

    from app.core.timefmt import iso_utc

    want = "2021-04-12T15:18:23.456Z"
    naive = dt.datetime(2021, 4, 12, 15, 18, 23, 456789)
    assert iso_utc(naive) == want
    assert iso_utc(np.datetime64("2021-04-12T15:18:23.456789123")) == want
    assert iso_utc(pd.Timestamp("2021-04-12T15:18:23.456789")) == want
    paris = dt.timezone(dt.timedelta(hours=2))
    assert iso_utc(dt.datetime(2021, 4, 12, 17, 18, 23, 456000, tzinfo=paris)) == want
    with pytest.raises(ValueError, match="NaT"):
        iso_utc(np.datetime64("NaT"))


def test_wrap_lon_hand_values():
    import numpy as np

    from app.core.lonlat import lon_difference, wrap_lon

    assert wrap_lon(180.0) == -180.0
    assert wrap_lon(-180.0) == -180.0
    assert wrap_lon(190.0) == -170.0
    assert wrap_lon(-190.0) == 170.0
    assert wrap_lon(540.0) == -180.0
    assert isinstance(wrap_lon(10), float)
    # Pacific-centred map: [0, 360)
    np.testing.assert_allclose(wrap_lon(np.array([-175.0, 175.0, 0.0, -1e-14]), central=180.0),
                               [185.0, 175.0, 0.0, 0.0], atol=1e-9)
    out = wrap_lon(np.array([-1e-14]), central=180.0)
    assert 0.0 <= out[0] < 360.0
    assert lon_difference(-175.0, 175.0) == 10.0
    assert lon_difference(175.0, -175.0) == -10.0
