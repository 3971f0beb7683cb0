"""Rules for structure, the transformer for the melody (``kelly compose --composer hybrid``).

The rule engines write the piece (form, harmony, bass, pads, strings, drums, the groove).
Then the transformer writes the melody over it, note by note, under the tokenizer's
grammar with a pitch filter built from the rule engines' own score, so the melody keeps
the bar's harmonic world and stays in front:

* on a chord's first beat and on the metre's main beats: the chord's tones; elsewhere the
  tones of the key of the moment (the chord's ``key`` in the explanation) plus the chord's
  own (a borrowed chord brings its borrowed notes);
* never a semitone (or minor ninth) against a note the accompaniment holds then (the music
  report's clash), and above every pitched accompaniment note sounding on that beat (its
  "melody on top"), within the rule melody's own register (its lowest to highest pitch,
  widened by a tone); where nothing is left, the register alone.

Where the rule melody brings a bar back (a motif returning), the transformer's bar is brought
back there too when it fits the harmony at its new place, so the form stays the rules'.

The other parts are the rule engines' untouched; the explanation is theirs, measured
again, with ``engines.composer`` saying that the melody is the transformer's and the rest
the rules', and the rule melody engine's own details left out (they described notes that
are gone).
"""

from __future__ import annotations

import numpy as np

from kelly.errors import InputError
from kelly.song import Role, Track


def _key_pcs(name: str) -> set[int]:
    from kelly.theory.scales import parse_key

    key = parse_key(name)
    return set(key.scale_pcs())


class HybridComposer:
    """The rule engines' piece with a transformer melody (see the module docstring)."""

    name = "hybrid"

    def __init__(self, models: dict | None = None, **transformer_settings) -> None:
        from kelly.generator import RuleComposer
        from kelly.transformer.composer import TransformerComposer

        self.models = models
        self.rules = RuleComposer(models=models)
        self.transformer = TransformerComposer(models, **transformer_settings)

    def compose(self, emotions, options=None, controls=None):
        from kelly.composer import ComposeOptions, Composition
        from kelly.explain import remeasure

        options = options or ComposeOptions()
        ruled = self.rules.compose(emotions, options, controls)
        song, score, ex = ruled.song, ruled.score or ruled.song, ruled.explanation
        melody = next((t for t in score.tracks if t.role == Role.MELODY), None)
        if melody is None or not melody.notes:
            raise InputError("the rule engines wrote no melody here, so the hybrid has nothing to replace")
        state = emotions[-1] if isinstance(emotions, list) else emotions
        pitch_filter = _pitch_filter(score, ex, melody)
        tokens, _params, finished = self.transformer.generate(
            state, options.bars, options.seed, meter=f"{score.time_signature[0]}/{score.time_signature[1]}",
            key=options.key, programs=[melody.program], roles=[Role.MELODY], pitch_filter=pitch_filter)
        from kelly.transformer.composer import clip_to_bars

        written = clip_to_bars(self.transformer.tokenizer.decode(tokens), options.bars)
        notes = sorted(n for t in written.tracks for n in t.notes)
        if not notes:
            raise InputError("the transformer wrote no melody notes here; try another --seed")
        notes = _restate(notes, melody, score, pitch_filter)
        # the rule engines' tempo map and metre stay: the tokens were generated in the same metre,
        # so ticks line up bar for bar
        song_melody = next(t for t in song.tracks if t.role == Role.MELODY)
        new_score = _with_melody(score, melody, _fit(notes, score, melody))
        # the performed song: the melody swung as the rule engines swung their parts, then fitted to them
        swung = _swung(_with_melody(song, song_melody, notes), ex, song.tracks.index(song_melody))
        swung_melody = swung.tracks[song.tracks.index(song_melody)]
        new_song = _with_melody(swung, swung_melody, _fit(swung_melody.notes, swung, swung_melody))
        ex = remeasure(ex, new_song)
        ex.engines = {k: v for k, v in ex.engines.items() if k != "melody"}
        ex.engines["composer"] = {
            "name": self.name, "model": self.transformer.description, "finished": bool(finished),
            "tokens": int(len(tokens)),
            "wrote": {t.role.value if t.role else t.name: ("transformer" if t.role == Role.MELODY else "rules")
                      for t in new_song.tracks if t.notes}}
        ex.profile = f"{ex.profile} + transformer melody"
        return Composition(song=new_song, explanation=ex, score=new_score)


def _with_melody(song, melody: Track, notes) -> "object":
    """A copy of ``song`` whose melody track holds ``notes`` (the other tracks shared, unchanged)."""
    from dataclasses import replace

    tracks = [t.with_notes(list(notes)) if t is melody else t for t in song.tracks]
    return replace(song, tracks=tracks)


def _restate(notes, rule_melody: Track, score, pitch_filter) -> list:
    """Bring the transformer's bars back where the rule engines' melody brings a bar back.

    The form is the rules': where their melody restates an earlier bar (a motif returning), the
    transformer's bar from there is restated too, as long as every note of it fits the pitch filter at
    its new place (the harmony there may differ); otherwise the transformer's own bar stays.
    """
    bar_ticks = score.bar_ticks
    ppq = score.ppq

    def bars_of(ns):
        out: dict[int, list] = {}
        for n in ns:
            out.setdefault(n.start // bar_ticks, []).append(n)
        return out

    rule = {b: frozenset((n.start % bar_ticks, n.pitch) for n in ns) for b, ns in bars_of(rule_melody.notes).items()}
    first: dict[frozenset, int] = {}
    source: dict[int, int] = {}
    for b in sorted(rule):
        if rule[b] in first:
            source[b] = first[rule[b]]
        else:
            first[rule[b]] = b
    mine = bars_of(notes)
    for b, a in source.items():
        if a not in mine:
            continue
        shift = (b - a) * bar_ticks
        moved = [n.moved(start=n.start + shift, duration=min(n.duration, (b + 1) * bar_ticks - n.start - shift))
                 for n in mine[a]]
        if all(pitch_filter(b, (n.start - b * bar_ticks) / ppq)[n.pitch] for n in moved):
            mine[b] = moved
    return sorted(n for ns in mine.values() for n in ns)


def _swung(song, ex, index: int):
    """``song`` with track ``index`` swung as the rule engines' groove pass swung the others."""
    from kelly.groove.swing import swing, swing_spans

    groove = ex.engines.get("groove") or {}
    amount = groove.get("swing")
    if song.time_signature[1] == 8 or not amount:  # 6/8 divides its beat in three already: never swung
        return song
    if isinstance(amount, (int, float)):
        return swing(song, float(amount), tracks=[index])
    bars = sorted((int(d["bar"]), float(d["swing"])) for d in amount)
    end = max(song.end_tick(), bars[-1][0] * song.bar_ticks)
    spans = [((b - 1) * song.bar_ticks, (bars[k + 1][0] - 1) * song.bar_ticks if k + 1 < len(bars) else end, a)
             for k, (b, a) in enumerate(bars)]
    return swing_spans(song, spans, tracks=[index])


def _fit(notes, song, melody: Track) -> list:
    """The melody's notes, each shortened where an accompaniment note that starts under it would rub
    (a semitone or minor ninth) or rise above it: the onset was chosen clean, the tail is kept clean too.
    A note is shortened to no less than a sixteenth; one that cannot be is kept as it is."""
    ppq = song.ppq
    accomp = [n for t in song.tracks if t is not melody and not t.is_drum and t.role != Role.MELODY for n in t.notes]
    if not accomp:
        return list(notes)
    starts = np.array([a.start for a in accomp])
    ends = np.array([a.end for a in accomp])
    pitches = np.array([a.pitch for a in accomp])
    out = []
    for n in notes:
        later = (starts > n.start) & (starts < n.end) & (ends > starts)
        bad = later & ((pitches > n.pitch) | np.isin((pitches - n.pitch) % 12, (1, 11)))
        if bad.any():
            cut = int(starts[bad].min())
            if cut - n.start >= ppq // 4:
                n = n.moved(duration=cut - n.start)
        out.append(n)
    return out


def _pitch_filter(score, ex, melody: Track):
    """``pitch_filter(bar, beat_in_bar) -> bool[128]`` from the rule engines' chords and accompaniment."""
    ppq = score.ppq
    bar_ticks = score.bar_ticks
    beat_ticks = max(1, ppq * 4 // score.time_signature[1])
    low = min(n.pitch for n in melody.notes) - 2
    high = max(n.pitch for n in melody.notes) + 2
    register = np.zeros(128, dtype=bool)
    register[max(0, low):min(127, high) + 1] = True
    chords = [(c.start_tick(bar_ticks, beat_ticks), set(c.pitch_classes), _key_pcs(c.key))
              for c in ex.progression.chords]
    chords.sort(key=lambda c: c[0])
    starts = np.array([c[0] for c in chords]) if chords else np.zeros(0, dtype=int)
    accomp = [n for t in score.tracks if t is not melody and not t.is_drum and t.role != Role.MELODY
              for n in t.notes]
    acc_start = np.array([n.start for n in accomp]) if accomp else np.zeros(0, dtype=int)
    acc_end = np.array([n.end for n in accomp]) if accomp else np.zeros(0, dtype=int)
    acc_pitch = np.array([n.pitch for n in accomp]) if accomp else np.zeros(0, dtype=int)
    strong = {0.0} | {float(b * beat_ticks / ppq) for b in range(0, score.time_signature[0], 2)}

    def pitch_filter(bar: int, beat: float) -> np.ndarray:
        tick = bar * bar_ticks + int(round(beat * ppq))
        allowed = register.copy()
        i = int(np.searchsorted(starts, tick, side="right")) - 1
        if i >= 0:
            chord_pcs, key_pcs = chords[i][1], chords[i][2]
            on_chord_start = chords[i][0] == tick
            pcs = chord_pcs if (on_chord_start or beat in strong) else (key_pcs | chord_pcs)
            pc_ok = np.array([p % 12 in pcs for p in range(128)])
            allowed &= pc_ok
        if len(acc_pitch):
            # what sounds now, or starts within a sixteenth (a melody note a hair before a chord change
            # sounds against the new chord)
            sounding = (acc_start <= tick + ppq // 4) & (acc_end > tick)
            if sounding.any():
                # no semitone (or minor ninth) against a note the accompaniment holds: the music report's clash
                held = {int(p) % 12 for p in acc_pitch[sounding]}
                rub = np.array([((p + 1) % 12 in held) or ((p - 1) % 12 in held) for p in range(128)])
                if (allowed & ~rub).any():
                    allowed &= ~rub
                top = int(acc_pitch[sounding].max())
                above = allowed.copy()
                above[:top] = False
                if above.any():
                    allowed = above
        if not allowed.any():
            allowed = register.copy()
        return allowed

    return pitch_filter
