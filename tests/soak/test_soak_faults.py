"""Live faults (short versions of ``make soak``): model files changed under a running engine, vanishing clients."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from soak.faults import MODEL_FAULTS, model_fault, vanishing_clients


@pytest.fixture
def short_tmp():
    """A short private folder (a Unix socket path must stay under 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="ksoak-") as d:
        yield Path(d)


@pytest.mark.parametrize("kind", list(MODEL_FAULTS))
def test_a_model_file_changed_under_a_running_engine(kind, short_tmp):
    r = model_fault(kind, short_tmp, key="emotionrecognizer")
    # the engine's own watcher noticed (about once a second), without being asked
    assert r["seen_after_s"] is not None and r["seen_after_s"] < 5.0, r
    assert r["running"]
    # the audio analysis kept going through the change, and nothing was dropped
    assert r["processed"] == r["pushed"] and r["processed_after_fault"] > 0 and r["dropped"] == 0, r
    [warning] = r["warnings"]
    if MODEL_FAULTS[kind] == "fallback":
        assert r["outcome"] == "fallback" and not r["composer_live"], r
        assert "fallback heuristic" in warning
        assert r["status"].startswith("fallback: ")
        said = {"deleted": "was deleted", "truncated": "cannot be used", "garbage": "cannot be used",
                "symlink-out": "outside its folder"}[kind]
        assert said in warning and said in r["status"]
    else:
        assert r["outcome"] == "reloaded" and r["composer_live"], r
        assert "new weights were loaded" in warning
        assert r["status"] == "loaded"


def test_a_bad_harmony_file_leaves_the_other_networks_live(short_tmp):
    from kelly.realtime.engine import Engine, EngineConfig
    from soak.faults import break_model_file, models_folder

    folder = models_folder(short_tmp)
    engine = Engine(EngineConfig(models_dir=str(folder), out_dir=short_tmp / "gen"))
    with engine:
        break_model_file("garbage", folder / "harmonypredictor.npz", short_tmp)
        said = engine.check_model_files()  # asked directly: runs on the inference thread, answers at once
        assert len(said) == 1 and said[0].startswith("harmonypredictor:")
        assert engine.check_model_files() == []  # said once, not every second
        state = engine.get_state()
        assert [k for k, m in state.models.items() if not m.live] == ["harmonypredictor"]
        # the composer still composes, on the harmony fallback
        assert Path(engine.generate_midi(2)).is_file()


def test_vanishing_clients_cost_the_server_nothing(short_tmp):
    r = vanishing_clients(200, short_tmp)
    assert not r["client_failures"], r
    assert r["good_answers"] > 0 and r["good_errors"] == 0, r
    assert r["server_clients_left"] == 0, r
    assert r["threads_after"] <= r["threads_before"], r
    assert r["fds_after"] <= r["fds_before"], r
