"""Listeners bind loopback unless told (and say so loudly); logs never carry what the person wrote.

A person's feelings text is private (Kelly is used in music therapy). Requests carry a
sentinel in every place a user's words travel (compose text, library search query
string, notes, live text, upload name and content, an error's message, an environment
value); neither the server's output (a real ``kelly serve`` in a child process: uvicorn's
logs included) nor the Python log records may contain it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kelly.errors import InputError

SENTINEL = "zq7SENTINELfeelings"  # lowercase-safe and one search token


# --------------------------------------------------------------------------- listeners
@pytest.fixture
def fake_uvicorn(monkeypatch):
    pytest.importorskip("uvicorn")
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def _serve(argv, capsys):
    from kelly.cli import main

    code = main(["serve", *argv])
    return code, capsys.readouterr()


def test_serve_binds_loopback_by_default_without_a_warning_and_without_an_access_log(tmp_path, fake_uvicorn,
                                                                                     capsys):
    code, out = _serve(["--app-dir", str(tmp_path / "app")], capsys)
    assert code == 0 and "warning" not in out.err
    app, kw = fake_uvicorn[-1]
    assert kw["host"] == "127.0.0.1" and kw["access_log"] is False and kw["log_level"] == "warning"
    assert "http://127.0.0.1:8765/" in out.out
    # the app itself refuses other Host names (DNS rebinding)
    from fastapi.testclient import TestClient

    assert TestClient(app, base_url="http://evil.example:8765").get("/api/health").status_code == 421


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kelly.lan"])
def test_serve_warns_clearly_when_told_to_listen_beyond_this_computer(tmp_path, fake_uvicorn, capsys, host):
    code, out = _serve(["--host", host, "--app-dir", str(tmp_path / "app")], capsys)
    assert code == 0
    warning = out.err.strip()
    assert warning.startswith("kelly: warning: listening on ")
    assert "other computers can reach this Kelly" in warning and "there are no accounts" in warning
    assert "127.0.0.1" in warning  # says how to keep it private
    _, kw = fake_uvicorn[-1]
    assert kw["host"] == host and kw["access_log"] is False


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_addresses_do_not_warn(tmp_path, fake_uvicorn, capsys, host):
    code, out = _serve(["--host", host, "--app-dir", str(tmp_path / "app")], capsys)
    assert code == 0 and out.err == ""


@pytest.mark.parametrize("bad", ["evil.example:80", "http://x", "a/b", "x y", "a@b"])
def test_allow_host_takes_only_host_names(tmp_path, fake_uvicorn, capsys, bad):
    code, out = _serve(["--allow-host", bad, "--app-dir", str(tmp_path / "app")], capsys)
    assert code == 2 and "--allow-host" in out.err and not fake_uvicorn


def test_osc_biometrics_listen_on_loopback_unless_allowed_with_a_warning():
    pytest.importorskip("pythonosc")
    from kelly.emotion.bio import DEFAULT_OSC_URL, OscBioListener

    assert DEFAULT_OSC_URL.startswith("osc://127.0.0.1:")
    with pytest.raises(InputError, match="refusing to listen for OSC on 0.0.0.0"):
        OscBioListener("osc://0.0.0.0:0")
    with pytest.warns(RuntimeWarning):
        listener = OscBioListener("osc://0.0.0.0:0", allow_remote=True)
        listener.start()
    listener.stop()
    with OscBioListener("osc://127.0.0.1:0") as local:
        assert local.host == "127.0.0.1"


# --------------------------------------------------------------------------- logs
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(port: int, method: str, target: str, body: bytes = b"", headers: dict | None = None) -> bytes:
    """One raw HTTP/1.1 request (so the query string and Host are exactly what we say)."""
    head = {"Host": f"127.0.0.1:{port}", "Connection": "close", "Content-Length": str(len(body))}
    head.update(headers or {})
    req = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(req.encode("latin-1") + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_a_real_kelly_serve_logs_none_of_what_the_person_sent(tmp_path):
    """uvicorn's logs (access and error), the app's log and anything printed: no sentinel anywhere."""
    pytest.importorskip("uvicorn")
    import json

    port = _free_port()
    env = dict(os.environ, KELLY_APP_DIR=str(tmp_path / "app"), KELLY_SENTINEL_ENV=SENTINEL + "-env",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "kelly", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if b" 200 " in _http(port, "GET", "/api/health").split(b"\r\n")[0]:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "kelly serve did not start"
            time.sleep(0.2)
        compose = json.dumps({"text": f"I feel {SENTINEL} and lonely", "bars": 2}).encode()
        answer = _http(port, "POST", "/api/compose", compose, {"Content-Type": "application/json"})
        cid = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
        _http(port, "GET", f"/api/compositions?q={SENTINEL}")
        _http(port, "PATCH", f"/api/compositions/{cid}", json.dumps({"notes": SENTINEL}).encode(),
              {"Content-Type": "application/json"})
        _http(port, "POST", "/api/live/text", json.dumps({"text": SENTINEL}).encode(),
              {"Content-Type": "application/json"})
        _http(port, "GET", f"/api/compositions/{SENTINEL}")
        _http(port, "GET", f"/api/nothing/{SENTINEL}?{SENTINEL}=1")
        _http(port, "GET", f"/api/compositions?offset={SENTINEL}")
        _http(port, "GET", "/api/health", headers={"Host": f"{SENTINEL}.example"})
        _http(port, "POST", "/api/compose", b'{"text": "' + SENTINEL.encode() + b'" ',
              {"Content-Type": "application/json"})  # broken JSON quoting the text
        boundary = "b0undary"
        upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{SENTINEL}.mid\"\r\n"
                  f"Content-Type: audio/midi\r\n\r\nMThd{SENTINEL}\r\n--{boundary}--\r\n").encode()
        _http(port, "POST", "/api/analyze", upload, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # not HTTP at all
            s.sendall(f"{SENTINEL} garbage\r\n\r\n".encode())
            s.recv(1024)
    finally:
        proc.terminate()
        try:
            output = proc.communicate(timeout=30)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0].decode("utf-8", "replace")
    assert "Kelly is at http://127.0.0.1:" in output
    assert SENTINEL not in output, output[-2000:]
    assert "Traceback" not in output


def test_unexpected_errors_are_logged_as_where_not_what(tmp_path, caplog, monkeypatch):
    """A route failing with the person's words in its message: the page and the log get neither."""
    from fastapi.testclient import TestClient

    from kelly.app.library import Library
    from kelly.app.server import create_app

    def boom(self, **kw):
        raise ValueError(f"could not search for {kw.get('text')!r}")

    monkeypatch.setattr(Library, "search", boom)
    c = TestClient(create_app(tmp_path / "app"), base_url="http://127.0.0.1")
    with caplog.at_level(logging.DEBUG):
        r = c.get("/api/compositions", params={"q": SENTINEL})
    assert r.status_code == 500 and SENTINEL not in r.text
    server_side = "\n".join(rec.getMessage() for rec in caplog.records
                            if not rec.name.startswith(("httpx", "httpcore")))  # the test's own client logs its URLs
    assert "ValueError at " in server_side and "boom" in server_side  # enough to find the bug
    assert SENTINEL not in server_side
    assert not any(rec.exc_info for rec in caplog.records)  # no traceback text (which quotes the message)


def test_the_engine_socket_logs_where_not_what(tmp_path, caplog):
    """An engine call that fails quoting the text: the client hears why; the log keeps only where."""
    from kelly.contracts import SetText
    from kelly.ipc.client import KellyClient
    from kelly.ipc.server import EngineServer

    class Engine:
        def set_text(self, text):
            raise RuntimeError(f"cannot read {text!r}")

        def __getattr__(self, name):
            raise AttributeError(name)

    import tempfile

    with tempfile.TemporaryDirectory(prefix="kl-", dir="/tmp") as d:
        with EngineServer(Engine(), Path(d) / "e.sock") as server, KellyClient(server.path) as c:
            with caplog.at_level(logging.DEBUG):
                answer = c.request(SetText(text=SENTINEL, id=1))
    assert answer.type == "Error"
    assert "RuntimeError at " in caplog.text and SENTINEL not in caplog.text


def test_error_messages_echo_user_input_only_in_bounded_form(tmp_path):
    """What a client sent comes back at most a few dozen characters long, never whole."""
    from fastapi.testclient import TestClient

    from kelly.app.server import create_app

    c = TestClient(create_app(tmp_path / "app"), base_url="http://127.0.0.1")
    long = SENTINEL * 200
    for r in (c.get(f"/api/compositions/{long}"), c.get(f"/api/compositions/{'a' * 32}/files/{long}"),
              c.post(f"/api/models/{long}/enabled", json={"enabled": True}), c.post(f"/api/models/{long}/validate"),
              c.get(f"/api/training/{long}"), c.post("/api/compose", json={"text": long * 3}),
              c.post("/api/training", json={"model": long[:40]})):
        message = r.json()["error"]["message"]
        assert len(message) < 400 and message.count(SENTINEL) <= 2, message
