"""The PAD thesaurus: coverage, ranges, provenance, lookups and validation."""

import copy
import json
from importlib import resources

import pytest

from kelly.emotion.thesaurus import FAMILIES, Thesaurus, load_thesaurus, normalize_phrase, state_for
from kelly.errors import FileFormatError, InputError

# Appendix B: the 72 base names, 9 per family.
BASE72 = {
    "joy": "euphoria ecstasy elation delight happiness contentment serenity satisfaction cheerfulness",
    "sadness": "grief despair sorrow melancholy gloom disappointment loneliness nostalgia wistfulness",
    "anger": "rage fury wrath hostility resentment annoyance irritation frustration bitterness",
    "fear": "terror panic horror dread anxiety worry unease apprehension nervousness",
    "surprise": "amazement astonishment awe wonder shock startle bewilderment confusion curiosity",
    "disgust": "revulsion loathing abhorrence contempt aversion distaste dislike disapproval repugnance",
    "trust": "admiration adoration devotion faith confidence reliance acceptance respect appreciation",
    "anticipation": "eagerness excitement hope expectation vigilance interest optimism yearning impatience",
}

# Appendix A: a sample of (name, valence, arousal, dominance), plus every node name.
APPENDIX_A = {"grief": (-0.9, 0.3, 0.25), "rage": (-0.8, 1.0, 0.9), "hope": (0.6, 0.6, 0.73),
              "terror": (-0.9, 1.0, 0.15), "ambivalence": (0.0, 0.5, 0.5), "quiet rage": (-0.6, 0.3, 0.75),
              "love": (0.8, 0.7, 0.75), "numbness": (-0.3, 0.05, 0.25), "startle": (0.0, 0.8, 0.48)}
A_NAMES = """grief melancholy despair sorrow wistfulness longing heartache emptiness numbness resignation rage fury
frustration irritation annoyance resentment bitterness hostility terror panic anxiety worry unease dread apprehension
vulnerability ecstasy elation happiness contentment serenity peace calm relief gratitude hope love adoration affection
tenderness warmth acceptance belonging excitement eagerness curiosity interest vigilance amazement astonishment shock
startle wonder revulsion loathing contempt distaste disapproval bittersweetness nostalgia catharsis yearning
ambivalence""".split() + ["melancholic hope", "tender grief", "defiant joy", "quiet rage", "anxious hope"]


# Appendix A dominance for all 68 nodes (the only source of dominance in the originals).
A_DOMINANCE = dict(
    (pair.rsplit(":", 1)[0].replace("_", " "), float(pair.rsplit(":", 1)[1])) for pair in """
grief:0.25 melancholy:0.3 despair:0.15 sorrow:0.25 wistfulness:0.4 longing:0.35 heartache:0.25 emptiness:0.2
numbness:0.25 resignation:0.2 rage:0.9 fury:0.85 frustration:0.7 irritation:0.6 annoyance:0.55 resentment:0.65
bitterness:0.6 hostility:0.8 terror:0.15 panic:0.18 anxiety:0.22 worry:0.25 unease:0.28 dread:0.2
apprehension:0.25 vulnerability:0.18 ecstasy:0.85 elation:0.8 happiness:0.75 contentment:0.7 serenity:0.65
peace:0.6 calm:0.55 relief:0.7 gratitude:0.72 hope:0.73 love:0.75 adoration:0.78 affection:0.7 tenderness:0.68
warmth:0.65 acceptance:0.68 belonging:0.72 excitement:0.78 eagerness:0.75 curiosity:0.68 interest:0.65
vigilance:0.7 amazement:0.6 astonishment:0.58 shock:0.45 startle:0.48 wonder:0.65 revulsion:0.75 loathing:0.72
contempt:0.7 distaste:0.6 disapproval:0.65 bittersweetness:0.4 nostalgia:0.42 catharsis:0.7 yearning:0.38
ambivalence:0.5 melancholic_hope:0.45 tender_grief:0.3 defiant_joy:0.8 quiet_rage:0.75 anxious_hope:0.28
""".split())


def test_dominance_is_appendix_a_for_all_68_nodes(th):
    assert len(A_DOMINANCE) == 68
    for name, d in A_DOMINANCE.items():
        assert th.get(name).dominance == d, name


@pytest.fixture(scope="module")
def th():
    return load_thesaurus()


def _doc():
    text = resources.files("kelly.emotion").joinpath("data/thesaurus.json").read_text(encoding="utf-8")
    return json.loads(text)


def test_72_base_emotions_in_8_families(th):
    assert th.families() == FAMILIES
    for family, names in BASE72.items():
        for name in names.split():
            assert th.get(name).family == family, name
        base = [e for e in th.in_family(family) if e.kind == "base"]
        assert len(base) == 9
    assert sum(1 for e in th.entries if e.kind == "base") == 72


def test_every_appendix_a_node_is_present(th):
    assert len(A_NAMES) == 68
    for name in A_NAMES:
        assert th.find(name) is not None, name
    assert len(th) == 72 + 23


def test_numbers_in_range_and_sourced(th):
    for e in th.entries:
        assert -1.0 <= e.valence <= 1.0 and 0.0 <= e.arousal <= 1.0 and 0.0 <= e.dominance <= 1.0, e.name
        for key in ("valence", "arousal", "dominance"):
            assert isinstance(e.source.get(key), str) and e.source[key], (e.name, key)
        assert e.description and len(e.tiers) >= 3
        for tier in e.tiers:
            assert 0 <= tier.intensity <= 1 and 3 <= len(tier.synonyms) <= 6
        assert e.name == e.name.lower() and e.display_name[0].isupper()


def test_appendix_a_numbers_win_where_names_overlap(th):
    for name, (v, a, d) in APPENDIX_A.items():
        e = th.get(name)
        assert (e.valence, e.arousal, e.dominance) == (v, a, d), name
        assert e.source["dominance"].startswith("appendix-A")
    assert th.get("wrath").source["dominance"].startswith("estimated: estimateDominance")
    assert th.get("wrath").source["valence"].startswith("appendix-B")
    assert "provenance" in _doc()


def test_related_names_resolve(th):
    for e in th.entries:
        assert e.related, e.name
        for name in e.related:
            assert th.find(name) is not None
    assert th.get("grief").related == ("melancholy", "despair", "sorrow")


def test_lookup_case_insensitive_and_synonyms(th):
    assert th.get("GRIEF").name == "grief"
    assert th.get("Melancholic  Hope").display_name == "Melancholic Hope"
    assert th.get("heavy-hearted").name == "sorrow"
    entry, intensity = th.synonym_index()["heavy hearted"]
    assert entry.name == "sorrow" and intensity == 0.6
    assert th.find("xyz") is None


def test_unknown_name_suggests(th):
    with pytest.raises(InputError, match=r"unknown emotion 'greif'; did you mean: grief"):
        th.get("greif")
    with pytest.raises(InputError, match="unknown emotion"):
        th.get("qqqqzzzz")


def test_nearest(th):
    assert th.nearest(-0.9, 0.3, 0.25).name == "grief"
    assert th.nearest(-0.8, 1.0).name == "rage"
    assert th.nearest(-0.8, 1.0, 0.9, exclude=("rage",)).name != "rage"


def test_state_for(th):
    s = state_for("Grief")
    assert (s.label, s.family, s.valence, s.dominance, s.source, s.confidence) == (
        "grief", "sadness", -0.9, 0.25, "thesaurus", 1.0)
    assert s.evidence == ()
    assert state_for("inconsolable").intensity == 1.0
    assert state_for("grief", 0.2).intensity == 0.2
    with pytest.raises(InputError):
        state_for("grief", 1.5)


def test_synonyms_unique_across_entries(th):
    owner = {}
    for e in th.entries:
        for t in e.tiers:
            for s in t.synonyms:
                key = normalize_phrase(s)
                assert owner.setdefault(key, e.name) == e.name, key


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["entries"][0].update(valence=1.5), "euphoria.*valence"),
    (lambda d: d["entries"][1].update(related=["nonesuch"]), "ecstasy.*nonesuch"),
    (lambda d: d["entries"][2]["source"].pop("dominance"), "elation.*source"),
    (lambda d: d["entries"][3].update(family="zest"), "delight.*family"),
    (lambda d: d["entries"][4].update(tiers=[]), "happiness.*tiers"),
    (lambda d: d.update(entries=[]), "entries"),
])
def test_validation_names_the_broken_entry(mutate, message):
    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(FileFormatError, match=message):
        Thesaurus.from_document(doc)
