"""A voice folder's files: validation, and refusal of tampered, foreign or missing files."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")

from kelly.ddsp import export  # noqa: E402
from kelly.errors import ModelError  # noqa: E402


def test_validate_passes_every_check(trained_voice):
    checks = export.validate(trained_voice.folder, steps=40)
    names = [c.check for c in checks]
    assert names[:3] == ["sidecar", "numpy", "torch vs numpy"]
    assert any(n.startswith("onnx") for n in names)
    bad = [c.line() for c in checks if not c.ok]
    assert not bad, bad


def test_sidecar_describes_the_voice(trained_voice):
    meta = json.loads((trained_voice.folder / export.META_NAME).read_text())
    assert meta["format"] == export.FORMAT and meta["hidden"] == 32 and meta["trained"] is True
    assert meta["contract"] == export.contract()
    assert meta["training"]["steps"] == 6
    assert set(meta["loudness_map"]) >= {"c0", "c1", "c2"}


def test_read_voice_accepts_the_folder(trained_voice):
    vf = export.read_voice(trained_voice.folder)
    assert vf.json_bytes == (trained_voice.folder / export.JSON_NAME).read_bytes()
    assert vf.meta["sha256"]


def test_a_changed_weight_is_refused(voice_copy):
    path = voice_copy / export.JSON_NAME
    text = path.read_text()
    start = text.index('"weights"')
    m = re.compile(r"-?\d+\.\d+").search(text, start)
    changed = text[:m.start()] + ("0.5" if m.group() != "0.5" else "0.25") + text[m.end():]
    json.loads(changed)  # still a valid model file: only the hash can tell
    path.write_text(changed)
    with pytest.raises(ModelError, match="SHA-256"):
        export.read_voice(voice_copy)
    with pytest.raises(ModelError, match="SHA-256"):
        export.validate(voice_copy)


def _edit_meta(folder, change):
    path = folder / export.META_NAME
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_a_sidecar_for_another_sample_rate_is_refused(voice_copy):
    _edit_meta(voice_copy, lambda m: m["contract"].update(sample_rate=22050))
    with pytest.raises(ModelError, match="sample_rate"):
        export.read_voice(voice_copy)


@pytest.mark.parametrize("change,needle", [
    (lambda m: m.update(format="something-else"), "not a Kelly DDSP voice sidecar"),
    (lambda m: m.update(schema_version=99), "schema version"),
    (lambda m: m.update(loudness_map=None), "loudness_map"),
    (lambda m: m["loudness_map"].update(c1="loud"), "loudness_map"),
    (lambda m: m["contract"].update(n_harmonics=100), "n_harmonics"),
])
def test_bad_sidecars_are_refused(voice_copy, change, needle):
    _edit_meta(voice_copy, change)
    with pytest.raises(ModelError, match=needle):
        export.read_voice(voice_copy)


def test_a_sidecar_that_is_not_json_is_a_clean_error(voice_copy):
    from kelly.errors import KellyError

    (voice_copy / export.META_NAME).write_bytes(b"\x00\xffnot json")
    with pytest.raises(KellyError):
        export.read_voice(voice_copy)


def test_missing_files_are_refused(voice_copy, tmp_path):
    with pytest.raises(ModelError, match="no such DDSP voice folder"):
        export.read_voice(tmp_path / "nowhere")
    (voice_copy / export.JSON_NAME).unlink()
    with pytest.raises(ModelError, match="ddsp.json"):
        export.read_voice(voice_copy)


def test_broken_onnx_is_a_failed_check_not_a_crash(voice_copy):
    (voice_copy / export.ONNX_NAME).write_bytes(b"not an onnx model")
    checks = export.validate(voice_copy, steps=10)
    onnx = [c for c in checks if c.check.startswith("onnx")]
    assert onnx and not onnx[0].ok
    assert all(c.ok for c in checks if not c.check.startswith("onnx"))


def test_write_voice_roundtrip(trained_voice, tmp_path):
    files = export.write_voice(trained_voice.folder / "ddsp.pt", tmp_path / "again", onnx=False)
    assert sorted(f.name for f in files) == [export.JSON_NAME, export.META_NAME]
    # the same weights give the same JSON text
    assert (tmp_path / "again" / export.JSON_NAME).read_bytes() == \
        (trained_voice.folder / export.JSON_NAME).read_bytes()
    # no metrics: no loudness map, so the renderer cannot use it and says so
    with pytest.raises(ModelError, match="loudness_map"):
        export.read_voice(tmp_path / "again")
