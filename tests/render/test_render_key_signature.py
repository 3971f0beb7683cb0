"""Every track of a written MIDI file carries the key and time signature at tick 0 (MuseScore 3 reads the key
only from the track that holds the notes)."""

from __future__ import annotations

import io

import mido

from kelly.song import DRUM_CHANNEL, Note, Song, Track, read_midi_bytes


def _song(key="Dm"):
    return Song(tracks=[Track("Melody", 73, 0, [Note(0, 62, 480, 90), Note(480, 70, 480, 80)]),
                        Track("Bass", 32, 1, [Note(0, 38, 960, 90)]),
                        Track("Drums", 0, DRUM_CHANNEL, [Note(0, 36, 120, 100)])],
                key_signature=key, time_signature=(3, 4), markers=[(0, "intro")])


def _tick0(track, kind):
    now, found = 0, []
    for msg in track:
        now += msg.time
        if msg.type == kind:
            found.append((now, msg))
    return found


def test_every_track_has_the_key_and_time_signature_at_tick_0(composition):
    for song in (_song(), composition.song, composition.score):
        mid = mido.MidiFile(file=io.BytesIO(song.to_bytes()))
        assert len(mid.tracks) == len(song.tracks) + 1
        for track in mid.tracks:
            keys = _tick0(track, "key_signature")
            times = _tick0(track, "time_signature")
            assert [(t, m.key) for t, m in keys] == [(0, song.key_signature)], track.name
            assert [(t, m.numerator, m.denominator) for t, m in times] == [(0, *song.time_signature)], track.name
        names = [track[0] for track in mid.tracks[1:]]
        assert all(m.type == "track_name" for m in names)  # the name still comes first


def test_writing_stays_deterministic_and_reads_back_the_same():
    a, b = _song().to_bytes(), _song().to_bytes()
    assert a == b
    back = read_midi_bytes(a)
    assert back.key_signature == "Dm" and back.time_signature == (3, 4)
    assert [t.name for t in back.tracks] == ["Melody", "Bass", "Drums"]
    assert read_midi_bytes(back.to_bytes()).to_bytes() == back.to_bytes()


def test_no_key_signature_means_none_anywhere():
    mid = mido.MidiFile(file=io.BytesIO(_song(key=None).to_bytes()))
    assert not any(msg.type == "key_signature" for track in mid.tracks for msg in track)
    assert all(_tick0(track, "time_signature") for track in mid.tracks)
