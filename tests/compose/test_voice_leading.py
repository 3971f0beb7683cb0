"""Voice leading keeps chord changes smooth and avoids parallel perfect intervals."""

from kelly.theory.roman import romans_to_chords
from kelly.theory.scales import parse_key
from kelly.theory.voice_leading import _parallel_perfect, voice_progression


def test_smooth_motion_in_every_key():
    for tonic in ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"):
        for mode, prog in (("major", "I vi IV V I ii V I"), ("minor", "i iv bVI V i bVII bIII V")):
            key = parse_key(f"{tonic} {mode}")
            chords = romans_to_chords(prog, key)
            voicings = voice_progression(chords)
            for chord, v in zip(chords, voicings):
                assert set(p % 12 for p in v) <= set(chord.pitch_classes())
                assert 45 <= min(v) and max(v) <= 80
            moves = [sum(abs(a - b) for a, b in zip(p, q)) / 4 for p, q in zip(voicings, voicings[1:])]
            assert sum(moves) / len(moves) <= 3.0, (tonic, mode, moves)
            assert sum(_parallel_perfect(p, q) for p, q in zip(voicings, voicings[1:])) == 0


def test_free_voicing_allows_parallels():
    key = parse_key("C")
    chords = romans_to_chords("I5 bVII5 IV5 I5", key)
    free = voice_progression(chords, free=True, voices=2)
    assert all(len(v) == 2 and (v[1] - v[0]) % 12 in (7, 5) for v in free)
