"""``kelly rules`` and ``kelly compose --break``."""

from __future__ import annotations

import json

from kelly.cli import main


def test_rules_lists_all_42_in_7_categories(capsys):
    assert main(["rules", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["categories"]) == ["harmony", "rhythm", "arrangement", "production", "melody", "texture",
                                       "temporal"]
    rules = [r for items in doc["categories"].values() for r in items]
    assert len(rules) == 42
    for r in rules:
        assert r["description"] and r["effect"] and r["use_when"] and r["example_emotions"]
        assert r["expressed_as"] in ("MIDI", "production note")
    assert sum(r["expressed_as"] == "production note" for r in rules) == 7
    assert main(["rules"]) == 0
    assert "42 rules" in capsys.readouterr().out


def test_rules_for_an_emotion(capsys):
    assert main(["rules", "--emotion", "grief", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)["emotion"]
    assert e["catalogue"] == ["HARMONY_AvoidTonicResolution", "HARMONY_UnresolvedDissonance"]
    auto = {a["rule"]: a for a in e["automatic"]}
    assert "HARMONY_ModalInterchange" in auto and 0 < auto["HARMONY_ModalInterchange"]["severity"] <= 1
    assert main(["rules", "--emotion", "I am furious and shaking"]) == 0
    out = capsys.readouterr().out
    assert "Automatic rule breaks" in out and "Catalogue matches" in out


def test_rules_category_filter_and_bad_category(capsys):
    assert main(["rules", "--category", "melody", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc["categories"]) == ["melody"] and len(doc["categories"]["melody"]) == 6
    assert main(["rules", "--category", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_compose_break_unknown_rule_suggests(tmp_path, capsys):
    assert main(["compose", "I feel calm", "--break", "ModalInterchang", "-o", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean: HARMONY_ModalInterchange" in err
    assert not (tmp_path / "x.mid").exists()


def test_compose_break_short_name_repeatable(tmp_path, capsys):
    out = tmp_path / "x.mid"
    assert main(["compose", "I feel calm", "--bars", "8", "--no-auto-breaks", "--break", "ModalInterchange",
                 "--break", "temporal_abruptending", "-o", str(out)]) == 0
    capsys.readouterr()
    ex = json.loads(out.with_suffix(".json").read_text())
    assert [r["rule"] for r in ex["rule_breaks"]] == ["HARMONY_ModalInterchange", "TEMPORAL_AbruptEnding"]
    assert all(r["source"] == "user" for r in ex["rule_breaks"])
