"""Seed corpora for the fuzz targets: valid files Kelly writes itself plus known-bad ones.

Everything is generated here (or taken from ``tests/fixtures``), so the fuzzers start
from realistic structure without any downloaded data.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_TEXTS = ["I feel grief, but I'm starting to hope", "I have never felt worse", "She's furious with me",
          "on cloud nine \U0001F389", "I can't say I'm not worried", "people say I should be grateful",
          "I used to love music, now it feels like a chore", "NOT HAPPY!!!", "\U0001F62D\U0001F62D why"]


def _seeds(name: str) -> dict[str, bytes]:
    if name == "app":
        return _app_seeds()
    if name == "socket_frame":
        import struct

        bodies = [b'{"type":"GetState","id":1}', b'{"type":"SetEmotion","id":2,"valence":0.5,"arousal":0.4,'
                  b'"dominance":0.6}', b'{"type":"SetText","id":3,"text":"I feel calm"}', b'{"type":"Nope"}', b"[]"]
        return {f"f{i}": struct.pack("<I", len(b)) + b for i, b in enumerate(bodies)}
    if name == "tokens":
        from kelly.emotion.thesaurus import state_for
        from kelly.generator import ComposeOptions, compose
        from kelly.transformer.tokens import CompoundTokenizer

        song = compose(state_for("hope"), ComposeOptions(bars=2, seed=1)).song
        rows = CompoundTokenizer().encode(song)
        return {"hope": bytes(int(v) & 0xFF for v in rows.ravel()[:4000]), "empty": b""}
    if name == "train_config":
        from kelly.ddsp.train import DEFAULT_CONFIG as DDSP
        from kelly.transformer.train import DEFAULT_CONFIG as TRANSFORMER

        return {"ddsp": DDSP.read_bytes(), "transformer": TRANSFORMER.read_bytes(),
                "bad": b"[tiny]\nsteps = -1\nhidden = 'x'\n"}
    if name == "ddsp_voice":
        from kelly.ddsp.voice import SHIPPED_VOICE

        shipped = (SHIPPED_VOICE / "ddsp.json").read_bytes()
        return {"small": _small_ddsp_json(), "truncated": shipped[:4000]}
    if name == "text":
        seeds = {f"t{i}": t.encode("utf-8") for i, t in enumerate(_TEXTS)}
        fixture = ROOT / "tests" / "fixtures" / "feel_eval.jsonl"
        if fixture.exists():
            for i, line in enumerate(fixture.read_text(encoding="utf-8").splitlines()[::25]):
                seeds[f"e{i}"] = json.loads(line)["text"].encode("utf-8")
        return seeds
    if name in ("midi", "midi_chain"):
        from kelly.emotion.text import read_text
        from kelly.generator import ComposeOptions, compose

        seeds = {}
        for i, t in enumerate(["I feel grief", "I am so angry", "calm and content"]):
            seeds[f"song{i}"] = compose(read_text(t), ComposeOptions(bars=2, seed=i)).song.to_bytes()
        bad = ROOT / "tests" / "fixtures" / "midi_bad"
        if bad.is_dir():
            for p in sorted(bad.iterdir()):
                if p.is_file() and p.stat().st_size < 4096:
                    seeds[p.name] = p.read_bytes()
        return seeds
    if name == "intent":
        from kelly.intent.schema import template

        doc = template("Fuzz")
        return {"template": json.dumps(doc).encode(), "empty": b"{}", "list": b"[1, 2]",
                "deep": b"[" * 200 + b"]" * 200, "bigint": b'{"a": ' + b"9" * 5000 + b"}"}
    if name == "groove_template":
        from kelly.groove.templates import get_template, template_names

        return {n: json.dumps(get_template(n).to_dict()).encode() for n in template_names()[:4]}
    if name == "rtneural":
        fixtures = ROOT / "tests" / "fixtures" / "rtneural"
        seeds = {p.stem: p.read_bytes() for p in sorted(fixtures.glob("*.json"))}
        # Regressions of issue 10 (loader hardening): each must end in one ModelFileError.
        dense = '{"in_shape": [null, null, 2], "layers": [{"type": "dense", "activation": %s, ' \
                '"shape": [null, null, %s], "weights": [[[%s], [0.5]], [0.5]]}]}'
        seeds.update({
            "huge-size": (dense % ('""', 10**12, "0.5")).encode(),
            "overflow-size": (dense % ('""', 2**70, "0.5")).encode(),
            "string-weight": (dense % ('""', 1, '"0.5"')).encode(),
            "bool-weight": (dense % ('""', 1, "true")).encode(),
            "null-activation": (dense % ("null", 1, "0.5")).encode(),
            "float32-overflow": (dense % ('"tanh"', 1, "1e39")).encode(),
            "deep": b'{"in_shape": [null, 1], "layers": ' + b"[" * 200 + b"]" * 200 + b"}",
        })
        return seeds
    if name == "onnx":
        import tempfile

        from kelly.ml.export import export_models

        with tempfile.TemporaryDirectory() as tmp:
            export_models(tmp, ("onnx",), seed=0)
            return {p.name: p.read_bytes() for p in sorted(Path(tmp).glob("dynamicsengine*.onnx"))}
    if name == "csv":
        row = ",".join(f"{(k % 7) / 7:.3f}" for k in range(32))
        return {"rows": (row + "\n" + row + "\n").encode(), "comment": b"# steps\n" + row.encode() + b"\n",
                "short": b"1,2,3\n", "nan": (",".join(["nan"] * 32) + "\n").encode()}
    if name == "lexicon":
        import numpy as np

        from kelly.emotion.lexicon import encode_table

        import gzip

        blob = encode_table({"format": "kelly-lexicon", "version": 1}, ["calm", "fall apart"],
                            np.array([[0.3, 0.2, 0.6], [-0.7, 0.6, 0.2]]), np.array([1, 0]))
        return {"small": blob, "small-raw": gzip.decompress(blob)}
    raise KeyError(name)


def _app_seeds() -> dict[str, bytes]:
    """Requests for the app target: its first byte names the route (see ``fuzz.targets.APP_ROUTES``), then the
    path parameter's line, then the body. Valid requests on every route first (``@0`` is the first kept
    composition or run), then known-bad ones (wrong types, out of range, path tricks, a cross-site origin)."""
    from fuzz.targets import APP_ROUTES
    from kelly.emotion.text import read_text
    from kelly.generator import ComposeOptions, compose

    names = list(APP_ROUTES)
    midi = compose(read_text("calm and content"), ComposeOptions(bars=2, seed=1)).song.to_bytes()
    part = (b'--b1\r\nContent-Disposition: form-data; name="file"; filename="a.mid"\r\nContent-Type: audio/midi'
            b"\r\n\r\n" + midi + b"\r\n--b1--\r\n")
    requests = [
        ("compose", b"", b'{"text": "I feel grief, but I\'m starting to hope", "bars": 4, "seed": 3}'),
        ("compose", b"", b'{"valence": -0.7, "arousal": 0.9, "dominance": 0.8, "bars": 2}'),
        ("compose", b"", b'{"journey": ["grief", "hope"], "bars": 4, "complexity": 0.8}'),
        ("compose", b"", b'{"text": "calm", "composer": "hybrid", "key": "D dorian", "bars": 2, '
                         b'"breaks": ["HARMONY_ModalInterchange"]}'),
        ("compose", b"", b'{"text": "calm", "composer": "transformer", "bars": 1, "seed": 7}'),
        ("compose", b"", b"{}"), ("compose", b"", b'{"text": "calm", "bars": 0}'),
        ("compose", b"", b'{"text": "calm", "valence": 2}'), ("compose", b"", b'{"text": 5, "extra": 1}'),
        ("compose", b"", b'{"journey": ["grief", "nope"], "key": "H major", "breaks": ["NOPE"]}'),
        ("compose", b"", b"[]"), ("compose", b"", b"{"),
        ("library_update", b"@0", b'{"rating": 4, "notes": "keep this one"}'),
        ("library_update", b"@1", b'{"rating": null}'), ("library_update", b"@0", b'{"rating": 9, "x": 1}'),
        ("library_update", b"0123456789abcdef0123456789abcdef", b"{}"),
        ("library_get", b"@0", b""), ("library_get", b"../library.sqlite", b""),
        ("library_delete", b"@2", b""), ("library_export", b"@0", b""),
        ("library_file", b"@0", b"song.mid"), ("library_file", b"@0", b"song.json"),
        ("library_file", b"@0", b"song.musicxml"), ("library_file", b"@0", b"song.wav"),
        ("library_file", b"@1", b"song-ddsp.wav"), ("library_file", b"@0", b"../../library.sqlite"),
        ("library_search", b"q=grief&valence=0.2&arousal=0.5&rating_min=3&limit=5&offset=0", b""),
        ("library_search", b"q=%25_&limit=0&valence=nan", b""), ("library_search", b"rating_min=9&offset=-1", b""),
        ("analyze", b"calm.mid", midi), ("analyze", b"../x.mid", b"MThd\x00\x00\x00\x06"),
        ("analyze_raw", b"b1", part), ("analyze_raw", b"", b"--\r\n"),
        ("model_toggle", b"dynamicsengine", b'{"enabled": false}'),
        ("model_toggle", b"MelodyTransformer", b'{"enabled": true}'), ("model_toggle", b"nope", b'{"enabled": 1}'),
        ("model_validate", b"dynamicsengine", b""), ("model_validate", b"ddsp", b""),
        ("model_validate", b"transformer", b""), ("model_validate", b"x", b""),
        ("model_export", b"dynamicsengine", b""), ("model_export", b"ddsp", b""),
        ("train_start", b"", b'{"model": "dynamicsengine", "epochs": 1}'),
        ("train_start", b"", b'{"model": "groovepredictor", "data": "corpus"}'),
        ("train_start", b"", b'{"model": "nope", "epochs": 0}'),
        ("train_get", b"@0", b""), ("train_cancel", b"@0", b""), ("train_events", b"@0", b""),
        ("train_resume", b"@0", b'{"epochs": 2}'), ("train_resume", b"@0", b"{}"),
        ("train_resume", b"@0", b'{"epochs": 501}'),
        ("live_emotion", b"", b'{"valence": 0.3, "arousal": 0.5}'), ("live_emotion", b"", b'{"valence": 3}'),
        ("live_text", b"", b'{"text": "I feel calm"}'), ("live_text", b"", b'{"text": ""}'),
        ("live_model", b"dynamicsengine", b'{"enabled": false}'), ("live_state", b"", b""),
        ("any_path", b"static/app.js", b""), ("any_path", b"static/../server.py", b""),
        ("any_path", b"static/%2e%2e/server.py", b""), ("any_path", b"openapi.json", b""),
        ("any_path", b"api/emotions", b""), ("any_path", b"api/compose", b"\x00"),
        ("any_path", b"api/live/events", b""), ("any_path", b"api/training?x=1", b"\x01"),
        ("guard", b"\x02", b"127.0.0.1:8765\nhttp://127.0.0.1:8765\nsame-origin"),
        ("guard", b"\x02", b"evil.example\nhttp://evil.example\ncross-site"),
        ("guard", b"\x00", b"[::1]:8765"),
    ]
    seeds = {}
    for i, (route, param, body) in enumerate(requests):
        seeds[f"{i:02d}-{route}"] = bytes([names.index(route)]) + param + b"\n" + body
    # the other ways of sending (fuzz.targets.AppHarness.fuzz): no content type, a false length, chunked
    for how in (1, 2, 3):
        seeds[f"how{how}-compose"] = bytes([names.index("compose") + how * len(names)]) + \
            (b"99999999999" if how == 2 else b"") + b'\n{"text": "calm", "bars": 1}'
    for i, (route, param, body, value) in enumerate([("library_file", b"@0", b"song.mid", b"bytes=0-99"),
                                                      ("any_path", b"static/app.js", b"", b"bytes=10-20,30-40"),
                                                      ("library_file", b"@0", b"song.json", b"bytes=9-2")]):
        seeds[f"range{i}-{route}"] = bytes([names.index(route) + 4 * len(names)]) + param + b"\n" + body + \
            b"\n" + value
    return seeds


def _small_ddsp_json() -> bytes:
    """A valid DDSP decoder of hidden size 4 (the shipped one is 2 MB: too big a seed to mutate)."""
    import numpy as np

    from kelly.ddsp.core import N_INPUTS, N_OUTPUTS
    from kelly.ml.convert import dense_json, gru_json

    rng = np.random.default_rng(0)
    h = 4
    layers = [dense_json(rng.normal(size=(h, N_INPUTS)), np.zeros(h), "relu"),
              dense_json(rng.normal(size=(h, h)), np.zeros(h), "relu"),
              gru_json(rng.normal(size=(3 * h, h)), rng.normal(size=(3 * h, h)), np.zeros(3 * h), np.zeros(3 * h)),
              dense_json(rng.normal(size=(h, h)), np.zeros(h), "relu"),
              dense_json(rng.normal(size=(N_OUTPUTS, h)), np.zeros(N_OUTPUTS), "")]
    return json.dumps({"in_shape": [None, None, N_INPUTS], "layers": layers}).encode()


def write_corpus(name: str, folder: Path) -> Path:
    """Write the seeds of ``name`` into ``folder`` (created; existing seeds replaced)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, data in _seeds(name).items():
        (folder / stem).write_bytes(data)
    return folder
