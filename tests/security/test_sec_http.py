"""kelly serve's HTTP surface: traversal in every path and field, Host/Origin (DNS rebinding, CSRF, CORS), sizes.

Threat: a web page in the user's own browser (cross-origin requests, or DNS rebinding
to 127.0.0.1) and files the user is handed (an uploaded MIDI with a hostile name, a
model folder). Nothing outside the app folder may be read or written, no route may be
driven from another site, and every refusal is a bounded JSON error, never a 500.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from kelly.app.server import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, create_app  # noqa: E402

SECRET = "KELLY-SECRET-OUTSIDE-THE-APP-FOLDER"
BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An app folder with one composition, and a secret file beside (outside) it."""
    root = tmp_path_factory.mktemp("sec-http")
    (root / "secret.txt").write_text(SECRET)
    (root / "song.mid").write_text(SECRET)
    folder = root / "app"
    client = TestClient(create_app(folder), base_url=BASE)
    r = client.post("/api/compose", json={"text": "calm", "bars": 2, "seed": 1})
    assert r.status_code == 200, r.text
    return {"root": root, "folder": folder, "client": client, "cid": r.json()["id"]}


class RawResponse:
    """Enough of an httpx response for :func:`_refused`."""

    def __init__(self, status: int, headers: list, body: bytes) -> None:
        self.status_code, self.headers, self.text = status, dict(headers), body.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.text)


def raw(client, method: str, target: str, *, host: str = "127.0.0.1:8765", body: bytes = b"") -> RawResponse:
    """Send ``target`` to the app exactly as written: HTTP clients (and browsers) remove ``..`` segments
    before sending, a hostile client need not. The path is percent-decoded as uvicorn does."""
    import asyncio
    import urllib.parse

    target = urllib.parse.quote(target, safe="/%?=&\\")
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
             "scheme": "http", "path": urllib.parse.unquote(path), "raw_path": path.encode("ascii"),
             "query_string": query.encode("ascii"), "root_path": "", "client": ("127.0.0.1", 40000),
             "server": ("127.0.0.1", 8765),
             "headers": [(b"host", host.encode()), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(client.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(start["status"], [(k.decode(), v.decode()) for k, v in start["headers"]], data)


def _refused(r, *statuses: int) -> str:
    """A JSON error of one of ``statuses`` (never 200 or 500) whose message is short and leaks nothing."""
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    body = r.json()
    message = body["error"]["message"]
    assert len(message) < 400, message
    assert SECRET not in r.text
    return message


TRAVERSALS = [
    "..", "../..", "..%2f..%2fsecret.txt", "%2e%2e%2f%2e%2e%2fsecret.txt", "%2e%2e/%2e%2e/secret.txt",
    "..%252f..%252fsecret.txt", "%252e%252e%252fsecret.txt", "..%5c..%5csecret.txt", "..\\..\\secret.txt",
    "secret.txt%00", "song.mid%00.json", "%00", "%c0%ae%c0%ae%c0%afsecret.txt", "%e0%80%ae%e0%80%ae/secret.txt",
    "%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt", "\u2025/secret.txt", "%2fetc%2fpasswd", "/etc/passwd",
    "....//....//secret.txt", "." * 300, "a" * 5000, "song.mid/../../../secret.txt",
]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_composition_ids_and_file_names_cannot_leave_the_library(world, bad):
    c, cid = world["client"], world["cid"]
    for url in (f"/api/compositions/{bad}", f"/api/compositions/{bad}/files/song.mid",
                f"/api/compositions/{cid}/files/{bad}", f"/api/compositions/{bad}/export"):
        _refused(raw(c, "get", url), 404, 405, 422)
    _refused(raw(c, "patch", f"/api/compositions/{bad}", body=b'{"rating": 1}'), 404, 405, 422)
    _refused(raw(c, "delete", f"/api/compositions/{bad}"), 404, 405, 422)
    assert c.get(f"/api/compositions/{cid}").status_code == 200  # nothing was deleted or broken


@pytest.mark.parametrize("bad", TRAVERSALS[:16])
def test_model_keys_run_ids_and_static_files_cannot_leave_their_folders(world, bad):
    c = world["client"]
    for method, url in (("post", f"/api/models/{bad}/validate"), ("get", f"/api/models/{bad}/export"),
                        ("post", f"/api/models/{bad}/enabled"), ("get", f"/api/training/{bad}"),
                        ("post", f"/api/training/{bad}/cancel"), ("get", f"/api/training/{bad}/events")):
        body = b'{"enabled": true}' if url.endswith("enabled") else b""
        _refused(raw(c, method, url, body=body), 404, 405, 422)
    for url in (f"/static/{bad}", f"/static/{bad}/app/server.py", f"/static/{bad}/../server.py"):
        r = raw(c, "get", url)
        assert r.status_code in (404, 405), (url, r.status_code)
        assert SECRET not in r.text and "def create_app" not in r.text


def test_symlinks_inside_the_library_are_not_followed(world):
    """A file or folder of a composition replaced by a link to something outside: refused, never served."""
    c, folder, root = world["client"], world["folder"], world["root"]
    r = c.post("/api/compose", json={"text": "hope", "bars": 2, "seed": 2})
    cid = r.json()["id"]
    comp = folder / "compositions" / cid
    assert (comp / "song.mid").is_file()
    (comp / "song.mid").unlink()
    (comp / "song.mid").symlink_to(root / "secret.txt")
    _refused(c.get(f"/api/compositions/{cid}/files/song.mid"), 404, 422)
    _refused(c.get(f"/api/compositions/{cid}"), 404, 422)
    # the folder itself a link to elsewhere (a symlinked parent)
    other = c.post("/api/compose", json={"text": "joy", "bars": 2, "seed": 3}).json()["id"]
    moved = root / "moved"
    (folder / "compositions" / other).rename(moved)
    (folder / "compositions" / other).symlink_to(moved)
    _refused(c.get(f"/api/compositions/{other}/files/song.mid"), 404, 422)
    _refused(c.get(f"/api/compositions/{other}/files/song.wav"), 404, 422)  # nothing rendered into the link
    assert not (moved / "song.wav").exists()
    assert (root / "secret.txt").read_text() == SECRET


def test_model_metadata_cannot_name_files_outside_the_model_folder(world, tmp_path, monkeypatch):
    """The transformer's metadata lists its files; a hostile list must not export or hash other files."""
    import json

    import kelly.transformer.composer as tc

    shipped = tmp_path / "transformer"
    shipped.mkdir()
    (tmp_path / "secret.txt").write_text(SECRET)
    (shipped / "step.onnx").write_bytes(b"x")
    (shipped / "MODEL_CARD.md").write_text("card")
    (shipped / "link.onnx").symlink_to(tmp_path / "secret.txt")
    meta = {"steps": 1, "minutes": 1, "files": {"../secret.txt": "0" * 64, "/etc/passwd": "0" * 64,
                                                "link.onnx": "0" * 64, "step.onnx": "0" * 64}}
    (shipped / "transformer.meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(tc, "SHIPPED", shipped)
    c = world["client"]
    checks = c.post("/api/models/transformer/validate").json()["checks"]
    bad = {ch["check"]: ch for ch in checks}
    assert not bad["../secret.txt"]["ok"] and "refused" in bad["../secret.txt"]["detail"]
    assert not bad["/etc/passwd"]["ok"] and not bad["link.onnx"]["ok"]
    r = c.get("/api/models/transformer/export")
    _refused(r, 422)


@pytest.mark.parametrize("name", ["../../../../tmp/kelly-sec-upload.mid", "/tmp/kelly-sec-upload.mid",
                                  "..\\..\\kelly-sec-upload.mid", "a\x00b.mid", "x" * 3000 + ".mid",
                                  "%2e%2e%2fkelly-sec-upload.mid"])
def test_upload_file_names_are_never_paths(world, name):
    """/api/analyze never writes the upload anywhere; its name comes back bounded."""
    import io

    from kelly.song import Note, Song, Track

    c, folder = world["client"], world["folder"]
    song = Song(tracks=[Track(name="t", notes=[Note(60, 0, 480, 90)])])
    before = sorted(p.name for p in folder.rglob("*"))
    r = c.post("/api/analyze", files={"file": (name, io.BytesIO(song.to_bytes()), "audio/midi")})
    assert r.status_code in (200, 422), r.text[:300]
    if r.status_code == 200:
        assert len(r.json()["filename"]) <= 200
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert not Path("/tmp/kelly-sec-upload.mid").exists()


# --------------------------------------------------------------------------- Host, Origin, CORS
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example",
                                  "localhost.evil.example:8765", "127.0.0.1@evil.example", "127.0.0.1:8765/x",
                                  "[::1", "", "0.0.0.0:8765", "192.168.1.5:8765"])
def test_requests_for_another_host_are_refused_dns_rebinding(world, host):
    c, cid = world["client"], world["cid"]
    for method, url in (("get", "/api/compositions"), ("get", f"/api/compositions/{cid}"), ("get", "/"),
                        ("post", "/api/compose")):
        r = getattr(c, method)(url, headers={"host": host}, **({"json": {"text": "x"}} if method == "post" else {}))
        msg = _refused(r, 421)
        assert "--allow-host" in msg
        assert "calm" not in r.text  # no library content


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765", "127.0.0.1"])
def test_loopback_hosts_are_served(world, host):
    assert world["client"].get("/api/health", headers={"host": host}).status_code == 200


def test_allow_host_serves_that_name_too(tmp_path):
    c = TestClient(create_app(tmp_path / "app", allowed_hosts=["kelly.lan"]), base_url="http://kelly.lan:8765")
    assert c.get("/api/health").status_code == 200
    assert c.get("/api/health", headers={"host": "evil.example"}).status_code == 421
    anyhost = TestClient(create_app(tmp_path / "app", allowed_hosts=None), base_url="http://whatever:1")
    assert anyhost.get("/api/health").status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:9999", "http://localhost:8765",
                                    "null", "https://127.0.0.1.evil.example"])
def test_cross_origin_requests_are_refused_csrf(world, origin):
    """Simple requests a page elsewhere can send without a preflight (forms, no-cors fetch) are refused."""
    import io

    c, cid = world["client"], world["cid"]
    h = {"origin": origin}
    before = c.get(f"/api/compositions/{cid}").json()["composition"]
    _refused(c.post("/api/analyze", files={"file": ("a.mid", io.BytesIO(b"MThd"))}, headers=h), 403)
    _refused(c.post("/api/compose", content='{"text": "x"}', headers={**h, "content-type": "text/plain"}), 403)
    _refused(c.patch(f"/api/compositions/{cid}", json={"rating": 1, "notes": "pwned"}, headers=h), 403)
    _refused(c.delete(f"/api/compositions/{cid}", headers=h), 403)
    _refused(c.post("/api/training", json={"model": "dynamicsengine"}, headers=h), 403)
    _refused(c.get("/api/compositions", headers=h), 403)
    assert c.get(f"/api/compositions/{cid}").json()["composition"] == before


def test_cross_site_gets_and_the_own_origin(world):
    c, cid = world["client"], world["cid"]
    img = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}
    # a GET that renders and stores a WAV must not be triggered by an <img> elsewhere
    _refused(c.get(f"/api/compositions/{cid}/files/song.musicxml", headers=img), 403)
    assert "song.musicxml" not in c.get(f"/api/compositions/{cid}").json()["composition"]["files"]
    nav = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert c.get("/", headers=nav).status_code == 200  # a link to the app still opens it
    _refused(c.get("/api/compositions", headers=nav), 403)
    own = {"origin": BASE, "sec-fetch-site": "same-origin"}
    assert c.patch(f"/api/compositions/{cid}", json={"rating": 4}, headers=own).status_code == 200


def test_no_cors_headers_are_ever_sent(world):
    c = world["client"]
    pre = c.options("/api/compose", headers={"origin": "http://evil.example", "access-control-request-method": "POST",
                                             "access-control-request-headers": "content-type"})
    assert pre.status_code in (403, 405)
    assert not any(k.lower().startswith("access-control-") for k in pre.headers)
    r = c.get("/api/compositions")
    assert not any(k.lower().startswith("access-control-") for k in r.headers)


def test_json_bodies_need_a_json_content_type(world):
    """A form can POST text/plain cross-site without a preflight; such a body is not parsed as JSON."""
    r = world["client"].post("/api/compose", content='{"text": "calm", "bars": 2}',
                             headers={"content-type": "text/plain"})
    _refused(r, 422)


# --------------------------------------------------------------------------- sizes
def _chunks(total: int, size: int = 256 * 1024):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_bodies_over_the_cap_are_refused_with_or_without_content_length(world):
    c = world["client"]
    h = {"content-type": "application/json"}
    _refused(c.post("/api/compose", content=b" " * (MAX_BODY_BYTES + 1), headers=h), 413)
    _refused(c.post("/api/compose", content=_chunks(MAX_BODY_BYTES + 1), headers=h), 413)  # chunked
    _refused(c.patch(f"/api/compositions/{world['cid']}", content=_chunks(4 * MAX_BODY_BYTES), headers=h), 413)
    _refused(c.post("/api/compose", content=b"{}", headers={**h, "content-length": "12abc"}), 413, 400)
    boundary = "kellyboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mid\"\r\n"
            "Content-Type: audio/midi\r\n\r\n").encode()

    def upload():
        yield head
        yield from _chunks(MAX_UPLOAD_BYTES + 256 * 1024, 1 << 20)

    r = c.post("/api/analyze", content=upload(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    _refused(r, 413)


@pytest.mark.parametrize("body, field", [
    ({"text": "x" * 10_001}, "text"), ({"journey": ["grief"] * 17}, "journey"), ({"key": "C" * 41}, "key"),
    ({"breaks": ["x"] * 17}, "breaks"), ({"bars": 257}, "bars"), ({"seed": 2**32}, "seed"),
])
def test_field_caps(world, body, field):
    msg = _refused(world["client"].post("/api/compose", json=body), 422)
    assert field in msg


def test_query_and_notes_caps_and_huge_numbers(world):
    c, cid = world["client"], world["cid"]
    _refused(c.patch(f"/api/compositions/{cid}", json={"notes": "n" * 10_001}), 422)
    _refused(c.get("/api/compositions", params={"offset": str(10**30)}), 422)
    _refused(c.get("/api/compositions", params={"limit": str(10**30)}), 422)
    _refused(c.get("/api/compositions", params={"q": "q" * 10_001}), 422)
    _refused(raw(c, "get", "/api/compositions?q=" + "q" * 200_000), 422)
    _refused(c.post("/api/training", json={"model": "m" * 41}), 422)
    _refused(c.post("/api/live/text", json={"text": "t" * 10_001}), 422)


def test_the_app_folder_and_what_it_creates_are_user_only(world):
    folder = world["folder"]
    assert (os.stat(folder).st_mode & 0o777) == 0o700
    for p in folder.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            assert p.stat().st_mode & 0o077 == 0, p
