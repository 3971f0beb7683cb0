"""The companion web app's server (``kelly serve``): FastAPI over Kelly, and the page it serves.

Every route is a thin layer over what the command line already does: composing goes
through :func:`kelly.commands.compose.resolve_emotions` and the same composers and
networks, analysis through :func:`kelly.theory.analysis.analyze_song`, audio through
:func:`kelly.render.audio.render_song` or the DDSP voice. What the person makes is kept
in the library (:mod:`kelly.app.library`, SQLite in the app folder).

Safety by default: the server binds to loopback (``kelly serve`` warns when told
otherwise); request bodies are capped (:data:`MAX_BODY_BYTES`, uploads
:data:`MAX_UPLOAD_BYTES`) before they are read; ids are 32 hex digits and file names come
from a fixed list, so no path is built from what a client sends; every error is JSON
``{"error": {"status", "message"}}`` with a proper status code.
"""


import http
import json
import logging
import re
import threading
from argparse import Namespace
from pathlib import Path
from typing import Any, Iterable

from kelly.app.paths import confined
from kelly.errors import InputError, KellyError
from kelly.fileio import scratch_dir

STATIC = Path(__file__).with_name("static")
MAX_BODY_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 8 << 20
#: Compositions made at once; more wait their turn. Each request builds its own processor and composer
#: (nothing is shared, and the same seed gives the same MIDI whatever runs beside it), so this bounds only the
#: CPU and memory a burst can take. More than one, so that a quick piece is not held behind a long one (a
#: 256-bar transformer piece takes about 40 s here).
COMPOSE_AT_ONCE = 2
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
log = logging.getLogger("kelly.app")


def body_limit(path: str) -> int:
    """The most bytes a request to ``path`` may carry: an upload for /api/analyze, else a JSON body."""
    return MAX_UPLOAD_BYTES + 64 * 1024 if path == "/api/analyze" else MAX_BODY_BYTES


def _roll(song, explanation=None) -> dict:
    """What the page draws: every track's notes, the chords and sections, in ticks."""
    chords = []
    if explanation is not None:
        beat = max(1, song.ppq * 4 // song.time_signature[1])
        chords = [[c.start_tick(song.bar_ticks, beat), c.symbol] for c in explanation.progression.chords]
    at_start = [bpm for tick, bpm in song.tempos if tick == 0]
    tempo = at_start[-1] if at_start else 120.0
    end = song.end_tick()
    bars = explanation.bars if explanation is not None else (-(-end // song.bar_ticks) if end else 0)
    return {"ppq": song.ppq, "bar_ticks": song.bar_ticks, "bars": bars,
            "tempo_bpm": tempo, "time_signature": list(song.time_signature),
            "tracks": [{"name": t.name, "role": getattr(t.role, "value", None), "program": t.program,
                        "is_drum": t.is_drum, "notes": [[n.start, n.pitch, n.duration, n.velocity] for n in t.notes]}
                       for t in song.tracks if t.notes],
            "chords": chords, "sections": [[tick, name] for tick, name in song.markers]}


class _State:
    """What the routes share: the library, the model switches, the slots for composing (:data:`COMPOSE_AT_ONCE`)."""

    def __init__(self, folder: Path, models_dir: str | None, engine_socket: str | None = None) -> None:
        from kelly.app.library import Library

        self.folder = folder
        self.library = Library(folder)
        self.models_dir = models_dir
        self.engine_socket = engine_socket
        self.disabled: set[str] = set()
        self.compose_slots = threading.BoundedSemaphore(COMPOSE_AT_ONCE)
        from kelly.app.training import Trainer

        self.trainer = Trainer(folder)


def create_app(folder: str | Path | None = None, *, models_dir: str | None = None, engine_socket: str | None = None,
               allowed_hosts: Iterable[str] | None = ()):
    """The FastAPI application, its library in ``folder`` (default :func:`kelly.app.paths.app_dir`).

    ``allowed_hosts``: the host names (besides loopback's, always accepted) that a request's
    ``Host`` header may carry; None accepts any. The default serves only requests addressed
    to this computer's loopback names, which is what defeats DNS rebinding (see
    :mod:`kelly.app.guard`).
    """
    from fastapi import FastAPI, File, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from kelly import __version__
    from kelly.app.library import NotFound
    from kelly.app.paths import app_dir
    from kelly.errors import FileFormatError
    from kelly.app.training import Busy
    from kelly.contracts import (ComposeRequest, LibraryUpdate, LiveEmotionRequest, LiveText, ModelToggle,
                                 TrainRequest, TrainResume)

    import contextlib

    state = _State(app_dir(folder), models_dir, engine_socket)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        state.trainer.shutdown()  # a training child stops with the server; its checkpoints let it resume

    app = FastAPI(title="Kelly", version=__version__, lifespan=lifespan,
                  description="Kelly's companion app: compose from a feeling, listen, keep, analyse, train and "
                              "manage models.")
    app.state.kelly = state
    from kelly.app.guard import RequestGuard, redacted_traceback

    app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts, body_limit=body_limit)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)

    @app.exception_handler(NotFound)
    async def _not_found(_req, exc):
        return error(404, str(exc))

    @app.exception_handler(Busy)
    async def _busy(_req, exc):
        return error(409, str(exc))

    @app.exception_handler(KellyError)
    async def _kelly(_req, exc):
        # the request's own content was wrong (a bad value, a corrupt upload): 422; anything else Kelly refused: 400
        return error(422 if isinstance(exc, (InputError, FileFormatError)) else 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req, exc):
        # the framework's own 400s are bodies it could not parse (a broken multipart upload): bad input, 422
        return error(422 if exc.status_code == 400 else exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(req, exc):  # never a traceback to the page; the log keeps where, not what
        log.error("unexpected error in %s %s: %s", req.method, req.url.path[:200], redacted_traceback(exc))
        return error(500, f"Kelly hit an unexpected error ({type(exc).__name__}); the server log has the details")

    # ----------------------------------------------------------------------- the page
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    def health() -> dict:
        return {"ok": True, "version": __version__}

    @app.get("/api/emotions")
    def emotions() -> dict:
        from kelly.emotion.thesaurus import load_thesaurus

        return {"emotions": [{"name": e.name, "family": e.family, "valence": e.valence, "arousal": e.arousal,
                              "dominance": e.dominance} for e in load_thesaurus().entries]}

    # ----------------------------------------------------------------------- compose
    @app.post("/api/compose")
    def compose(req: ComposeRequest) -> dict:
        return _compose(state, req)

    # ----------------------------------------------------------------------- library
    @app.get("/api/compositions")
    def search(q: str | None = None, valence: float | None = None, arousal: float | None = None,
               rating_min: int | None = None, limit: int = 50, offset: int = 0) -> dict:
        items = state.library.search(text=q, valence=valence, arousal=arousal, rating_min=rating_min,
                                     limit=limit, offset=offset)
        return {"items": [c.to_dict() for c in items]}

    @app.get("/api/compositions/{cid}")
    def get_one(cid: str) -> dict:
        return _view(state, _get(state, cid))

    @app.patch("/api/compositions/{cid}")
    def update(cid: str, body: LibraryUpdate) -> dict:
        _get(state, cid)
        changes = body.model_dump(exclude_unset=True)
        return state.library.update(cid, **changes).to_dict()

    @app.delete("/api/compositions/{cid}", status_code=204)
    def delete(cid: str):
        _get(state, cid)
        state.library.delete(cid)
        return Response(status_code=204)

    @app.get("/api/compositions/{cid}/export")
    def export(cid: str):
        c = _get(state, cid)
        return Response(state.library.export(cid), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="kelly-{_slug(c)}.zip"'})

    @app.get("/api/compositions/{cid}/files/{name}")
    def file(cid: str, name: str):
        c = _get(state, cid)
        if name not in FILE_TYPES:
            raise NotFound(f"no file {name[:40]!r}; a composition has {', '.join(FILE_TYPES)}")
        if name not in c.files:
            c = _make_file(state, c, name)
        return FileResponse(state.library.file_path(cid, name), media_type=FILE_TYPES[name],
                            filename=f"kelly-{_slug(c)}{name[4:]}")

    # ----------------------------------------------------------------------- analyse
    @app.post("/api/analyze")
    async def analyze(file: UploadFile = File(...)) -> dict:
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise InputError(f"the MIDI file is larger than {MAX_UPLOAD_BYTES >> 20} MB")
        return _analyze(data, file.filename or "upload.mid")

    # ----------------------------------------------------------------------- models
    @app.get("/api/models")
    def models() -> dict:
        return {"models": _models(state)}

    @app.post("/api/models/{name}/enabled")
    def toggle(name: str, body: ModelToggle) -> dict:
        from kelly.ml.specs import SPECS, get_spec

        try:
            key = get_spec(name).key
        except KellyError:
            raise NotFound(f"no network {name[:40]!r}; the switchable ones are "
                           f"{', '.join(s.name for s in SPECS.values())}") from None
        (state.disabled.discard if body.enabled else state.disabled.add)(key)
        return next(m for m in _models(state) if m["key"] == key)

    @app.post("/api/models/{key}/validate")
    def validate_model(key: str) -> dict:
        checks = _validate(state, _model_row(state, key))
        return {"ok": all(c["ok"] for c in checks), "checks": checks}

    @app.get("/api/models/{key}/export")
    def export_model(key: str):
        row = _model_row(state, key)
        return Response(_model_zip(row), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="kelly-{row["key"]}.zip"'})

    # ----------------------------------------------------------------------- training
    def run_of(rid: str):
        run = state.trainer.get(rid) if ID_PATTERN.match(rid or "") else None
        if run is None:
            raise NotFound(f"no training run {rid[:40]!r}")
        return run

    @app.get("/api/training")
    def runs() -> dict:
        items = sorted(state.trainer.runs.values(), key=lambda r: r.started, reverse=True)
        running = state.trainer.running()
        return {"runs": [r.to_dict() for r in items], "running": running.to_dict() if running else None}

    @app.post("/api/training", status_code=201)
    def start_training(body: TrainRequest) -> dict:
        return state.trainer.start(body.model, body.data, body.epochs).to_dict()

    @app.get("/api/training/{rid}")
    def training_run(rid: str) -> dict:
        return run_of(rid).to_dict()

    @app.post("/api/training/{rid}/cancel")
    def cancel_training(rid: str) -> dict:
        return state.trainer.cancel(run_of(rid).id).to_dict()

    @app.post("/api/training/{rid}/resume")
    def resume_training(rid: str, body: TrainResume) -> dict:
        return state.trainer.resume(run_of(rid).id, body.epochs).to_dict()

    @app.get("/api/training/{rid}/events")
    def training_events(rid: str):
        """Server-sent events: the run each time it changes, until it stops running."""

        from fastapi.responses import StreamingResponse

        run = run_of(rid)

        def stream():
            version = -1
            current = run
            while True:
                if current.version != version:
                    version = current.version
                    yield f"data: {json.dumps(current.to_dict())}\n\n"
                    if current.status != "running":
                        return
                else:
                    yield ": keep-alive\n\n"
                current = state.trainer.wait_change(rid, version, timeout=5.0) or current

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ----------------------------------------------------------------------- live (a running kelly engine)
    def engine():
        """A connection to the engine at the app's socket (``--engine-socket``, else the default one)."""
        from kelly.ipc.client import KellyClient

        return KellyClient(state.engine_socket, timeout=3.0)

    @app.get("/api/live")
    def live() -> dict:
        try:
            with engine() as client:
                return {"connected": True, "socket": str(client.path), "state": client.state().model_dump()}
        except KellyError as exc:
            return {"connected": False, "socket": str(state.engine_socket or ""), "state": None, "message": str(exc)}

    @app.post("/api/live/emotion")
    def live_emotion(body: LiveEmotionRequest) -> dict:
        with engine() as client:
            client.set_emotion(body.valence, body.arousal, body.dominance)
            return client.state().model_dump()

    @app.post("/api/live/text")
    def live_text(body: LiveText) -> dict:
        with engine() as client:
            read = client.set_text(body.text)
            return {"read": read, "state": client.state().model_dump()}

    @app.post("/api/live/models/{name}")
    def live_model(name: str, body: ModelToggle) -> dict:
        with engine() as client:
            client.set_model_enabled(name, body.enabled)
            return client.state().model_dump()

    @app.get("/api/live/events")
    def live_events():
        """Server-sent events: the engine's state four times a second while it answers."""
        import time

        from fastapi.responses import StreamingResponse

        client = engine()  # no engine: a 400 with "start one with kelly engine" before the stream opens

        def stream():
            try:
                while True:  # every quarter second: the engine's clock and bar move even when nothing else does
                    try:
                        now = client.state()
                    except KellyError as exc:
                        yield f"data: {json.dumps({'connected': False, 'message': str(exc)})}\n\n"
                        return
                    yield f"data: {json.dumps({'connected': True, 'state': now.model_dump()})}\n\n"
                    time.sleep(0.25)
            finally:
                client.close()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    app.add_middleware(_JsonErrors)
    return app


class _JsonErrors:
    """ASGI middleware: an error that Starlette answers by itself, past every exception handler, becomes JSON.

    Why: a file answer (a library file, the page's static files) reads the ``Range`` header
    itself and answers a malformed one with a plain-text 400 and an unsatisfiable one with an
    empty 416; the app promises ``{"error": {"status", "message"}}`` for every error (found by
    ``make fuzz``'s app target). The status and other headers (416's ``Content-Range``) stay.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        start: dict | None = None  # the start of an error answer that is not JSON, held back
        text = b""

        async def json_send(message: dict) -> None:
            nonlocal start, text
            if message["type"] == "http.response.start" and message["status"] >= 400:
                headers = message.get("headers", ())
                if not any(k.lower() == b"content-type" and v.startswith(b"application/json") for k, v in headers):
                    start = {**message, "headers": [(k, v) for k, v in headers
                                                    if k.lower() not in (b"content-type", b"content-length")]}
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            text = (text + message.get("body", b""))[:1000]  # Starlette's own error texts are one line
            if message.get("more_body"):
                return
            status = start["status"]
            said = text.decode("utf-8", "replace").strip()[:300] or http.HTTPStatus(status).phrase
            body = json.dumps({"error": {"status": status, "message": said}}).encode()
            await send({**start, "headers": start["headers"] + [(b"content-type", b"application/json"),
                                                                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, json_send)


FILE_TYPES = {"song.mid": "audio/midi", "song.json": "application/json", "song.wav": "audio/wav",
              "song-ddsp.wav": "audio/wav", "song.musicxml": "application/vnd.recordare.musicxml+xml"}


def _slug(c) -> str:
    from kelly.commands.compose import slugify

    return slugify(c.text or c.label or "kelly")[:40]


def _get(state: _State, cid: str):
    from kelly.app.library import NotFound

    c = state.library.get(cid) if ID_PATTERN.match(cid or "") else None
    if c is None:
        raise NotFound(f"no composition {cid[:40]!r} in the library")
    return c


def _files(cid: str) -> dict:
    base = f"/api/compositions/{cid}/files"
    out = {"mid": f"{base}/song.mid", "json": f"{base}/song.json", "musicxml": f"{base}/song.musicxml",
           "wav": f"{base}/song.wav", "wav_ddsp": None}
    from kelly.ddsp.voice import SHIPPED_VOICE

    if (SHIPPED_VOICE / "ddsp.json").is_file():
        out["wav_ddsp"] = f"{base}/song-ddsp.wav"
    return out


def _compose(state: _State, req) -> dict:
    """Compose as ``kelly compose`` does, keep it in the library, return what the page shows."""
    import hashlib

    from kelly.commands.compose import _network_hints, resolve_emotions
    from kelly.composer import ComposeOptions, check_options, get_composer
    from kelly.contracts import Files
    from kelly.fileio import json_bytes

    if not (req.text or "").strip() and req.valence is None and req.arousal is None and not req.journey:
        raise InputError("nothing to compose: write how you feel, or set a point on the pad")
    args = Namespace(text=[req.text or ""], valence=req.valence, arousal=req.arousal, dominance=req.dominance,
                     intensity=None, journey=",".join(req.journey) if req.journey else None, to=None,
                     no_ml=False, disable=sorted(state.disabled), models_dir=state.models_dir)
    opts = ComposeOptions(bars=req.bars, seed=req.seed, complexity=0.5 if req.complexity is None else req.complexity,
                          key=req.key or None, breaks=tuple(req.breaks or ()))
    check_options(opts)
    with state.compose_slots:
        text, path = resolve_emotions(args)
        hints, models = _network_hints(args, path[0], path)
        composer = get_composer(req.composer, models=models)
        result = composer.compose(path if len(path) > 1 else path[0], opts, controls=hints)
    ex = result.explanation
    ex.text = text or None
    midi = result.song.to_bytes()
    ex.files = Files(midi="song.mid", explanation="song.json", midi_sha256=hashlib.sha256(midi).hexdigest())
    e = path[0]
    c = state.library.add(text=text or None, label=ex.emotion.emotion, valence=e.valence, arousal=e.arousal,
                          dominance=e.dominance, composer=req.composer,
                          parameters={"bars": req.bars, "seed": req.seed, "key": ex.parameters.key,
                                      "tempo_bpm": ex.parameters.tempo_bpm, "journey": ex.journey},
                          files={"song.mid": midi, "song.json": json_bytes(ex.to_json())})
    return {"id": c.id, "composition": c.to_dict(), "explanation": ex.to_json(), "roll": _roll(result.song, ex),
            "files": _files(c.id)}


def _view(state: _State, c) -> dict:
    from kelly.contracts import Explanation
    from kelly.fileio import read_json
    from kelly.song import read_midi

    song = read_midi(state.library.file_path(c.id, "song.mid"))
    ex = None
    if "song.json" in c.files:
        doc = read_json(state.library.file_path(c.id, "song.json"), what="explanation")
        try:
            ex = Explanation.model_validate(doc)
        except ValueError:
            ex = None
    return {"id": c.id, "composition": c.to_dict(), "explanation": ex.to_json() if ex is not None else None,
            "roll": _roll(song, ex), "files": _files(c.id)}


def _make_file(state: _State, c, name: str):
    """Render a WAV (soundfont or DDSP) or notate MusicXML for a kept composition, and keep it too."""
    from kelly.song import read_midi

    midi = state.library.file_path(c.id, "song.mid")
    with scratch_dir("kelly-app-") as tmp:
        out = Path(tmp) / name
        if name == "song.musicxml":
            from kelly.render.score import write_musicxml

            write_musicxml(read_midi(midi), out, title=c.label or "Kelly")
        elif name == "song.wav":
            from kelly.render.audio import render_midi_file

            render_midi_file(midi, out)
        else:
            from kelly.commands.render import write_wav

            emotion = (c.valence, c.arousal, c.dominance)
            write_wav(midi, out, voice=("ddsp", None), emotion=emotion, seed=int(c.parameters.get("seed", 0)))
        return state.library.add_file(c.id, name, out.read_bytes())


def _analyze(data: bytes, filename: str) -> dict:
    from kelly.song import read_midi_bytes
    from kelly.theory.analysis import analyze_song, summary_lines

    song = read_midi_bytes(data, name=Path(filename).name[:120] or "upload.mid")
    result = analyze_song(song)
    doc = result.to_dict()
    return {"filename": filename[:200], "report": "\n".join(summary_lines(result)), "analysis": doc,
            "key": doc.get("key"), "tempo_bpm": doc.get("tempo_bpm"), "roll": _roll(song)}


def _model_row(state: _State, key: str) -> dict:
    from kelly.app.library import NotFound

    row = next((m for m in _models(state) if m["key"] == key.lower()), None)
    if row is None:
        raise NotFound(f"no model {key[:40]!r}; the models are {', '.join(m['key'] for m in _models(state))}")
    return row


def _validate(state: _State, row: dict) -> list[dict]:
    """The model's own validation: the networks' RTNeural/ONNX parity (``kelly validate``), the DDSP voice's
    (``kelly ddsp validate``), the transformer's file hashes against its metadata."""
    if row["kind"] == "network":
        # the processor loaded the weights (shapes and values checked by its reader) and the sidecar's hash
        # matches them, as `kelly models` reports
        return [{"check": "loads", "ok": bool(row["live"]),
                 "detail": "the network runs" if row["live"] else f"the fallback heuristic runs ({row['provenance']})"},
                {"check": "sidecar", "ok": row.get("sidecar") == "sha256 ok", "detail": row.get("sidecar") or "none"}]
    if row["kind"] == "ddsp":
        from kelly.ddsp.export import validate

        return [{"check": c.check, "ok": c.ok, "detail": c.detail} for c in validate(row["folder"])]
    import hashlib

    folder = Path(row["folder"])
    meta = json.loads((folder / "transformer.meta.json").read_text(encoding="utf-8"))
    out = []
    files = meta.get("files") if isinstance(meta, dict) else None
    for name, digest in sorted((files if isinstance(files, dict) else {}).items()):
        try:  # the metadata names the files; it must not be able to point outside the model's folder
            path = confined(folder, name)
        except KellyError:
            out.append({"check": str(name)[:80], "ok": False,
                        "detail": "not a file name inside the model's folder; refused"})
            continue
        ok = path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest
        out.append({"check": name, "ok": ok, "detail": "SHA-256 matches its metadata" if ok else
                    "missing, or changed since it was shipped"})
    return out


def _model_zip(row: dict) -> bytes:
    """The model's files (weights and sidecars) as a zip."""
    import io
    import zipfile

    folder = Path(row["folder"]) if row.get("folder") else None
    if folder is None:
        raise InputError(f"{row['name']} has no weights file to export (its fallback heuristic runs)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in row["files"]:
            try:  # names come from the model's metadata: only plain files inside its folder, no links
                path = confined(folder, name)
            except KellyError:
                raise InputError(f"{row['name']}: its metadata names {str(name)[:80]!r}, which is not a file "
                                 "inside the model's folder; refusing to export it") from None
            if path.is_file():
                z.write(path, name)
    return buf.getvalue()


def _models(state: _State) -> list[dict[str, Any]]:
    """The five networks (with the app's switches), the transformer and the DDSP voice, with provenance."""

    from kelly.commands.models import describe

    out = []
    for row in describe(state.models_dir):
        out.append({"name": row["model"], "key": row["key"], "kind": "network", "live": row["live"],
                    "enabled": row["key"] not in state.disabled, "trained": bool(row.get("trained")),
                    "provenance": row.get("provenance") or ("fallback heuristic" if not row["live"] else ""),
                    "metrics": {k: row[k] for k in ("metric", "validation", "validation_baseline", "test",
                                                    "test_baseline") if row.get(k) is not None} or None,
                    "files": _network_files(row.get("file")), "sidecar": row.get("sidecar"),
                    "folder": str(Path(row["file"]).parent) if row.get("file") else None})
    from kelly.commands.models import describe_generators

    for row in describe_generators():  # the transformer and the DDSP voice: chosen per composition, not switched
        metrics = {row["metric"]: row.get("test"), row["baseline_metric"]: row.get("test_baseline")}
        out.append({"name": row["model"], "key": row["key"], "kind": row["kind"], "live": True, "enabled": True,
                    "trained": row["trained"], "provenance": row["provenance"], "metrics": metrics,
                    "files": row["files"] + ["MODEL_CARD.md"], "folder": row["folder"]})
    return out


def _network_files(path: str | None) -> list[str]:
    """A network's weights file and its metadata sidecar, by name."""
    if not path:
        return []
    p = Path(path)
    stem = p.name.split(".")[0]
    return [p.name] + [f.name for f in sorted(p.parent.glob(f"{stem}.meta.json"))]

