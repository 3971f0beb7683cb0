"""Training data (kelly.ml.data): corpus conversion, weak labels, MIDI reading, targets, splits, loaders.

Everything runs on a handful of pieces in tmp_path; no full conversion happens here.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from kelly.errors import InputError
from kelly.ml import schema as S
from kelly.ml.data import labels as L
from kelly.ml.data import split as SP
from kelly.ml.data import targets as T
from kelly.ml.data.midi import NoteArrays, pitch_class_distribution, piano_roll, read_notes, symusic_available
from kelly.ml.data.store import Manifest, data_dir, read_manifest
from kelly.song import Note, Song, Track

from kelly.ml.data import corpus as C  # music21 is imported inside its functions

COLLECTIONS = ("bach", "essen", "oneills")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Three pieces of each of three collections, converted once for the module."""
    pytest.importorskip("music21")
    root = tmp_path_factory.mktemp("corpus")
    report = C.convert(COLLECTIONS, data_dir=root, limit=3, workers=1, show_progress=False)
    return root, report


def _records(root):
    return {r["id"]: r for r in C.load_manifest(root, status=None)}


def _notes(pieces: list[tuple[int, int, int, int]], *, ppq: int = 480, meter=(4, 4), track=None,
           drum=None, bpm=120.0) -> NoteArrays:
    """NoteArrays from (onset, pitch, duration, velocity) tuples."""
    a = np.array(pieces, dtype=np.int64).reshape(-1, 4)
    n = len(a)
    return NoteArrays(onset=a[:, 0], duration=a[:, 2], pitch=a[:, 1].astype(np.int16),
                      velocity=a[:, 3].astype(np.int16),
                      track=np.zeros(n, np.int16) if track is None else np.asarray(track, np.int16),
                      program=np.zeros(n, np.int16),
                      is_drum=np.zeros(n, bool) if drum is None else np.asarray(drum, bool), ppq=ppq,
                      tempos=np.array([[0.0, bpm]]), time_signatures=np.array([[0, meter[0], meter[1]]]))


# ------------------------------------------------------------------------------------ corpus
def test_listing_is_fast_unique_and_grouped():
    pytest.importorskip("music21")
    for name in COLLECTIONS:
        refs = C.list_pieces(name)
        ids = [r.id for r in refs]
        assert len(ids) == len(set(ids)) > 300
        assert all(r.group.startswith(f"{name}:") for r in refs)
    essen = C.list_pieces("essen")
    assert not any("test" in r.source.split("/")[1] for r in essen)  # music21's test files left out
    variants = [r for r in essen if r.id in ("essen/A0004A", "essen/A0004B")]
    assert len(variants) == 2 and variants[0].group == variants[1].group == "essen:A0004"


@pytest.mark.parametrize("value,expected", [
    ("G", (7, "ionian")), ("Em", (4, "aeolian")), ("ADor", (9, "dorian")), ("Dmix", (2, "mixolydian")),
    ("F#m", (6, "aeolian")), ("Bb", (10, "ionian")), ("H", (11, "ionian")), ("Es", (3, "ionian")),
    ("Bn", (11, None)), ("none", None), ("", None), ("Gm % comment", (7, "aeolian")),
])
def test_parse_abc_key(value, expected):
    assert C.parse_abc_key(value) == expected


def test_manifest_of_a_small_conversion(converted):
    root, report = converted
    assert report.converted == {n: 3 for n in COLLECTIONS}
    assert report.errors == {n: 0 for n in COLLECTIONS}
    recs = _records(root)
    assert len(recs) == 9
    for rec in recs.values():
        assert rec["status"] == "ok", rec
        assert (root / rec["midi"]).is_file()
        assert rec["collection"] in COLLECTIONS and rec["id"].startswith(rec["collection"] + "/")
        key = rec["key"]
        assert 0 <= key["tonic_pc"] < 12 and key["mode"] in L.MODE_VALENCE and 0 <= key["confidence"] <= 1
        assert re.fullmatch(r"\d+/\d+", rec["meter"])
        assert rec["notes"] > 10 and rec["duration_s"] > 0 and rec["onsets_per_quarter"] > 0
        lab = rec["labels"]
        assert -1 <= lab["valence"] <= 1 and 0 <= lab["arousal"] <= 1 and 0 <= lab["dominance"] <= 1
        assert rec["split"] in SP.SPLITS and rec["split"] == SP.split_of(rec)
    # where the keys came from: O'Neill's headers name the mode, Essen's only the tonic, Bach's are analysed
    assert {r["key"]["source"] for r in recs.values() if r["collection"] == "oneills"} == {"header"}
    assert {r["key"]["source"] for r in recs.values() if r["collection"] == "essen"} == {"header tonic + analysis"}
    assert {r["key"]["source"] for r in recs.values() if r["collection"] == "bach"} == {"analysis"}
    # the chorales carry no dynamic marks: dominance stays neutral
    assert all(r["labels"]["dominance"] == 0.5 for r in recs.values())


def test_abc_accidentals_last_the_bar(converted):
    """Essen's first song writes B flat once per bar (_B2B2): both notes are B flat, so it is minor."""
    root, _ = converted
    rec = _records(root)["essen/A0001"]
    pitches = read_notes(root / rec["midi"]).pitch.tolist()
    assert pitches[1:3] == [70, 70]
    assert rec["key"]["tonic"] == "G" and rec["key"]["family"] == "minor"


def test_flatten_retry_path(converted, monkeypatch):
    root, _ = converted
    rec = _records(root)["oneills/0001"]  # music21's MIDI writer fails on this tune as parsed
    assert rec["flattened"] is True and rec["written"] == "notes" and "StreamException" in rec["midi_error"]
    assert rec["repeats"] == "as written"
    notes = read_notes(root / rec["midi"])
    assert notes.meter == (2, 4)  # the time signature survives flattening
    assert _records(root)["oneills/0002"]["written"] == "score"
    # the retry itself, forced on a score that writes fine
    from music21 import converter
    from music21.midi import translate

    score = converter.parse("X:1\nT:t\nM:3/4\nL:1/4\nK:C\nCDE|FGA|\n", format="abc")
    real = translate.streamToMidiFile
    calls = []

    def flaky(stream, *a, **k):
        calls.append(stream)
        if len(calls) == 1:
            raise TypeError("simulated writer failure")
        return real(stream, *a, **k)

    monkeypatch.setattr(translate, "streamToMidiFile", flaky)
    data, how, error = C.score_to_midi_bytes(score)
    assert how == "parts" and "simulated writer failure" in error and data.startswith(b"MThd")
    assert len(calls) == 2


def test_runaway_repeat_expansion_is_written_once():
    """Three end repeats without a start repeat: music21 plays the tune 4.7 times its length; written once."""
    from music21 import converter

    score = converter.parse(C.ABC_VERSION_LINE + "X:1\nT:t\nM:2/4\nL:1/8\nK:C\nCDEF|GABc:|cdef|gfed:|cBAG|FEDC:|\n",
                            format="abc")
    data, how, error = C.score_to_midi_bytes(score)
    assert how == "parts" and "expanded the repeats" in error
    assert C._midi_quarters(data) == pytest.approx(score.highestTime)
    # a well-formed repeat is left to music21's writer
    ok = converter.parse(C.ABC_VERSION_LINE + "X:1\nT:t\nM:2/4\nL:1/8\nK:C\n|:CDEF|GABc:|\n", format="abc")
    data, how, error = C.score_to_midi_bytes(ok)
    assert how == "score" and error is None
    assert ok.highestTime <= C._midi_quarters(data) <= 2 * ok.highestTime


def test_conversion_resumes_and_runs_in_parallel(converted):
    root, _ = converted
    again = C.convert(["essen"], data_dir=root, limit=3, show_progress=False)
    assert again.converted == {"essen": 0} and again.skipped == {"essen": 3}
    more = C.convert(["essen"], data_dir=root, limit=5, workers=2, show_progress=False)
    assert more.converted == {"essen": 2} and more.skipped == {"essen": 3}
    ids = [r["id"] for r in read_manifest(root / C.MANIFEST_NAME) if r["collection"] == "essen"]
    assert len(ids) == len(set(ids)) == 5


def test_conversion_arguments_are_checked(tmp_path):
    with pytest.raises(InputError, match="unknown collection"):
        C.convert(["mozart"], data_dir=tmp_path)
    with pytest.raises(InputError, match="workers"):
        C.convert(["bach"], data_dir=tmp_path, workers=0)
    with pytest.raises(InputError, match="limit"):
        C.convert(["bach"], data_dir=tmp_path, limit=-1)


# ------------------------------------------------------------------------------------ weak labels
def test_weak_label_signs_on_real_tunes(converted):
    root, _ = converted
    recs = _records(root)
    major, minor = recs["oneills/0002"], recs["oneills/0001"]  # K:D and K:Gm
    assert major["key"]["mode"] == "ionian" and major["labels"]["valence"] > 0
    assert minor["key"]["mode"] == "aeolian" and minor["labels"]["valence"] < 0
    for rec in recs.values():
        family = L.MODE_FAMILY[rec["key"]["mode"]]
        assert (rec["labels"]["valence"] > 0) == (family == "major")
    # O'Neill's "Slow" in the notes is a performance word that sets the tempo term
    assert major["label_terms"]["tempo_source"] == "word" and major["tempo_word"] == "slow"


def test_weak_label_formulas():
    base = dict(mode_confidence=None, bpm=None, onsets_per_quarter=1.0, meter=(4, 4))
    assert L.weak_labels(mode="ionian", mode_from_header=True, **base)["valence"] == 0.6
    assert L.weak_labels(mode="aeolian", mode_from_header=True, **base)["valence"] == -0.6
    half = L.weak_labels(mode="dorian", mode_from_header=False, **{**base, "mode_confidence": 0.0})
    assert half["valence"] == pytest.approx(-0.15)  # analysed with no confidence: half weight
    ordering = [L.MODE_VALENCE[m] for m in S.MODES]  # bright → dark
    assert ordering == sorted(ordering, reverse=True)
    slow = L.weak_labels(mode="ionian", mode_from_header=True, **{**base, "bpm": 60.0})
    fast = L.weak_labels(mode="ionian", mode_from_header=True, **{**base, "bpm": 170.0})
    assert fast["arousal"] > slow["arousal"] and fast["components"]["tempo_source"] == "marking"
    reel = L.weak_labels(mode="ionian", mode_from_header=True, rhythm_text="Reel", **base)
    air = L.weak_labels(mode="ionian", mode_from_header=True, rhythm_text="R:air", **base)
    assert reel["arousal"] > air["arousal"] and reel["components"]["rhythm"] == "reel"
    assert L.rhythm_type("The Fair Maid") is None and L.rhythm_type("Slip Jig") == "slip jig"
    assert L.tempo_word('"Very slow" "collected by J. O\'Neill"') == "very slow"
    loud = L.weak_labels(mode="ionian", mode_from_header=True, velocities=np.array([110, 120, 100]), **base)
    flat = L.weak_labels(mode="ionian", mode_from_header=True, velocities=np.array([90, 90]), **base)
    marked_off = L.weak_labels(mode="ionian", mode_from_header=True, velocities=np.array([110, 120]),
                               dynamics=False, **base)
    assert loud["dominance"] > 0.5 and flat["dominance"] == 0.5 and marked_off["dominance"] == 0.5


# ------------------------------------------------------------------------------------ MIDI reading
@pytest.mark.skipif(not symusic_available(), reason="symusic not installed")
def test_symusic_reader_matches_kellys_reader(converted):
    root, _ = converted
    for rec in _records(root).values():
        fast = read_notes(root / rec["midi"], backend="symusic")
        ref = read_notes(root / rec["midi"], backend="kelly")
        assert fast.as_tuples() == ref.as_tuples(), rec["id"]
        assert fast.ppq == ref.ppq and fast.meter == ref.meter
        assert fast.bpm == pytest.approx(ref.bpm)
        assert fast.onset.dtype == np.int64 and fast.pitch.dtype == np.int16


def test_reader_on_a_kelly_song_and_errors(tmp_path):
    song = Song(tracks=[Track("Melody", program=73, notes=[Note(0, 60, 480, 80), Note(480, 64, 240, 90)]),
                        Track("Drums", channel=9, notes=[Note(0, 36, 120, 100)])],
                tempos=[(0, 90.0), (960, 120.0)], time_signature=(3, 4))
    path = tmp_path / "k.mid"
    song.save(path)
    for backend in ("kelly", "symusic") if symusic_available() else ("kelly",):
        n = read_notes(path, backend=backend)
        assert len(n) == 3 and n.meter == (3, 4) and n.is_drum.sum() == 1
        assert set(n.program[~n.is_drum].tolist()) == {73}
        assert n.seconds(960) == pytest.approx(960 / 480 * 60 / 90)
        assert n.seconds(1440) == pytest.approx(2 * 60 / 90 + 60 / 120)
        assert len(n.to_ppq(96)) == 3 and n.to_ppq(96).onset.tolist() == [0, 0, 96]
    with pytest.raises(Exception, match="no such MIDI file"):
        read_notes(tmp_path / "missing.mid")
    (tmp_path / "bad.mid").write_bytes(b"not midi at all")
    with pytest.raises(Exception, match="bad.mid"):
        read_notes(tmp_path / "bad.mid")
    with pytest.raises(InputError, match="backend"):
        read_notes(path, backend="mido")


def test_piano_roll_and_histograms():
    notes = _notes([(0, 60, 480, 80), (0, 64, 480, 80), (480, 67, 960, 80)])
    roll = piano_roll(notes)
    assert roll.shape == (3, 128) and roll[0, 60] == 1 and roll[2, 67] == 1 and roll[2, 60] == 0
    vel = piano_roll(notes, velocity=True, segment="bar")
    assert vel.shape == (1, 128) and vel[0, 67] == 80
    dist = pitch_class_distribution(notes, tonic=7)  # G: C is degree 5, E degree 9, G degree 0
    assert dist.sum() == pytest.approx(1) and dist[0] == pytest.approx(0.5) and dist[5] == pytest.approx(0.25)


# ------------------------------------------------------------------------------------ targets
def test_targets_of_a_chorale(converted):
    root, _ = converted
    rec = _records(root)["bach/bwv269"]
    notes = read_notes(root / rec["midi"])
    t = T.piece_targets(notes, rec["key"]["tonic_pc"])
    assert t.pitch_classes.shape == (12,) and t.pitch_classes.sum() == pytest.approx(1)
    assert t.pitch_classes[0] == t.pitch_classes.max() or t.pitch_classes[7] == t.pitch_classes.max()
    assert t.note_profile.shape == (128,) and t.note_profile.max() == pytest.approx(1) and t.note_profile.min() >= 0
    assert np.all(t.note_profile[np.arange(128) % 12 == 1] < 0.2)  # the flat second is nearly unused
    assert t.chords.dtype == np.int16 and t.chords.min() >= -1 and t.chords.max() < 64
    readable = t.chords[t.chords >= 0]
    assert len(readable) > 0.8 * len(t.chords)  # four voices: nearly every beat holds a chord
    assert S.CHORD_CLASS_NAMES[int(readable[0])] == "I" and S.CHORD_CLASS_NAMES[int(readable[-1])] == "I"
    assert t.chord_distribution.shape == (64,) and t.chord_distribution.sum() == pytest.approx(1)
    assert t.chord_distribution[0] == t.chord_distribution.max()  # the tonic chord is the commonest
    assert t.groove.shape == (32,) and np.all(np.abs(t.groove) <= 1) and t.groove_mask.dtype == bool
    assert t.expression.shape == (16,) and np.all((t.expression >= 0) & (t.expression <= 1))
    # notated, constant velocities: nothing about dynamics, timing or drums is supervised
    g = dict(zip(S.GROOVE_PARAMS, t.groove_mask))
    assert not g["velocity_humanize"] and not g["microtiming_ms"] and not g["kick_density"]
    assert g["syncopation"] and g["complexity"] and g["space"]
    assert not t.expression_mask.any()
    assert np.all(t.groove[~t.groove_mask] == 0) and np.all(t.expression[~t.expression_mask] == 0.5)
    steps = T.note_steps(notes, rec["key"]["tonic_pc"])
    assert steps.ndim == 2 and steps.shape[1] == 128 and set(np.unique(steps)) <= {0.0, 1.0}


def test_chord_classes_relative_to_the_tonic():
    c_major = [(0, 48, 480, 80), (0, 64, 480, 80), (0, 67, 480, 80), (0, 72, 480, 80)]
    g7 = [(480, 43, 480, 80), (480, 59, 480, 80), (480, 65, 480, 80), (480, 62, 480, 80)]
    a_minor = [(960, 45, 480, 80), (960, 60, 480, 80), (960, 64, 480, 80)]
    notes = _notes(c_major + g7 + a_minor)
    assert [S.CHORD_CLASS_NAMES[c] for c in T.chord_sequence(notes, 0, segment="quarter")] == ["I", "V7", "vi"]
    assert [S.CHORD_CLASS_NAMES[c] for c in T.chord_sequence(notes, 7, segment="quarter")] == ["IV", "I7", "ii"]
    assert T.chord_class_of(2, "sus2", 0) == S.chord_class_index(9, "sus4")  # D sus2 = A sus4
    assert T.chord_class_of(0, "sus2", 0) == 61 and T.chord_class_of(0, "aug", 0) == 62
    assert T.chord_class_of(5, "dim7", 0) == 63  # F dim7 holds B, the leading tone
    assert T.chord_class_of(7, "5", 7) == 60 and T.chord_class_of(9, "min7", 0) == S.chord_class_index(9, "min")
    power = _notes([(0, 40, 480, 80), (0, 47, 480, 80)])
    assert T.chord_sequence(power, 4, segment="quarter").tolist() == [60]
    assert T.chord_sequence(_notes([(0, 60, 480, 80)]), 0, segment="quarter").tolist() == [-1]
    with pytest.raises(InputError):
        T.chord_class_of(0, "cluster", 0)


def test_note_profile_moves_to_c_by_the_smaller_step():
    g_major = _notes([(0, 67, 480, 80), (480, 71, 480, 80), (960, 74, 960, 80)])
    profile = T.note_profile(g_major, 7)  # G → C is up a fourth (+5), not down a fifth
    assert np.flatnonzero(profile).tolist() == [72, 76, 79]
    assert profile[79] == 1.0 and profile[72] == 0.5


def test_groove_and_expression_of_a_performed_drum_groove():
    ppq = 480
    hits = []
    rng = np.random.default_rng(0)
    for bar in range(4):
        for beat in range(4):
            t = bar * 4 * ppq + beat * ppq
            hits.append((t + int(rng.integers(-12, 12)), 36, 60, 110))             # four on the floor
            if beat in (1, 3):
                hits.append((t + int(rng.integers(-12, 12)), 38, 60, 100))         # backbeat
            for eighth in (0, ppq // 2):
                hits.append((t + eighth + int(rng.integers(-12, 12)), 42, 30, int(rng.integers(50, 90))))
    bass = [(bar * 4 * ppq + beat * ppq, 40, 400, 90) for bar in range(4) for beat in range(4)]
    notes = _notes(hits + bass, drum=[True] * len(hits) + [False] * len(bass),
                   track=[1] * len(hits) + [0] * len(bass))
    facts = T.facts(notes)
    assert facts.drums and facts.performed and facts.dynamics and facts.bass
    values, mask = T.groove_target(notes)
    g = S.groove_dict(values)
    m = dict(zip(S.GROOVE_PARAMS, mask))
    assert m["four_on_floor"] and g["four_on_floor"] == pytest.approx(1.0)
    assert m["backbeat_strength"] and g["backbeat_strength"] == pytest.approx(1.0)
    assert m["kick_density"] and g["kick_density"] == pytest.approx(0.5)
    assert m["hat_density"] and g["hat_density"] == pytest.approx(0.5)
    assert m["bass_lock"] and g["bass_lock"] > 0.9
    assert m["microtiming_ms"] and 0 < g["microtiming_ms"] < 1
    assert not m["fill_prob"] and not m["half_time"] and not m["shuffle_hat"]
    expr, emask = T.expression_target(notes)
    e = dict(zip(S.EXPRESSION_PARAMS, emask))
    assert e["velocity_base"] and e["timing_spread"] and not e["attack"] and not e["brightness"]
    assert np.all((expr >= 0) & (expr <= 1))


# ------------------------------------------------------------------------------------ splits
def test_split_is_deterministic_and_by_hash():
    for pid in ("bach/bwv269", "essen/A0001", "oneills/0001", "x"):
        b = zlib.crc32(pid.encode()) % 10
        expected = "test" if b == 0 else "validation" if b == 1 else "train"
        assert SP.split_for_key(pid) == expected == SP.split_of(pid) == SP.split_of({"id": pid})
    ids = [f"piece/{i}" for i in range(20000)]
    counts = {s: 0 for s in SP.SPLITS}
    for pid in ids:
        counts[SP.split_of(pid)] += 1
    assert 0.77 < counts["train"] / len(ids) < 0.83
    assert 0.08 < counts["test"] / len(ids) < 0.12 and 0.08 < counts["validation"] / len(ids) < 0.12
    assert SP.split_of({"id": "a", "official_split": "test"}) == "test"
    with pytest.raises(InputError):
        SP.bucket_of("")


def test_no_leakage_between_splits(converted):
    root, _ = converted
    recs = list(_records(root).values())
    # windows of every piece (its beats, in blocks of 8) inherit the piece's split
    windows = []
    for rec in recs:
        notes = read_notes(root / rec["midi"])
        chords = T.chord_sequence(notes, rec["key"]["tonic_pc"])
        windows += [(rec["id"], SP.split_of(rec)) for _ in range(0, len(chords), 8)]
    by_piece: dict[str, set] = {}
    for pid, split in windows:
        by_piece.setdefault(pid, set()).add(split)
    assert all(len(s) == 1 for s in by_piece.values())
    # versions of one piece (a group) share a split, whatever their ids
    group = [{"id": f"essen/A9{i}", "group": "essen:A9"} for i in range(30)]
    assert len({SP.split_of(r) for r in group}) == 1
    parts = SP.split_records(recs + group)
    assert sum(len(v) for v in parts.values()) == len(recs) + len(group)
    seen = [set(r["id"] for r in parts[s]) for s in SP.SPLITS]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


# ------------------------------------------------------------------------------------ store
def test_data_dir_and_manifest_survive_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("KELLY_DATA_DIR", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("KELLY_DATA_DIR")
    assert data_dir() == Path("build") / "corpus"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        data_dir(tmp_path / "file")
    m = Manifest(tmp_path / "m.jsonl")
    m.append([{"id": "a", "status": "ok"}])
    with open(m.path, "a") as fh:
        fh.write('{"id": "b", "sta')  # a crash in the middle of a line
    assert [r["id"] for r in m.records()] == ["a"]
    m.append([{"id": "c", "status": "ok"}, {"id": "a", "status": "error"}])
    recs = m.records()
    assert [r["id"] for r in recs] == ["a", "c"] and recs[0]["status"] == "error"
    assert m.ids(statuses=["ok"]) == {"c"}


# ------------------------------------------------------------------------------------ external datasets
def _midi(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Song(tracks=[Track("Piano", notes=[Note(0, 60, 480, 80), Note(480, 64, 480, 70)])]).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_deam_layout(tmp_path):
    from kelly.ml.data.external import DEAM_STATIC, load_deam, load_deam_dynamic

    with pytest.raises(InputError, match="DEAM: no such folder"):
        load_deam(tmp_path / "nope")
    with pytest.raises(InputError) as err:
        load_deam(tmp_path)
    msg = str(err.value)
    assert "static_annotations_averaged_songs_1_2000.csv" in msg and str(tmp_path) in msg and "docs/data.md" in msg
    _write(tmp_path / DEAM_STATIC, "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"
                                   "2, 3.1, 0.94, 3, 0.63\n3, 9, 1.1, 1, 0.9\n")
    with pytest.raises(InputError, match="MEMD_audio"):
        load_deam(tmp_path)
    pieces = load_deam(tmp_path, require_audio=False)
    assert [p.id for p in pieces] == ["deam/2", "deam/3"]
    assert pieces[1].valence == 1.0 and pieces[1].arousal == 0.0
    assert pieces[0].valence == pytest.approx((3.1 - 5) / 4) and pieces[0].arousal == pytest.approx(2 / 8)
    _write(tmp_path / "MEMD_audio" / "2.mp3", "fake")
    with pytest.raises(InputError, match=r"1 of 2 audio files .* missing .*3\.mp3"):
        load_deam(tmp_path)
    ok = load_deam(tmp_path, strict=False)
    assert [p.id for p in ok] == ["deam/2"] and ok[0].audio.name == "2.mp3" and ok[0].group == "deam:2"
    _write(tmp_path / DEAM_STATIC, "song_id,arousal_mean\n2,3\n")
    with pytest.raises(InputError, match="lacks the column"):
        load_deam(tmp_path, require_audio=False)
    dyn = tmp_path / "annotations/annotations averaged per song/dynamic (per second annotations)"
    _write(dyn / "valence.csv", "song_id,sample_15000ms,sample_15500ms\n2,-0.5,0.25\n")
    _write(dyn / "arousal.csv", "song_id,sample_15000ms,sample_15500ms\n2,0,1\n")
    d = load_deam_dynamic(tmp_path)
    assert d["2"] == {"time_s": [15.0, 15.5], "valence": [-0.5, 0.25], "arousal": [0.5, 1.0]}


def test_lakh_layout(tmp_path):
    from kelly.ml.data.external import load_lakh

    with pytest.raises(InputError, match="Lakh MIDI: expected lmd_full/"):
        load_lakh(tmp_path)
    (tmp_path / "lmd_full").mkdir()
    with pytest.raises(InputError, match="no .mid files"):
        load_lakh(tmp_path)
    _midi(tmp_path / "lmd_full" / "0" / "0a1b.mid")
    _midi(tmp_path / "lmd_full" / "f" / "ff00.mid")
    pieces = load_lakh(tmp_path)
    assert [p.id for p in pieces] == ["lakh/0a1b", "lakh/ff00"] and pieces[0].valence is None
    assert load_lakh(tmp_path / "lmd_full", limit=1)[0].id == "lakh/0a1b"
    msd = "TRAAAGR128F425B14B"
    other = tmp_path / "m"
    _midi(other / "lmd_matched" / "A" / "A" / "A" / msd / "1.mid")
    _midi(other / "lmd_matched" / "A" / "A" / "A" / msd / "2.mid")
    matched = load_lakh(other)
    assert {p.group for p in matched} == {f"lakh:{msd}"}
    assert len({SP.split_of(p.record()) for p in matched}) == 1
    assert len(read_notes(matched[0].midi)) == 2


def test_maestro_layout(tmp_path):
    from kelly.ml.data.external import load_maestro

    with pytest.raises(InputError, match="MAESTRO: expected maestro-v3.0.0.csv"):
        load_maestro(tmp_path)
    _write(tmp_path / "maestro-v3.0.0.csv", "canonical_composer,canonical_title,year,midi_filename\nA,B,2018,x.midi\n")
    with pytest.raises(InputError, match="lacks the column.*split"):
        load_maestro(tmp_path)
    header = "canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration\n"
    _write(tmp_path / "maestro-v3.0.0.csv", header + 'Chopin,"Nocturne, Op. 9",test,2018,2018/a.midi,2018/a.wav,30\n'
                                                     "Bach,Prelude,train,2017,2017/b.midi,2017/b.wav,20\n")
    with pytest.raises(InputError, match=r"MAESTRO: 2 of 2 MIDI files .* missing .*2018/a\.midi"):
        load_maestro(tmp_path)
    _midi(tmp_path / "2018" / "a.midi")
    _midi(tmp_path / "2017" / "b.midi")
    pieces = load_maestro(tmp_path)
    assert [p.official_split for p in pieces] == ["test", "train"]
    assert [SP.split_of(p.record()) for p in pieces] == ["test", "train"]
    assert pieces[0].meta["canonical_title"] == "Nocturne, Op. 9"
    with pytest.raises(InputError, match="audio"):
        load_maestro(tmp_path, require_audio=True)
    (tmp_path / "maestro-v3.0.0.csv").unlink()
    (tmp_path / "maestro-v3.0.0.json").write_text(json.dumps({
        "canonical_composer": {"0": "Bach"}, "canonical_title": {"0": "Prelude"}, "split": {"0": "validation"},
        "year": {"0": 2017}, "midi_filename": {"0": "2017/b.midi"}, "audio_filename": {"0": "2017/b.wav"},
        "duration": {"0": 20.0}}))
    assert [p.official_split for p in load_maestro(tmp_path)] == ["validation"]


def test_groove_layout(tmp_path):
    from kelly.ml.data.external import load_groove

    with pytest.raises(InputError, match="Groove MIDI: expected groove/info.csv"):
        load_groove(tmp_path)
    _write(tmp_path / "groove" / "info.csv",
           "drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,audio_filename,duration,split\n"
           "drummer1,drummer1/session1,drummer1/session1/1,funk,80,beat,4-4,drummer1/session1/1_funk_80_beat_4-4.mid,"
           ",86.7,train\n")
    with pytest.raises(InputError, match="1 of 1 MIDI files"):
        load_groove(tmp_path)
    _midi(tmp_path / "groove" / "drummer1" / "session1" / "1_funk_80_beat_4-4.mid")
    (piece,) = load_groove(tmp_path)
    assert piece.id == "groove/drummer1/session1/1" and piece.official_split == "train"
    assert piece.meta["bpm"] == 80.0 and piece.meta["style"] == "funk" and piece.group == "groove:drummer1/session1"
    assert load_groove(tmp_path / "groove")[0].id == piece.id


def test_emopia_layout(tmp_path):
    from kelly.ml.data.external import load_emopia, load_external

    with pytest.raises(InputError, match="EMOPIA: expected label.csv"):
        load_emopia(tmp_path)
    root = tmp_path / "EMOPIA_1.0"
    _write(root / "label.csv", "ID,4Q,annotator\nQ1__8v0MFBZoco_0,1,a\nQ1__8v0MFBZoco_1,1,a\nQ3_abc_0,3,b\n")
    with pytest.raises(InputError, match="midis/"):
        load_emopia(tmp_path)
    for cid in ("Q1__8v0MFBZoco_0", "Q1__8v0MFBZoco_1", "Q3_abc_0"):
        _midi(root / "midis" / f"{cid}.mid")
    pieces = load_external("emopia", tmp_path)
    assert [(p.valence, p.arousal) for p in pieces] == [(0.5, 0.75), (0.5, 0.75), (-0.5, 0.25)]
    assert pieces[0].group == pieces[1].group == "emopia:_8v0MFBZoco" != pieces[2].group
    assert SP.split_of(pieces[0].record()) == SP.split_of(pieces[1].record())
    _write(root / "label.csv", "ID,4Q,annotator\nQ1__8v0MFBZoco_0,5,a\n")
    with pytest.raises(InputError, match="quadrant"):
        load_emopia(tmp_path)
    with pytest.raises(InputError, match="unknown dataset"):
        load_external("mnist", tmp_path)


# ------------------------------------------------------------------------------------ composed
@pytest.fixture(scope="module")
def composed_set(tmp_path_factory):
    from kelly.ml.data import composed

    root = tmp_path_factory.mktemp("composed")
    report = composed.compose_dataset(data_dir=root, emotions=["grief", "happiness"], seeds=[0, 1], bars=2,
                                      show_progress=False)
    return root, report


def test_composed_dataset_has_exact_labels(composed_set):
    from kelly.emotion.thesaurus import load_thesaurus
    from kelly.ml.data import composed

    root, report = composed_set
    assert report["composed"] == 4 and report["errors"] == 0
    recs = composed.load_composed(root)
    assert len(recs) == 4
    th = load_thesaurus()
    for rec in recs:
        entry = th.get(rec["emotion"])
        assert (rec["labels"]["valence"], rec["labels"]["arousal"], rec["labels"]["dominance"]) == entry.pad
        assert (root / rec["midi"]).is_file() and rec["group"] == f"composed:{entry.name}"
        assert rec["chords"] and all(-1 <= c < 64 for _, _, c in rec["chords"])
        assert 0 <= rec["key"]["tonic_pc"] < 12
        steps = composed.chord_steps(rec)
        assert len(steps) == 8 and steps[-1] in (0, 1)  # two bars of 4/4 that end on the tonic chord (I or i)
    happy = next(r for r in recs if r["emotion"] == "happiness")
    assert [S.CHORD_CLASS_NAMES[c] for _, _, c in happy["chords"]] == ["V", "I"]  # the explanation's numerals
    grief = [r for r in recs if r["emotion"] == "grief"]
    assert len({r["split"] for r in grief}) == 1  # all seeds of one emotion in one split
    again = composed.compose_dataset(data_dir=root, emotions=["grief", "happiness"], seeds=[0, 1], bars=2,
                                     show_progress=False)
    assert again["composed"] == 0 and again["skipped"] == 4
    with pytest.raises(InputError, match="unknown emotion"):
        composed.compose_dataset(data_dir=root, emotions=["flibbertigibbet"], show_progress=False)


def test_render_one_composed_piece(composed_set):
    from kelly.render.audio import synth_available

    if not synth_available():
        pytest.skip("no FluidSynth here")
    from kelly.ml.data import composed, render

    root, _ = composed_set
    rec = composed.load_composed(root)[0]
    wav = render.render_record(rec, data_dir=root)
    assert wav == render.audio_path(rec, root) and wav.stat().st_size > 1000
    import wave

    with wave.open(str(wav)) as w:
        assert w.getframerate() == render.SAMPLE_RATE and w.getnframes() > render.SAMPLE_RATE
    mtime = wav.stat().st_mtime_ns
    assert render.render_record(rec, data_dir=root) == wav and wav.stat().st_mtime_ns == mtime  # cached



def test_command_line_summary(converted, capsys):
    from kelly.ml.data.__main__ import main

    root, _ = converted
    assert main(["summary", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "bach" in out and "ok" in out
    assert main(["convert", "--data-dir", str(root), "--collections", "mozart"]) == 2
    assert "unknown collection" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the trainer's entry point
def test_training_datasets_fit_the_trainers_interface(converted):
    pytest.importorskip("torch")
    from kelly.ml.data import training_datasets
    from kelly.ml.data.training import record_embedding
    from kelly.ml.train.data import check_datasets

    root, _ = converted
    test_ids = {r["id"] for r in _records(root).values() if r["split"] == "test"}
    for key, seq in (("melodytransformer", 4), ("harmonypredictor", 4), ("groovepredictor", 4)):
        train, val = training_datasets(key, data_dir=root, seq_len=seq)
        check_datasets(key, train, val)
        x, y, m = train[0]
        assert m.shape == y.shape and float(m.max()) == 1.0
    x, y, m = training_datasets("harmonypredictor", data_dir=root)[0][0]
    assert float(y.sum()) == pytest.approx(1.0) and float(x[64:].abs().sum()) == 0.0  # no audio half
    rec = _records(root)["oneills/0002"]
    e = record_embedding(rec)
    assert e[0] == pytest.approx(rec["labels"]["valence"]) and e[63] == pytest.approx(0.5)
    # notated chorales and tunes supervise no expression at all; no rendered audio for the recognizer
    with pytest.raises(InputError, match="supervises the dynamicsengine"):
        training_datasets("dynamicsengine", data_dir=root)
    with pytest.raises(InputError, match="render"):
        training_datasets("emotionrecognizer", data_dir=root)
    with pytest.raises(InputError, match="no training data"):
        training_datasets("groovepredictor", data_dir=root / "empty")
    assert test_ids is not None  # test pieces exist in the manifest but are never returned (split by piece)
