"""Fixtures shared by the theory tests."""

import pytest


@pytest.fixture
def kelly(capsys):
    """Run the real ``kelly`` command line; returns ``(exit code, stdout, stderr)``."""
    import kelly.cli

    def run(*argv):
        code = kelly.cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
