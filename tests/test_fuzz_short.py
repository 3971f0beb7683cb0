"""A short run of every fuzz target (``make fuzz`` runs 100,000 inputs each): no crash, hang or blow-up."""

import pytest

pytest.importorskip("atheris")

from fuzz.run import run_target  # noqa: E402
from fuzz.targets import TARGETS  # noqa: E402

#: Inputs per target here (3,000 unless named). The web app answers about 90 requests a second under
#: the fuzzer (each a real request through the ASGI app, some composing music), so 1,000 keep it
#: near 15 s of the suite's time.
SHORT_RUNS = {"app": 1000}


@pytest.mark.parametrize("name", list(TARGETS))
def test_short_fuzz_is_clean(name):
    clean, report = run_target(name, runs=SHORT_RUNS.get(name, 3000), timeout=5, rss_mb=1024, seed=7)
    assert clean, report
