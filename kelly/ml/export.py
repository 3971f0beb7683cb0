"""``kelly export`` and ``kelly validate``: write the networks in three formats and check them.

Formats (file names inside the output folder):

* ``rtneural``: ``emotionrecognizer.json`` … in the Keras-style schema RTNeural's
  ``parseJson`` reads (``in_shape``, ``layers[].type/shape/weights/activation``; dense
  ``W`` transposed to in × out, LSTM biases summed; see :mod:`kelly.ml.convert`);
* ``onnx``: ``emotionrecognizer.onnx`` … one graph per model with the LSTM state as
  explicit inputs/outputs, plus ``pipeline.onnx``, the whole pipeline as one graph
  (see :mod:`kelly.ml.onnx_graphs`);
* ``checkpoint``: ``emotionrecognizer.pt`` …, torch ``state_dict`` files readable with
  ``torch.load(path, weights_only=True)``.

A ``manifest.json`` records where the weights came from, the formats, parameter counts
and files. The weights are either read from files (:func:`load_weights`: the trained
weights the package ships in ``kelly/assets/models``, or a folder such as a ``kelly
train --out`` run) or initialised from a fixed seed, so an untrained export is
reproducible. Every file is written atomically (:mod:`kelly.fileio`).

Validation checks, for every model file found: that it loads (structure), that its
input and output sizes fit the pipeline (dimensions), and numerical parity over 50
stateful steps (max abs difference ≤ 1e-5) between torch, the numpy runtime and
onnxruntime. The torch reference is the checkpoint when present, otherwise the
RTNeural JSON loaded back into torch ("re-exporting"). ``--check-specs`` also requires
all five models, their exact architecture and the parameter counts of issue #4.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from kelly.errors import InputError, KellyError, ModelError
from kelly.fileio import json_bytes, write_files_atomic
from kelly.ml.convert import rtneural_to_spec_state_dict, spec_state_dict_to_rtneural
from kelly.ml.processor import safe_model_path
from kelly.ml.runtime import Model, model_from_dict, parse_model_json, read_model_file
from kelly.ml.specs import MODEL_KEYS, SPECS, TOTAL_PARAMS

FORMATS = ("rtneural", "onnx", "checkpoint")
PARITY_STEPS = 50
PARITY_TOL = 1e-5


#: Significant digits written for each weight: 9 are enough to give back every float32 exactly
#: (the 17 of a float64 repr made files a third larger for nothing).
FLOAT_DIGITS = 9
#: Version of the metadata sidecar (``<model>.meta.json``) beside each RTNeural file.
SIDECAR_SCHEMA = "1"


def _short_floats(obj: Any) -> Any:
    if isinstance(obj, float):
        return float(f"{obj:.{FLOAT_DIGITS}g}")
    if isinstance(obj, list):
        return [_short_floats(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _short_floats(v) for k, v in obj.items()}
    return obj


def rtneural_text(obj: dict) -> str:
    """Compact JSON text for an RTNeural model, every weight in 9 significant digits (exact for float32)."""
    return json.dumps(_short_floats(obj), separators=(",", ":"))


def output_description(key: str) -> dict:
    """What a model's outputs mean, for the metadata sidecar: names and ranges (and the chord table)."""
    from kelly.ml import schema

    spec = SPECS[key]
    if key == "harmonypredictor":
        return {"kind": "probabilities", "range": [0.0, 1.0], "sums_to": 1.0,
                "names": [schema.chord_class_name(i) for i in range(spec.out_size)],
                "chord_table": {"roots_then_qualities": list(schema.CHORD_QUALITIES),
                                "specials": [list(x) for x in schema.CHORD_SPECIALS]}}
    if key == "melodytransformer":
        return {"kind": "probabilities", "range": [0.0, 1.0], "names": [f"midi_{p}" for p in range(spec.out_size)],
                "note": "note probabilities for MIDI pitches 0-127 in the key of C (transpose to the piece's tonic)"}
    if key == "groovepredictor":
        return {"kind": "parameters", "range": [-1.0, 1.0], "names": list(schema.GROOVE_PARAMS),
                "bipolar": sorted(schema.GROOVE_BIPOLAR)}
    if key == "dynamicsengine":
        return {"kind": "parameters", "range": [0.0, 1.0], "names": list(schema.EXPRESSION_PARAMS)}
    return {"kind": "embedding", "range": [-1.0, 1.0], "size": spec.out_size,
            "note": "the 64-d emotion embedding the other four networks read (kelly.ml.schema)"}


def sidecar(key: str, text: str, *, seed: int | None, trained: bool, provenance: str = "",
            extra: Mapping[str, Any] | None = None) -> dict:
    """The metadata written beside ``<key>.json``: what it is, what its outputs mean, and its hash.

    ``extra`` adds fields (an export from files records there which file the weights came
    from); ``seed`` is None when no seed is known (weights read from a file without one).
    """
    from kelly import __version__

    spec = SPECS[key]
    doc = {
        "schema_version": SIDECAR_SCHEMA,
        "kelly_version": __version__,
        "model": spec.name, "file": spec.file_name, "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "in_size": spec.in_size, "out_size": spec.out_size, "params": spec.params,
        "recurrent_state": list(spec.lstm_sizes), "float_digits": FLOAT_DIGITS,
        "outputs": output_description(key), "seed": None if seed is None else int(seed), "trained": bool(trained),
        "provenance": provenance or ("initialised from a fixed seed (not trained)" if not trained else ""),
    }
    doc.update(extra or {})
    return doc


# ---------------------------------------------------------------------------------------
# Weights read from files (kelly export --weights shipped|DIR)
# ---------------------------------------------------------------------------------------

#: Where the package ships its trained weights (``<key>.npz`` + ``<key>.meta.json``, written
#: by :mod:`kelly.ml.ship`); the processor's last search folder.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
#: Largest sidecar read (they are a few kilobytes).
MAX_SIDECAR_BYTES = 1 << 20


@dataclass(frozen=True)
class LoadedWeights:
    """The five networks' weights read from files, and what their sidecars say about them.

    Attributes
    ----------
    source : str
        ``"shipped"`` or the folder they were read from (for messages and the manifest).
    states : dict
        Model key → torch-layout state_dict of float32 arrays
        (:func:`kelly.ml.convert.rtneural_to_spec_state_dict`: an LSTM's summed bias in
        ``bias_ih``, zeros in ``bias_hh``, which computes the same function).
    trained, provenance, seeds : dict
        Per model key: whether the sidecar says the weights were trained, how (one line),
        and the seed it records (None when unknown).
    files : dict
        Model key → ``{"file": name, "sha256": hex}`` of the file read.
    """

    source: str
    states: dict[str, dict[str, np.ndarray]]
    trained: dict[str, bool]
    provenance: dict[str, str]
    seeds: dict[str, int | None]
    files: dict[str, dict[str, str]]


def weight_file_names(key: str, *, shipped: bool = False) -> tuple[str, ...]:
    """The files that may hold model ``key``'s weights, in the order they are preferred.

    The shipped folder holds packed files only; any other folder RTNeural JSON first, then
    the packed form, as the processor looks for them.
    """
    from kelly.ml.packed import packed_name

    name = SPECS[key].file_name
    return (packed_name(name),) if shipped else (name, packed_name(name))


def shipped_weights_available(folder: str | Path | None = None) -> bool:
    """True when ``folder`` (default: the package's) holds a packed file for all five networks."""
    folder = SHIPPED_DIR if folder is None else Path(folder)
    return all((folder / weight_file_names(key, shipped=True)[0]).is_file() for key in MODEL_KEYS)


def weight_input_files(folder: str | Path, *, shipped: bool = False) -> list[Path]:
    """Every file :func:`load_weights` may read in ``folder`` (an export must not write over them)."""
    folder = Path(folder)
    names = [n for key in MODEL_KEYS for n in weight_file_names(key, shipped=shipped) + (f"{key}.meta.json",)]
    return [folder / n for n in names if os.path.lexists(folder / n)]


def _read_sidecar(folder: Path, key: str) -> dict | None:
    from kelly.fileio import read_json, show_path

    name = f"{key}.meta.json"
    if not os.path.lexists(folder / name):
        return None
    path = safe_model_path(folder, name)
    meta = read_json(path, what="model sidecar", max_bytes=MAX_SIDECAR_BYTES)
    if not isinstance(meta, dict):
        raise ModelError(f"{show_path(path)}: not a model sidecar (expected a JSON object)")
    return meta


def _provenance(meta: dict | None, name: str) -> str:
    """One line saying how the weights were made, from their sidecar (export, training or shipped)."""
    if meta is None:
        return f"read from {name}, which has no sidecar: how these weights were made is not recorded"
    text = meta.get("provenance") or meta.get("note")
    if isinstance(text, str) and text.strip():
        return text.strip()[:500]
    if meta.get("trained") is True:  # a kelly train sidecar: data source and collections
        training = meta.get("training") if isinstance(meta.get("training"), dict) else meta
        config = training.get("config") if isinstance(training.get("config"), dict) else {}
        return (f"trained by kelly train on {config.get('collections') or 'all'} "
                f"({training.get('data') or 'unknown'} data)")
    return f"read from {name}; its sidecar does not say how the weights were made"


def _sidecar_seed(meta: dict | None) -> int | None:
    if meta is None:
        return None
    for doc in (meta, meta.get("training") if isinstance(meta.get("training"), dict) else {}):
        seed = doc.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32:
            return seed
    return None


def load_state(folder: Path, key: str, *,
               shipped: bool = False) -> tuple[dict[str, np.ndarray], dict | None, str, str]:
    """One network's torch-layout state, its sidecar, the file name read and its SHA-256."""
    from kelly.fileio import show_path
    from kelly.ml import packed
    from kelly.ml.processor import INPUT_BOUND

    spec = SPECS[key]
    names = weight_file_names(key, shipped=shipped)
    meta = _read_sidecar(folder, key)
    present = [n for n in names if os.path.lexists(folder / n)]
    where = "the package's shipped weights" if shipped else show_path(folder)
    if not present:
        raise ModelError(f"{where} have no {spec.name} ({' or '.join(names)} missing in {show_path(folder)})"
                         if shipped else f"{where} has no {spec.name} weights ({' or '.join(names)})")
    described = meta.get("file") if meta is not None else None
    name = described if described in present else present[0]
    path = safe_model_path(folder, name)
    data = read_model_file(path)
    digest = hashlib.sha256(data).hexdigest()
    if meta is None and shipped:
        raise ModelError(f"{show_path(path)} has no sidecar {key}.meta.json, so it cannot be checked")
    if meta is not None:
        if isinstance(described, str) and described != name:
            raise ModelError(f"{show_path(folder / f'{key}.meta.json')} describes {described[:80]!r}, "
                             f"which is not in {show_path(folder)}")
        want = meta.get("sha256") or meta.get("model_sha256")
        if want != digest:
            raise ModelError(f"{show_path(path)} does not match its sidecar {key}.meta.json (SHA-256 "
                             f"{digest[:12]}…, the sidecar says {str(want)[:12]}…): the file was changed or "
                             "replaced")
    is_packed = packed.is_packed(data) or name.endswith(packed.SUFFIX)
    obj = packed.unpack(data, name=name) if is_packed else parse_model_json(data, name=name)
    model = model_from_dict(obj, name=name, spec=spec)
    model.check_bounded(INPUT_BOUND)
    return rtneural_to_spec_state_dict(spec, obj), meta, name, digest


def load_weights(folder: str | Path | None = None) -> LoadedWeights:
    """Read all five networks' weights for an export.

    Parameters
    ----------
    folder : path or None
        None: the trained weights the package ships (``kelly/assets/models/<key>.npz``, each
        with its ``<key>.meta.json`` sidecar, which must match it). A folder: ``<key>.json``
        (RTNeural JSON) or ``<key>.npz`` (packed) for every network, such as a ``kelly train
        --out`` or ``kelly export`` folder; a ``<key>.meta.json`` beside a file, when there is
        one, must match it (its ``sha256`` or ``model_sha256``) and says what it is.

    Every file is checked as the processor checks it (regular file of bounded size, the
    network's exact architecture, finite float32 weights that stay bounded on inputs in
    [-1, 1]).

    Raises
    ------
    InputError
        If ``folder`` is not a folder.
    ModelError
        A missing network, a file that does not match its sidecar, a corrupt file (one
        line naming the file).
    """
    shipped = folder is None
    base = SHIPPED_DIR if shipped else Path(folder)
    if not base.is_dir():
        if shipped:
            raise ModelError("this installation of Kelly has no shipped weights (no kelly/assets/models): "
                             "use --weights untrained or --weights DIR")
        raise InputError(f"{base} is not a folder (--weights takes shipped, untrained or a folder of model files)")
    states, trained, provenance, seeds, files = {}, {}, {}, {}, {}
    for key in MODEL_KEYS:
        state, meta, name, digest = load_state(base, key, shipped=shipped)
        states[key] = state
        trained[key] = bool(meta is not None and meta.get("trained") is True)
        provenance[key] = _provenance(meta, name)
        seeds[key] = _sidecar_seed(meta)
        files[key] = {"file": name, "sha256": digest}
    return LoadedWeights(source="shipped" if shipped else str(base), states=states, trained=trained,
                         provenance=provenance, seeds=seeds, files=files)


def export_models(out_dir: str | Path, formats: Iterable[str] = ("rtneural",), *, seed: int = 0,
                  states: dict[str, dict[str, np.ndarray]] | None = None, trained: bool = False,
                  provenance: str = "", weights: LoadedWeights | None = None) -> list[Path]:
    """Write the five networks in ``formats`` to ``out_dir``; returns the files written.

    Parameters
    ----------
    states : mapping key → torch-layout state_dict of numpy arrays, optional
        Weights to export (trained ones), described by ``trained`` and ``provenance``; by
        default torch initialises them from ``seed``.
    weights : LoadedWeights, optional
        Weights read by :func:`load_weights` (replaces ``states``, ``trained``,
        ``provenance`` and ``seed``): each sidecar then carries that network's own
        provenance, training flag and seed, and ``weights_from`` (the file read and its
        SHA-256); the manifest names the source.
    """
    formats = tuple(dict.fromkeys(formats))
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    if weights is not None:
        states = weights.states
    elif states is None:
        from kelly.ml import torch_models

        models = torch_models.build_models(seed)
        states = {key: torch_models.numpy_state_dict(m) for key, m in models.items()}

    def about(key: str) -> dict[str, Any]:
        if weights is None:
            return {"seed": seed, "trained": trained, "provenance": provenance}
        return {"seed": weights.seeds[key], "trained": weights.trained[key], "provenance": weights.provenance[key],
                "extra": {"weights_from": {"source": "shipped" if weights.source == "shipped" else "folder",
                                           **weights.files[key]}}}

    files: dict[Path, bytes] = {}
    for key in MODEL_KEYS:
        spec, state = SPECS[key], states[key]
        if "rtneural" in formats:
            text = rtneural_text(spec_state_dict_to_rtneural(spec, state))
            files[out / spec.file_name] = text.encode("utf-8")
            files[out / f"{key}.meta.json"] = json_bytes(sidecar(key, text, **about(key)))
        if "onnx" in formats:
            from kelly.ml.onnx_graphs import model_graph

            files[out / f"{key}.onnx"] = model_graph(spec, state).SerializeToString()
        if "checkpoint" in formats:
            import torch

            buf = io.BytesIO()
            torch.save({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in state.items()}, buf)
            files[out / f"{key}.pt"] = buf.getvalue()
    if "onnx" in formats:
        from kelly.ml.onnx_graphs import pipeline_graph

        files[out / "pipeline.onnx"] = pipeline_graph(states).SerializeToString()
    from kelly import __version__

    if weights is None:
        note = provenance or ("" if trained else "weights initialised from a fixed seed (no training yet)")
        head = {"weights": "trained" if trained else "untrained", "seed": int(seed), "trained": bool(trained),
                "note": note}
    else:
        notes = set(weights.provenance.values())
        head = {"weights": "shipped" if weights.source == "shipped" else "folder", "seed": None,
                "trained": all(weights.trained.values()),
                "note": notes.pop() if len(notes) == 1 else "per network: see each <model>.meta.json"}
    models = {}
    for key in MODEL_KEYS:
        spec = SPECS[key]
        models[key] = {"name": spec.name, "params": spec.params, "in": spec.in_size, "out": spec.out_size}
        if weights is not None:
            models[key].update(trained=weights.trained[key], provenance=weights.provenance[key],
                               weights_from=weights.files[key])
    manifest = {
        "kelly_version": __version__,
        **head,
        "formats": list(formats),
        "total_params": TOTAL_PARAMS,
        "models": models,
        "files": sorted(p.name for p in files),
        "sha256": {p.name: hashlib.sha256(data).hexdigest() for p, data in sorted(files.items())},
    }
    # One group, the manifest (which holds every file's SHA-256) committed first, then each sidecar
    # before its model: a kill leaves the old set or the new one, or, in the microseconds between two
    # renames, a mix that validate_dir and load_weights refuse by hash (see the module docstring).
    ordered = {out / "manifest.json": json_bytes(manifest)}
    for path, data in sorted(files.items(), key=lambda item: not item[0].name.endswith(".meta.json")):
        ordered[path] = data
    write_files_atomic(ordered)
    return [*files, out / "manifest.json"]


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One line of a validation report."""

    model: str
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.model:<18} {self.check:<12} {self.detail}"


def parity_inputs(key: str, steps: int = PARITY_STEPS, seed: int = 1234) -> np.ndarray:
    """Deterministic test inputs in each model's natural range (mel in [0, 1], others [-1, 1])."""
    spec = SPECS[key] if key in SPECS else None
    rng = np.random.default_rng(seed)
    if key in ("emotionrecognizer", "pipeline"):
        return rng.uniform(0.0, 1.0, (steps, 128)).astype(np.float32)
    return rng.uniform(-1.0, 1.0, (steps, spec.in_size)).astype(np.float32)


def _torch_outputs(model, xs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        y, _ = model(torch.from_numpy(xs)[None])
    return y[0].numpy()


def _onnx_outputs(stepper, xs: np.ndarray, name: str = "y") -> np.ndarray:
    stepper.reset()
    return np.stack([stepper.step(x)[name][0] for x in xs])


def checkpoint_shapes(spec) -> dict[str, tuple[int, ...]]:
    """The tensors (name → shape) a checkpoint of ``spec`` must hold, as torch names them."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, layer in enumerate(spec.layers):
        p = f"layers.{i}"
        if layer.kind == "dense":
            shapes[f"{p}.weight"] = (layer.out_size, layer.in_size)
            shapes[f"{p}.bias"] = (layer.out_size,)
        else:
            h = layer.out_size
            shapes[f"{p}.weight_ih_l0"] = (4 * h, layer.in_size)
            shapes[f"{p}.weight_hh_l0"] = (4 * h, h)
            shapes[f"{p}.bias_ih_l0"] = (4 * h,)
            shapes[f"{p}.bias_hh_l0"] = (4 * h,)
    return shapes


def load_checkpoint_bytes(data: bytes, key: str, *, name: str = "model.pt"):
    """A torch module from the bytes of a checkpoint for ``key`` (a fuzzing entry point).

    Only torch's zip format with uncompressed entries (what ``torch.save`` writes) is
    read, with ``torch.load(weights_only=True)``; the result must be a state_dict with
    exactly the spec's tensors, each a finite float tensor of the right shape.

    Raises
    ------
    kelly.ml.runtime.ModelFileError
        One line starting with ``name``.
    """
    import warnings
    import zipfile

    import torch

    from kelly.ml.onnx_graphs import _short
    from kelly.ml.runtime import FLOAT32_MAX, MAX_MODEL_BYTES, ModelFileError
    from kelly.ml.torch_models import model_from_state_dict

    spec = SPECS[key]
    data = bytes(data)
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"{name}: more than {MAX_MODEL_BYTES // (1024 * 1024)} MB, too large for a checkpoint")
    if not data.startswith(b"PK\x03\x04"):
        raise ModelFileError(f"{name}: not a torch checkpoint (expected the zip format torch.save writes)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except Exception as exc:  # zipfile raises BadZipFile, ValueError, EOFError, …
        raise ModelFileError(f"{name}: not a torch checkpoint ({_short(exc)})") from None
    if len(entries) > 10_000 or any(e.compress_type != zipfile.ZIP_STORED or e.file_size > len(data)
                                    for e in entries):
        raise ModelFileError(f"{name}: not a torch checkpoint (compressed or oversized entries; torch.save "
                             "writes neither)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelFileError(f"{name}: cannot read checkpoint: {_short(exc)}") from None
    if not isinstance(state, dict):
        raise ModelFileError(f"{name}: expected a state_dict (names → tensors), got {type(state).__name__}")
    want = checkpoint_shapes(spec)
    missing = [k for k in want if k not in state]
    extra = [str(k)[:40] for k in state if k not in want]
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:4])}"] if extra else [])
        raise ModelFileError(f"{name}: does not match {spec.name}: {'; '.join(parts)}")
    for k, shape in want.items():
        t = state[k]
        if not isinstance(t, torch.Tensor):
            raise ModelFileError(f"{name}: {k} is a {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.device.type != "cpu" or not t.is_floating_point():
            raise ModelFileError(f"{name}: {k} is not a dense float tensor ({t.dtype}, {t.layout})")
        if tuple(t.shape) != shape:
            raise ModelFileError(f"{name}: {k} has shape {'x'.join(map(str, t.shape)) or 'scalar'}, "
                                 f"expected {'x'.join(map(str, shape))}")
        if not bool((t.detach().double().abs() <= FLOAT32_MAX).all()):
            raise ModelFileError(f"{name}: {k} contains NaN, infinite or out-of-range values")
    try:
        return model_from_state_dict(key, {k: state[k] for k in want})
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{name}: does not match {spec.name}: {_short(exc)}") from None


def _load_checkpoint(path: Path, key: str):
    return load_checkpoint_bytes(read_model_file(path), key, name=path.name)


def _entry_bytes(folder: Path, file_name: str) -> bytes | None:
    """The bytes of ``folder/file_name``, or None when there is no such entry.

    Raises
    ------
    ModelError
        If the entry resolves outside ``folder`` (a symlink) or is not a regular file of
        bounded size.
    """
    path = folder / file_name
    if not os.path.lexists(path):
        return None
    safe_model_path(folder, file_name)
    return read_model_file(path)


def _compare(out: np.ndarray, ref: np.ndarray) -> float:
    """Max |out − ref| (inf for a shape mismatch or a non-finite output), without numpy warnings."""
    if out.shape != ref.shape:
        return float("inf")
    with np.errstate(all="ignore"):
        if not (np.isfinite(out).all() and np.isfinite(ref).all()):
            return float("inf")
        return float(np.abs(out.astype(np.float64) - ref.astype(np.float64)).max()) if out.size else 0.0


def validate_dir(folder: str | Path, *, check_specs: bool = False, steps: int = PARITY_STEPS,
                 tol: float = PARITY_TOL) -> list[Check]:
    """Validate the model files in ``folder``; returns the report (see the module docstring).

    Only regular files inside ``folder`` are read: an entry that is a symlink leading
    out of it, a device, a FIFO or a folder fails its check with a note instead.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    checks: list[Check] = []
    refs: dict[str, Any] = {}
    runtimes: dict[str, Model] = {}

    def add(model: str, check: str, ok: bool, detail: str) -> None:
        checks.append(Check(model, check, ok, detail))

    def entry(model: str, check: str, file_name: str) -> bytes | None:
        try:
            return _entry_bytes(folder, file_name)
        except KellyError as exc:
            add(model, check, False, f"refused: {exc}")
            return None

    for key in MODEL_KEYS:
        spec = SPECS[key]
        names = {"rtneural": spec.file_name, "onnx": f"{key}.onnx", "checkpoint": f"{key}.pt"}
        if not any(os.path.lexists(folder / n) for n in names.values()):
            add(key, "present", not check_specs, "no files" + (" (required by --check-specs)" if check_specs else ""))
            continue
        json_data = entry(key, "rtneural", names["rtneural"])
        onnx_data = entry(key, "onnx", names["onnx"])
        pt_data = entry(key, "checkpoint", names["checkpoint"])
        obj = None
        if json_data is not None:
            try:
                obj = parse_model_json(json_data, name=spec.file_name)
                rt = model_from_dict(obj, name=spec.file_name, spec=spec if check_specs else None,
                                     sizes=(spec.in_size, spec.out_size))
                rt.check_bounded(1.0)
                detail = f"{len(rt.layers)} layers, {rt.param_count():,} numbers"
                if check_specs and rt.param_count() != spec.rtneural_param_count():
                    raise ModelError(f"{spec.file_name}: {rt.param_count():,} numbers, expected "
                                     f"{spec.rtneural_param_count():,}")
                runtimes[key] = rt
                add(key, "rtneural", True, detail)
            except ModelError as exc:
                add(key, "rtneural", False, str(exc))
        if pt_data is not None:
            if not have_torch:
                add(key, "checkpoint", True, "skipped: torch is not installed")
            else:
                try:
                    from kelly.ml.torch_models import param_count

                    model = load_checkpoint_bytes(pt_data, key, name=names["checkpoint"])
                    n = param_count(model)
                    if n != spec.params:
                        raise ModelError(f"{names['checkpoint']}: {n:,} parameters, expected {spec.params:,}")
                    refs[key] = model
                    add(key, "checkpoint", True, f"{n:,} parameters (spec {spec.params:,})")
                except ModelError as exc:
                    add(key, "checkpoint", False, str(exc))
        if key not in refs and key in runtimes and have_torch:
            try:
                from kelly.ml.torch_models import model_from_state_dict

                refs[key] = model_from_state_dict(key, rtneural_to_spec_state_dict(spec, obj))
            except (ModelError, RuntimeError, KeyError, IndexError, TypeError, ValueError) as exc:
                add(key, "parity", True, f"skipped: the JSON cannot be loaded into torch ({exc})")
        xs = parity_inputs(key, steps)
        outputs: dict[str, np.ndarray] = {}
        with np.errstate(all="ignore"):
            ref = _torch_outputs(refs[key], xs) if key in refs else None
            if key in runtimes:
                runtimes[key].reset()
                outputs["numpy"] = runtimes[key].run(xs)
            if onnx_data is not None:
                try:
                    from kelly.ml.onnx_graphs import load_onnx_bytes

                    stepper = load_onnx_bytes(onnx_data, key=key, name=names["onnx"])
                    try:
                        outputs["onnxruntime"] = _onnx_outputs(stepper, xs)
                    except Exception as exc:  # onnxruntime raises its own exception types
                        add(key, "onnx", False, f"{names['onnx']}: cannot run: {' '.join(str(exc).split())[:200]}")
                except ModelError as exc:
                    add(key, "onnx", False, str(exc))
                except ImportError as exc:
                    add(key, "onnx", True, f"skipped: onnx is not installed ({exc})")
        if ref is None and len(outputs) == 2:
            ref = outputs.pop("numpy")
            label = "numpy"
        else:
            label = "torch"
        for name, out in outputs.items():
            if ref is None:
                continue
            err = _compare(out, ref)
            detail = f"{name} vs {label}: max |Δ| {err:.2e} over {steps} steps (tol {tol:g})"
            if err == float("inf"):
                detail += " (outputs differ in shape or are not finite)"
            add(key, "parity", err <= tol, detail)
    pipe_data = entry("pipeline", "onnx", "pipeline.onnx")
    if pipe_data is not None:
        if len(refs) == len(MODEL_KEYS):
            checks.extend(_pipeline_parity(pipe_data, refs, steps, tol))
        else:
            add("pipeline", "parity", True, "skipped: needs all five models as torch references")
    elif check_specs and not os.path.lexists(folder / "pipeline.onnx") \
            and any(os.path.lexists(folder / f"{k}.onnx") for k in MODEL_KEYS):
        add("pipeline", "present", False, "pipeline.onnx missing next to the per-model ONNX files")
    if check_specs:
        total = sum(SPECS[k].params for k in MODEL_KEYS)
        add("all", "params", total == TOTAL_PARAMS, f"{total:,} parameters in total (issue #4: {TOTAL_PARAMS:,})")
    checks.extend(integrity_checks(folder))
    return checks


def integrity_checks(folder: str | Path) -> list[Check]:
    """Whether the files in ``folder`` belong together: each RTNeural file against its sidecar's SHA-256, and
    every file ``manifest.json`` lists against the SHA-256 it records.

    An export (or a ``kelly train`` publish) is one group of files renamed into place one
    after another; a kill in the microseconds between two renames, or files copied from
    two exports, leaves a folder whose files do not describe each other. That is a failed
    check naming the file, never a set used as if whole.
    """
    from kelly.fileio import read_json

    folder = Path(folder)
    checks: list[Check] = []

    def digest(name: str) -> str | None:
        try:
            data = _entry_bytes(folder, name)
        except KellyError:
            return None  # the file's own check says why
        return None if data is None else hashlib.sha256(data).hexdigest()

    for key in MODEL_KEYS:
        name = SPECS[key].file_name
        if not os.path.lexists(folder / f"{key}.meta.json") or not os.path.lexists(folder / name):
            continue
        try:
            meta = _read_sidecar(folder, key)
        except KellyError as exc:
            checks.append(Check(key, "sidecar", False, str(exc)))
            continue
        if meta.get("file", name) != name:
            continue  # it describes another file (the packed form)
        want, got = meta.get("sha256") or meta.get("model_sha256"), digest(name)
        if got is None:
            continue
        checks.append(Check(key, "sidecar", want == got,
                            f"{key}.meta.json describes {name} (SHA-256 {got[:12]}…)" if want == got else
                            f"{name} does not match {key}.meta.json (SHA-256 {got[:12]}…, the sidecar says "
                            f"{str(want)[:12]}…): the files come from two exports (an interrupted one?); "
                            "export again"))
    if os.path.lexists(folder / "manifest.json"):
        try:
            manifest = read_json(safe_model_path(folder, "manifest.json"), what="export manifest",
                                 max_bytes=MAX_SIDECAR_BYTES)
        except KellyError as exc:
            return checks + [Check("manifest", "files", False, str(exc))]
        hashes = manifest.get("sha256") if isinstance(manifest, dict) else None
        if isinstance(hashes, dict):
            bad = []
            for name, want in sorted(hashes.items()):
                got = digest(name) if isinstance(name, str) and "/" not in name and name not in ("", ".", "..") \
                    else None
                if got != want:
                    bad.append(name if got is not None else f"{name} (missing or unreadable)")
            checks.append(Check("manifest", "files", not bad,
                                f"all {len(hashes)} files match manifest.json" if not bad else
                                f"{len(bad)} file(s) do not match manifest.json ({', '.join(map(str, bad[:4]))}): "
                                "the folder mixes two exports (an interrupted one?); export again"))
    return checks


def _pipeline_parity(data: bytes, refs: dict[str, Any], steps: int, tol: float) -> list[Check]:
    import torch

    from kelly.ml.onnx_graphs import PIPELINE_OUTPUTS, load_onnx_bytes
    from kelly.ml.torch_models import KellyPipeline

    try:
        stepper = load_onnx_bytes(data, key="pipeline", name="pipeline.onnx")
    except ModelError as exc:
        return [Check("pipeline", "onnx", False, str(exc))]
    pipe = KellyPipeline(refs)
    state = pipe.initial_state()
    err = 0.0
    try:
        for x in parity_inputs("pipeline", steps):
            with torch.no_grad():
                outs, state = pipe(torch.from_numpy(x)[None], state)
            got = stepper.step(x)
            for name, t in zip(PIPELINE_OUTPUTS, outs):
                err = max(err, _compare(got[name], t.numpy()))
    except Exception as exc:  # onnxruntime raises its own exception types
        return [Check("pipeline", "onnx", False, f"pipeline.onnx: cannot run: {' '.join(str(exc).split())[:200]}")]
    return [Check("pipeline", "parity", err <= tol,
                  f"onnxruntime one-graph vs torch: max |Δ| {err:.2e} over {steps} steps (tol {tol:g})")]
