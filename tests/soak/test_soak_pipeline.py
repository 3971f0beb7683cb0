"""The async inference pipeline at a paced 10,000 frames a second (3 s here; ``make soak`` runs 60 s)."""

from __future__ import annotations

from soak.pipeline import pipeline_lines, run_pipeline
from soak.run import check_pipeline


def test_10000_frames_a_second_nothing_lost(tmp_path):
    r = run_pipeline(10_000.0, 3.0, tmp=tmp_path)
    assert r["submitted"] == 30_000
    assert r["refused"] == 0 and r["dropped"] == 0, (r["dropped"], r["ring_fill_max"])
    assert r["pushed"] == r["processed"] == r["submitted"]  # every submission answered by the five networks
    assert r["achieved_per_s"] > 9_000  # the producer kept (about) its pace
    assert r["ring_fill_max"] < r["ring_capacity"]
    assert "BLAS on one thread" in r["runtime"]
    s = r["rss"].summary(settle_s=1.0)
    assert s["samples"] >= 3 and s["growth"] < 16.0, s
    assert check_pipeline(r) == []
    text = "\n".join(pipeline_lines(r))
    assert "| frames processed by the five networks | 30,000 |" in text
