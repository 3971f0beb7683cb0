"""Malicious checkpoints and model files: every loader refuses them and no code runs.

The payload's ``__reduce__`` opens (creates) a marker file when unpickled. A control test
shows it does exactly that under a plain ``pickle.loads``; every Kelly loader must refuse
the same bytes with a clear one-line error while the marker never appears. A static scan
of the package keeps it so: every ``torch.load`` passes ``weights_only=True``, every
``np.load`` ``allow_pickle=False``, and nothing calls ``pickle``, ``marshal``,
``shelve``, ``dill``, ``joblib`` or an unsafe YAML loader.
"""

from __future__ import annotations

import ast
import io
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kelly.errors import KellyError  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[2] / "kelly"


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if any code from the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_file(marker: Path, wrap) -> bytes:
    buf = io.BytesIO()
    torch.save(wrap(Payload(marker)), buf)
    return buf.getvalue()


def payloads(marker: Path) -> dict[str, bytes]:
    """The same attack in the shapes a loader might meet: torch's zip format (alone, inside a Kelly
    checkpoint dict, inside a state_dict beside real tensors) and a bare (legacy) pickle."""
    return {
        "torch-zip": _torch_file(marker, lambda p: p),
        "kelly-checkpoint": _torch_file(marker, lambda p: {"format": "kelly-checkpoint", "version": 1, "model": p}),
        "state-dict": _torch_file(marker, lambda p: {"weight": torch.zeros(2), "bias": p}),
        "bare-pickle": pickle.dumps({"format": "kelly-transformer", "model": Payload(marker)}, protocol=2),
    }


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def test_the_payload_is_live_under_plain_pickle(tmp_path):
    """Control: loaded without weights_only the bytes do run code, so the refusals below mean something."""
    target = tmp_path / "live"
    for name, data in payloads(target).items():
        if data.startswith(b"PK"):
            torch.load(io.BytesIO(data), weights_only=False)  # what an unsafe loader would do
        else:
            pickle.loads(data)
        assert target.exists(), name
        target.unlink()


def _loaders():
    """Every function that reads a checkpoint or a model file a user may be handed: (name, call(path))."""
    from kelly.ddsp.export import _torch_state
    from kelly.ml.export import load_checkpoint_bytes
    from kelly.ml.runtime import load_model
    from kelly.ml.specs import SPECS
    from kelly.ml.train.checkpoint import load_checkpoint
    from kelly.transformer.composer import load_weights

    return {
        "training checkpoint (kelly train/ddsp/transformer resume)": load_checkpoint,
        "network checkpoint (kelly validate)": lambda p: load_checkpoint_bytes(Path(p).read_bytes(), "dynamicsengine",
                                                                                name=Path(p).name),
        "transformer weights (kelly transformer export/generate)": load_weights,
        "DDSP checkpoint (kelly ddsp export)": _torch_state,
        "RTNeural/packed model (search path, LoadModel)": lambda p: load_model(p, spec=SPECS["dynamicsengine"]),
    }


@pytest.mark.parametrize("loader", list(_loaders()))
def test_every_checkpoint_loader_refuses_a_pickle_that_runs_code(tmp_path, marker, loader):
    call = _loaders()[loader]
    for kind, data in payloads(marker).items():
        path = tmp_path / f"dynamicsengine-{kind}.pt"
        path.write_bytes(data)
        with pytest.raises(KellyError) as info:
            call(path)
        message = str(info.value)
        assert "\n" not in message and len(message) < 600, (loader, kind, message)
        assert not marker.exists(), f"{loader} ran code from a {kind} file"


def _object_npz(marker: Path) -> bytes:
    buf = io.BytesIO()
    evil = np.array([Payload(marker)], dtype=object)  # numpy pickles object arrays
    np.savez(buf, **{k: evil for k in ("layers", "table", "samples", "frames", "audio", "f0", "voiced", "loud")})
    return buf.getvalue()


def test_npz_files_with_pickled_object_arrays_are_refused(tmp_path, marker):
    """Packed networks, the DDSP data cache and the transformer's heads load with allow_pickle=False."""
    from kelly.ddsp import data as ddsp_data
    from kelly.ml.runtime import load_model
    from kelly.ml.specs import SPECS

    path = tmp_path / "harmonypredictor.npz"
    path.write_bytes(_object_npz(marker))
    with pytest.raises(KellyError):
        load_model(path, spec=SPECS["harmonypredictor"])
    with pytest.raises((KellyError, ValueError)):
        ddsp_data.load(path)
    assert not marker.exists()


def _cli(argv, capsys) -> tuple[int, str]:
    from kelly.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


def test_cli_training_resume_refuses_a_malicious_last_pt(tmp_path, marker, capsys):
    """kelly train --resume reads runs/<network>/last.pt: refused before any training step."""
    run = tmp_path / "out" / "runs" / "dynamicsengine"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(payloads(marker)["kelly-checkpoint"])
    code, err = _cli(["train", "--models", "dynamicsengine", "--data", "synthetic", "--epochs", "1",
                      "--out", str(tmp_path / "out"), "--resume"], capsys)
    assert code == 2 and "last.pt: not a readable training checkpoint" in err
    assert not marker.exists()


@pytest.mark.parametrize("argv, file_name", [
    (["ddsp", "export", "--model", "{src}", "--out", "{dst}"], "weights.pt"),
    (["ddsp", "export", "--model", "{src}", "--out", "{dst}"], "checkpoint.pt"),
    (["transformer", "export", "--model", "{src}", "--out", "{dst}"], "transformer.pt"),
    (["validate", "{src}"], "dynamicsengine.pt"),
])
def test_cli_commands_refuse_a_malicious_checkpoint(tmp_path, marker, capsys, argv, file_name):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for kind, data in payloads(marker).items():
        (src / file_name).write_bytes(data)
        code, err = _cli([a.format(src=src, dst=dst) for a in argv], capsys)
        assert code != 0, (argv, kind)
        assert "Traceback" not in err
        assert not marker.exists(), f"{argv[0]} ran code from a {kind} {file_name}"
    assert not dst.exists() or not any(dst.iterdir())


def test_compose_with_a_hostile_models_dir_refuses_or_falls_back_without_running_code(tmp_path, marker, capsys,
                                                                                     monkeypatch):
    """A models folder someone handed over, with pickles named as model files: given with --models-dir
    (strict) it is a one-line error; found on $KELLY_MODELS it degrades to the fallbacks and says so."""
    import json

    models = tmp_path / "models"
    models.mkdir()
    (models / "harmonypredictor.json").write_bytes(payloads(marker)["bare-pickle"])
    (models / "dynamicsengine.npz").write_bytes(_object_npz(marker))
    (models / "groovepredictor.json").write_bytes(payloads(marker)["torch-zip"])
    out = tmp_path / "song.mid"
    code, err = _cli(["compose", "I feel tense", "--bars", "2", "--models-dir", str(models), "--out", str(out)],
                     capsys)
    assert code == 2 and err.startswith("kelly: error: ") and err.count("\n") == 1, err
    assert not out.exists() and not marker.exists()
    monkeypatch.setenv("KELLY_MODELS", str(models))
    from kelly.cli import main

    assert main(["compose", "I feel tense", "--bars", "2", "--out", str(out), "--json"]) == 0
    explanation = json.loads(capsys.readouterr().out)
    assert {"harmonypredictor", "dynamicsengine", "groovepredictor"} <= set(explanation["models"]["fallback"])
    assert out.exists() and not marker.exists()


# --------------------------------------------------------------------------- the static guard
UNSAFE_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                yield node, f"{f.value.id}.{f.attr}"
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) \
                    and isinstance(f.value.value, ast.Name):
                yield node, f"{f.value.value.id}.{f.value.attr}.{f.attr}"


def _kw(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return "missing"


def test_no_loader_in_the_package_can_unpickle():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            problems += [f"{where}:{node.lineno} imports {n}" for n in names if n in UNSAFE_MODULES]
        for node, name in _calls(tree):
            if name == "torch.load" and _kw(node, "weights_only") is not True:
                problems.append(f"{where}:{node.lineno} torch.load without weights_only=True")
            if name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
                problems.append(f"{where}:{node.lineno} np.load without allow_pickle=False")
            if name in ("np.lib.format.read_array",) and _kw(node, "allow_pickle") is not False:
                problems.append(f"{where}:{node.lineno} read_array without allow_pickle=False")
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                problems.append(f"{where}:{node.lineno} {name}")
            if name in ("torch.jit.load", "torch.package.PackageImporter"):
                problems.append(f"{where}:{node.lineno} {name} runs code from the file")
    assert not problems, "\n".join(problems)
