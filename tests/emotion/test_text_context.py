"""The reader in context (issue 7): the words people use, negation scope, contrast, whose
feeling it is, idioms, events, emoji, long texts, and the labelled sentence set."""

import subprocess
import sys
from pathlib import Path

import pytest

from kelly.emotion.evaluation import load_sentences, score_sentences
from kelly.emotion.text import read_text

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "tests" / "fixtures" / "feel_eval.jsonl"


def kinds(state):
    return [e.kind for e in state.evidence]


# Every case the issue found neutral or wrong, with the valence sign a person means.
ISSUE_CASES = [
    ("I feel trapped", -1), ("I feel victorious", 1), ("I feel cheated", -1), ("I feel ignored", -1),
    ("I got promoted today", 1), ("we were evicted", -1), ("I just got fired", -1), ("I just got the job!", 1),
    ("Everything is falling apart", -1), ("my heart sank", -1), ("on cloud nine", 1),
    ("I have never felt worse", -1), ("I love my kids but I'm exhausted", -1), ("She's furious with me", -1),
]


@pytest.mark.parametrize("text,sign", ISSUE_CASES)
def test_issue_cases_read_with_the_right_valence_sign(text, sign):
    s = read_text(text)
    assert s.valence * sign > 0.05, (text, s.valence, s.evidence)
    assert s.confidence > 0.1 and "fallback" not in kinds(s)


def test_she_is_furious_with_me_is_my_apprehension_not_her_fury():
    s = read_text("She's furious with me")
    assert s.family == "fear" and s.dominance < 0.5
    assert "aimed-at-me" in kinds(s)


def test_someone_elses_feeling_counts_less_than_mine():
    assert read_text("My brother is thrilled but I feel sad").valence < 0
    assert read_text("she is miserable and I feel great").valence > 0
    mine, theirs = read_text("I am devastated"), read_text("he is devastated")
    assert any("someone else's" in k for k in kinds(theirs))
    assert theirs.confidence <= mine.confidence


@pytest.mark.parametrize("text,sign", [
    ("I have never felt worse", -1), ("I couldn't be happier", 1), ("it could not be better", 1),
    ("nothing could make me sadder", -1), ("not bad at all", 1), ("I'm not unhappy", 1),
    ("I'm no longer scared", 1), ("I don't feel good", -1), ("I'm not happy", -1),
])
def test_negation_scope(text, sign):
    s = read_text(text)
    assert s.valence * sign > 0, (text, s.valence, kinds(s))


def test_negated_comparative_keeps_its_sign_and_grows():
    worse, bad = read_text("I have never felt worse"), read_text("I feel bad")
    assert "negated-comparative" in kinds(worse)
    assert worse.valence < 0 and worse.intensity >= bad.intensity


def test_double_negative_cancels():
    s = read_text("I can't say I'm not worried")
    assert s.family == "fear" and s.valence < 0
    assert "double-negative" in kinds(s)


@pytest.mark.parametrize("text,sign", [
    ("I was terrified but now I feel safe", 1), ("although I'm tired, I feel wonderful", 1),
    ("It was a lovely day but I feel empty", -1), ("I used to love music", -1),
    ("I used to be scared of the dark, now I'm fine", 1), ("I should be happy but I feel hollow", -1),
])
def test_contrast_and_markers_weigh_the_clause_that_matters(text, sign):
    s = read_text(text)
    assert s.valence * sign > 0, (text, s.valence, s.evidence)


def test_reported_gratitude_does_not_make_a_numb_paragraph_grateful():
    text = ("For weeks now I have felt numb. I get up, I go to work, I come home and stare at the wall. "
            "Nothing touches me. People say I should be grateful for what I have, and I know they mean well, "
            "but I just feel flat and far away from everything, like I'm watching my life through glass.")
    s = read_text(text)
    assert s.family == "sadness" and s.valence < 0 and s.arousal < 0.5
    assert "counterfactual" in kinds(s)


def test_later_sentences_weigh_more_in_long_texts():
    early_sad = "I was miserable in the morning. The afternoon was fine. By the evening I felt wonderful."
    early_good = "I felt wonderful in the morning. The afternoon was fine. By the evening I was miserable."
    assert read_text(early_sad).valence > read_text(early_good).valence


def test_idioms_and_events_name_themselves_in_the_evidence():
    for text, kind in [("my heart sank", "idiom"), ("I just got fired", "event"), ("on cloud nine", "idiom")]:
        s = read_text(text)
        assert kind in kinds(s), (text, s.evidence)


def test_lexicon_words_are_read_and_named():
    s = read_text("I feel cheated")
    assert s.valence < 0
    assert any(e.words == "cheated" and e.kind == "lexicon:vader" for e in s.evidence)


def test_emoji():
    assert read_text("😭😭😭 why").valence < 0
    assert read_text("got the tickets 🎉🔥").valence > 0
    assert any(k.startswith("emoji") for k in kinds(read_text("🎉")))


def test_words_of_little_feeling_read_near_neutral_from_the_lexicon():
    s = read_text("the table")
    assert abs(s.valence) < 0.25 and s.confidence <= 0.2
    assert not any(k == "fallback" for k in kinds(s))
    assert kinds(read_text("zxqv qwrtz"))[0] == "fallback"


def test_confidence_grows_with_agreeing_evidence():
    one = read_text("I'm sad")
    many = read_text("I'm sad, lonely and heartbroken")
    mixed = read_text("I'm sad and thrilled")
    assert many.confidence > one.confidence
    assert mixed.confidence < many.confidence


def test_sentence_set_meets_the_targets():
    sentences = load_sentences(EVAL)
    assert len(sentences) >= 300
    assert {s.category for s in sentences} >= {"quadrant", "negation", "contrast", "idiom", "third_person",
                                               "event", "long", "emoji"}
    score = score_sentences(sentences, read_text)
    assert score.rate("valence") >= 0.90, score.misses[:20]
    assert score.rate("arousal") >= 0.80, score.misses[:20]


def test_huge_text_is_refused_before_reading():
    from kelly.emotion.text import MAX_TEXT_CHARS
    from kelly.errors import InputError

    with pytest.raises(InputError, match="split it"):
        read_text("sad " * (MAX_TEXT_CHARS // 4 + 1))


def test_reading_does_not_import_torch():
    code = ("import sys; from kelly.emotion.text import read_text; read_text('I feel trapped 😭'); "
            "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
