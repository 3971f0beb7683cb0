"""The transformer Kelly ships: its files, its card's figures, and that it runs without torch."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from kelly.song import read_midi
from kelly.transformer.composer import SHIPPED
from kelly.transformer.tokens import CompoundTokenizer

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_files_are_whole_and_small():
    meta = json.loads((SHIPPED / "transformer.meta.json").read_text())
    total = 0
    for name, digest in meta["files"].items():
        data = (SHIPPED / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        total += len(data)
    assert total <= 20 * 1024 * 1024                      # the limit
    assert meta["tokenizer_sizes"] == list(CompoundTokenizer().sizes)
    assert (SHIPPED / "MODEL_CARD.md").read_text().startswith("# Model card")


def test_it_beats_the_unigram_baseline_on_held_out_pieces():
    test = json.loads((SHIPPED / "transformer.meta.json").read_text())["test"]
    assert test["loss"] < 0.8 * test["unigram"]
    for name in ("position", "pitch", "duration", "velocity"):
        fam = test["families"][name]
        assert fam["model_ppl"] < fam["unigram_ppl"], name


def test_compose_runs_the_shipped_model_without_torch(tmp_path):
    out = tmp_path / "t.mid"
    code = ("import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
            "from kelly.cli import main\n"
            f"raise SystemExit(main(['compose', 'I feel hopeful', '--composer', 'transformer', '--bars', '2', "
            f"'--out', {str(out)!r}]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    song = read_midi(out)
    assert song.note_count() > 0 and song.end_tick() <= 2 * song.bar_ticks
