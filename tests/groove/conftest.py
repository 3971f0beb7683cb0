"""Fixtures for the groove tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli():
    """The real ``kelly`` command line (``kelly.cli.main``), every command registered."""
    import kelly.cli

    return kelly.cli.main
