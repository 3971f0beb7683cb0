"""The transformer behind the :class:`kelly.composer.Composer` seam, and the model it runs.

:class:`TransformerComposer` (``kelly compose --composer transformer``) samples a whole
piece from the compound-word transformer, conditioned on the emotion's (valence, arousal,
dominance), under the tokenizer's grammar: exactly ``bars`` bars, in the metre and at the
tempo the emotion maps to (:func:`kelly.mapping.map_emotion`), so that tempo and metre
mean the same for both composers, and with the instruments and parts the rule engines
give the emotion, its first :data:`PRIME_BARS` bars the rule engines' own as the prompt the
model continues: rules for structure, the transformer for the notes
(``orchestration="rules"``, the default). ``orchestration="free"`` fixes nothing but the
length: the model alone picks metre, tempo and instruments from the emotion (the
benchmark measures its emotion control both ways). Everything its explanation says is measured from the
MIDI it wrote (parts, velocities, tempo map; key and chords by :mod:`kelly.theory.analysis`),
since there is no plan to report; ``engines.composer`` says which composer wrote which part.

The model: ``kelly/assets/models/transformer`` (the ONNX step graph and head tables Kelly
ships, run by onnxruntime without torch), or ``--transformer-model DIR``: a folder with
``step.onnx`` (``kelly transformer export``) or a ``transformer.pt`` from ``kelly
transformer train`` (torch, read with ``weights_only=True``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from kelly.errors import InputError, ModelError

#: The transformer Kelly ships (ONNX step graph, head tables, model card sidecar).
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "models" / "transformer"
#: Largest transformer.pt read (the SMALL model is ~10 MB).
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
#: Default sampling: temperature 0.8 for every family (1.0 wanders out of the key; 0.8 keeps to it, heard
#: with kelly analyze on the same seeds), nucleus 0.95. Measured in benchmarks/results.md.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
#: Bars of the rule engines' piece that open a transformer piece (its prompt), with orchestration="rules".
PRIME_BARS = 2
#: Most compound tokens a bar may take before generation is cut (the grammar caps notes per position).
TOKENS_PER_BAR_CAP = 400


def load_stepper(model: str | os.PathLike | None = None, *, threads: int = 1):
    """``(stepper, description)`` for the shipped model or a folder (ONNX first, then torch weights)."""
    folder = Path(model).expanduser() if model is not None else SHIPPED
    if not folder.is_dir():
        if model is None:
            raise ModelError("no transformer is shipped with this Kelly (kelly/assets/models/transformer is "
                             "missing); train one with `kelly transformer train` and pass --transformer-model DIR")
        raise InputError(f"transformer model folder {folder} does not exist")
    if (folder / "step.onnx").exists():
        from kelly.transformer.onnx import OnnxStepper

        return OnnxStepper(folder, threads=threads), f"transformer {folder} (onnxruntime)"
    if (folder / "transformer.pt").exists():
        return _torch_stepper(folder / "transformer.pt"), f"transformer {folder / 'transformer.pt'} (torch)"
    raise ModelError(f"{folder} holds no transformer: expected step.onnx (kelly transformer export) or "
                     "transformer.pt (kelly transformer train)")


def load_weights(path: str | os.PathLike):
    """A trained :class:`~kelly.transformer.model.CompoundTransformer` from ``transformer.pt`` (torch)."""
    try:
        import torch
    except ImportError as exc:
        raise ModelError(f"reading {path} needs torch (pip install 'kelly[ml]'), or export it to ONNX: {exc}") \
            from None
    from kelly.fileio import read_regular_file
    from kelly.transformer.model import CompoundTransformer, TransformerConfig

    data = read_regular_file(path, what="transformer weights", max_bytes=MAX_WEIGHTS_BYTES)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or obj.get("format") != "kelly-transformer":
            raise ValueError("not a Kelly transformer file")
        model = CompoundTransformer(TransformerConfig.from_dict(obj["config"]))
        model.load_state_dict(obj["model"])
    except Exception as exc:  # torch and the config raise many types for a bad file
        raise ModelError(f"{path}: not a usable transformer ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    return model.eval()


def _torch_stepper(path: Path):
    from kelly.transformer.model import TorchStepper

    return TorchStepper(load_weights(path))


def parse_temperature(text: str | float) -> float | dict[str, float]:
    """``"0.9"`` or ``"pitch=0.8,duration=0.6,default=1"`` (per-family temperatures)."""
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip()
    if "=" not in text:
        try:
            return float(text)
        except ValueError:
            raise InputError(f"--temperature: {text!r} is not a number (or FAMILY=T,...)") from None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--temperature: {part!r} is not FAMILY=NUMBER") from None
    return out


class TransformerComposer:
    """The compound-word transformer as a :class:`kelly.composer.Composer` (see the module docstring)."""

    name = "transformer"

    def __init__(self, models: dict | None = None, *, model: str | os.PathLike | None = None,
                 temperature: float | dict = DEFAULT_TEMPERATURE, top_k: int | None = None,
                 top_p: float | None = DEFAULT_TOP_P, orchestration: str = "rules",
                 prime_bars: int = PRIME_BARS) -> None:
        from kelly.transformer.sample import SamplingConfig
        from kelly.transformer.tokens import CompoundTokenizer

        if orchestration not in ("rules", "free"):
            raise InputError(f"orchestration must be rules or free, got {orchestration!r}")
        self.orchestration = orchestration
        self.prime_bars = int(prime_bars)
        self.models = models
        self.tokenizer = CompoundTokenizer()
        self.stepper, self.description = load_stepper(model)
        if tuple(getattr(self.stepper, "sizes", self.tokenizer.sizes)) != tuple(self.tokenizer.sizes):
            raise ModelError(f"{self.description} was trained with other tokens (family sizes "
                             f"{tuple(self.stepper.sizes)}, this Kelly's {self.tokenizer.sizes}); retrain it")
        self.sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        SamplingConfig(**self.sampling)  # refuse bad values now

    def generate(self, state, bars: int, seed: int, *, meter: str | None = None, key: str | None = None,
                 programs=None, roles=None, pairs=None, pitch_filter=None, prompt=None, fix: bool = True):
        """Compound tokens for ``bars`` bars of ``state`` (see :meth:`compose`), and the parameters used.

        ``fix``: hold the metre and tempo to the emotion's mapping (False: the model picks them).
        """
        from kelly.mapping import map_emotion
        from kelly.transformer.sample import SamplingConfig, generate
        from kelly.transformer.tokens import FAMILIES

        params = map_emotion(state, key=key, meter=meter)
        grammar = self.tokenizer.grammar(bars=bars, meter=f"{params.meter[0]}/{params.meter[1]}" if fix else None,
                                         tempo_bpm=params.tempo if fix else None, programs=programs, roles=roles,
                                         pairs=pairs,
                                         pitch_filter=pitch_filter)
        sampling = SamplingConfig(seed=seed, **self.sampling)
        emotion = np.array([state.valence, state.arousal, state.dominance], dtype=np.float32)
        tokens = generate(self.stepper, grammar, emotion, sampling, max_tokens=2 + bars * TOKENS_PER_BAR_CAP,
                          families=FAMILIES, prompt=prompt)
        return tokens, params, grammar.done

    def compose(self, emotions, options=None, controls=None):
        from kelly.composer import ComposeOptions, Composition, check_options

        options = options or ComposeOptions()
        check_options(options)
        if isinstance(emotions, list):
            if len(emotions) != 1:
                raise InputError("the transformer composes one emotion at a time; for a journey use "
                                 "--composer rules or --composer hybrid")
            emotions = emotions[0]
        state = emotions
        pairs = prompt = None
        primed = 0
        if self.orchestration == "rules":
            # rules for structure: the instruments and parts the rule engines give this emotion, and their
            # opening bars as the prompt the transformer continues (a texture to carry on, not a blank page)
            from kelly.generator import RuleComposer

            ruled = RuleComposer().compose(state, ComposeOptions(bars=options.bars, seed=options.seed,
                                                                 key=options.key, meter=options.meter))
            pairs = sorted({(-1 if t.is_drum else t.program, t.role.value) for t in ruled.song.tracks
                            if t.notes and t.role is not None})
            primed = min(self.prime_bars, options.bars - 1)
            if primed > 0:
                opening = clip_to_bars(_copy(ruled.score or ruled.song), primed)
                opening.tempos = opening.tempos[:1]  # the grammar holds the mapping's tempo
                prompt = self.tokenizer.encode(opening)[:-1]  # without its EOS: the piece goes on
        tokens, params, finished = self.generate(state, options.bars, options.seed, meter=options.meter,
                                                 key=options.key, pairs=pairs, fix=self.orchestration == "rules",
                                                 prompt=prompt)
        song = clip_to_bars(self.tokenizer.decode(tokens), options.bars)
        song.title = f"Kelly: {state.label} (transformer)"
        explanation = measured_explanation(song, state, params, options, composer=self.name,
                                           wrote={t.role.value if t.role else t.name:
                                                  (f"rules (bars 1-{primed}), then transformer" if primed
                                                   else "transformer")
                                                  for t in song.tracks if t.notes},
                                           details={"model": self.description, "tokens": int(len(tokens)),
                                                    "finished": bool(finished), "sampling": _plain(self.sampling),
                                                    "orchestration": self.orchestration,
                                                    "primed_bars": primed,
                                                    "repairs": list(song.warnings)},
                                           models=self.models)
        return Composition(song=song, explanation=explanation, score=song)


def _copy(song):
    """A copy of ``song`` whose tracks can be edited without touching the original's."""
    from dataclasses import replace

    return replace(song, tracks=[t.with_notes(list(t.notes)) for t in song.tracks])


def clip_to_bars(song, bars: int):
    """``song`` with every note ending by the end of bar ``bars`` (a long note may not ring past the piece)."""
    end = bars * song.bar_ticks
    for t in song.tracks:
        t.notes = [n if n.end <= end else n.moved(duration=end - n.start) for n in t.notes if n.start < end]
    return song


def _plain(d: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}


def measured_explanation(song, state, params, options, *, composer: str, wrote: dict[str, str],
                         details: dict[str, Any], models: dict | None = None):
    """An :class:`~kelly.contracts.Explanation` whose every musical statement is measured from ``song``."""
    from kelly import __version__
    from kelly.contracts import (SCHEMA_VERSION, Arrangement, ChordValue, Emotion, Explanation, Models,
                                 Progression, SectionInfo)
    from kelly.explain import _parameters, measure_parts, played_velocity, tempo_map
    from kelly.theory.analysis import analyze_song

    bar_ticks = song.bar_ticks
    beat_ticks = max(1, song.ppq * 4 // song.time_signature[1])
    chords, key_name, mode = [], params.key.name, "minor" if params.key.is_minor else "major"
    try:
        analysis = analyze_song(song)
        key_name = analysis.key.key.name
        mode = "minor" if analysis.key.key.is_minor else "major"
        for span in analysis.chords:
            c = span.chord
            chords.append(ChordValue(
                start_bar=span.start // bar_ticks + 1, beat=round((span.start % bar_ticks) / beat_ticks + 1, 3),
                bars=max(1e-3, round((span.end - span.start) / bar_ticks, 3)), symbol=c.name, root=c.root,
                quality=c.quality, bass=c.bass, pitch_classes=list(c.pitch_classes()), numeral=span.roman,
                key=key_name, borrowed_from=span.source, tension=round(1.0 - min(1.0, max(0.0, span.fit)), 3)))
    except InputError:
        pass  # only drums, or nothing: no key or chords to report
    heard = sorted({t.role.value for t in song.tracks if t.notes and t.role is not None})
    tempo = float(song.tempos[0][1]) if song.tempos else float(params.tempo)
    section = SectionInfo(name="whole piece", start_bar=1, bars=options.bars, energy=round(state.arousal, 3),
                          emotion=state.label, tempo_bpm=tempo, key=key_name, mode=mode,
                          base_velocity=params.velocity, density=round(params.density, 4),
                          register_octave=params.register_octave, melody_centre=params.register_centre,
                          chords=list(range(len(chords))))
    engines = {"composer": {"name": composer, "wrote": wrote, **details}}
    models = models or {}
    return Explanation(
        schema_version=SCHEMA_VERSION, kelly_version=__version__, seed=options.seed, bars=options.bars,
        time_signature=f"{song.time_signature[0]}/{song.time_signature[1]}", complexity=options.complexity,
        emotion=Emotion(**state.to_dict()), parameters=_parameters(params), profile=composer,
        arrangement=Arrangement(template=composer, sections=[section], layers=heard),
        progression=Progression(key=key_name, chords=chords, tension_curve=[]), ending=None,
        parts=measure_parts(song), velocity=played_velocity(song), tempo_map=tempo_map(song),
        models=Models(live=list(models.get("live", [])), fallback=list(models.get("fallback", [])),
                      note=f"{composer}: {details.get('model', '')}".strip()), engines=engines)
