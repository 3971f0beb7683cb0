"""What each groove and expression output does, measured from the MIDI (docs/network-controls.md).

For a handful of outputs at both ends (the others neutral) the written file is measured:
ride against closed hat, crashes, kicks per bar, the backbeat's place, the swing ratio of
off-beat eighths, tempo at phrase ends and over the piece, sustain pedal (CC64), vibrato,
pitch-bend scoops, swell and sound controllers, legato, velocities, contrast between
sections, the bass locked to the kick, percussion, fills, the humanizer's spreads. Then:
neutral hints leave the kit as it is without hints, extremes stay musical (ranges,
duplicates, clashes), the same seed gives the same bytes, controllers never appear
without hints, and Kelly reads its own files with controllers back.
"""

from __future__ import annotations

import io
import json
import statistics
from functools import lru_cache

import mido
import numpy as np
import pytest

from kelly import quality
from kelly.emotion.thesaurus import state_for
from kelly.generator import ComposeOptions, compose
from kelly.ml import schema
from kelly.ml.processor import MusicHints
from kelly.song import read_midi_bytes

CLOSED_HAT, OPEN_HAT, RIDE, CRASH, KICK, SNARE, TAMBOURINE, SHAKER = 42, 46, 51, 49, 36, 38, 54, 70
BAR = 1920


def hints(**values) -> MusicHints:
    """Neutral hints with the named outputs set (groove in network units [-1, 1], expression in [0, 1])."""
    groove, expression = np.zeros(32), np.full(16, 0.5)
    for name, value in values.items():
        if name in schema.GROOVE_PARAMS:
            groove[schema.GROOVE_PARAMS.index(name)] = value
        else:
            expression[schema.EXPRESSION_PARAMS.index(name)] = value
    return MusicHints(note_probs=np.full(128, 1 / 128), chord_probs=np.full(64, 1 / 64), groove=groove,
                      expression=expression)


@lru_cache(maxsize=None)
def _piece(emotion, bars, seed, humanize, complexity, items):
    opts = ComposeOptions(bars=bars, seed=seed, humanize=humanize, complexity=complexity)
    comp = compose(state_for(emotion), opts, hints=None if items is None else hints(**dict(items)))
    data = comp.song.to_bytes()
    return comp, read_midi_bytes(data), mido.MidiFile(file=io.BytesIO(data)), data


def piece(emotion="anxiety", bars=8, seed=1, quantize=False, plain=False, **values):
    """(composition, song read back, mido file, bytes) of 8 bars with every part; ``quantize`` composes with
    ``--humanize 0`` (no humanizer: positions measured exactly), ``plain`` without hints."""
    return _piece(emotion, bars, seed, 0.0 if quantize else None, 1.0,
                  None if plain else tuple(sorted(values.items())))


def hits(song, pitch) -> list:
    return [n for t in song.tracks if t.is_drum for n in t.notes if n.pitch == pitch]


def part(song, role):
    return next(t for t in song.tracks if t.role.value == role)


def messages(mid, kind, number=None) -> list:
    return [m for t in mid.tracks for m in t if m.type == kind and (number is None or m.control == number)]


def controls(comp, name):
    return comp.explanation.engines["drums"]["controls"][name]


# ------------------------------------------------------------------ the kit
def test_ride_vs_hat_moves_the_hat_part_to_the_ride_and_back():
    _, ride, _, _ = piece(ride_vs_hat=1.0)
    _, hat, _, _ = piece(ride_vs_hat=-1.0)
    assert len(hits(ride, RIDE)) > 10 and not hits(ride, CLOSED_HAT)
    assert len(hits(hat, CLOSED_HAT)) > 10 and not hits(hat, RIDE)
    # happiness plays a ride pattern: below neutral its quietest phrases go to the closed hat
    _, own, _, _ = piece("happiness", bars=16)
    _, closed = piece("happiness", bars=16, ride_vs_hat=-1.0)[:2]
    assert not hits(own, CLOSED_HAT) and len(hits(closed, CLOSED_HAT)) > 10
    assert len(hits(closed, RIDE)) < len(hits(own, RIDE))


def test_crashes_on_phrase_starts():
    comp, many, _, _ = piece("excitement", bars=16, crash_prob=1.0)
    _, none, _, _ = piece("excitement", bars=16, crash_prob=-1.0)
    added = controls(comp, "crashes")
    assert added >= 2
    assert len(hits(many, CRASH)) == len(hits(none, CRASH)) + added  # the transitions' own crashes stay
    bar_of = lambda n: round(n.start / BAR)  # noqa: E731 - a humanized downbeat may land a few ticks early
    mine = {bar_of(n) for n in hits(many, CRASH)} - {bar_of(n) for n in hits(none, CRASH)}
    starts = {round(tick / BAR) for tick, _ in many.markers}
    assert mine and all(bar % 4 == 0 or bar in starts for bar in mine), (mine, starts)
    assert all(abs(n.start - bar_of(n) * BAR) <= 40 for n in hits(many, CRASH))  # on the downbeat


def test_kicks_per_bar_follow_kick_density_and_four_on_the_floor():
    per_bar = [controls(piece("excitement", quantize=True, kick_density=v)[0], "kicks_per_bar") for v in (-1, 0, 1)]
    assert per_bar[0] < per_bar[1] < per_bar[2], per_bar
    comp, song, _, _ = piece("excitement", quantize=True, four_on_floor=1.0)
    bars: dict = {}
    for n in hits(song, KICK):
        bars.setdefault(n.start // BAR, set()).add(n.start % BAR)
    # bars of the sections loud enough for the whole kit (a breakdown may cut the last beat before a seam)
    full = [b for s in comp.explanation.arrangement.sections if s.energy >= 0.5
            for b in range(s.start_bar - 1, s.start_bar - 1 + s.bars)]
    on_every_beat = [b for b in full if {0, 480, 960, 1440} <= bars.get(b, set())]
    assert len(full) >= 4 and len(on_every_beat) >= len(full) - 1, bars


def _backbeat(comp, song) -> dict:
    """Loud snares on beats (not ghosts), by position in the bar, in bars without a fill."""
    filled = {f["bar"] - 1 for f in comp.explanation.engines["fills"]["fills"]}
    counts: dict = {}
    for n in hits(song, SNARE):
        if n.velocity >= 70 and n.start % 480 == 0 and n.start // BAR not in filled:
            counts[n.start % BAR] = counts.get(n.start % BAR, 0) + 1
    return counts


def test_half_time_puts_the_backbeat_on_three_and_double_time_on_the_ands():
    normal = _backbeat(*piece("excitement", quantize=True, half_time=-1.0)[:2])
    half = _backbeat(*piece("excitement", quantize=True, half_time=1.0)[:2])
    assert normal.get(480, 0) >= 2 and normal.get(1440, 0) >= 2
    assert half.get(960, 0) >= 2 and not half.get(480) and not half.get(1440)
    doubled = piece(quantize=True, double_time=1.0)[1]
    ands = [n for n in hits(doubled, SNARE) if n.start % 480 == 240]
    assert len(ands) >= 4
    assert len(hits(doubled, CLOSED_HAT)) > 1.5 * len(hits(piece(quantize=True, double_time=-1.0)[1], CLOSED_HAT))


def test_triplets_shuffle_toms_and_variation_are_heard():
    comp, song, _, _ = piece("excitement", quantize=True, triplet_feel=1.0)
    triplet = [n for n in hits(song, CLOSED_HAT) if n.start % 480 in (160, 320)]
    beats = controls(comp, "triplet_beats")
    assert beats > 0 and beats <= len(triplet) <= 2 * beats  # a fill may take a beat's triplets
    shuffled = piece(quantize=True, shuffle_hat=1.0)[1]
    assert {n.start % 480 for n in hits(shuffled, CLOSED_HAT)} == {0, 360}
    comp, song, _, _ = piece("excitement", tom_density=1.0)
    assert controls(comp, "toms") > 0 and any(n.pitch in (41, 43) for n in hits(song, 41) + hits(song, 43))
    comp = piece("excitement", variation=-1.0)[0]
    assert controls(comp, "repeated_bars") > 0 and controls(piece("excitement", variation=1.0)[0], "variations") > 0


def test_fills_follow_fill_prob():
    many = piece("excitement", bars=16, fill_prob=1.0)[0].explanation.engines["fills"]
    few = piece("excitement", bars=16, fill_prob=-1.0)[0].explanation.engines["fills"]
    assert len(many["fills"]) > len(few["fills"])
    assert many["controls"]["phrase_fills_added"] > 0 and few["controls"]["section_fills_skipped"] > 0


def test_percussion_density_and_subdivision():
    busy = piece("excitement", quantize=True, percussion_density=1.0, subdivision=1.0)
    sparse = piece("excitement", quantize=True, percussion_density=-1.0, subdivision=-1.0)
    assert len(hits(busy[1], TAMBOURINE)) > len(hits(sparse[1], TAMBOURINE))
    assert any(n.start % 240 == 120 for n in hits(busy[1], SHAKER))  # sixteenths
    assert not any(n.start % 240 for n in hits(sparse[1], SHAKER))  # eighths only, off-beats thinned
    assert len(hits(sparse[1], SHAKER)) < len(hits(busy[1], SHAKER)) / 2


# ------------------------------------------------------------------ feel and tempo
def test_swing_ratio_of_off_beat_eighths():
    straight = {n.start % 480 for n in hits(piece(quantize=True, swing=-1.0)[1], CLOSED_HAT)}
    swung = {n.start % 480 for n in hits(piece(quantize=True, swing=1.0)[1], CLOSED_HAT)}
    assert straight == {0, 240}  # 1:1
    assert swung == {0, 320}  # 2:1, triplet swing
    # hope swings by itself (0.66): the network may halve it, not erase it
    own = {n.start % 480 for n in hits(piece("hope", quantize=True, swing=-1.0)[1], RIDE)}
    assert own == {0, 280}


def tempo_at(song, tick):
    return [b for t, b in song.tempos if t <= tick][-1]


def test_rubato_broadens_phrase_ends_and_tempo_drift_bends_the_piece():
    strict = piece(rubato=0.0)[1]
    free = piece(rubato=1.0)[1]
    assert strict.tempos == piece(plain=True)[1].tempos  # no ritardando below neutral
    start = tempo_at(free, 0)
    last_beat = 4 * BAR - 480
    assert tempo_at(free, last_beat) < 0.9 * start  # the last beat of the phrase slows
    assert tempo_at(free, 4 * BAR) == start  # a tempo on the next phrase
    assert tempo_at(free, 8 * BAR - 1) < start  # and the piece's end broadens too
    rushing, dragging = piece(tempo_drift=1.0)[1], piece(tempo_drift=-1.0)[1]
    assert tempo_at(rushing, 0) == tempo_at(dragging, 0) == start  # the opening tempo stays the feeling's
    assert tempo_at(rushing, 7 * BAR) > 1.05 * start and tempo_at(dragging, 7 * BAR) < 0.95 * start
    assert quality.max_tempo_step(rushing) < 0.02


def _grid_spread(notes, step=120) -> float:
    return statistics.pstdev([(n.start + step // 2) % step - step // 2 for n in notes])


def test_the_humanizers_spreads_follow_the_network():
    tight = piece("anxiety", seed=3, microtiming_ms=-1.0, timing_humanize=-1.0, velocity_humanize=-1.0)[1]
    loose = piece("anxiety", seed=3, microtiming_ms=1.0, timing_humanize=1.0, velocity_humanize=1.0)[1]
    def kit(song):  # the hits written (the humanizer's own ghost notes, at most 45, lean on their hit)
        return [n for t in song.tracks if t.is_drum for n in t.notes if n.velocity > 45]

    assert _grid_spread(kit(tight)) == 0  # every hit the same few ticks behind its grid line
    assert _grid_spread(kit(loose)) > 4
    chords = part(tight, "harmony").notes
    assert _grid_spread(chords) < _grid_spread(part(loose, "harmony").notes)
    assert statistics.pstdev(n.velocity for n in hits(tight, CLOSED_HAT)) < \
        statistics.pstdev(n.velocity for n in hits(loose, CLOSED_HAT))
    quantized = piece("anxiety", seed=3, humanize=0.0)[0]  # the expression output "humanize"
    assert quantized.explanation.engines["groove"]["humanize"]["complexity"] == 0


def test_bass_locks_to_the_kick():
    def bass_in_kit_bars(song):  # bass onsets in the bars the kit plays (the held last bar aside)
        kicks = [n.start for n in hits(song, KICK)]
        bars = {k // BAR for k in kicks} - {7}
        onsets = [n.start for n in part(song, "bass").notes if n.start // BAR in bars]
        return onsets, sum(any(abs(s - k) <= 20 for k in kicks) for s in onsets) / len(onsets)

    locked = piece("happiness", quantize=True, bass_lock=1.0)
    assert locked[0].explanation.engines["groove_hints"]["bars_locked_to_kick"] > 0
    own, share_own = bass_in_kit_bars(piece("happiness", quantize=True)[1])
    on, share_locked = bass_in_kit_bars(locked[1])
    tied, _ = bass_in_kit_bars(piece("happiness", quantize=True, bass_lock=-1.0)[1])
    assert share_locked > 0.85 and share_own < 0.5  # on the kick (and on chord changes) only
    assert len(tied) < len(own)  # below neutral the repeated notes are held through the kicks


# ------------------------------------------------------------------ velocities and lengths
def _mean_velocity(song, role, bars=None):
    notes = [n for n in part(song, role).notes if bars is None or n.start // BAR in bars]
    return statistics.fmean(n.velocity for n in notes)


def test_velocity_base_crescendo_and_contrast():
    loud, soft = piece(velocity_base=1.0)[1], piece(velocity_base=0.0)[1]
    assert _mean_velocity(loud, "melody") > _mean_velocity(soft, "melody") + 20
    up, down = piece("calm", bars=8, crescendo=1.0)[1], piece("calm", bars=8, crescendo=0.0)[1]
    rise = [_mean_velocity(s, "harmony", {3, 7}) - _mean_velocity(s, "harmony", {0, 4}) for s in (up, down)]
    assert rise[0] > 5 > -5 > rise[1], rise
    flat, wide = piece(bars=16, dynamic_contrast=-1.0)[1], piece(bars=16, dynamic_contrast=1.0)[1]

    def contrast(song):
        by = [_mean_velocity(song, "harmony", set(range(b, b + 4))) for b in (0, 4, 8, 12)]
        return max(by) - min(by)

    assert contrast(wide) > contrast(flat) + 8


def test_legato_joins_the_melody_and_staccato_detaches_it():
    joined, detached = part(piece(legato=1.0)[1], "melody").notes, part(piece(legato=0.0)[1], "melody").notes
    assert statistics.fmean(n.duration for n in joined) > 1.3 * statistics.fmean(n.duration for n in detached)
    for a, b in zip(joined, joined[1:]):
        assert a.end - b.start <= 20 + 40  # touching the next note (humanized), never swallowing it


# ------------------------------------------------------------------ controllers
def test_sustain_pedal_on_the_accompaniment_only_when_asked():
    _, _, mid, _ = piece("calm", sustain_pedal=1.0)
    pedal = messages(mid, "control_change", 64)
    assert pedal and {m.channel for m in pedal} <= {1, 3}  # chords and pad
    values = [m.value for t in mid.tracks for m in t if m.type == "control_change" and m.control == 64]
    assert values[-1] == 0 and 127 in values  # down on each chord, up at the end
    assert not messages(piece("calm", sustain_pedal=0.0)[2], "control_change", 64)
    assert not messages(piece("calm", plain=True)[2], "control_change")


def test_scoops_vibrato_swell_and_sound_controllers():
    comp, _, mid, _ = piece("calm", pitch_bend=1.0, vibrato=1.0, swell=1.0, brightness=1.0, attack=1.0,
                            release=0.0)
    bends = messages(mid, "pitchwheel")
    assert bends and min(m.pitch for m in bends) == -2048 and bends[-1].pitch == 0 and {m.channel for m in bends} == {0}
    for t in mid.tracks:  # each scoop comes back to the centre before the note ends
        values = [m.pitch for m in t if m.type == "pitchwheel"]
        assert all(v == 0 for v in values[3::4])
    assert max(m.value for m in messages(mid, "control_change", 1)) == 90
    assert min(m.value for m in messages(mid, "control_change", 11)) == 67
    assert {m.value for m in messages(mid, "control_change", 74)} == {127}
    assert {m.value for m in messages(mid, "control_change", 73)} == {1}  # a sharp attack is a short one
    assert {m.value for m in messages(mid, "control_change", 72)} == {1}
    counts = comp.explanation.engines["controllers"]["events"]
    assert counts["pitch_bend"] == len(bends)
    assert counts["cc74_brightness"] == len(messages(mid, "control_change", 74))
    json.dumps(comp.explanation.engines)
    dull = piece("calm", pitch_bend=0.0, vibrato=0.0, swell=0.0, brightness=0.0)[2]
    assert not messages(dull, "pitchwheel") and not messages(dull, "control_change", 1)
    assert {m.value for m in messages(dull, "control_change", 74)} == {1}


def test_neutral_hints_write_no_controllers_and_keep_the_kit():
    comp, song, mid, _ = piece("excitement", quantize=True)
    assert not messages(mid, "control_change") and not messages(mid, "pitchwheel")
    plain = piece("excitement", quantize=True, plain=True)[1]
    kit = {(n.start, n.pitch) for t in song.tracks if t.is_drum for n in t.notes}
    own = {(n.start, n.pitch) for t in plain.tracks if t.is_drum for n in t.notes}
    # the same kit, except that an open hat no longer sounds together with a closed one
    assert kit <= own and {p for _, p in own - kit} <= {CLOSED_HAT}
    assert song.tempos == plain.tempos


# ------------------------------------------------------------------ the whole
EXTREMES = {"all high": dict({n: 1.0 for n in schema.GROOVE_PARAMS}, **{n: 1.0 for n in schema.EXPRESSION_PARAMS}),
            "all low": dict({n: -1.0 for n in schema.GROOVE_PARAMS}, **{n: 0.0 for n in schema.EXPRESSION_PARAMS})}
rng = np.random.default_rng(5)
EXTREMES["mixed"] = {n: float(rng.choice([-1.0, 1.0])) for n in schema.GROOVE_PARAMS}
EXTREMES["mixed"].update({n: float(rng.choice([0.0, 1.0])) for n in schema.EXPRESSION_PARAMS})


@pytest.mark.parametrize("emotion", ["happiness", "grief"])
@pytest.mark.parametrize("extreme", list(EXTREMES))
def test_extremes_stay_musical(emotion, extreme):
    comp, song, _, data = piece(emotion, bars=8, **EXTREMES[extreme])
    assert sum(quality.duplicate_notes(song).values()) == 0
    assert sum(quality.out_of_range_notes(song).values()) == 0
    assert (quality.clash_rate(song) or 0.0) <= 0.1
    assert (quality.melody_on_top_rate(song) or 1.0) >= 0.7
    assert max(n.velocity for t in song.tracks for n in t.notes) <= 124
    again = compose(state_for(emotion), ComposeOptions(bars=8, seed=1, complexity=1.0),
                    hints=hints(**EXTREMES[extreme]))
    assert again.song.to_bytes() == data  # the same seed, the same bytes
    json.dumps(comp.explanation.engines)


def test_kelly_reads_its_own_controllers_back():
    from kelly.theory.analysis import analyze_song

    comp, song, mid, data = piece("calm", sustain_pedal=1.0, pitch_bend=1.0, brightness=0.9)
    assert messages(mid, "control_change") and messages(mid, "pitchwheel")
    assert all(not t.controls for t in song.tracks)  # read past, not kept
    assert [len(t.notes) for t in song.tracks] == [len(t.notes) for t in comp.song.tracks]
    assert read_midi_bytes(song.to_bytes()).to_bytes() == song.to_bytes()
    analyze_song(song).to_dict()
