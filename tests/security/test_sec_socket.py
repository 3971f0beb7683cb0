"""The engine's control socket: who may connect (permissions), and what a request can reach (LoadModel's path).

Threat: another local user on a shared machine (the socket and its folder are the user's
only), and any client that can connect (its fields are validated; LoadModel reads only
from the engine's models folder, never through a link, never code).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import struct
from pathlib import Path

import pytest

from kelly.contracts import Error, LoadModel
from kelly.errors import KellyError
from kelly.ipc.client import KellyClient
from kelly.ipc.server import EngineServer

SHIPPED = Path(__file__).resolve().parents[2] / "kelly" / "assets" / "models"


class Quiet:
    """The smallest engine: answers state, refuses models (enough to test the socket's files)."""

    def load_model(self, path):
        raise KellyError("no models here")

    def set_emotion(self, v, a, d):
        pass

    def set_text(self, text):
        return None

    def generate_midi(self, bars):
        raise KellyError("no")

    def get_state(self):
        raise KellyError("no state")

    def set_model_enabled(self, model, enabled):
        pass

    def shutdown(self):
        pass


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def short_tmp():
    """A short folder: socket paths must fit 107 bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ks-", dir="/tmp") as d:
        yield Path(d)


def test_default_socket_folder_0700_socket_and_lock_0600(short_tmp, monkeypatch):
    run = short_tmp / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    (run / "kelly").mkdir(mode=0o755)  # left too open by something else: tightened
    os.chmod(run / "kelly", 0o755)
    with EngineServer(Quiet()) as server:
        assert server.path == run / "kelly" / "engine.sock"
        assert _mode(run / "kelly") == 0o700
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode) and _mode(server.path) == 0o600
        assert _mode(server.path.with_name("engine.sock.lock")) == 0o600
    assert not server.path.exists()


def test_a_linked_or_foreign_socket_folder_is_refused(short_tmp, monkeypatch):
    run = short_tmp / "run"
    run.mkdir(mode=0o700)
    elsewhere = short_tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (run / "kelly").symlink_to(elsewhere)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    with pytest.raises(KellyError, match="symbolic link"):
        EngineServer(Quiet()).start()
    assert list(elsewhere.iterdir()) == []


def test_a_chosen_socket_folder_others_can_write_is_refused(short_tmp):
    shared = short_tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(KellyError, match="other users"):
        EngineServer(Quiet(), shared / "e.sock").start()
    assert list(shared.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "symlink", "fifo"])
def test_something_else_at_the_socket_path_is_never_removed_or_followed(short_tmp, kind):
    target = short_tmp / "precious.txt"
    target.write_text("keep me")
    path = short_tmp / "e.sock"
    if kind == "file":
        path.write_text("keep me too")
    elif kind == "symlink":
        path.symlink_to(target)
    else:
        os.mkfifo(path)
    with pytest.raises(KellyError, match="not a socket"):
        EngineServer(Quiet(), path).start()
    assert os.path.lexists(path) and target.read_text() == "keep me"


def test_socket_path_too_long_is_a_clear_error(short_tmp):
    with pytest.raises(KellyError, match="over the 107-byte limit|over the 103-byte limit"):
        EngineServer(Quiet(), short_tmp / ("x" * 200) / "e.sock").start()


# --------------------------------------------------------------------------- LoadModel over the socket
@pytest.fixture
def live(short_tmp):
    """A real engine (internal clock, no audio) behind a real socket, with a models folder and an outside one."""
    from kelly.realtime.engine import Engine, EngineConfig

    models = short_tmp / "models"
    models.mkdir()
    outside = short_tmp / "outside"
    outside.mkdir()
    shutil.copy(SHIPPED / "harmonypredictor.npz", outside / "harmonypredictor.npz")
    shutil.copy(SHIPPED / "harmonypredictor.npz", models / "harmonypredictor-ok.npz")
    (models / "harmonypredictor-link.npz").symlink_to(outside / "harmonypredictor.npz")
    (models / "sub").symlink_to(outside)  # a linked folder inside the models folder
    engine = Engine(EngineConfig(models_dir=str(models), out_dir=short_tmp / "gen"), clock="internal")
    server = EngineServer(engine, short_tmp / "e.sock").start()
    try:
        yield {"engine": engine, "server": server, "models": models, "outside": outside, "root": short_tmp}
    finally:
        server.stop()
        engine.stop()


HOSTILE_MODEL_PATHS = [
    "../outside/harmonypredictor.npz", "..", "../..", "harmonypredictor-link.npz", "sub/harmonypredictor.npz",
    "..%2foutside%2fharmonypredictor.npz", "%2e%2e/outside/harmonypredictor.npz", "..\\outside\\harmonypredictor.npz",
    "harmonypredictor-ok.npz\x00.json", "/etc/passwd", "\u2025/outside/harmonypredictor.npz", "harmonypredictor" + "x" * 300,
    "./../outside/harmonypredictor.npz", "harmonypredictor-ok.npz/..", "~/harmonypredictor.npz",
]


def test_load_model_cannot_reach_outside_the_models_folder(live):
    outside_abs = str(live["outside"] / "harmonypredictor.npz")
    with KellyClient(live["server"].path) as c:
        before = c.state().models
        for i, path in enumerate(HOSTILE_MODEL_PATHS + [outside_abs]):
            answer = c.request(LoadModel(path=path, id=i))
            assert isinstance(answer, Error), (path, answer)
            assert "\n" not in answer.message and len(answer.message) < 600, answer.message
        assert c.state().models == before
        # the one good name still works: the refusals were about the names, not the engine
        assert c.load_model("harmonypredictor-ok.npz") == "harmonypredictor"


def test_load_model_refuses_a_pickle_and_runs_no_code(live):
    torch = pytest.importorskip("torch")

    marker = live["root"] / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import io

    buf = io.BytesIO()
    torch.save({"weight": Payload()}, buf)
    for name in ("harmonypredictor-evil.npz", "harmonypredictor-evil.json", "harmonypredictor-evil.pt"):
        (live["models"] / name).write_bytes(buf.getvalue())
    import pickle

    (live["models"] / "dynamicsengine-evil.json").write_bytes(pickle.dumps(Payload()))
    with KellyClient(live["server"].path) as c:
        for name in ("harmonypredictor-evil.npz", "harmonypredictor-evil.json", "harmonypredictor-evil.pt",
                     "dynamicsengine-evil.json"):
            answer = c.request(LoadModel(path=name, id=1))
            assert isinstance(answer, Error), (name, answer)
    assert not marker.exists()


def _raw_request(path: Path, doc: dict | bytes) -> dict:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(struct.pack("<I", len(body)) + body)
        head = s.recv(4, socket.MSG_WAITALL)
        n = struct.unpack("<I", head)[0]
        return json.loads(s.recv(n, socket.MSG_WAITALL))


@pytest.mark.parametrize("doc, words", [
    ({"type": "LoadModel", "path": "x" * 4097}, "path"),
    ({"type": "LoadModel", "path": ""}, "path"),
    ({"type": "LoadModel", "path": ["../x"]}, "path"),
    ({"type": "SetText", "text": "t" * 10_001}, "text"),
    ({"type": "SetModelEnabled", "model": "m" * 65, "enabled": True}, "model"),
    ({"type": "GenerateMIDI", "bars": 10_000}, "bars"),
    ({"type": "GenerateMIDI", "bars": "../../x"}, "bars"),
    ({"type": "Subscribe", "interval_ms": 1}, "interval_ms"),
    ({"type": "GetState", "id": "i" * 65}, "id"),
    ({"type": "GetState", "path": "/etc/passwd"}, "path"),
])
def test_socket_fields_are_typed_and_capped(live, doc, words):
    answer = _raw_request(live["server"].path, doc)
    assert answer["type"] == "Error" and words in answer["message"], answer
    assert len(answer["message"]) <= 2000


def test_a_frame_over_one_mib_is_refused_before_it_is_read(live):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(live["server"].path))
        s.sendall(struct.pack("<I", (1 << 20) + 1))
        n = struct.unpack("<I", s.recv(4, socket.MSG_WAITALL))[0]
        answer = json.loads(s.recv(n, socket.MSG_WAITALL))
        assert answer["type"] == "Error" and "over the 1 MiB limit" in answer["message"], answer
        assert s.recv(1) == b""  # closed without reading the body


def test_generated_midi_stays_in_the_out_folder(live):
    with KellyClient(live["server"].path) as c:
        c.set_text("../../../etc/evil " * 3)  # the text never becomes a file name
        out = Path(c.generate(bars=1, timeout=60))
    assert out.resolve().parent == (live["root"] / "gen").resolve()
    assert ".." not in out.name and "/" not in out.name
