"""The explanation contract: the published schema is current, typos fail, and what the CLI writes validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from kelly.cli import main
from kelly.commands.schema import NAMES
from kelly.contracts import (SCHEMA_PATH, SCHEMA_VERSION, SCHEMAS, ChordValue, Explanation, explanation_schema,
                             schema_text)

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_is_the_generated_one():
    committed = (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text("explanation"), (
        f"{SCHEMA_PATH} is stale: regenerate it with `.venv/bin/kelly schema explanation > {SCHEMA_PATH}` "
        "(and bump SCHEMA_VERSION in kelly/contracts.py if a field was removed or renamed)")


def test_kelly_schema_prints_it(capsys):
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == explanation_schema()
    assert main(["schema", "explanation"]) == 0 and capsys.readouterr().out == out
    assert set(NAMES) == set(SCHEMAS)


def test_schema_is_versioned_and_closed():
    schema = explanation_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert schema["additionalProperties"] is False
    assert {"schema_version", "kelly_version", "parts", "progression", "ending", "tempo_map"} <= set(schema["required"])
    # the typed parts are closed too; only `engines` (and free-form intent/model details) stay open
    for name in ("ChordValue", "Part", "SectionInfo", "RuleBreak", "Ending", "Parameters"):
        assert schema["$defs"][name]["additionalProperties"] is False, name
    roles = schema["$defs"]["Role"]["enum"]
    assert roles == ["melody", "harmony", "bass", "pad", "strings", "counter", "drums", "percussion", "fx"]


def _chord(**extra) -> dict:
    return {"start_bar": 1, "beat": 1.0, "bars": 1.0, "symbol": "Am7", "root": "A", "quality": "min7", "bass": None,
            "pitch_classes": [9, 0, 4, 7], "numeral": "vi", "key": "C major", "tension": 0.2, **extra}


def test_typos_fail():
    assert ChordValue.model_validate(_chord()).symbol == "Am7"
    with pytest.raises(ValidationError):
        ChordValue.model_validate(_chord(simbol="Am7"))
    with pytest.raises(ValidationError):
        ChordValue.model_validate(_chord(cadence="perfect"))


def test_the_file_the_cli_writes_validates(tmp_path, capsys):
    out = tmp_path / "grief.mid"
    assert main(["compose", "I feel grief", "--bars", "4", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.with_suffix(".json").read_text(encoding="utf-8")
    ex = Explanation.model_validate_json(text)
    assert ex.schema_version == SCHEMA_VERSION and ex.text == "I feel grief"
    assert ex.files.midi == str(out) and ex.files.explanation == str(out.with_suffix(".json"))
    assert json.loads(text) == ex.to_json()  # the file is exactly model_dump(mode="json")
    assert f"Ending:  {ex.ending.statement}" in printed
    bad = json.loads(text)
    bad["parts"][0]["notez"] = 1
    with pytest.raises(ValidationError):
        Explanation.model_validate(bad)
    bad = json.loads(text)
    bad["schema_version"] = "2"
    with pytest.raises(ValidationError):
        Explanation.model_validate(bad)


def test_json_flag_and_intent_explanations_validate(tmp_path, capsys):
    assert main(["compose", "calm", "--bars", "4", "--json", "--out", str(tmp_path / "c.mid")]) == 0
    Explanation.model_validate_json(capsys.readouterr().out)
    from kelly.intent.schema import template

    doc = template("Contract")
    intent = tmp_path / "intent.json"
    intent.write_text(json.dumps(doc))
    out = tmp_path / "out" / "song.mid"
    assert main(["intent", "process", str(intent), "-o", str(out), "--bars", "4"]) == 0
    capsys.readouterr()
    ex = Explanation.model_validate_json(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert ex.intent is not None and ex.intent.file == str(intent)
    # measured again after the intent edited the song: counts are the file's
    from kelly.song import read_midi

    song = read_midi(out)
    assert {p.name: p.notes for p in ex.parts} == {t.name: len(t.notes) for t in song.tracks}
    assert [(p.tick, p.bpm) for p in ex.tempo_map] == [(t, pytest.approx(b, abs=0.01)) for t, b in song.tempos]
