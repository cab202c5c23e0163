"""No code from the network: a visitor of the time-series panel cannot make the server connect anywhere.

A Dask client unpickles what its scheduler sends, so a scheduler address typed into a page would let anyone who
reaches the page run code in the server. The panel offers the operator's configured clusters by name only; the
address is looked up on the server. These tests open a loopback listening socket (a stub "scheduler"), try every
way a visitor could hand its address to the panel, compute, and then look (without waiting) whether anything
connected to it. A positive control shows the check can fail: a trusted caller giving the engine that address
does connect, and gets a clear error when no Dask scheduler answers.
"""

from __future__ import annotations

import datetime as dt
import socket

import panel as pn
import param
import pytest

import app.services.timeseries as engine
from app.data.archive import Archive
from app.data.errors import UserInputError
from app.views.timeseries_panel import TimeSeriesPanel
from app.views.volcplume import VolcPlume

DAY = dt.date(2021, 4, 12)


@pytest.fixture
def stub():
    """A listening loopback socket that never answers: (socket, its address as a Dask scheduler address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    try:
        yield sock, f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def connections(sock: socket.socket) -> int:
    """Connections made to the stub so far: accepted without waiting (the kernel queued them)."""
    n = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


@pytest.fixture(scope="module")
def archive(tiny_archive_path):
    return Archive("tiny")


def _text_forms(address: str) -> list[str]:
    host_port = address.removeprefix("tcp://")
    return [address, host_port, f"  {address}  ", address.replace("tcp://", "tls://"), "sync", "processes"]


def test_a_visitor_cannot_make_the_server_connect_anywhere(archive, stub, monkeypatch):
    sock, address = stub
    monkeypatch.delenv("FUMAROLE_CLUSTERS", raising=False)
    panel = TimeSeriesPanel(VolcPlume(archive=archive), cache_dir=False, radii=[25, 500], start=DAY, end=DAY)
    names = set(panel.param)
    assert "cluster" in names and not {n for n in names if "scheduler" in n or "address" in n}
    assert panel.param.cluster.objects == ["local"] and panel.cluster == "local"

    # every parameter refuses the address or, if it takes text, holds it as inert text
    refused, held = [], []
    for name, parameter in panel.param.objects("existing").items():
        if name == "name" or isinstance(parameter, param.ClassSelector | param.Callable | param.Action):
            continue
        for text in _text_forms(address):
            value = [text] if isinstance(parameter, param.ListSelector) else (
                text.encode() if isinstance(parameter, param.Bytes) else text)
            try:
                setattr(panel, name, value)
            except (ValueError, TypeError):
                refused.append(name)
            else:
                held.append(name)
    assert "cluster" in refused and "cluster" not in held
    assert {"volcano", "wind_filename"} <= set(held)  # the text fields: tried in the compute below
    with pytest.raises(ValueError):
        panel.param.update(cluster=address)
    select = next(w for w in panel._question_widgets().select(pn.widgets.Select) if w.name == "Run on (cluster)")
    assert list(select.options) == ["local"]
    try:
        select.value = address  # what a forged websocket message would do
    except ValueError:
        pass
    assert panel.cluster == "local"

    # compute with every text field holding the address (a bad question), then with a good one and the rest as is
    panel.compute(sync=True)
    assert panel.message_type == "danger" and "volcano" in panel.message.lower()
    panel.param.update(volcano="Soufriere St. Vincent", variables=["so2_7km"], radii=[25, 500], start=DAY, end=DAY,
                       min_du=None, wind_source="constant")
    panel.compute(sync=True)
    assert panel.message_type in ("success", "warning") and panel.table is not None and not panel.table.empty
    assert panel.results["so2_7km"][1].scheduler.startswith("threads")
    panel.compute()  # and in the background, as the button does
    assert panel.wait(timeout=60) and panel.table is not None

    assert connections(sock) == 0


def test_the_engine_does_connect_when_a_trusted_caller_gives_the_address(tiny_archive_path, stub, monkeypatch):
    """Positive control: the same stub sees the engine's connection, and the engine says no scheduler answered."""
    sock, address = stub
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(UserInputError, match=rf"^the Dask scheduler at {address} did not answer as a Dask "
                                             r"scheduler within 1 s"):
        engine.compute_mass_timeseries("tiny", "Soufriere St Vincent", DAY, DAY, [25, 500], cache_dir=False,
                                       scheduler=address)
    assert connections(sock) >= 1

    # an operator's cluster is reached by its name, and the error names the cluster, not its address
    monkeypatch.setenv("FUMAROLE_CLUSTERS", f"stub={address}")
    with pytest.raises(UserInputError, match=r"^cluster 'stub' did not answer") as caught:
        engine.compute_mass_timeseries("tiny", "Soufriere St Vincent", DAY, DAY, [25, 500], cache_dir=False,
                                       cluster="stub")
    assert address not in str(caught.value)
    assert connections(sock) >= 1


def test_an_unknown_cluster_name_is_refused_before_any_connection(tiny_archive_path, stub, monkeypatch):
    sock, address = stub
    monkeypatch.setenv("FUMAROLE_CLUSTERS", "big=tcp://10.255.255.1:8786")
    assert engine.cluster_names() == ["local", "big"]
    for name in (address, "huge", "", 42):
        with pytest.raises(UserInputError, match="unknown cluster|a cluster is given by its name"):
            engine.compute_mass_timeseries("tiny", "Soufriere St Vincent", DAY, DAY, [25], cache_dir=False,
                                           cluster=name)
    with pytest.raises(UserInputError, match="not both"):
        engine.check_scheduler("threads", cluster="local")
    assert engine.check_scheduler(cluster="local").startswith("threads")
    assert connections(sock) == 0
