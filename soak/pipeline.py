"""The async inference pipeline under a paced load: N mel frames a second for S seconds.

A producer thread stands in for the audio path at a rate no device reaches (10,000 frames
a second is 232 times what 48 kHz audio gives): it pushes the engine's own mel frames of a
real recording into the engine's ring on a fixed schedule, in small batches every
millisecond, and never waits for the consumer. The inference thread takes them in chunks
and runs the five networks. Asserted by the callers: every frame pushed was processed
(``frames_done``), none was refused by a full ring (``dropped``), the producer kept its
schedule, and the process's memory stayed flat (sampled every second).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from soak.common import SR, Sampler, material, mel_frames, rss_mb

#: Frames pushed per batch of the producer at most (it wakes about every millisecond).
BATCH_LIMIT = 64


def run_pipeline(rate: float = 10_000.0, seconds: float = 60.0, *, tmp: Path, runtime: str = "numpy", ring_frames: int = 8192,
                 sample_s: float = 1.0) -> dict:
    """Push ``rate`` frames/s for ``seconds`` into a running engine; what it did, and the RSS curve."""
    from kelly.realtime.engine import Engine, EngineConfig

    audio, how = material(12.0, tmp)
    frames = mel_frames(audio)
    total = int(round(rate * seconds))
    engine = Engine(EngineConfig(sr=SR, out_dir=tmp / "gen", runtime=runtime, ring_frames=ring_frames))
    ring = engine.ring
    fill_max = 0
    behind_max = 0.0
    with engine, Sampler(rss_mb, "MiB", sample_s) as rss:
        t0 = time.monotonic()
        sent = 0
        refused = 0
        while sent < total:
            due = min(total, int((time.monotonic() - t0) * rate) + 1)
            if due - sent > 2 * BATCH_LIMIT:  # the producer itself fell behind its schedule (a busy machine)
                behind_max = max(behind_max, (due - sent) / rate)
            stop = min(due, sent + BATCH_LIMIT) if due - sent <= 2 * BATCH_LIMIT else due
            while sent < stop:
                if not ring.push(frames[sent % len(frames)], sent):
                    refused += 1
                sent += 1
            fill_max = max(fill_max, len(ring))
            time.sleep(0.001)
        produced_s = time.monotonic() - t0
        deadline = time.monotonic() + 30.0
        while engine.frames_done < ring.pushed and time.monotonic() < deadline:
            time.sleep(0.005)
        drained_s = time.monotonic() - t0 - produced_s
        done = engine.frames_done
        heard = engine.frames_heard
        dropped = ring.dropped
        pushed = ring.pushed
        note = engine.runtime_note + ", " + engine.blas_note
    return {"rate": rate, "seconds": seconds, "submitted": total, "pushed": pushed, "refused": refused,
            "dropped": dropped, "processed": done, "heard": heard, "produced_s": produced_s,
            "achieved_per_s": total / produced_s, "drain_s": drained_s, "ring_capacity": ring.capacity,
            "ring_fill_max": fill_max, "producer_behind_max_s": behind_max, "rss": rss.curve,
            "material": how, "runtime": note, "threads_live": threading.active_count()}


def pipeline_lines(r: dict) -> list[str]:
    """The pipeline soak's section of ``soak/results.md``."""
    s = r["rss"].summary()
    return [
        f"## Async inference pipeline: {r['rate']:,.0f} frames/s for {r['seconds']:.0f} s",
        "",
        f"Frames: the engine's own mel frames of {r['material']}; inference path: {r['runtime']}.",
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| frames submitted / pushed into the ring | {r['submitted']:,} / {r['pushed']:,} | all |",
        f"| frames processed by the five networks | {r['processed']:,} | all |",
        f"| refused by a full ring (dropped) | {r['dropped']} | 0 |",
        f"| achieved submission rate | {r['achieved_per_s']:,.0f} /s | {r['rate']:,.0f} /s |",
        f"| ring fill, most seen (capacity {r['ring_capacity']}) | {r['ring_fill_max']} frames "
        f"({r['ring_fill_max'] / r['rate'] * 1e3:.1f} ms of work queued) | below capacity |",
        f"| last frame processed after the last push | {r['drain_s'] * 1e3:.0f} ms | |",
        f"| RSS start / min / max / end | {s['start']:.1f} / {s['min']:.1f} / {s['max']:.1f} / {s['end']:.1f} MiB "
        f"| flat |",
        f"| RSS slope (least squares) / growth after the first 10 s | {s['slope_per_min']:+.2f} MiB/min / "
        f"{s['growth']:+.2f} MiB | < 4 MiB |",
        "",
        "RSS once a second:",
        "",
        *r["rss"].table(5.0),
        "",
    ]
