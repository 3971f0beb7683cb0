"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_shipped_models(tmp_path_factory, monkeypatch):
    """The shipped weights (kelly/assets/models) out of the search path: tests of the fallbacks."""
    import kelly.ml.processor as processor

    monkeypatch.setattr(processor, "_SHIPPED", tmp_path_factory.mktemp("no-shipped-models"))
