"""The five-model processor: load what exists, fall back per model, run the pipeline (numpy only).

This is the Python counterpart of the original plugin's ``MultiModelProcessor``:

* **Loading.** Each model is an RTNeural JSON file named after it
  (``emotionrecognizer.json`` …), looked up in order in: an explicit ``models_dir``
  (``--models-dir``), the folders in ``$KELLY_MODELS`` (``os.pathsep``-separated), the
  user data folder ``$XDG_DATA_HOME/kelly/models`` (default ``~/.local/share/kelly/models``)
  and the shipped ``kelly/assets/models``. The first folder that has the file wins. A
  file name may not contain path separators or ``..``, and the resolved path must stay
  inside its folder (a symlink pointing elsewhere is refused).
* **Checking.** Only a regular file of bounded size is read, every declared size is
  checked against the model's specification before anything is allocated, and weights
  that could overflow float32 for in-range inputs are refused
  (:meth:`~kelly.ml.runtime.Model.check_bounded`). A file that is corrupt or does not
  match raises :class:`~kelly.errors.ModelError` naming the file and the layer
  (``melodytransformer.json: layer 2 (lstm): weights W has shape 64x1024, expected
  256x1024``) when it was found in the folder the caller named (``models_dir``,
  ``--models-dir``). A file found only on the implicit search path (``$KELLY_MODELS``,
  the user data folder, the shipped models) never stops composing: its error is
  recorded in :meth:`status` and :meth:`note` and that model falls back. ``strict=True``
  raises for every file, ``strict=False`` falls back for every file (a real-time host
  that must keep running).
* **Fallbacks.** A missing or disabled model is replaced by the heuristic in
  :mod:`kelly.ml.fallbacks`, which returns musically meaningful outputs with the same
  shapes. :meth:`status` and :attr:`MusicHints.live` say which models are live.
* **The pipeline** (as ``runFullPipeline``): recognizer (mel → embedding), then melody
  and groove (from the embedding), then harmony (``[embedding ‖ mel[0:64]]``), then
  dynamics (``embedding[0:32]``). Option 2 (:meth:`hints_for_emotion`) puts an
  :class:`~kelly.emotion.state.EmotionState`'s embedding in directly and skips the
  recognizer.
* **State.** The recognizer and melody networks are LSTMs: each call advances them one
  step, so successive calls form a phrase. :meth:`reset` starts a new one.
* **Bar by bar.** The melody network learns how notes move from one bar to the next (one
  LSTM step = one bar of a phrase). :meth:`melody_bars` steps it once per bar of a whole
  piece from a fresh state, its state carried from bar to bar, and then puts back the state
  it found (so :meth:`pipeline_step` callers continue their phrase as if nothing ran).
  Every :class:`MusicHints` a processor makes carries a :class:`MelodySteps`
  (``hints.melody_steps``) through which the composer asks for those rows.

torch is never imported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kelly.errors import InputError, KellyError, ModelError
from kelly.ml import fallbacks, schema
from kelly.ml.runtime import Model, _straight_line, load_model
from kelly.ml.specs import MODEL_KEYS, SPECS, get_spec

_SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "models"

#: Every input of the five networks lies in [-1, 1] (embedding, contexts, normalised mel):
#: the checked entry points refuse larger values and each loaded model must stay far from
#: float32 overflow for inputs in this range (:meth:`kelly.ml.runtime.Model.check_bounded`).
INPUT_BOUND = 1.0


def _expand(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded when possible (an unknown ``~user`` stays as written)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def default_search_path(models_dir: str | os.PathLike | None = None,
                        environ: Mapping[str, str] | None = None) -> list[Path]:
    """The folders searched for model files, most specific first (see the module docstring)."""
    env = os.environ if environ is None else environ
    paths: list[Path] = []
    if models_dir is not None:
        paths.append(_expand(models_dir))
    for part in (env.get("KELLY_MODELS") or "").split(os.pathsep):
        if part.strip():
            paths.append(_expand(part.strip()))
    data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    paths.append(_expand(data_home) / "kelly" / "models")
    paths.append(_SHIPPED)
    unique: list[Path] = []
    for p in paths:
        if p not in unique:
            unique.append(p)
    return unique


def check_file_name(file_name: str) -> str:
    """``file_name`` if it is a plain file name (no separators, NUL or ``..``).

    Raises
    ------
    ModelError
    """
    if not isinstance(file_name, str) or not file_name or file_name in (".", ".."):
        raise ModelError(f"invalid model file name {file_name!r}")
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(s in file_name for s in seps) or "\0" in file_name or ".." in file_name.split("."):
        raise ModelError(f"model file name {file_name!r} must be a plain file name (no folders or '..')")
    if file_name.startswith(".."):
        raise ModelError(f"model file name {file_name!r} must be a plain file name (no folders or '..')")
    return file_name


def safe_model_path(folder: str | os.PathLike, file_name: str) -> Path:
    """``folder/file_name``, refusing names that could leave ``folder``.

    Raises
    ------
    ModelError
        If the name is empty, contains a path separator, NUL or a ``..`` component, or
        resolves (through symlinks) to a place outside ``folder``.
    """
    check_file_name(file_name)
    base = _expand(folder)
    candidate = base / file_name
    try:
        resolved = candidate.resolve()
        root = base.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"cannot resolve model path {candidate}: {exc}") from None
    if resolved.parent != root:
        raise ModelError(f"model file {candidate} resolves to {resolved}, outside its folder {root}")
    return candidate


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class MusicHints:
    """What the five models (or their fallbacks) suggest for one moment.

    Attributes
    ----------
    note_probs : np.ndarray [shape=(128,)]
        Probability in [0, 1] per MIDI pitch, in the key of C (tonic = pitch class 0);
        transpose with :func:`kelly.ml.schema.transpose_note_probs`.
    chord_probs : np.ndarray [shape=(64,)]
        Distribution over chord classes relative to the tonic
        (:func:`kelly.ml.schema.chord_class_to_root_quality`).
    groove : np.ndarray [shape=(32,)]
        Groove parameters in [-1, 1], named by :data:`kelly.ml.schema.GROOVE_PARAMS`.
    expression : np.ndarray [shape=(16,)]
        Expression parameters in [0, 1], named by :data:`kelly.ml.schema.EXPRESSION_PARAMS`.
    live : dict[str, bool]
        Per model key, True when a loaded network produced its part, False when the
        fallback heuristic did.
    embedding : np.ndarray [shape=(64,)]
        The emotion embedding the hints were made from.
    melody_steps : MelodySteps or None
        Where the composer gets one row of note probabilities per bar (the melody network
        stepped once per bar, its state carried): a callable ``(emotions) -> [n_bars, 128]``.
        A processor's hints carry one; hints made by hand may leave it out, and
        ``note_probs`` then shapes every bar alike. Not compared, not in :meth:`to_dict`.
    chord_baseline : np.ndarray [shape=(64,)] or None
        The harmony network's (or fallback's) mean chord distribution over the thesaurus's
        emotions: how likely each chord is for any emotion. The composer reads the network's
        preference for a chord as its lift over this (``chord_probs / chord_baseline``), so a
        chord every piece uses a lot (the tonic) does not win every bar. Set only when the
        harmony network is live: it learned how often chords sound, while the fallback's
        weights are preferences by design. None: read ``chord_probs`` as they are.
    groove_baseline, expression_baseline : np.ndarray [shape=(32,), (16,)] or None
        The groove and dynamics networks' mean outputs over the thesaurus's emotions, set only
        when those networks are live: the engines read a trained network's output as its
        deviation from this mean (:class:`kelly.engines.ml_hints.Controls`), because it learned
        absolute measurements while the engines' controls are relative to how they write the
        emotion anyway. The fallbacks' curves are centred by design and are read as they are.

    The arrays are read-only copies.
    """

    note_probs: np.ndarray
    chord_probs: np.ndarray
    groove: np.ndarray
    expression: np.ndarray
    live: dict[str, bool] = field(default_factory=dict)
    embedding: np.ndarray = field(default_factory=lambda: _frozen(np.zeros(schema.EMBED_DIM)))
    melody_steps: Any = field(default=None, compare=False, repr=False)
    chord_baseline: np.ndarray | None = field(default=None, compare=False, repr=False)
    groove_baseline: np.ndarray | None = field(default=None, compare=False, repr=False)
    expression_baseline: np.ndarray | None = field(default=None, compare=False, repr=False)

    def top_notes(self, k: int = 5) -> list[int]:
        """The ``k`` likeliest MIDI pitches (key of C), likeliest first."""
        return [int(p) for p in np.argsort(-self.note_probs, kind="stable")[:k]]

    def top_chords(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` likeliest chord classes as (index, roman name, probability)."""
        order = np.argsort(-self.chord_probs, kind="stable")[:k]
        return [(int(i), schema.chord_class_name(int(i)), float(self.chord_probs[i])) for i in order]

    def groove_params(self) -> dict[str, float]:
        return schema.groove_dict(self.groove)

    def expression_params(self) -> dict[str, float]:
        return schema.expression_dict(self.expression)

    def velocity(self) -> int:
        """Base MIDI velocity (1–127) from ``expression[velocity_base]``."""
        return int(min(127, max(1, round(float(self.expression[0]) * 127))))

    def emotion(self) -> dict[str, Any]:
        return schema.decode_embedding(self.embedding)

    def to_dict(self) -> dict[str, Any]:
        return {
            "live": dict(self.live),
            "emotion": self.emotion(),
            "top_notes": self.top_notes(8),
            "top_chords": [{"index": i, "name": n, "prob": round(p, 4)} for i, n, p in self.top_chords(5)],
            "groove": {k: round(v, 4) for k, v in self.groove_params().items()},
            "expression": {k: round(v, 4) for k, v in self.expression_params().items()},
        }


class MelodySteps:
    """Per-bar note probabilities for a piece: a processor's melody network stepped once per bar.

    ``steps(emotions)`` embeds the emotion shaping each bar (:func:`kelly.ml.schema.embed_emotion`)
    and runs :meth:`MultiModelProcessor.melody_bars` on them: row ``b`` of the result
    (float32 ``[len(emotions), 128]``, MIDI pitch, key of C) is bar ``b``'s, the network's
    state carried from bar to bar (and so across a journey's section seams) from a fresh
    start. The processor's own state is left as it was, so the same emotions always give
    the same rows. With the melody network missing or disabled the fallback heuristic
    gives the rows; it keeps no state, so equal emotions give equal rows.
    """

    def __init__(self, processor: MultiModelProcessor) -> None:
        self._processor = processor

    @property
    def live(self) -> bool:
        """True when the melody network (not its fallback) gives the rows."""
        return self._processor.is_live("melodytransformer")

    def __call__(self, emotions: Sequence[Any]) -> np.ndarray:
        seen: dict[int, np.ndarray] = {}
        rows = []
        for state in emotions:  # a piece has a few emotions repeated over many bars: embed each once
            if id(state) not in seen:
                seen[id(state)] = schema.embed_emotion(state)
            rows.append(seen[id(state)])
        return self._processor.melody_bars(np.array(rows, dtype=np.float32).reshape(len(rows), schema.EMBED_DIM))

    def __repr__(self) -> str:
        return f"MelodySteps(live={self.live})"


class MultiModelProcessor:
    """Loads the five networks, runs them or their fallbacks, keeps their state.

    Parameters
    ----------
    models_dir : path, optional
        Searched first (the ``--models-dir`` option). It must exist if given.
    search_path : list of paths, optional
        Replaces the default search path entirely (``models_dir`` is then ignored).
    enabled : mapping of model key → bool, optional
        Models to start disabled (all enabled by default).
    file_names : mapping of model key → file name, optional
        Non-default file names (plain names only).
    strict : bool or None
        None (default): a corrupt or mismatched file in ``models_dir`` raises
        ModelError, one found elsewhere on the search path is reported by :meth:`status`
        and :meth:`note` and its model falls back. True: every such file raises. False:
        every such file falls back.
    load : bool
        Load at construction (default). With False, call :meth:`load` later.
    """

    def __init__(self, models_dir: str | os.PathLike | None = None, *, search_path=None,
                 enabled: Mapping[str, bool] | None = None, file_names: Mapping[str, str] | None = None,
                 strict: bool | None = None, load: bool = True) -> None:
        if models_dir is not None and search_path is None and not _expand(models_dir).is_dir():
            raise InputError(f"models folder {models_dir} does not exist")
        self.search_path = [Path(p) for p in search_path] if search_path is not None \
            else default_search_path(models_dir)
        self.strict = strict
        self._explicit = _expand(models_dir) if models_dir is not None and search_path is None else None
        self._file_names = {key: SPECS[key].file_name for key in MODEL_KEYS}
        for key, name in (file_names or {}).items():
            self._file_names[get_spec(key).key] = check_file_name(name)
        self._models: dict[str, Model | None] = {key: None for key in MODEL_KEYS}
        self._paths: dict[str, Path | None] = {key: None for key in MODEL_KEYS}
        self._errors: dict[str, str | None] = {key: None for key in MODEL_KEYS}
        self._enabled = {key: True for key in MODEL_KEYS}
        for key, flag in (enabled or {}).items():
            self.set_enabled(key, flag)
        self._mel_zero = np.zeros(schema.MEL_BINS, dtype=np.float32)
        self._emb = np.zeros(schema.EMBED_DIM, dtype=np.float32)
        self._hp_in = np.zeros(schema.HARMONY_CONTEXT_DIM, dtype=np.float32)
        if load:
            self.load()

    # -- loading ----------------------------------------------------------------------

    def find_model_file(self, key: str) -> Path | None:
        """The first entry for model ``key`` along the search path, or None.

        Any entry counts, even one that is not a regular file (loading it then fails and
        says why) so that a broken file is reported rather than silently skipped.
        """
        key = get_spec(key).key
        for folder in self.search_path:
            for name in self._names_for(key):
                candidate = safe_model_path(folder, name)
                if os.path.lexists(candidate):
                    return candidate
        return None

    def _names_for(self, key: str) -> tuple[str, ...]:
        """The file names model ``key`` may have in a folder: RTNeural JSON first, then its packed
        form (:mod:`kelly.ml.packed`, how the package ships its weights)."""
        from kelly.ml.packed import packed_name

        name = self._file_names[key]
        return (name, packed_name(name)) if name.endswith(".json") else (name,)

    def _strict_for(self, folder: Path) -> bool:
        if self.strict is not None:
            return self.strict
        return self._explicit is not None and folder == self._explicit

    def load(self) -> dict[str, Any]:
        """(Re)load every model file found; returns :meth:`status`.

        Raises
        ------
        ModelError
            For a bad file where the processor is strict (see the class docstring).
        """
        for key in MODEL_KEYS:
            self._models[key] = None
            self._paths[key] = None
            self._errors[key] = None
            for folder in self.search_path:
                try:
                    candidate = next((c for c in (safe_model_path(folder, n) for n in self._names_for(key))
                                      if os.path.lexists(c)), None)
                    if candidate is None:
                        continue
                    self._paths[key] = candidate
                    self._models[key] = _load_checked(candidate, key)
                except KellyError as exc:
                    if self._strict_for(folder):
                        raise
                    self._models[key] = None
                    self._errors[key] = str(exc)
                break
        self._rebind()
        return self.status()

    def load_model_file(self, key: str, path: str | os.PathLike) -> None:
        """Load one model from an explicit file (checked against its spec)."""
        key = get_spec(key).key
        model = _load_checked(path, key)
        self._models[key], self._paths[key], self._errors[key] = model, Path(path), None
        self._rebind()

    def unload(self, key: str, reason: str) -> None:
        """Put network ``key`` on its fallback because its file can no longer be trusted.

        A running engine calls this when the file it loaded was deleted or replaced by one
        that does not load (:meth:`kelly.realtime.engine.Engine.check_model_files`): the
        weights in memory no longer match anything on disk, so the network stops and says
        ``reason`` in :meth:`status` and :meth:`note`. The path is kept, so the file can be
        watched and loaded again.
        """
        key = get_spec(key).key
        self._models[key], self._errors[key] = None, str(reason)
        self._rebind()

    def _rebind(self) -> None:
        """Cache bound methods for the hot path (live model or fallback per key)."""
        self._live = {key: self._models[key] is not None and self._enabled[key] for key in MODEL_KEYS}
        self._run = {}
        for key in MODEL_KEYS:
            model = self._models[key]
            self._run[key] = model.forward if self._live[key] else fallbacks.FALLBACKS[key]
        self._fast = self._chain() if all(self._live.values()) else None

    def _chain(self):
        """With all five networks live, fuse the whole pipeline into two generated functions.

        The recognizer writes the embedding into its ``[emb, 1]`` output buffer, where the
        melody and groove networks' first dense layers read it directly; three copies
        fill the harmony context ``[emb ‖ mel[0:64]]`` and the dynamics context
        ``emb[0:32]``. ``full`` runs the recognizer too; ``tail`` starts from an
        embedding written into that buffer (Option 2).
        """
        er, mt, hp, de, gp = (self._models[k] for k in ("emotionrecognizer", "melodytransformer",
                                                          "harmonypredictor", "dynamicsengine", "groovepredictor"))
        emb1 = er.output1
        emb = emb1[:-1]
        mel_in, hp_in, de_in = er.input_buffer, hp.input_buffer, de.input_buffer
        glue = [partial(np.copyto, hp_in[:64], emb), partial(np.copyto, hp_in[64:], mel_in[:64]),
                partial(np.copyto, de_in, emb[:32])]
        tail = mt.program(read_from=emb1) + gp.program(read_from=emb1) + glue + hp.program() + de.program()
        outputs = (er._out, mt._out, hp._out, gp._out, de._out)
        return {"full": _straight_line(er.program() + tail), "tail": _straight_line(tail), "mel_in": mel_in,
                "emb": emb, "outputs": outputs}

    # -- control ----------------------------------------------------------------------

    def set_enabled(self, key: str, enabled: bool) -> None:
        """Enable or disable one model; a disabled model uses its fallback."""
        self._enabled[get_spec(key).key] = bool(enabled)
        if hasattr(self, "_run"):
            self._rebind()

    def is_enabled(self, key: str) -> bool:
        return self._enabled[get_spec(key).key]

    def is_live(self, key: str) -> bool:
        """True when the network (not its fallback) runs for ``key``."""
        return self._live[get_spec(key).key]

    def model(self, key: str) -> Model | None:
        """The loaded runtime model for ``key`` (None when missing)."""
        return self._models[get_spec(key).key]

    def reset(self) -> None:
        """Clear the LSTM states (start a new phrase)."""
        for model in self._models.values():
            if model is not None:
                model.reset()

    def status(self) -> dict[str, Any]:
        """Which models are live, where they came from, and why the others fall back."""
        models = {}
        for key in MODEL_KEYS:
            spec, model = SPECS[key], self._models[key]
            if self._live[key]:
                reason = "loaded"
            elif self._errors[key]:
                reason = f"fallback: {self._errors[key]}"
            elif model is not None:
                reason = "fallback: disabled"
            else:
                reason = f"fallback: {self._file_names[key]} not found"
            models[key] = {
                "name": spec.name, "enabled": self._enabled[key], "loaded": model is not None,
                "live": self._live[key], "path": str(self._paths[key]) if self._paths[key] else None,
                "error": self._errors[key], "params": spec.params, "status": reason,
            }
        return {
            "models": models,
            "live": [k for k in MODEL_KEYS if self._live[k]],
            "fallback": [k for k in MODEL_KEYS if not self._live[k]],
            "search_path": [str(p) for p in self.search_path],
        }

    def note(self) -> str:
        """One sentence for people: which networks are live, and why any file found was not used."""
        live = [k for k in MODEL_KEYS if self._live[k]]
        if len(live) == len(MODEL_KEYS):
            text = "all five networks live"
        elif not live and not any(self._errors.values()):
            text = "no model files found: running on the fallback heuristics"
        elif not live:
            text = "no network live: running on the fallback heuristics"
        else:
            text = f"live: {', '.join(live)}; the rest run on fallback heuristics"
        problems = [f"{key} falls back because {err}" for key, err in self._errors.items() if err]
        return "; ".join([text] + problems)

    # -- running ----------------------------------------------------------------------

    def run_model(self, key: str, x: np.ndarray) -> np.ndarray:
        """Run one model (or its fallback) for one step; returns a new array."""
        spec = get_spec(key)
        vec = _check_vector(x, spec.in_size, f"{spec.name} input")
        return np.array(self._run[spec.key](vec), dtype=np.float32)

    def pipeline_step(self, mel: np.ndarray | None, embedding: np.ndarray | None = None):
        """The hot path: one pipeline step without validation or copies.

        Returns ``(embedding, notes, chords, groove, expression)``: arrays that may be
        internal buffers, valid until the next call. Give ``mel`` (float32 [128]) to run
        the recognizer, or ``embedding`` (float32 [64]) to skip it; ``mel`` may then be
        None (the harmony context's audio half is zeros).
        """
        fast = self._fast
        if fast is not None:
            if mel is None:
                fast["mel_in"].fill(0.0)
            else:
                fast["mel_in"][:] = mel
            if embedding is None:
                fast["full"]()
            else:
                fast["emb"][:] = embedding
                fast["tail"]()
            return fast["outputs"]
        run = self._run
        if embedding is None:
            embedding = run["emotionrecognizer"](mel)
        if mel is None:
            mel = self._mel_zero
        notes = run["melodytransformer"](embedding)
        groove = run["groovepredictor"](embedding)
        hp_in = self._hp_in
        hp_in[:64] = embedding
        hp_in[64:] = mel[:64]
        chords = run["harmonypredictor"](hp_in)
        expression = run["dynamicsengine"](embedding[:32])
        return embedding, notes, chords, groove, expression

    def _hints(self, parts, *, recognizer_used: bool) -> MusicHints:
        embedding, notes, chords, groove, expression = parts
        live = dict(self._live)
        if not recognizer_used:
            live["emotionrecognizer"] = False
        return MusicHints(note_probs=_frozen(notes), chord_probs=_frozen(chords), groove=_frozen(groove),
                          expression=_frozen(expression), live=live, embedding=_frozen(embedding),
                          melody_steps=MelodySteps(self),
                          chord_baseline=self.baseline("harmonypredictor") if live.get("harmonypredictor") else None,
                          groove_baseline=self.baseline("groovepredictor") if live.get("groovepredictor") else None,
                          expression_baseline=self.baseline("dynamicsengine") if live.get("dynamicsengine")
                          else None)

    def baseline(self, key: str) -> np.ndarray:
        """Network ``key``'s (or its fallback's) mean output over the thesaurus's 95 emotions.

        For the harmony, groove and dynamics networks (dense, stateless), from each emotion's
        embedding as :meth:`hints_for_emotion` builds it (the harmony context's audio half
        zeros). Computed once per loaded model (95 dense steps, well under a millisecond) and
        cached. The harmony mean is floored at 1e-6 (it divides).
        """
        if key not in ("harmonypredictor", "groovepredictor", "dynamicsengine"):
            raise InputError(f"no baseline for {key!r}: only the harmony, groove and dynamics networks have one")
        cache = self.__dict__.setdefault("_baselines", {})
        run = self._run[key]
        if key in cache and cache[key][0] is run:
            return cache[key][1]
        from kelly.emotion.thesaurus import load_thesaurus, state_for

        entries = load_thesaurus().entries
        total = None
        for entry in entries:
            emb = schema.embed_emotion(state_for(entry.name))
            if key == "harmonypredictor":
                x = np.zeros(schema.HARMONY_CONTEXT_DIM, dtype=np.float32)
                x[:schema.EMBED_DIM] = emb
            elif key == "dynamicsengine":
                x = np.asarray(emb[:schema.DYNAMICS_CONTEXT_DIM], dtype=np.float32)
            else:
                x = np.asarray(emb, dtype=np.float32)
            out = np.asarray(run(x), dtype=np.float64)
            total = out if total is None else total + out
        mean = total / max(1, len(entries))
        base = _frozen(np.maximum(mean, 1e-6) if key == "harmonypredictor" else mean)
        cache[key] = (run, base)
        return base

    def melody_bars(self, embeddings: Any) -> np.ndarray:
        """The melody network stepped once per bar: one row of note probabilities per embedding.

        The network starts from a fresh (reset) state and carries its LSTM state from one
        row to the next, as it was trained (one step = one bar of a piece); afterwards the
        state it had before the call is put back, so a phrase running through
        :meth:`pipeline_step` goes on undisturbed and the same embeddings always give the
        same rows. Without the network (missing or disabled) the fallback heuristic gives
        each row from its own embedding. Not safe to call while another thread runs this
        processor.

        Parameters
        ----------
        embeddings : array-like [shape=(n_bars, 64)]
            The emotion embedding shaping each bar, values in [-1, 1].

        Returns
        -------
        np.ndarray [shape=(n_bars, 128), dtype=float32]
            A new array: row ``b`` holds bar ``b``'s note probabilities (MIDI pitch, key of C).

        Raises
        ------
        InputError
            If ``embeddings`` is not ``n_bars`` rows of 64 finite numbers in [-1, 1].
        """
        rows = _check_matrix(embeddings, schema.EMBED_DIM, "embeddings")
        key = "melodytransformer"
        run = self._run[key]
        model = self._models[key] if self._live[key] else None
        out = np.empty((len(rows), schema.N_NOTES), dtype=np.float32)
        saved = _recurrent_state(model) if model is not None else None
        try:
            if model is not None:
                model.reset()
            for bar, emb in enumerate(rows):
                out[bar] = run(emb)
        finally:
            if model is not None:
                _set_recurrent_state(saved)
        return out

    def run_audio_features(self, mel: np.ndarray) -> MusicHints:
        """Option 1: one normalised 128-bin log-mel frame through the whole pipeline."""
        vec = _check_vector(mel, schema.MEL_BINS, "mel frame")
        return self._hints(self.pipeline_step(vec), recognizer_used=True)

    def hints_for_embedding(self, embedding: np.ndarray, mel: np.ndarray | None = None) -> MusicHints:
        """Run everything after the recognizer on a 64-d embedding (optionally with audio)."""
        emb = _check_vector(embedding, schema.EMBED_DIM, "embedding")
        audio = None if mel is None else _check_vector(mel, schema.MEL_BINS, "mel frame")
        return self._hints(self.pipeline_step(audio, emb), recognizer_used=False)

    def hints_for_emotion(self, state: Any, *, mel: np.ndarray | None = None) -> MusicHints:
        """Option 2: an EmotionState (text, biometrics, explicit V/A/D) enters as its embedding."""
        return self.hints_for_embedding(schema.embed_emotion(state), mel)


def _load_checked(path: str | os.PathLike, key: str) -> Model:
    """Load one network: its spec must match and its weights must be safe on inputs in [-1, 1]."""
    model = load_model(path, spec=SPECS[key])
    model.check_bounded(INPUT_BOUND)
    return model


def _recurrent_state(model: Model) -> list[tuple[Any, Any]]:
    """Copies of every recurrent layer's state (an LSTM's ``(h, c)``, a GRU's ``h``)."""
    saved = []
    for layer in model.recurrent_layers():
        saved.append((layer, layer.state if hasattr(layer, "set_state") else layer.output1[:-1].copy()))
    return saved


def _set_recurrent_state(saved: list[tuple[Any, Any]]) -> None:
    """Put back what :func:`_recurrent_state` copied."""
    for layer, state in saved:
        if hasattr(layer, "set_state"):
            layer.set_state(*state)
        else:
            layer.output1[:-1] = state


def _check_matrix(x: Any, width: int, what: str) -> np.ndarray:
    """``x`` as float32 rows of ``width`` numbers in [-1, 1] (zero rows allowed)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be rows of {width} numbers") from None
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InputError(f"{what} must have shape (n, {width}), got {arr.shape}")
    if arr.size and not (np.abs(arr) <= INPUT_BOUND).all():
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{what} contain NaN or infinite values")
        raise InputError(f"{what} values must lie in [-{INPUT_BOUND:g}, {INPUT_BOUND:g}], got one of "
                         f"{float(np.abs(arr).max()):.3g}")
    return arr.astype(np.float32)


def _check_vector(x: Any, size: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a vector of {size} numbers") from None
    if arr.shape != (size,):
        raise InputError(f"{what} must have shape ({size},), got {arr.shape}")
    if not (np.abs(arr) <= INPUT_BOUND).all():
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{what} contains NaN or infinite values")
        raise InputError(f"{what} values must lie in [-{INPUT_BOUND:g}, {INPUT_BOUND:g}], got one of "
                         f"{float(np.abs(arr).max()):.3g}")
    return arr.astype(np.float32)
