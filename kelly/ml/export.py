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

A ``manifest.json`` records the seed, formats, parameter counts and files. Until trained
weights exist the models are initialised from a fixed seed, so an export is
reproducible. Every file is written atomically (:mod:`kelly.fileio`).

Validation checks, for every model file found: that it loads (structure), that its
input and output sizes fit the pipeline (dimensions), and numerical parity over 50
stateful steps (max abs difference ≤ 1e-5) between torch, the numpy runtime and
onnxruntime. The torch reference is the checkpoint when present, otherwise the
RTNeural JSON loaded back into torch ("re-exporting"). ``--check-specs`` also requires
all five models, their exact architecture and the parameter counts of issue #4.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from kelly.errors import InputError, ModelError
from kelly.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from kelly.ml.convert import rtneural_to_spec_state_dict, spec_state_dict_to_rtneural
from kelly.ml.runtime import Model, load_model
from kelly.ml.specs import MODEL_KEYS, SPECS, TOTAL_PARAMS

FORMATS = ("rtneural", "onnx", "checkpoint")
PARITY_STEPS = 50
PARITY_TOL = 1e-5


def rtneural_text(obj: dict) -> str:
    """Compact JSON text for an RTNeural model (floats written exactly)."""
    return json.dumps(obj, separators=(",", ":"))


def export_models(out_dir: str | Path, formats: Iterable[str] = ("rtneural",), *, seed: int = 0,
                  states: dict[str, dict[str, np.ndarray]] | None = None) -> list[Path]:
    """Write the five networks in ``formats`` to ``out_dir``; returns the files written.

    Parameters
    ----------
    states : mapping key → torch-layout state_dict of numpy arrays, optional
        Weights to export (trained ones); by default torch initialises them from ``seed``.
    """
    formats = tuple(dict.fromkeys(formats))
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    if states is None:
        from kelly.ml import torch_models

        models = torch_models.build_models(seed)
        states = {key: torch_models.numpy_state_dict(m) for key, m in models.items()}
    written: list[Path] = []
    for key in MODEL_KEYS:
        spec, state = SPECS[key], states[key]
        if "rtneural" in formats:
            written.append(write_text_atomic(out / spec.file_name,
                                             rtneural_text(spec_state_dict_to_rtneural(spec, state))))
        if "onnx" in formats:
            from kelly.ml.onnx_graphs import model_graph

            written.append(write_bytes_atomic(out / f"{key}.onnx", model_graph(spec, state).SerializeToString()))
        if "checkpoint" in formats:
            import torch

            buf = io.BytesIO()
            torch.save({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in state.items()}, buf)
            written.append(write_bytes_atomic(out / f"{key}.pt", buf.getvalue()))
    if "onnx" in formats:
        from kelly.ml.onnx_graphs import pipeline_graph

        written.append(write_bytes_atomic(out / "pipeline.onnx", pipeline_graph(states).SerializeToString()))
    from kelly import __version__

    manifest = {
        "kelly_version": __version__,
        "seed": int(seed),
        "trained": False,
        "note": "weights initialised from a fixed seed (no training yet)",
        "formats": list(formats),
        "total_params": TOTAL_PARAMS,
        "models": {key: {"name": SPECS[key].name, "params": SPECS[key].params,
                         "in": SPECS[key].in_size, "out": SPECS[key].out_size} for key in MODEL_KEYS},
        "files": sorted(p.name for p in written),
    }
    written.append(write_json_atomic(out / "manifest.json", manifest))
    return written


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


def _onnx_outputs(path: Path, xs: np.ndarray, name: str = "y") -> np.ndarray:
    from kelly.ml.onnx_graphs import OnnxStepper, session

    stepper = OnnxStepper(session(str(path)))
    return np.stack([stepper.step(x)[name][0] for x in xs])


def _load_checkpoint(path: Path, key: str):
    import torch

    from kelly.ml.torch_models import model_from_state_dict

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"{path.name}: cannot read checkpoint: {exc}") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path.name}: expected a state_dict, got {type(state).__name__}")
    try:
        return model_from_state_dict(key, state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(f"{path.name}: does not match {SPECS[key].name}: {' '.join(first[:3])}") from None


def validate_dir(folder: str | Path, *, check_specs: bool = False, steps: int = PARITY_STEPS,
                 tol: float = PARITY_TOL) -> list[Check]:
    """Validate the model files in ``folder``; returns the report (see the module docstring)."""
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

    for key in MODEL_KEYS:
        spec = SPECS[key]
        json_path, onnx_path, pt_path = folder / spec.file_name, folder / f"{key}.onnx", folder / f"{key}.pt"
        present = [p for p in (json_path, onnx_path, pt_path) if p.is_file()]
        if not present:
            add(key, "present", not check_specs, "no files" + (" (required by --check-specs)" if check_specs else ""))
            continue
        if json_path.is_file():
            try:
                rt = load_model(json_path, spec=spec if check_specs else None)
                if rt.in_size != spec.in_size or rt.out_size != spec.out_size:
                    raise ModelError(f"{json_path.name}: maps {rt.in_size}→{rt.out_size}, the pipeline needs "
                                     f"{spec.in_size}→{spec.out_size}")
                runtimes[key] = rt
                detail = f"{len(rt.layers)} layers, {rt.param_count():,} numbers"
                if check_specs and rt.param_count() != spec.rtneural_param_count():
                    raise ModelError(f"{json_path.name}: {rt.param_count():,} numbers, expected "
                                     f"{spec.rtneural_param_count():,}")
                add(key, "rtneural", True, detail)
            except ModelError as exc:
                add(key, "rtneural", False, str(exc))
        if pt_path.is_file():
            if not have_torch:
                add(key, "checkpoint", True, "skipped: torch is not installed")
            else:
                try:
                    from kelly.ml.torch_models import param_count

                    model = _load_checkpoint(pt_path, key)
                    n = param_count(model)
                    if n != spec.params:
                        raise ModelError(f"{pt_path.name}: {n:,} parameters, expected {spec.params:,}")
                    refs[key] = model
                    add(key, "checkpoint", True, f"{n:,} parameters (spec {spec.params:,})")
                except ModelError as exc:
                    add(key, "checkpoint", False, str(exc))
        if key not in refs and key in runtimes and have_torch:
            try:
                from kelly.ml.torch_models import model_from_state_dict

                with open(json_path, "rb") as handle:
                    refs[key] = model_from_state_dict(key, rtneural_to_spec_state_dict(spec, json.load(handle)))
            except (ModelError, RuntimeError, KeyError, IndexError) as exc:
                add(key, "parity", True, f"skipped: the JSON cannot be loaded into torch ({exc})")
        xs = parity_inputs(key, steps)
        ref = _torch_outputs(refs[key], xs) if key in refs else None
        outputs: dict[str, np.ndarray] = {}
        if key in runtimes:
            runtimes[key].reset()
            outputs["numpy"] = runtimes[key].run(xs)
        if onnx_path.is_file():
            try:
                outputs["onnxruntime"] = _onnx_outputs(onnx_path, xs)
            except Exception as exc:  # onnxruntime raises its own exception types
                add(key, "onnx", False, f"{onnx_path.name}: cannot run: {exc}")
        if ref is None and len(outputs) == 2:
            ref = outputs.pop("numpy")
            label = "numpy"
        else:
            label = "torch"
        for name, out in outputs.items():
            if ref is None:
                continue
            err = float(np.abs(out - ref).max()) if out.shape == ref.shape else float("inf")
            add(key, "parity", err <= tol, f"{name} vs {label}: max |Δ| {err:.2e} over {steps} steps (tol {tol:g})")
    pipe = folder / "pipeline.onnx"
    if pipe.is_file():
        if len(refs) == len(MODEL_KEYS):
            checks.extend(_pipeline_parity(pipe, refs, steps, tol))
        else:
            add("pipeline", "parity", True, "skipped: needs all five models as torch references")
    elif check_specs and any((folder / f"{k}.onnx").is_file() for k in MODEL_KEYS):
        add("pipeline", "present", False, "pipeline.onnx missing next to the per-model ONNX files")
    if check_specs:
        total = sum(SPECS[k].params for k in MODEL_KEYS)
        add("all", "params", total == TOTAL_PARAMS, f"{total:,} parameters in total (issue #4: {TOTAL_PARAMS:,})")
    return checks


def _pipeline_parity(path: Path, refs: dict[str, Any], steps: int, tol: float) -> list[Check]:
    import torch

    from kelly.ml.onnx_graphs import PIPELINE_OUTPUTS, OnnxStepper, session
    from kelly.ml.torch_models import KellyPipeline

    try:
        stepper = OnnxStepper(session(str(path)))
    except Exception as exc:  # onnxruntime's own exception types
        return [Check("pipeline", "onnx", False, f"{path.name}: cannot load: {exc}")]
    pipe = KellyPipeline(refs)
    state = pipe.initial_state()
    err = 0.0
    for x in parity_inputs("pipeline", steps):
        with torch.no_grad():
            outs, state = pipe(torch.from_numpy(x)[None], state)
        got = stepper.step(x)
        for name, t in zip(PIPELINE_OUTPUTS, outs):
            err = max(err, float(np.abs(got[name] - t.numpy()).max()))
    return [Check("pipeline", "parity", err <= tol,
                  f"onnxruntime one-graph vs torch: max |Δ| {err:.2e} over {steps} steps (tol {tol:g})")]
