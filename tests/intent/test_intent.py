"""The three-phase song intent: schema, validation and the ``kelly intent`` commands."""

from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from kelly.cli import main
from kelly.errors import FileFormatError
from kelly.intent.schema import (NARRATIVE_ARCS, CompleteSongIntent, check_document, read_intent, resolve_key,
                                 template, validate_intent)
from kelly.song import read_midi


def _doc(**changes) -> dict:
    doc = template("Test")
    for path, value in changes.items():
        section, _, name = path.rpartition("__")
        target = doc[section] if section else doc
        if value is KeyError:
            target.pop(name, None)
        else:
            target[name] = value
    return doc


def _write(tmp_path, doc, name="intent.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


# ------------------------------------------------------------------ schema
def test_template_is_valid_and_round_trips(tmp_path):
    doc = template("My Song")
    intent, problems = check_document(doc)
    assert problems == []
    assert intent.title == "My Song"
    again = CompleteSongIntent.from_dict(intent.to_dict())
    assert again == intent
    path = intent.save(tmp_path / "sub" / "song.json")
    assert CompleteSongIntent.load(path) == intent
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_validation_names_every_problem():
    doc = _doc(song_root__core_event="", song_root__core_longing=KeyError, song_intent__mood_primary="",
               song_intent__mood_secondary_tension=1.5, song_intent__vulnerability_scale="Extreme",
               song_intent__narrative_arc="Zigzag", technical_constraints__technical_tempo_range=[140, 90],
               technical_constraints__technical_key="H major", technical_constraints__technical_mode="Bluesy",
               technical_constraints__technical_rule_to_break="HARMONY_Nonsense",
               technical_constraints__rule_breaking_justification="",
               technical_constraints__technical_groove_feel="Wobbly")
    _, problems = check_document(doc)
    text = "\n".join(problems)
    for fragment in ("core_event is missing", "core_longing is missing", "mood_primary is missing",
                     "between 0 and 1, got 1.5", "vulnerability_scale 'Extreme'", "narrative_arc 'Zigzag'",
                     "reversed", "unknown key 'H major'", "unknown rule 'HARMONY_Nonsense'",
                     "rule_breaking_justification is missing", "groove_feel 'Wobbly'"):
        assert fragment in text, fragment
    assert len(problems) >= 11


def test_high_vulnerability_needs_tension():
    doc = _doc(song_intent__vulnerability_scale="High", song_intent__mood_secondary_tension=0.2)
    _, problems = check_document(doc)
    assert any("'High' vulnerability" in p for p in problems)
    doc["song_intent"]["mood_secondary_tension"] = 0.3
    assert check_document(doc)[1] == []


def test_wrong_types_and_missing_phases_are_all_named():
    doc = _doc(song_intent__mood_secondary_tension="high", technical_constraints__technical_tempo_range="fast",
               song_root__core_event=5, title=7)
    intent, problems = read_intent(doc)
    assert len(problems) == 4
    assert any("mood_secondary_tension must be a number" in p for p in problems)
    assert any("technical_tempo_range must be two numbers" in p for p in problems)
    assert any("core_event must be text" in p for p in problems)
    assert intent.song_intent.mood_secondary_tension == 0.5  # defaults kept so the rest can be checked
    with pytest.raises(FileFormatError):
        CompleteSongIntent.from_dict(doc)
    _, problems = read_intent({"title": "x"})
    assert [p for p in problems if "missing section" in p] == [
        "missing section 'song_root' (Phase 0)", "missing section 'song_intent' (Phase 1)",
        "missing section 'technical_constraints' (Phase 2)"]
    assert read_intent([1, 2])[1] == ["an intent is a JSON object, got list"]


def test_original_spellings_are_accepted():
    doc = template()
    doc["song_technical_constraints"] = doc.pop("technical_constraints")
    intent, problems = check_document(doc)
    assert problems == []
    assert intent.technical_constraints.technical_key == "D minor"
    for key, mode, expect in (("F", "", "F major"), ("F major", "", "F major"), ("D minor", "", "D minor"),
                              ("Bb", "", "Bb major"), ("C#m", "", "C# minor"), ("A", "Aeolian", "A minor"),
                              ("D minor", "Dorian", "D dorian"), ("G", "major", "G major")):
        doc["song_technical_constraints"].update(technical_key=key, technical_mode=mode)
        intent, problems = check_document(doc)
        assert problems == [], (key, mode)
        assert resolve_key(intent).name == expect
    doc["song_intent"]["vulnerability_scale"] = "high"
    doc["song_intent"]["narrative_arc"] = "rise and fall"
    assert validate_intent(read_intent(doc)[0]) == []


# ------------------------------------------------------------------ CLI
def test_intent_new_prints_and_writes(tmp_path, capsys):
    assert main(["intent", "new", "-t", "Spring"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["title"] == "Spring" and "_help" in doc["song_intent"]
    for phase in ("song_root", "song_intent", "technical_constraints"):
        assert phase in doc
    out = tmp_path / "t.json"
    assert main(["intent", "new", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["technical_constraints"]["technical_tempo_range"] == [60.0, 76.0]
    capsys.readouterr()
    assert main(["intent", "new", "-o", str(out)]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err


def test_intent_validate(tmp_path, capsys):
    assert main(["intent", "validate", str(_write(tmp_path, template()))]) == 0
    assert "valid" in capsys.readouterr().out
    bad = _doc(song_root__core_event="", song_intent__mood_secondary_tension=-1)
    assert main(["intent", "validate", str(_write(tmp_path, bad))]) == 2
    out = capsys.readouterr().out
    assert "3 problem(s)" in out and "High" in out and "core_event" in out and "mood_secondary_tension" in out
    assert main(["intent", "validate", "--json", str(_write(tmp_path, bad))]) == 2
    assert json.loads(capsys.readouterr().out)["valid"] is False


@pytest.mark.parametrize("content", ["not json {", "[1, 2]", json.dumps({"title": "x"}),
                                     json.dumps({"song_root": 1, "song_intent": {}, "technical_constraints": []})])
@pytest.mark.parametrize("action", ["validate", "process"])
def test_malformed_files_exit_2_without_traceback(tmp_path, capsys, content, action):
    path = _write(tmp_path, content)
    code = main(["intent", action, str(path), *(["-o", str(tmp_path / "o.mid")] if action == "process" else [])])
    assert code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    if action == "process" or content.startswith(("not", "[")):
        assert captured.err.count("\n") == 1 and captured.err.startswith("kelly: error:")
    assert not (tmp_path / "o.mid").exists()


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["intent", "validate", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_process_refuses_invalid_intent_unless_forced(tmp_path, capsys):
    doc = _doc(technical_constraints__rule_breaking_justification="")
    path = _write(tmp_path, doc)
    assert main(["intent", "process", str(path), "-o", str(tmp_path / "a.mid"), "--bars", "8"]) == 2
    assert "rule_breaking_justification" in capsys.readouterr().err
    assert main(["intent", "process", str(path), "-o", str(tmp_path / "a.mid"), "--bars", "8", "--force"]) == 0
    ex = json.loads((tmp_path / "a.json").read_text())
    assert ex["intent"]["validation"]["valid"] is False


def _process(tmp_path, capsys, doc, name="song", bars=8):
    path = _write(tmp_path, doc, f"{name}.json")
    out = tmp_path / "out" / f"{name}.mid"  # not beside the intent: out.json would be the intent file itself
    assert main(["intent", "process", str(path), "-o", str(out), "--bars", str(bars), "--seed", "2"]) == 0
    capsys.readouterr()
    return out, json.loads(out.with_suffix(".json").read_text())


def test_process_writes_midi_and_explanation_from_the_intent(tmp_path, capsys):
    doc = _doc(technical_constraints__technical_tempo_range=[100, 111], technical_constraints__technical_key="Bb",
               technical_constraints__technical_mode="Dorian",
               technical_constraints__technical_rule_to_break="MELODY_MonotoneDrone",
               technical_constraints__rule_breaking_justification="numb")
    out, ex = _process(tmp_path, capsys, doc)
    mid = mido.MidiFile(str(out))
    tempos = [mido.tempo2bpm(m.tempo) for m in mid.tracks[0] if m.type == "set_tempo"]
    assert round(tempos[0]) == 105  # middle of [100, 111], integer division
    assert ex["parameters"]["tempo_bpm"] == 105
    assert ex["progression"]["key"] == "Bb dorian"
    assert [r["rule"] for r in ex["rule_breaks"]] == ["MELODY_MonotoneDrone", "TEMPORAL_ExtendedIntro"]
    assert ex["rule_breaks"][0]["why"] == "numb" and ex["rule_breaks"][0]["source"] == "intent"
    assert ex["intent"]["validation"] == {"valid": True, "problems": []}
    assert ex["intent"]["document"]["technical_constraints"]["technical_key"] == "Bb"
    assert ex["intent"]["production"]["texture"] == "Murky"
    song = read_midi(out)
    melody = next(t for t in song.tracks if t.name == "Melody")
    assert len({n.pitch % 12 for n in melody.notes}) <= 2  # the rule is heard
    # Slow Reveal: nothing but keys and pad in the first third
    early = {t.name for t in song.tracks for n in t.notes if n.start < (8 // 3) * 1920 - 60}
    assert early <= {"Chords", "Pad"}


def _mean_velocity(song, lo, hi):
    return np.mean([n.velocity for t in song.tracks for n in t.notes if lo <= n.start < hi])


@pytest.mark.parametrize("arc,rising", [("Climb-to-Climax", True), ("Descent", False)])
def test_narrative_arc_shapes_dynamics(tmp_path, capsys, arc, rising):
    doc = _doc(song_intent__narrative_arc=arc)
    out, ex = _process(tmp_path, capsys, doc, name=arc.lower().replace(" ", "-"), bars=16)
    assert ex["intent"]["applied"]["narrative_arc"]["arc"] == arc
    song = read_midi(out)
    total = 16 * 1920
    first, last = _mean_velocity(song, 0, total // 4), _mean_velocity(song, 3 * total // 4, total)
    assert (last > first + 10) if rising else (first > last + 10), (first, last)


def test_groove_feel_sets_the_humanizer(tmp_path, capsys):
    def deviation(feel):
        doc = _doc(technical_constraints__technical_groove_feel=feel, song_intent__mood_secondary_tension=1.0)
        out, ex = _process(tmp_path, capsys, doc, name=feel.replace("/", "-"))
        assert ex["intent"]["applied"]["groove"]["feel"] == feel
        song = read_midi(out)
        starts = [n.start for t in song.tracks if t.name in ("Chords", "Pad") for n in t.notes]
        return np.mean([min(s % 120, 120 - s % 120) for s in starts]), ex
    tight, ex_tight = deviation("Mechanical")
    loose, ex_loose = deviation("Rubato/Free")
    assert ex_tight["intent"]["applied"]["groove"]["complexity"] == 0.0
    assert ex_loose["intent"]["applied"]["groove"]["complexity"] > 0.8
    assert loose > tight + 2


def test_process_is_deterministic(tmp_path, capsys):
    a, _ = _process(tmp_path, capsys, template(), name="a")
    b, _ = _process(tmp_path, capsys, template(), name="b")
    assert a.read_bytes() == b.read_bytes()


def test_suggest(capsys):
    assert main(["intent", "suggest", "grief", "--json"]) == 0
    pal = json.loads(capsys.readouterr().out)
    assert pal["modes"] == ["Aeolian", "Phrygian"] and pal["tempo_range"] == [50, 80] and pal["density"] == "Sparse"
    assert pal["textures"] == ["Murky", "Skeletal", "Ethereal"]
    assert [r["id"] for r in pal["rules"]] == ["HARMONY_AvoidTonicResolution", "HARMONY_UnresolvedDissonance"]
    assert main(["intent", "suggest", "anxiety", "--json"]) == 0
    pal = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in pal["rules"]] == ["RHYTHM_ConstantDisplacement", "MELODY_ExcessiveRepetition"]
    assert main(["intent", "suggest", "numb", "and", "far", "away"]) == 0
    assert "Modes:" in capsys.readouterr().out


def test_list(capsys):
    assert main(["intent", "list", "--json"]) == 0
    lists = json.loads(capsys.readouterr().out)
    assert lists["narrative_arcs"] == list(NARRATIVE_ARCS)
    assert lists["vulnerability_scale"] == ["Low", "Medium", "High"]
    assert len(lists["groove_feels"]) == 8 and len(lists["core_stakes"]) == 6
    assert sum(len(v) for v in lists["rules"].values()) == 42 and len(lists["rules"]) == 7
    assert main(["intent", "list"]) == 0
    assert "narrative_arcs: Climb-to-Climax" in capsys.readouterr().out
