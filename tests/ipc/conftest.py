"""Fixtures: a small in-memory engine (a real EngineControl, no audio) and a server on a temporary socket."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kelly.ipc.server import EngineServer

from _ipc_helpers import FakeEngine


@pytest.fixture
def short_tmp():
    """A private folder with a short path (pytest's tmp_path can push a socket path past 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="kipc-") as d:
        yield Path(d)


@pytest.fixture
def engine(short_tmp) -> FakeEngine:
    return FakeEngine(short_tmp)


@pytest.fixture
def sock_path(short_tmp) -> Path:
    return short_tmp / "engine.sock"


@pytest.fixture
def server(engine, sock_path):
    srv = EngineServer(engine, sock_path).start()
    yield srv
    srv.stop()
