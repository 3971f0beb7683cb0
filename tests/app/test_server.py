"""The web app's API (kelly.app.server) through FastAPI's test client: every endpoint, good and bad input."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from kelly.app.server import MAX_UPLOAD_BYTES, create_app  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("app")


@pytest.fixture(scope="module")
def client(folder):
    return TestClient(create_app(folder), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def composed(client):
    r = client.post("/api/compose", json={"text": "I feel grief, but I'm starting to hope", "bars": 4, "seed": 3})
    assert r.status_code == 200, r.text
    return r.json()


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def test_health_page_and_schema(client):
    assert client.get("/api/health").json()["ok"] is True
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    schema = client.get("/openapi.json").json()
    assert "ComposeRequest" in json.dumps(schema)
    assert "/api/compose" in schema["paths"]


def test_compose_from_text_gives_roll_explanation_and_files(client, composed):
    from kelly.song import read_midi_bytes

    assert len(composed["id"]) == 32
    assert composed["explanation"]["emotion"]["emotion"]
    roll = composed["roll"]
    assert roll["bars"] == 4 and roll["tracks"] and all(t["notes"] for t in roll["tracks"])
    assert roll["chords"] and roll["chords"][0][0] == 0
    mid = client.get(composed["files"]["mid"])
    assert mid.status_code == 200 and mid.headers["content-type"] == "audio/midi"
    song = read_midi_bytes(mid.content)
    assert sum(len(t.notes) for t in song.tracks) == sum(len(t["notes"]) for t in roll["tracks"])
    js = client.get(composed["files"]["json"]).json()
    assert js["emotion"]["emotion"] == composed["explanation"]["emotion"]["emotion"]


def test_compose_from_the_pad(client):
    r = client.post("/api/compose", json={"valence": -0.7, "arousal": 0.9, "dominance": 0.8, "bars": 2})
    assert r.status_code == 200, r.text
    e = r.json()["composition"]
    assert e["valence"] == pytest.approx(-0.7) and e["arousal"] == pytest.approx(0.9) and e["text"] is None


@pytest.mark.parametrize("body, words", [
    ({}, "nothing to compose"),
    ({"text": "calm", "bars": 0}, "bars"),
    ({"text": "calm", "bars": 10_000}, "bars"),
    ({"text": "calm", "valence": 2}, "valence"),
    ({"text": "x" * 10_001}, "text"),
    ({"text": "calm", "composer": "mozart"}, "composer"),
    ({"text": "calm", "tempo": 90}, "tempo"),
    ({"text": "calm", "key": "H# lydian"}, ""),
    ({"journey": ["grief", "notanemotion"]}, "notanemotion"),
])
def test_compose_bad_input_is_a_readable_json_error(client, body, words):
    msg = _error(client.post("/api/compose", json=body), 422)
    assert words.lower() in msg.lower()


def test_not_json_and_oversized_bodies(client):
    _error(client.post("/api/compose", content=b"{not json", headers={"content-type": "application/json"}), 422)
    big = b"{" + b" " * (2 << 20) + b"}"
    _error(client.post("/api/compose", content=big, headers={"content-type": "application/json"}), 413)


def test_library_search_rate_notes_and_delete(client, composed):
    cid = composed["id"]
    items = client.get("/api/compositions", params={"q": "grief"}).json()["items"]
    assert cid in [c["id"] for c in items]
    r = client.patch(f"/api/compositions/{cid}", json={"rating": 4, "notes": "keep the bridge"})
    assert r.status_code == 200 and r.json()["rating"] == 4 and r.json()["notes"] == "keep the bridge"
    _error(client.patch(f"/api/compositions/{cid}", json={"rating": 7}), 422)
    _error(client.patch(f"/api/compositions/{cid}", json={"rating": "five"}), 422)
    view = client.get(f"/api/compositions/{cid}").json()
    assert view["composition"]["rating"] == 4 and view["roll"]["tracks"]
    near = client.get("/api/compositions", params={"valence": -0.7, "arousal": 0.9}).json()["items"]
    assert near[0]["valence"] == pytest.approx(-0.7)
    other = client.post("/api/compose", json={"text": "serene", "bars": 2}).json()["id"]
    assert client.delete(f"/api/compositions/{other}").status_code == 204
    _error(client.get(f"/api/compositions/{other}"), 404)
    _error(client.delete(f"/api/compositions/{other}"), 404)


@pytest.mark.parametrize("cid", ["0" * 32, "nothex", "..%2F..%2Fetc%2Fpasswd", "A" * 32])
def test_unknown_or_hostile_ids_are_404(client, cid):
    _error(client.get(f"/api/compositions/{cid}"), 404)


@pytest.mark.parametrize("name", ["song.exe", "..%2Flibrary.sqlite", "library.sqlite"])
def test_only_known_files_are_served(client, composed, name):
    _error(client.get(f"/api/compositions/{composed['id']}/files/{name}"), 404)


def test_musicxml_and_export(client, composed):
    cid = composed["id"]
    x = client.get(composed["files"]["musicxml"])
    assert x.status_code == 200 and b"<score-partwise" in x.content
    z = zipfile.ZipFile(io.BytesIO(client.get(f"/api/compositions/{cid}/export").content))
    names = set(z.namelist())
    assert {"song.mid", "song.json", "song.musicxml", "composition.json"} <= names


def test_wav_renders_on_first_request_and_is_kept(client, composed):
    from kelly.render.audio import SoundfontError, find_soundfont, synth_available

    try:
        find_soundfont()
    except SoundfontError:
        pytest.skip("no soundfont")
    if not synth_available():
        pytest.skip("no FluidSynth")
    r = client.get(composed["files"]["wav"])
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    assert "song.wav" in client.get(f"/api/compositions/{composed['id']}").json()["composition"]["files"]


def test_ddsp_wav(client, composed):
    if composed["files"]["wav_ddsp"] is None:
        pytest.skip("no DDSP voice shipped")
    from kelly.render.audio import SoundfontError, find_soundfont, synth_available

    try:
        find_soundfont()
    except SoundfontError:
        pytest.skip("no soundfont for the drums")
    if not synth_available():
        pytest.skip("no FluidSynth for the drums")
    r = client.get(composed["files"]["wav_ddsp"])
    assert r.status_code == 200 and r.content[:4] == b"RIFF" and len(r.content) > 100_000


def test_analyze_upload(client, composed):
    mid = client.get(composed["files"]["mid"]).content
    r = client.post("/api/analyze", files={"file": ("take.mid", mid, "audio/midi")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "key" in body["report"].lower() and body["roll"]["tracks"]
    msg = _error(client.post("/api/analyze", files={"file": ("bad.mid", b"MThd garbage", "audio/midi")}), 422)
    assert "midi" in msg.lower() or "upload" in msg.lower()
    big = b"\0" * (MAX_UPLOAD_BYTES + 200_000)
    _error(client.post("/api/analyze", files={"file": ("big.mid", big, "audio/midi")}), 413)
    _error(client.post("/api/analyze"), 422)


def test_models_list_and_switch(client):
    models = client.get("/api/models").json()["models"]
    kinds = [m["kind"] for m in models]
    assert kinds.count("network") == 5
    assert "transformer" in kinds and "ddsp" in kinds
    r = client.post("/api/models/harmonypredictor/enabled", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    ex = client.post("/api/compose", json={"text": "calm", "bars": 2}).json()["explanation"]
    assert any("harmony" in m.lower() for m in ex["models"]["fallback"])
    assert client.post("/api/models/harmonypredictor/enabled", json={"enabled": True}).json()["enabled"] is True
    _error(client.post("/api/models/nonesuch/enabled", json={"enabled": False}), 404)
    _error(client.post("/api/models/harmonypredictor/enabled", json={"enabled": "yes"}), 422)


def test_a_composition_and_its_rating_survive_a_restart(folder, composed, client):
    client.patch(f"/api/compositions/{composed['id']}", json={"rating": 5})
    again = TestClient(create_app(folder), base_url="http://127.0.0.1")
    view = again.get(f"/api/compositions/{composed['id']}").json()
    assert view["composition"]["rating"] == 5 and view["roll"]["tracks"]


def test_the_app_folder_is_user_only(folder, client):
    import stat

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def _wait_run(client, rid: str, statuses=("finished", "failed", "cancelled"), timeout: float = 120.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/training/{rid}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {rid} did not reach {statuses}")


def test_training_run_streams_progress_and_finishes(client):
    r = client.post("/api/training", json={"model": "dynamicsengine", "data": "synthetic", "epochs": 3})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    _error(client.post("/api/training", json={"model": "dynamicsengine", "epochs": 2}), 409)
    events = []
    with client.stream("GET", f"/api/training/{rid}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "finished", events[-1]["message"]
    epochs = [e["epoch"] for e in events]
    assert epochs == sorted(epochs) and epochs[-1] == 3
    final = client.get(f"/api/training/{rid}").json()
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3]
    assert all(h["loss"] is not None and h["val"] is not None for h in final["history"])
    assert final["baseline_val"] is not None and final["best_val"] is not None
    listed = client.get("/api/training").json()
    assert listed["running"] is None and rid in [x["id"] for x in listed["runs"]]


def test_training_cancel_and_resume(client):
    rid = client.post("/api/training", json={"model": "dynamicsengine", "epochs": 200}).json()["id"]
    import time

    deadline = time.monotonic() + 90
    while client.get(f"/api/training/{rid}").json()["epoch"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    cancelled = client.post(f"/api/training/{rid}/cancel").json()
    assert cancelled["status"] == "cancelled"
    done_before = _wait_run(client, rid)["epoch"]
    assert 1 <= done_before < 200
    resumed = client.post(f"/api/training/{rid}/resume", json={"epochs": done_before + 1})
    assert resumed.status_code == 200, resumed.text
    final = _wait_run(client, rid)
    assert final["status"] == "finished", final["message"]
    assert final["epoch"] == done_before + 1  # it went on from its checkpoint, not from the start


@pytest.mark.parametrize("body, status", [
    ({"model": "nonesuch"}, 422), ({"model": "dynamicsengine", "epochs": 0}, 422),
    ({"model": "dynamicsengine", "data": "internet"}, 422), ({"model": "dynamicsengine", "epochs": 501}, 422),
])
def test_training_bad_requests(client, body, status):
    _error(client.post("/api/training", json=body), status)


def test_training_unknown_runs(client):
    _error(client.get("/api/training/" + "0" * 32), 404)
    _error(client.post("/api/training/../../x/cancel"), 404)


@pytest.mark.parametrize("key", ["harmonypredictor", "transformer", "ddsp"])
def test_models_validate_and_export(client, key):
    r = client.post(f"/api/models/{key}/validate")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["checks"] and all(c["ok"] for c in body["checks"])
    z = zipfile.ZipFile(io.BytesIO(client.get(f"/api/models/{key}/export").content))
    assert z.namelist() and all("/" not in n for n in z.namelist())


def test_models_validate_unknown(client):
    _error(client.post("/api/models/nope/validate"), 404)
    _error(client.get("/api/models/..%2F..%2Fetc/export"), 404)
