"""Compositions at the same time: a quick piece is not held behind a long one, and each seed's MIDI is unchanged."""

from __future__ import annotations

import hashlib
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import kelly.app.server as server  # noqa: E402
import kelly.composer as composer_mod  # noqa: E402

REQUESTS = [
    {"text": "I feel grief, but I'm starting to hope", "bars": 8, "seed": 1},
    {"text": "I am furious", "bars": 8, "seed": 2, "composer": "hybrid"},
    {"text": "calm and tender", "bars": 8, "seed": 3},
    {"valence": -0.4, "arousal": 0.8, "dominance": 0.3, "bars": 8, "seed": 4},
    {"journey": ["grief", "acceptance", "hope"], "bars": 12, "seed": 5},
    {"text": "anxious and restless", "bars": 8, "seed": 6, "composer": "hybrid"},
]


def _client(folder) -> TestClient:
    return TestClient(server.create_app(folder), base_url="http://127.0.0.1")


def _midi_hash(client: TestClient, req: dict) -> str:
    r = client.post("/api/compose", json=req)
    assert r.status_code == 200, r.text
    midi = client.get(f"/api/compositions/{r.json()['id']}/files/song.mid")
    assert midi.status_code == 200
    return hashlib.sha256(midi.content).hexdigest()


def test_the_same_requests_give_the_same_midi_one_by_one_or_all_at_once(tmp_path, monkeypatch):
    """Nothing is shared between compositions: six at once (slots for all) give the MIDI each gives alone."""
    alone = [_midi_hash(_client(tmp_path / "a"), req) for req in REQUESTS]
    monkeypatch.setattr(server, "COMPOSE_AT_ONCE", len(REQUESTS))
    client = _client(tmp_path / "b")
    together: list[str | None] = [None] * len(REQUESTS)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            together[i] = _midi_hash(client, REQUESTS[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(REQUESTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and together == alone


def test_a_quick_piece_is_not_held_behind_a_long_one(tmp_path, monkeypatch):
    """While one composition takes long (held here on an event), another one is made and answered."""
    release, started = threading.Event(), threading.Event()
    real = composer_mod.get_composer

    def get_composer(name, **kw):
        composer = real(name, **kw)
        if name != "transformer":
            return composer

        class Slow:
            def compose(self, *a, **k):
                started.set()
                assert release.wait(60), "the slow composition was never released"
                return composer.compose(*a, **k)
        return Slow()

    monkeypatch.setattr(composer_mod, "get_composer", get_composer)
    client = _client(tmp_path)
    slow_status: list[int] = []
    slow = threading.Thread(target=lambda: slow_status.append(client.post(
        "/api/compose", json={"text": "I am furious", "bars": 4, "seed": 1, "composer": "transformer"}).status_code))
    slow.start()
    try:
        assert started.wait(60)
        quick = client.post("/api/compose", json={"text": "calm", "bars": 4, "seed": 2})
        assert quick.status_code == 200, quick.text  # answered while the slow one still holds its slot
        assert not release.is_set() and slow.is_alive()
    finally:
        release.set()
        slow.join(120)
    assert slow_status == [200]
