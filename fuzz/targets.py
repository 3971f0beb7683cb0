"""Fuzz targets: raw bytes → one of Kelly's readers. Run by :mod:`fuzz.run`.

A target returns normally or raises :class:`kelly.errors.KellyError`; the harness treats
anything else as a finding. Targets that read paths get the bytes in a temporary file, so
that the real path-level checks (regular file, size caps) run too. Readers are imported
inside the targets so that ``main`` can import them under atheris's instrumentation.

``python -m fuzz.targets NAME CORPUS [libFuzzer flags]`` fuzzes one target.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

from kelly.errors import KellyError

_TMP: list[str] = []


def _tmp() -> str:
    """This process's scratch folder, made on first use (importing the targets, as ``fuzz.run`` does, makes none)."""
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="kelly-fuzz-"))
    return _TMP[0]


def _as_file(data: bytes, suffix: str) -> str:
    path = os.path.join(_tmp(), "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def text(data: bytes) -> None:
    """Any bytes as text (invalid UTF-8 replaced, as `kelly feel` does)."""
    from kelly.emotion.text import read_text

    state = read_text(data.decode("utf-8", "replace"))
    assert -1 <= state.valence <= 1 and 0 <= state.arousal <= 1 and 0 <= state.confidence <= 1


def midi(data: bytes) -> None:
    from kelly.song import read_midi_bytes

    read_midi_bytes(data)


def midi_chain(data: bytes) -> None:
    """A MIDI file through everything that reads one: analysis and groove extraction."""
    from kelly.groove.extract import extract_groove
    from kelly.song import read_midi_bytes
    from kelly.theory.analysis import analyze_song

    song = read_midi_bytes(data)
    analyze_song(song)
    extract_groove(song)


def intent(data: bytes) -> None:
    from kelly.fileio import read_json
    from kelly.intent.schema import check_document

    check_document(read_json(_as_file(data, ".json"), what="intent file"))


def groove_template(data: bytes) -> None:
    from kelly.groove.templates import load_template

    load_template(_as_file(data, ".json"))


def rtneural(data: bytes) -> None:
    from kelly.ml.runtime import load_model

    load_model(_as_file(data, ".json"))


def onnx(data: bytes) -> None:
    """An ONNX file for the dynamics network: parsed and checked before anything would run it."""
    from kelly.ml.onnx_graphs import check_onnx_bytes

    check_onnx_bytes(data, key="dynamicsengine", name="fuzz.onnx")


def csv(data: bytes) -> None:
    """`kelly runtime --input` rows for a 32-wide model."""
    from kelly.ml.runtime import read_csv_file

    read_csv_file(_as_file(data, ".csv"), 32)


def lexicon(data: bytes) -> None:
    """The table format; inputs without gzip's magic are compressed first, so the fuzzer
    reaches the structure inside (random bytes rarely survive inflation)."""
    import gzip

    from kelly.emotion.lexicon import decode_table

    decode_table(data if data[:2] == b"\x1f\x8b" else gzip.compress(data, mtime=0))


def socket_frame(data: bytes) -> None:
    """A frame from a socket client: the 4-byte length header, then the body as a request."""
    from kelly.ipc.framing import decode_request, frame_length

    if len(data) >= 4:
        frame_length(data[:4])
    decode_request(data[4:] if len(data) >= 4 else data)


def tokens(data: bytes) -> None:
    """Any compound-token rows the transformer could emit, decoded (repaired, never raising) to MIDI bytes."""
    import numpy as np

    from kelly.transformer.tokens import FAMILIES, CompoundTokenizer

    width = len(FAMILIES)
    rows = np.frombuffer(data[: (len(data) // width) * width], dtype=np.uint8).astype(np.int64).reshape(-1, width)
    song = CompoundTokenizer().decode(rows[:2000])
    song.to_bytes()


def train_config(data: bytes) -> None:
    """A TOML config for the DDSP voice's and the transformer's trainers (the section [tiny])."""
    from kelly.ddsp.train import TrainSettings as DdspSettings
    from kelly.ml.train.sections import load_section
    from kelly.transformer.train import TrainSettings as TransformerSettings

    path = _as_file(data, ".toml")
    for cls, what in ((DdspSettings, "ddsp"), (TransformerSettings, "transformer")):
        try:
            load_section(cls, "tiny", path, what=what)
        except KellyError:
            pass  # a clear refusal; the other trainer still reads the file


def ddsp_voice(data: bytes) -> None:
    """A DDSP voice's decoder JSON: checked by the runtime's reader and the decoder's own shape check."""
    from kelly.ddsp.decoder import NumpyDecoder

    NumpyDecoder(data, name="fuzz-ddsp.json")


# --------------------------------------------------------------------------- the web app (kelly serve)
#: The app target's routes, in the order the input's first byte picks them (``data[0] % len(APP_ROUTES)``).
#: Each is ``name: (method, path template, what the rest of the input becomes)``; ``{p}`` is the input's
#: first line (URL-encoded into the path), the body is what follows that line.
APP_ROUTES = {
    "compose": ("POST", "/api/compose", "json"),
    "library_update": ("PATCH", "/api/compositions/{p}", "json"),
    "library_get": ("GET", "/api/compositions/{p}", "none"),
    "library_delete": ("DELETE", "/api/compositions/{p}", "none"),
    "library_export": ("GET", "/api/compositions/{p}/export", "none"),
    "library_file": ("GET", "/api/compositions/{p}/files/{b}", "none"),
    "library_search": ("GET", "/api/compositions?{q}", "none"),
    "analyze": ("POST", "/api/analyze", "upload"),
    "analyze_raw": ("POST", "/api/analyze", "multipart"),
    "model_toggle": ("POST", "/api/models/{p}/enabled", "json"),
    "model_validate": ("POST", "/api/models/{p}/validate", "none"),
    "model_export": ("GET", "/api/models/{p}/export", "none"),
    "train_start": ("POST", "/api/training", "json"),
    "train_get": ("GET", "/api/training/{p}", "none"),
    "train_cancel": ("POST", "/api/training/{p}/cancel", "none"),
    "train_resume": ("POST", "/api/training/{p}/resume", "json"),
    "train_events": ("GET", "/api/training/{p}/events", "none"),
    "live_emotion": ("POST", "/api/live/emotion", "json"),
    "live_text": ("POST", "/api/live/text", "json"),
    "live_model": ("POST", "/api/live/models/{p}", "json"),
    "live_state": ("GET", "/api/live", "none"),
    "any_path": ("*", "/{raw}", "none"),
    "guard": ("GET", "/api/health", "headers"),
}
#: Statuses every route may answer: success, not found, busy, too large, a refused value.
APP_STATUSES = frozenset({200, 201, 204, 404, 409, 413, 422})
#: And the ones that only some routes may: the Live routes answer 400 when no engine is running (the
#: documented "start one with kelly engine"); a path of the fuzzer's choosing may name a route with another
#: method (405) or the Live events (400); the guard answers 403 and 421 (kelly.app.guard).
APP_EXTRA_STATUSES = {"live_emotion": {400}, "live_text": {400}, "live_model": {400}, "any_path": {400, 405},
                      "guard": {403, 421}}
#: The most bars a valid compose request is sent with (see :class:`AppHarness`).
COMPOSE_BARS = {"rules": 16, "hybrid": 16, "transformer": 4}
_METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS")


class AppFinding(AssertionError):
    """The app broke its contract: a 500, a status it must not answer, a non-JSON error, a traceback."""


class AppHarness:
    """One ``kelly serve`` app (``create_app``) driven in-process over raw ASGI, and the checks on its answers.

    Why raw ASGI: it is the fastest way in (no sockets, no test client's thread portal; about 1 ms a
    request), and it lets the fuzzer choose what a real server would pass on: any path bytes, query
    string, ``Content-Length`` (also a false one), a chunked body, ``Host``, ``Origin``. Header values
    lose CR, LF and NUL, which an HTTP server refuses before the app sees them.

    The app is real, with three settings that keep the fuzzer harmless and bounded:

    * its folder (library, training runs) is a temporary one;
    * ``engine_socket`` names a socket nobody listens on, so the Live routes answer their documented
      400 ("start one with kelly engine") and the live state says it is not connected;
    * the trainer's interpreter is ``true`` (``trainer.python``), so ``POST /api/training`` and
      resume run everything up to the child process, which then exits at once instead of running
      ``kelly train`` for minutes: the run goes running → finished and one-at-a-time (409) still holds.

    A valid compose request composes real music with the real code and keeps it in the library.
    What it costs grows with ``bars`` (up to 256: 0.33 s for the rules, 41 s for the transformer on
    this machine), so a body that validates as a :class:`kelly.contracts.ComposeRequest` is sent
    with ``bars`` cut to :data:`COMPOSE_BARS` (everything else as the fuzzer wrote it); bodies that
    do not validate are sent byte for byte, so validation itself, ``bars`` included, is fuzzed.

    A path parameter ``@N`` (N digits) stands for the N-th kept composition (or training run), so
    that the routes on one thing reach real ones; the ids are random, and a fuzzer would never guess one.
    """

    def __init__(self) -> None:
        import asyncio
        import hashlib
        import shutil

        from kelly.app.server import STATIC, create_app

        self.folder = os.path.join(_tmp(), "app")
        self.app = create_app(self.folder, engine_socket=os.path.join(_tmp(), "no-engine.sock"))
        state = self.app.state.kelly
        state.trainer.python = shutil.which("true") or "/bin/true"
        self.state = state
        self.loop = asyncio.new_event_loop()
        self.static = {hashlib.sha256(p.read_bytes()).hexdigest() for p in STATIC.iterdir() if p.is_file()}
        self.calls = 0

    # ------------------------------------------------------------------ one request
    def request(self, method: str, raw_path: bytes, query: bytes = b"", headers: list | None = None,
                body: bytes = b"", chunked: bool = False) -> tuple[int, dict, bytes]:
        """Send one request through the ASGI app as an HTTP server would; returns (status, headers, body)."""
        from urllib.parse import unquote_to_bytes

        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "root_path": "", "raw_path": raw_path,
                 "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"), "query_string": query,
                 "headers": headers if headers is not None else [(b"host", b"127.0.0.1:8765")],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8765)}
        if not chunked:
            scope["headers"] = scope["headers"] + [(b"content-length", str(len(body)).encode())]
        pieces = [body[i:i + 4096] for i in range(0, len(body), 4096)] if chunked else [body]
        pieces = pieces or [b""]
        out: dict = {"status": None, "headers": {}, "body": []}
        import asyncio

        done = asyncio.Event()

        async def receive() -> dict:
            if pieces:
                chunk = pieces.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(pieces)}
            await done.wait()  # a real client stays connected until the answer has been sent
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out["body"].append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()

        async def call() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                done.set()

        self.loop.run_until_complete(call())
        if out["status"] is None:
            raise AppFinding(f"{method} {raw_path[:80]!r}: the app answered nothing")
        return out["status"], out["headers"], b"".join(out["body"])

    # ------------------------------------------------------------------ the checks
    def check(self, route: str, method: str, status: int, headers: dict, body: bytes, *,
              ranged: bool = False) -> None:
        """Raise :class:`AppFinding` unless the answer keeps the app's contract: a status the route may answer
        (a request with a ``Range`` header may also get 400 for a malformed one and 416 for one past the
        file's end), every error the app's JSON shape, no traceback, JSON where JSON is promised."""
        import json

        where = f"{route}: {method} answered {status}"
        allowed = APP_STATUSES | APP_EXTRA_STATUSES.get(route, set()) | ({400, 416} if ranged else set())
        if status in (307, 308):  # a path with a trailing slash is sent to the one without, on this server only
            target = headers.get("location", "")
            if not (target.startswith("http://127.0.0.1:8765/") or target.startswith("/")):
                raise AppFinding(f"{where}, redirected elsewhere: {target[:200]!r}")
            return
        if status >= 500 or status not in allowed and status >= 300:
            raise AppFinding(f"{where}: {body[:300]!r}")
        if b"Traceback (most recent call last)" in body and status >= 400:
            raise AppFinding(f"{where} with a traceback: {body[:300]!r}")
        if method == "HEAD" or status == 204:
            return
        if status >= 400:
            try:
                doc = json.loads(body)
            except ValueError:
                raise AppFinding(f"{where}, not JSON: {body[:200]!r}") from None
            err = doc.get("error") if isinstance(doc, dict) else None
            if set(doc) != {"error"} or not isinstance(err, dict) or set(err) != {"status", "message"} \
                    or err["status"] != status or not isinstance(err["message"], str) or not err["message"]:
                raise AppFinding(f"{where}, not the app's error shape: {body[:200]!r}")
        elif headers.get("content-type", "").startswith("application/json"):
            try:
                json.loads(body)
            except ValueError:
                raise AppFinding(f"{where}, JSON promised but not given: {body[:200]!r}") from None

    def check_library(self) -> None:
        """The library's database passes SQLite's integrity check, every file it lists exists, the server answers."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.state.library.path}?mode=ro", uri=True)
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            db.close()
        if result != "ok":
            raise AppFinding(f"the library's database is damaged: {result}")
        for c in self.state.library.search(limit=500):
            for name in c.files:
                if not self.state.library.file_path(c.id, name).is_file():
                    raise AppFinding(f"composition {c.id} lists {name}, which is missing")
        status, headers, body = self.request("GET", b"/api/health")
        if status != 200:
            raise AppFinding(f"the server stopped answering: health {status} {body[:200]!r}")

    # ------------------------------------------------------------------ bytes → request
    def _ref(self, text: str, kind: str) -> str:
        """``@N`` → the N-th kept composition's (or training run's) id; anything else as it is.

        For a WAV (``kind`` "render") only one-bar compositions count: the app renders a WAV the first
        time it is asked for, and the DDSP voice takes 1.5–2 s for one bar here (6 s for two on a busy
        machine), past the fuzzer's timeout; MusicXML and the MIDI are quick at any length.
        """
        if len(text) < 2 or text[0] != "@" or not text[1:].isdigit():
            return text
        if kind == "run":
            ids = sorted(self.state.trainer.runs)
        else:
            ids = [c.id for c in self.state.library.search(limit=100)
                   if kind != "render" or c.parameters.get("bars", 0) <= 1]
        return ids[int(text[1:]) % len(ids)] if ids else text

    def _compose_body(self, body: bytes) -> bytes:
        """A body that validates is sent with its bars cut to :data:`COMPOSE_BARS`; any other byte for byte."""
        import json

        from kelly.contracts import ComposeRequest

        try:
            req = ComposeRequest.model_validate_json(body)
        except ValueError:
            return body
        doc = req.model_dump(exclude_unset=True)
        doc["bars"] = min(req.bars, COMPOSE_BARS[req.composer])
        return json.dumps(doc).encode()

    def fuzz(self, data: bytes) -> None:
        """One input: ``data[0]`` picks the route (and a way of sending), the first line is the path
        parameter or query, the rest is the body (or a second path parameter)."""
        from urllib.parse import quote_from_bytes

        if not data:
            return
        names = list(APP_ROUTES)
        route = names[data[0] % len(names)]
        # how it is sent: 1 no content type; 2 a false Content-Length; 3 chunked; 4 with a Range header (the
        # input's last line), as browsers send for audio; 0 and 5+ plainly
        how = data[0] // len(names)
        method, template, kind = APP_ROUTES[route]
        rest, range_value = data[1:], b""
        if how == 4:
            rest, _, range_value = rest.rpartition(b"\n")
        param, _, body = rest.partition(b"\n")
        ref_kind = "run" if route.startswith("train") else \
            "render" if route == "library_file" and body[:200].endswith(b".wav") else "composition"
        p = quote_from_bytes(self._ref(param.decode("utf-8", "surrogateescape"), ref_kind)
                             .encode("utf-8", "surrogateescape"), safe="").encode()
        query = b""
        headers = [(b"host", b"127.0.0.1:8765")]
        if route == "library_search":
            raw_path, query = b"/api/compositions", quote_from_bytes(param, safe="&=%+;,/:@!$'()*").encode()
        elif route == "any_path":
            method = _METHODS[body[0] % len(_METHODS)] if body else "GET"
            raw_path = b"/" + quote_from_bytes(param, safe="/%?&=;:@!$'()*+,").encode()
            raw_path, _, query = raw_path.partition(b"?")
        elif route == "library_file":
            raw_path = template.replace("{p}", p.decode()).replace("{b}", quote_from_bytes(body[:200], safe="")).encode()
        else:
            raw_path = template.replace("{p}", p.decode()).encode()
        send = b""
        if kind == "json":
            send = self._compose_body(body) if route == "compose" else body
            if how != 1:
                headers.append((b"content-type", b"application/json"))
        elif kind == "upload":
            boundary = b"kellyfuzzboundary7e3f"
            name = param.replace(b'"', b"").replace(b"\r", b"").replace(b"\n", b"")[:200]
            send = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name +
                    b'"\r\nContent-Type: audio/midi\r\n\r\n' + body + b"\r\n--" + boundary + b"--\r\n")
            headers.append((b"content-type", b"multipart/form-data; boundary=" + boundary))
        elif kind == "multipart":
            send = body
            headers.append((b"content-type", b"multipart/form-data; boundary=" + _header_value(param)))
        elif kind == "headers":
            host, _, rest = body.partition(b"\n")
            origin, _, site = rest.partition(b"\n")
            headers = [(b"host", _header_value(host)), (b"origin", _header_value(origin)),
                       (b"sec-fetch-site", _header_value(site))][: 1 + (param[:1] or b"\0")[0] % 3]
        if how == 2:
            headers.append((b"content-length", _header_value(param[:24])))
        if how == 4:
            headers.append((b"range", _header_value(range_value)))
        status, answer_headers, answer = self.request(method, raw_path, query, headers, send,
                                                      chunked=how == 3 or how == 2)
        self.check(route, method, status, answer_headers, answer, ranged=how == 4)
        if route == "any_path" and status == 200 and method == "GET" and raw_path.startswith(b"/static"):
            import hashlib

            if hashlib.sha256(answer).hexdigest() not in self.static:
                raise AppFinding(f"GET {raw_path[:120]!r} served something that is not one of the page's files")
        self.calls += 1
        if self.calls % 250 == 0 or (route in ("library_delete", "library_update", "compose") and status < 300
                                     and self.calls % 25 == 0):
            self.check_library()


def _header_value(raw: bytes) -> bytes:
    """Bytes as an HTTP server would pass them on in a header: without CR, LF and NUL, trimmed."""
    return raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"").strip()[:1000]


_APP: AppHarness | None = None


def app(data: bytes) -> None:
    """The web app (``kelly serve``): every JSON body route, the MIDI upload, path and query parameters, the
    guard's headers; every answer checked by :meth:`AppHarness.check` (one app per process, made once)."""
    global _APP
    if _APP is None:
        _APP = AppHarness()
    try:
        _APP.fuzz(data)
    except KellyError as exc:  # the app turns every KellyError into an answer; one escaping it is a bug
        raise AppFinding(f"a {type(exc).__name__} escaped the app: {exc}") from exc


TARGETS = {"text": text, "midi": midi, "midi_chain": midi_chain, "intent": intent, "groove_template": groove_template,
           "rtneural": rtneural, "onnx": onnx, "csv": csv, "lexicon": lexicon, "socket_frame": socket_frame,
           "tokens": tokens, "train_config": train_config, "ddsp_voice": ddsp_voice, "app": app}


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]
    with atheris.instrument_imports(include=["kelly"]):
        try:  # the first call imports the reader's modules, instrumented for coverage
            target(b"")
        except Exception:  # noqa: BLE001 - only the imports matter here
            pass

    def one(data: bytes) -> None:
        try:
            target(data)
        except KellyError:
            pass

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
