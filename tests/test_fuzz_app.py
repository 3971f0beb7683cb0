"""Regressions from fuzzing the web app (fuzz target ``app``), and the fuzz harness's own checks.

The app promises JSON ``{"error": {"status", "message"}}`` for every error (docs/app.md); the
fuzzer found two answers that broke it: Starlette's own reply to a malformed or unsatisfiable
``Range`` header on a file (plain text, an empty 416) and its 400 for a multipart body it could not
parse (bad input, which the app answers 422).
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from kelly.app.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return TestClient(create_app(tmp_path_factory.mktemp("fuzzapp")), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def song_url(client):
    r = client.post("/api/compose", json={"text": "calm", "bars": 1, "seed": 2})
    assert r.status_code == 200, r.text
    return r.json()["files"]["mid"]


def _json_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["message"]
    return body["error"]["message"]


@pytest.mark.parametrize("path", ["song", "/static/app.js"])
def test_a_malformed_range_is_a_json_error(client, song_url, path):
    url = song_url if path == "song" else path
    assert "Range" in _json_error(client.get(url, headers={"Range": "bytes=9-2"}), 400)
    assert _json_error(client.get(url, headers={"Range": "bytes=x"}), 400)


def test_a_range_past_the_end_is_a_json_416_that_keeps_content_range(client, song_url):
    size = len(client.get(song_url).content)
    r = client.get(song_url, headers={"Range": f"bytes={size + 10}-"})
    assert _json_error(r, 416) == "Requested Range Not Satisfiable"
    assert r.headers["content-range"] == f"bytes */{size}"


def test_ranges_that_fit_are_still_served(client, song_url):
    whole = client.get(song_url).content
    r = client.get(song_url, headers={"Range": "bytes=0-13"})
    assert r.status_code == 206 and r.content == whole[:14]
    assert client.get("/static/app.js", headers={"Range": "bytes=0-9"}).status_code == 206


@pytest.mark.parametrize("body, content_type", [
    (b"-\xd8\r\n", "multipart/form-data; boundary="),
    (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mid\"\r\n\r\nMThd", "multipart/form-data; boundary=b"),
    (b"garbage", "multipart/form-data"),
])
def test_a_broken_multipart_upload_is_bad_input(client, body, content_type):
    r = client.post("/api/analyze", content=body, headers={"Content-Type": content_type})
    assert r.status_code in (422,), r.text
    _json_error(r, 422)


# ----------------------------------------------------------------------- the harness itself
atheris = pytest.importorskip("atheris")


@pytest.fixture(scope="module")
def harness():
    from fuzz.targets import AppHarness

    return AppHarness()


def _bytes(route: str, param: bytes = b"", body: bytes = b"", how: int = 0) -> bytes:
    from fuzz.targets import APP_ROUTES

    names = list(APP_ROUTES)
    return bytes([names.index(route) + how * len(names)]) + param + b"\n" + body


@pytest.mark.parametrize("status, body, words", [
    (500, b'{"error": {"status": 500, "message": "x"}}', "answered 500"),
    (422, b"Internal Server Error", "not JSON"),
    (404, b'{"detail": "Not Found"}', "error shape"),
    (422, b'{"error": {"status": 400, "message": "x"}}', "error shape"),
    (409, b'{"error": {"status": 409, "message": ""}}', "error shape"),
    (400, b'{"error": {"status": 400, "message": "x"}}', "answered 400"),
    (307, b"", "redirected elsewhere"),
])
def test_the_harness_flags_broken_answers(harness, status, body, words):
    from fuzz.targets import AppFinding

    with pytest.raises(AppFinding, match=words):
        harness.check("compose", "POST", status, {"location": "http://evil.example/"}, body)


def test_the_harness_accepts_the_documented_answers(harness):
    harness.check("live_text", "POST", 400, {}, b'{"error": {"status": 400, "message": "no kelly engine"}}')
    harness.check("compose", "POST", 422, {}, b'{"error": {"status": 422, "message": "bars: too many"}}')
    harness.check("library_file", "GET", 416, {}, b'{"error": {"status": 416, "message": "x"}}', ranged=True)


def test_the_harness_drives_every_route_and_training_stays_harmless(harness):
    """Compose, keep, reference by @N, start a training run (its child is `true`), and the library checks out."""
    import time

    from fuzz.targets import app as target  # noqa: F401 - the module the harness lives in

    harness.fuzz(_bytes("compose", body=b'{"text": "calm", "bars": 200, "seed": 4}'))
    kept = harness.state.library.search(limit=5)
    assert kept and kept[0].parameters["bars"] == 16  # a valid request is composed, its bars cut to the budget
    harness.fuzz(_bytes("library_update", b"@0", b'{"rating": 5}'))
    assert harness.state.library.get(kept[0].id).rating == 5
    harness.fuzz(_bytes("train_start", body=b'{"model": "dynamicsengine", "epochs": 3}'))
    (run,) = harness.state.trainer.runs.values()
    deadline = time.monotonic() + 10
    while run.status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.status == "finished" and run.epoch == 0  # `true` ran, not kelly train
    harness.fuzz(_bytes("train_resume", b"@0", b'{"epochs": 4}'))
    harness.fuzz(_bytes("live_text", body=b'{"text": "I feel calm"}'))
    harness.fuzz(_bytes("library_file", b"@0", b"song.mid\nbytes=5-1", how=4))
    harness.check_library()


@pytest.mark.parametrize("length", [b"\xb2", b"\xb9\xb3", b"1\xb2"])
def test_a_content_length_of_non_ascii_digits_is_refused_not_a_crash(harness, length):
    """Latin-1 superscripts are digits to ``str.isdigit`` but not to ``int``: the guard answered 500 (fuzzer)."""
    status, headers, body = harness.request("POST", b"/api/compose", headers=[
        (b"host", b"127.0.0.1:8765"), (b"content-type", b"application/json"), (b"content-length", length)],
        body=b"{}", chunked=True)
    assert status == 413, body
    harness.check("compose", "POST", status, headers, body)


def test_results_are_merged_by_target_and_the_notes_kept(tmp_path):
    """``--results`` on a run of some targets keeps the other rows (older layout included) and the notes."""
    from argparse import Namespace

    from fuzz.run import _write_results

    path = tmp_path / "results.md"
    path.write_text("# Fuzzing results\n\n`python -m fuzz.run --runs 100000 --timeout 5 --rss-mb 1024 --seed 1` on "
                    "x86_64, Python 3.11.7, 2026-11-30 08:32.\n\n| target | inputs | result | peak RSS (MB) | slowest "
                    "input (s) | wall time (s) |\n|---|---:|---|---:|---:|---:|\n| text | 100000 | clean | 92 | 0 | 76 |\n"
                    "| app | 5 | FINDING | 1 | 0 | 1 |\n\nKill test: kept.\n", encoding="utf-8")
    row = {"name": "app", "clean": True, "runs": "100000", "rss": "600", "slowest": "2", "seconds": "1100"}
    _write_results(path, [row], Namespace(runs=100000, timeout=5, rss_mb=1024, seed=1))
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| text | 100000 | clean | 92 | 0 | 76 | 2026-11-30 08:32 | x86_64, Python 3.11.7 | "
                               "`python -m fuzz.run --runs 100000 --timeout 5 --rss-mb 1024 --seed 1` |")
    assert lines[2].startswith("| app | 100000 | clean | 600 | 2 | 1100 |")
    assert lines[2].endswith("`python -m fuzz.run --runs 100000 --timeout 5 --rss-mb 1024 --seed 1 app` |")
    assert len(lines) == 3 and text.rstrip().endswith("Kill test: kept.")
    _write_results(path, [{**row, "rss": "650"}], Namespace(runs=100000, timeout=5, rss_mb=1024, seed=1))
    again = path.read_text(encoding="utf-8").splitlines()
    assert [line for line in again if not line.startswith("| app ")] == \
        [line for line in text.splitlines() if not line.startswith("| app ")]  # a rerun changes only its own row
    assert any(line.startswith("| app | 100000 | clean | 650 |") for line in again)
