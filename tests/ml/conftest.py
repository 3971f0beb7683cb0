"""Shared fixtures for the neural-network tests: one seeded export per session."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rtneural"


@pytest.fixture(scope="session")
def torch_models():
    pytest.importorskip("torch")
    from kelly.ml.torch_models import build_models

    return build_models(seed=0)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, torch_models):
    """All three formats exported once (seed 0) into a session folder."""
    pytest.importorskip("onnxruntime")
    from kelly.ml.export import export_models

    out = tmp_path_factory.mktemp("models")
    export_models(out, ("rtneural", "onnx", "checkpoint"), seed=0)
    return out


@pytest.fixture
def cli():
    """The real ``kelly`` command line (``kelly.cli.main``), every command registered."""
    import kelly.cli

    return kelly.cli.main
