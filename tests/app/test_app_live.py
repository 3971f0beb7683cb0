"""The app's Live routes against a real engine (internal clock, a real socket): state, emotion, text, models, events."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from kelly.app.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def running_engine():
    from kelly.ipc.server import EngineServer
    from kelly.realtime.engine import Engine, EngineConfig
    from kelly.realtime.midi_out import MidiFileSink

    with tempfile.TemporaryDirectory(prefix="kapp-") as d:
        d = Path(d)
        engine = Engine(EngineConfig(phrase_bars=2, out_dir=d / "gen"), sink=MidiFileSink(d / "live.mid"),
                        clock="internal")
        server = EngineServer(engine, d / "engine.sock").start()

        def drive():
            with engine:
                engine.run(realtime=True, seconds=120.0)  # until shutdown()

        runner = threading.Thread(target=drive, daemon=True)
        runner.start()
        deadline = time.monotonic() + 10
        while not engine.get_state().running and time.monotonic() < deadline:
            time.sleep(0.02)
        yield server.path
        engine.shutdown()
        runner.join(timeout=10)
        server.stop()


@pytest.fixture(scope="module")
def client(running_engine, tmp_path_factory):
    return TestClient(create_app(tmp_path_factory.mktemp("app"), engine_socket=str(running_engine)),
                      base_url="http://127.0.0.1")


def test_live_state_emotion_text_and_models(client):
    live = client.get("/api/live").json()
    assert live["connected"] is True and live["state"]["running"] is True
    st = client.post("/api/live/emotion", json={"valence": 0.7, "arousal": 0.9, "dominance": 0.6}).json()
    assert st["sources"]["explicit"]["valence"] == pytest.approx(0.7)
    r = client.post("/api/live/text", json={"text": "I feel calm and safe"}).json()
    assert r["read"] and "text" in r["state"]["sources"]
    name = next(iter(live["state"]["models"]))
    st = client.post(f"/api/live/models/{name}", json={"enabled": False}).json()
    assert st["models"][name]["enabled"] is False
    st = client.post(f"/api/live/models/{name}", json={"enabled": True}).json()
    assert st["models"][name]["enabled"] is True
    bad = client.post("/api/live/emotion", json={"valence": 3, "arousal": 0.5})
    assert bad.status_code == 422


def test_live_events_stream_the_engine_state(client):
    seen = []
    with client.stream("GET", "/api/live/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
            if len(seen) >= 3:
                break
    assert all(s["connected"] for s in seen)
    assert seen[-1]["state"]["time_s"] >= seen[0]["state"]["time_s"]


def test_no_engine_is_said_plainly(tmp_path):
    app = TestClient(create_app(tmp_path / "app", engine_socket=str(tmp_path / "none.sock")),
                     base_url="http://127.0.0.1")
    live = app.get("/api/live").json()
    assert live["connected"] is False and "kelly engine" in live["message"]
    r = app.post("/api/live/emotion", json={"valence": 0.1, "arousal": 0.5})
    assert r.status_code == 400 and "kelly engine" in r.json()["error"]["message"]
    assert app.get("/api/live/events").status_code == 400
