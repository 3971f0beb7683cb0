"""Fixtures for the groove tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(monkeypatch):
    """``kelly.cli.main`` with the groove command registered (the lead adds it to COMMAND_MODULES)."""
    import kelly.cli

    monkeypatch.setattr(kelly.cli, "COMMAND_MODULES", ("kelly.commands.groove",))
    return kelly.cli.main
