"""``make soak``: the full load and live-fault soaks, written to ``soak/results.md``.

``python -m soak.run`` runs, one after the other: the async pipeline at 10,000 frames a
second for 60 s; the socket (32 clients × 10,000 requests against a real engine) and the
web app (16 compositions and 16 uploads at once) together while the engine plays audio in
real time (its audio path in a process of its own; then, for the comparison, the same load
with that process at normal priority, and with the audio path in the engine's process); the
model-file faults; 1,000 vanishing socket clients. It writes the figures
and the memory curves to ``soak/results.md`` (atomically) and exits 1 when a goal was
missed, naming it. ``--quick`` runs the short versions the test suite runs (for trying the
script). Takes about 10 minutes in full on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from soak.common import thread_count

RESULTS = Path(__file__).resolve().parent / "results.md"

FULL = {"rate": 10_000.0, "seconds": 60.0, "clients": 32, "requests": 10_000, "compositions": 16, "uploads": 16,
        "vanish": 1000}
QUICK = {"rate": 10_000.0, "seconds": 3.0, "clients": 32, "requests": 300, "compositions": 4, "uploads": 4,
         "vanish": 200}


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="ascii", errors="replace"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy as np

    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), Python "
            f"{platform.python_version()}, numpy {np.__version__}; load average at the start "
            f"{os.getloadavg()[0]:.1f}")


def check_pipeline(r: dict) -> list[str]:
    """The pipeline soak's goals that were missed (empty: all met)."""
    s = r["rss"].summary()
    missed = []
    if r["dropped"] or r["refused"]:
        missed.append(f"pipeline: {r['dropped']} frames dropped by a full ring")
    if r["processed"] != r["submitted"]:
        missed.append(f"pipeline: {r['processed']:,} of {r['submitted']:,} frames processed")
    if s["growth"] > 4.0:
        missed.append(f"pipeline: RSS grew {s['growth']:.1f} MiB after the first 10 s")
    return missed


def check_services(r: dict, clients: int, requests: int, compositions: int, uploads: int,
                   strict_audio: bool = True) -> list[str]:
    """The socket, app and audio goals that were missed."""
    missed = []
    sock, app = r["socket"], r["app"]
    if sock["answered_right"] != clients * requests or sock["wrong"]:
        missed.append(f"socket: {sock['answered_right']:,} of {clients * requests:,} answered right; {sock['wrong'][:3]}")
    if app["compose_ok"] != compositions or app["upload_ok"] != uploads:
        missed.append(f"app: {app['compose_ok']}/{compositions} compositions, {app['upload_ok']}/{uploads} uploads; "
                      f"{app['failures'][:2]}")
    if r["library_ids"] != app["ids"] or len(app["ids"]) != compositions:
        missed.append(f"app: the library holds {len(r['library_ids'])} compositions, expected the {compositions} made")
    if r["integrity"] != ["ok"]:
        missed.append(f"app: PRAGMA integrity_check says {r['integrity'][:3]}")
    if r["threads_after"] > r["threads_before"] or r["fds_after"] > r["fds_before"]:
        missed.append(f"socket: threads {r['threads_before']} -> {r['threads_after']}, descriptors "
                      f"{r['fds_before']} -> {r['fds_after']}")
    if r["dropped_frames"]:
        missed.append(f"audio: {r['dropped_frames']} mel frames dropped")
    if strict_audio and r["blocks"].get("overruns", 0):
        missed.append(f"audio: {r['blocks']['overruns']} of {r['blocks']['blocks']} blocks over the "
                      f"{r['blocks']['budget_ms']:.2f} ms budget (max {r['blocks']['max_ms']:.1f} ms)")
    for name in ("rss_engine", "rss_app"):
        g = r[name].summary(settle_s=20.0)["growth"]
        if strict_audio and g > 8.0:
            missed.append(f"{name}: grew {g:.1f} MiB after the first 20 s")
    return missed


def check_faults(faults: list[dict], vanish: dict) -> list[str]:
    missed = [f"model file {f['fault']}: {f['outcome']} (expected {f['expected']}), warnings {f['warnings']}"
              for f in faults if f["outcome"] != f["expected"] or not f["warnings"] or f["dropped"]
              or f["processed"] != f["pushed"]]
    if vanish["good_errors"] or not vanish["good_answers"] or vanish["client_failures"]:
        missed.append(f"vanishing clients: the good client had {vanish['good_errors']} errors")
    if vanish["threads_after"] > vanish["threads_before"] or vanish["fds_after"] > vanish["fds_before"]:
        missed.append(f"vanishing clients: threads {vanish['threads_before']} -> {vanish['threads_after']}, "
                      f"descriptors {vanish['fds_before']} -> {vanish['fds_after']}")
    return missed


def services_lines(r: dict, clients: int, requests: int, compositions: int, uploads: int) -> list[str]:
    sock, app, b = r["socket"], r["app"], r["blocks"]
    se, sa = r["rss_engine"].summary(settle_s=20.0), r["rss_app"].summary(settle_s=20.0)
    return [
        f"## Socket ({clients} clients × {requests:,} requests) and web app ({compositions} compositions + "
        f"{uploads} uploads) at once, audio playing",
        "",
        f"The engine (this process) plays {r['material']} in real time, 512-sample blocks at 48 kHz, its audio path "
        f"in {r['audio_path']} ({r['audio_note']}), as `kelly engine --audio-in` runs it; the socket clients and the app's clients run "
        "in two other processes, `kelly serve` in a third. GIL switch interval "
        f"{r['switch_interval_s'] * 1e3:.1f} ms.",
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| socket requests answered right (id, order, kind) | {sock['answered_right']:,} of {sock['sent']:,} | all |",
        f"| socket throughput / answer p50, p99, max | {sock['per_s']:,.0f} /s / {sock['p50_ms']:.1f}, "
        f"{sock['p99_ms']:.1f}, {sock['max_ms']:.0f} ms | |",
        f"| compositions / uploads answered 200 with a valid body | {app['compose_ok']}/{compositions}, "
        f"{app['upload_ok']}/{uploads} | all |",
        f"| library after the load: compositions, integrity_check | {len(r['library_ids'])}, "
        f"{', '.join(r['integrity'])} | {compositions}, ok |",
        f"| slowest composition / upload (all sent at once) | {app['compose_max_s']:.1f} / {app['upload_max_s']:.1f} s | |",
        f"| audio blocks processed while loaded | {b.get('blocks', 0):,} | |",
        f"| audio path per block p50 / p99 / max | {b.get('median_ms', 0):.3f} / {b.get('p99_ms', 0):.2f} / "
        f"{b.get('max_ms', 0):.2f} ms | budget {b.get('budget_ms', 0):.2f} ms |",
        f"| blocks over budget | {b.get('overruns', 0)} | 0 |",
        f"| over-budget blocks: mean time, of which waiting for a CPU | {r['over_wall_ms']:.1f} ms: "
        f"{r['over_runqueue_ms']:.1f} ms | (schedstat) |",
        f"| a block taken late after it was due, p99 / max | {r['handover_late_p99_ms']:.1f} / "
        f"{r['handover_late_max_ms']:.1f} ms | (a device's buffer absorbs this) |",
        f"| mel frames dropped / analysed | {r['dropped_frames']} / {r['inferences']:,} | 0 dropped |",
        f"| engine threads before / after; descriptors before / after | {r['threads_before']} / "
        f"{r['threads_after']}; {r['fds_before']} / {r['fds_after']} | back to baseline |",
        f"| engine RSS start / max / end; growth after 20 s | {se['start']:.0f} / {se['max']:.0f} / {se['end']:.0f}; "
        f"{se['growth']:+.1f} MiB | flat |",
        f"| app RSS start / max / end; growth after 20 s | {sa['start']:.0f} / {sa['max']:.0f} / {sa['end']:.0f}; "
        f"{sa['growth']:+.1f} MiB | flat |",
        "",
        "Engine RSS (MiB) and app RSS over the load:",
        "",
        *_two_curves(r["rss_engine"], r["rss_app"]),
        "",
    ]


def _two_curves(a, b, every_s: float = 10.0) -> list[str]:
    rows, next_t = [], -1.0
    bp = dict((round(t), v) for t, v in b.points)
    for t, v in a.points:
        if t >= next_t or (t, v) == a.points[-1]:
            other = bp.get(round(t))
            rows.append(f"| {t:.0f} | {v:.1f} | {'' if other is None else f'{other:.1f}'} |")
            next_t = t + every_s
    return ["| s | engine MiB | app MiB |", "|---:|---:|---:|"] + rows


def faults_lines(faults: list[dict], vanish: dict) -> list[str]:
    lines = ["## Live faults", "",
             "A model file of a running engine (the emotion recognizer: the network the audio analysis runs), changed "
             "while frames stream through it; the engine's own watcher looks about once a second.", "",
             "| fault | engine did | noticed after | frames processed / pushed, dropped | warning (state, `kelly ctl state`) |",
             "|---|---|---:|---|---|"]
    for f in faults:
        seen = "not seen" if f["seen_after_s"] is None else f"{f['seen_after_s']:.2f} s"
        warn = (f["warnings"][0] if f["warnings"] else "none").replace("|", "/")
        lines.append(f"| {f['fault']} | {f['outcome']} | {seen} | {f['processed']} / {f['pushed']}, {f['dropped']} "
                     f"| {warn[:220]} |")
    v = vanish
    lines += ["", f"{v['clients']:,} socket clients vanished (half a length header, mid-body, a whole request with the "
              f"answer unread, a reset by SO_LINGER 0; 8 at a time) in {v['vanish_s']:.1f} s, while one well-behaved "
              f"client asked on: {v['good_answers']} answers, {v['good_errors']} errors, slowest "
              f"{v['good_slowest_s'] * 1e3:.0f} ms. Server threads {v['threads_before']} before, {v['threads_peak']} "
              f"at the peak, {v['threads_after']} after; open descriptors {v['fds_before']}, {v['fds_peak']}, "
              f"{v['fds_after']}.", ""]
    return lines


def comparison_lines(r: dict, others: list[dict]) -> list[str]:
    """The same load with the audio process at normal priority, and with the audio path in the engine's process."""
    def row(x: dict) -> str:
        b = x["blocks"]
        return (f"| {x['audio_path']} | {b.get('blocks', 0):,} | {b.get('median_ms', 0):.3f} / {b.get('p99_ms', 0):.2f} / "
                f"{b.get('max_ms', 0):.1f} ms | {b.get('overruns', 0)} | {x['over_runqueue_ms']:.1f} of "
                f"{x['over_wall_ms']:.1f} ms | {x['handover_late_p99_ms']:.0f} / {x['handover_late_max_ms']:.0f} ms |")

    return ["### Where the audio path runs: the same load, measured in this run", "",
            "In the engine's process (as before, and `--no-audio-process`) the audio path shares one GIL with the "
            "socket's threads, the inference thread and the composer, and the run loop that hands it blocks also "
            "composes phrases; in a process of its own (`kelly.realtime.audio_process`) it has its interpreter to "
            "itself, and by default asks to be scheduled ahead of normal processes "
            f"({r.get('audio_note') or 'see the module'}).", "",
            "| audio path in | blocks | per block p50 / p99 / max | over budget | over-budget blocks: waiting for a "
            "CPU, of their mean | taken late after due, p99 / max |",
            "|---|---:|---:|---:|---:|---:|", row(r), *map(row, others), ""]


def figures(pipe: dict, serv: dict, faults: list[dict], vanish: dict, p: dict) -> list[str]:
    """The soak's headline rows for the one benchmark table (``benchmarks.headline``), as comments."""
    from benchmarks.headline import figure, met

    area = "load and faults (issue 15)"
    s = pipe["rss"].summary()
    sock, app, blocks = serv["socket"], serv["app"], serv["blocks"]
    asked = p["clients"] * p["requests"]
    right = [f for f in faults if f["outcome"] == f["expected"] and f["warnings"] and not f["dropped"]]
    return [
        figure(area, f"async pipeline fed {pipe['rate']:,.0f} frames/s for {pipe['seconds']:.0f} s",
               f"{pipe['processed']:,} of {pipe['submitted']:,} processed, {pipe['dropped']} dropped; RSS "
               f"+{s['growth']:.2f} MiB after 10 s", "goal nothing lost, memory flat",
               met(not check_pipeline(pipe)), readme=True),
        figure(area, f"socket {p['clients']} clients × {p['requests']:,} requests, with the app's "
               f"{p['compositions']} compositions + {p['uploads']} uploads at once",
               f"{sock['answered_right']:,} of {asked:,}; {app['compose_ok']}/{p['compositions']}, "
               f"{app['upload_ok']}/{p['uploads']}", "goal every request answered",
               met(sock["answered_right"] == asked and not sock["wrong"] and app["compose_ok"] == p["compositions"]
                   and app["upload_ok"] == p["uploads"]), readme=True),
        figure(area, "audio blocks over the 10.67 ms budget during that load", f"{blocks['overruns']} of "
               f"{blocks['blocks']:,} (max {blocks['max_ms']:.1f} ms)", "goal 0", met(blocks["overruns"] == 0),
               readme=True),
        figure(area, "model files deleted or replaced under a running engine", f"{len(right)} of {len(faults)} "
               "handled (fallback or reload, said, no frame dropped)", "goal all", met(len(right) == len(faults))),
        figure(area, f"{p['vanish']:,} socket clients vanishing mid-frame", f"threads {vanish['threads_before']} → "
               f"{vanish['threads_after']}, descriptors {vanish['fds_before']} → {vanish['fds_after']}, "
               f"{vanish['good_errors']} errors for a client asking on", "goal back to baseline, 0 errors",
               met(not check_faults([], vanish))),
    ]


def main(argv: list[str] | None = None) -> int:
    from kelly.fileio import write_bytes_atomic
    from soak.faults import MODEL_FAULTS, model_fault, vanishing_clients
    from soak.pipeline import pipeline_lines, run_pipeline
    from soak.services import run_services

    ap = argparse.ArgumentParser(prog="python -m soak.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the short versions (what the test suite runs)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (default soak/results.md)")
    args = ap.parse_args(argv)
    p = QUICK if args.quick else FULL
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    machine = _machine()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ksoak-") as name:
        tmp = Path(name)
        print(f"pipeline: {p['rate']:,.0f} frames/s for {p['seconds']:.0f} s", flush=True)
        pipe = run_pipeline(p["rate"], p["seconds"], tmp=tmp / "pipe")
        print(f"socket {p['clients']} x {p['requests']:,} and app {p['compositions']} + {p['uploads']}, audio playing",
              flush=True)
        serv = run_services(tmp / "serv", clients=p["clients"], requests=p["requests"],
                            compositions=p["compositions"], uploads=p["uploads"])
        before = None
        if not args.quick:
            print("the same load with the audio path in the engine's process (the comparison)", flush=True)
            before = [run_services(tmp / f"serv-{i}", clients=p["clients"], requests=p["requests"],
                                   compositions=p["compositions"], uploads=p["uploads"], **kw)
                      for i, kw in enumerate(({"priority": False}, {"audio_process": False}))]
        print("model-file faults and vanishing clients", flush=True)
        faults = [model_fault(kind, tmp / f"fault-{kind}") for kind in MODEL_FAULTS]
        vanish = vanishing_clients(p["vanish"], tmp / "v")
    took = time.monotonic() - t0
    missed = check_pipeline(pipe) + check_services(serv, p["clients"], p["requests"], p["compositions"],
                                                   p["uploads"]) + check_faults(faults, vanish)
    lines = ["# Soak results (`make soak`)", "",
             f"Written {started} by `python -m soak.run{' --quick' if args.quick else ''}` in {took / 60:.1f} min. "
             f"Machine: {machine}; load average at the end {os.getloadavg()[0]:.1f}. Threads in this process at the "
             f"end: {thread_count()}.", "",
             "**Goals missed:** " + ("none." if not missed else "; ".join(missed)), ""]
    lines += pipeline_lines(pipe)
    lines += services_lines(serv, p["clients"], p["requests"], p["compositions"], p["uploads"])
    if before is not None:
        lines += comparison_lines(serv, before)
    lines += faults_lines(faults, vanish)
    lines += ["", *figures(pipe, serv, faults, vanish, p)]
    write_bytes_atomic(args.out, ("\n".join(lines) + "\n").encode("utf-8"))
    print(f"wrote {args.out}")
    for m in missed:
        print(f"soak: missed: {m}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
