"""The Composer seam: the rule engines behind one protocol the CLI, engine and app share."""

from __future__ import annotations

import pytest

from kelly.composer import COMPOSERS, Composer, ComposeOptions, Composition, get_composer
from kelly.emotion.thesaurus import state_for
from kelly.errors import InputError
from kelly.generator import compose


def test_rule_composer_implements_the_protocol_and_matches_compose():
    composer = get_composer("rules")
    assert isinstance(composer, Composer) and composer.name == "rules"
    opts = ComposeOptions(bars=8, seed=3)
    result = composer.compose(state_for("hope"), opts)
    assert isinstance(result, Composition)
    assert result.song.to_bytes() == compose(state_for("hope"), opts).song.to_bytes()
    journey = composer.compose([state_for("grief"), state_for("hope")], ComposeOptions(bars=8, seed=1))
    assert journey.explanation.journey == ["grief", "hope"]


def test_unknown_composer_and_bad_options_are_clear_errors():
    with pytest.raises(InputError, match="unknown composer 'mozart'; choose one of: rules, transformer, hybrid"):
        get_composer("mozart")
    with pytest.raises(InputError, match="--meter must be 4/4, 3/4 or 6/8"):
        get_composer().compose(state_for("hope"), ComposeOptions(meter="5/4"))
    assert set(COMPOSERS) == {"rules", "transformer", "hybrid"}


def test_compose_command_goes_through_the_seam(tmp_path, capsys):
    from kelly.cli import main

    out = tmp_path / "seam.mid"
    assert main(["compose", "I feel hopeful", "--bars", "4", "--composer", "rules", "--out", str(out)]) == 0
    assert out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["compose", "I feel hopeful", "--composer", "mozart"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
