"""What the trained networks change in the music (issue 10): trained vs untrained vs fallback vs --no-ml.

Four ways to compose the same grid of emotions and seeds, in-process:

* **no-ml**: the rule engines alone (``kelly compose --no-ml``);
* **fallback**: the five networks' documented heuristics (no weights on the search path);
* **untrained**: the five networks initialised from seed 0 (what ``kelly export --weights
  untrained`` writes);
* **trained**: the shipped weights (``kelly/assets/models``), or ``KELLY_BENCH_MODELS``.

Each hint set goes in the way ``kelly compose`` passes it (``hints_for_emotion`` per
emotion, the melody network stepped once per bar through the hints' ``MelodySteps``).

Measured, "in the direction of the data":

1. The **melody network's own output**: the pitch-class distribution of its per-bar note
   probabilities (16 bars, state carried) for the major-family and for the minor-family
   emotions, against the corpus's pitch-class distribution of major-key and minor-key
   pieces (training split of the shipped collections, all relative to the tonic, weighted
   by duration): Jensen–Shannon divergence in bits (0 = the same distribution, 1 = disjoint).
2. The **composed melodies**: the same divergence for the melody tracks Kelly writes.
3. **The musical bar** of each variant (clash, melody on top, mode heard, range, duplicates,
   foreground velocity; :mod:`kelly.quality`).
4. **How much changes** against ``--no-ml``: share of melody notes whose pitch differs
   from the no-ml piece's note at the same position (in onset order), bars whose chord changed, drum hits, control-change events, mean
   velocity.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.headline import figure, met

EMOTIONS = ("happiness", "serenity", "hope", "love", "gratitude", "excitement",
            "grief", "melancholy", "anxiety", "rage", "despair", "loneliness")
SEEDS = (0, 1, 2)
BARS = 16
SHIPPED = Path(__file__).resolve().parent.parent / "kelly" / "assets" / "models"


def _js_bits(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / b[nz])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def corpus_profiles(limit_per_family: int = 1500) -> dict[str, np.ndarray] | None:
    """Duration-weighted pitch-class distributions (relative to the tonic) of the corpus's
    major-key and minor-key training pieces, or None without the data folder."""
    from kelly.ml.data.corpus import load_manifest
    from kelly.ml.data.midi import read_notes
    from kelly.ml.data.store import data_dir
    from kelly.ml.train.config import TrainConfig, collection_set

    root = data_dir(None)
    try:
        recs = load_manifest(root)
    except Exception:  # noqa: BLE001 - no data folder: the section says so
        return None
    wanted = collection_set(TrainConfig().collections) or set()
    out = {"major": np.zeros(12), "minor": np.zeros(12)}
    counts = {"major": 0, "minor": 0}
    for rec in recs:
        fam = (rec.get("key") or {}).get("family")
        if rec.get("split") != "train" or rec.get("collection") not in wanted or fam not in out \
                or counts[fam] >= limit_per_family:
            continue
        path = root / rec["midi"]
        if not path.is_file():
            continue
        notes = read_notes(path).pitched()
        rel = (notes.pitch.astype(int) - int(rec["key"]["tonic_pc"])) % 12
        out[fam] += np.bincount(rel, weights=notes.duration.astype(float), minlength=12)
        counts[fam] += 1
    if not all(counts.values()):
        return None
    return {k: v / v.sum() for k, v in out.items()}


def _family(state) -> str:
    from kelly.mapping import map_emotion

    return "minor" if map_emotion(state).key.is_minor else "major"


def _processors(tmp: Path) -> dict[str, object]:
    from kelly.ml.export import export_models
    from kelly.ml.processor import MultiModelProcessor

    empty = tmp / "empty"
    empty.mkdir()
    untrained = tmp / "untrained"
    procs = {"fallback": MultiModelProcessor(search_path=[empty])}
    try:
        export_models(untrained, ["rtneural"], seed=0)
        procs["untrained"] = MultiModelProcessor(search_path=[untrained])
    except ImportError:
        pass
    trained = Path(os.environ.get("KELLY_BENCH_MODELS") or SHIPPED)
    if trained.is_dir() and (any(trained.glob("*.npz")) or any(trained.glob("*.json"))):
        procs["trained"] = MultiModelProcessor(search_path=[trained])
    return procs


def _network_profile(proc, states) -> np.ndarray:
    from kelly.ml import schema

    total = np.zeros(12)
    for state in states:
        rows = proc.melody_bars(np.tile(schema.embed_emotion(state), (BARS, 1)))
        for row in rows:
            total += np.bincount(np.arange(128) % 12, weights=row.astype(float), minlength=12)
    return total / total.sum()


def _melody_profile(pieces) -> np.ndarray:
    total = np.zeros(12)
    for comp, tonic in pieces:
        mel = next((t for t in comp.song.tracks if t.name == "Melody"), None)
        if mel is None:
            continue
        for n in mel.notes:
            total[(n.pitch - tonic) % 12] += n.duration
    return total / max(total.sum(), 1e-12)


def _changes(base, other) -> dict[str, float]:
    def mel(c):
        t = next((t for t in c.song.tracks if t.name == "Melody"), None)
        return [n.pitch for n in sorted(t.notes)] if t else []

    def drums(c):
        return sum(len(t.notes) for t in c.song.tracks if t.is_drum)

    def ccs(c):
        return sum(len(getattr(t, "controls", ()) or ()) for t in c.song.tracks)

    def vel(c):
        v = [n.velocity for t in c.song.tracks if not t.is_drum for n in t.notes]
        return float(np.mean(v)) if v else 0.0

    a, b = mel(base), mel(other)
    chords_a = [ch.symbol for ch in base.explanation.progression.chords]
    chords_b = [ch.symbol for ch in other.explanation.progression.chords]
    # pitches compared note by note in order (timing leans and humanisation do not count as changes)
    same = sum(x == y for x, y in zip(a, b))
    return {"melody_new": 1.0 - same / max(len(a), len(b), 1),
            "chords_changed": sum(x != y for x, y in zip(chords_a, chords_b)) / max(len(chords_a), 1),
            "drum_hits": drums(other) - drums(base), "cc_events": ccs(other), "velocity": vel(other) - vel(base)}


def _quality(comps) -> dict[str, float]:
    """The musical bar (kelly.quality) over a variant's pieces: the same checks as the music report."""
    from kelly import quality as Q

    clash = [Q.clash_rate(c.song) for c in comps]
    top = [Q.melody_on_top_rate(c.song) for c in comps]
    heard = [Q.mode_family_heard(c.song, Q.declared_key(c.song, c.explanation)) for c in comps]
    fg = [Q.velocity_stats(c.song).get("foreground_mean") for c in comps]
    return {"clash": float(np.median([x for x in clash if x is not None])),
            "on_top": float(np.median([x for x in top if x is not None])),
            "mode_heard": float(np.mean([bool(h) for h in heard if h is not None])),
            "out_of_range": float(sum(sum(Q.out_of_range_notes(c.song).values()) for c in comps)),
            "duplicates": float(sum(sum(Q.duplicate_notes(c.song).values()) for c in comps)),
            "foreground_velocity": float(np.median([x for x in fg if x is not None]))}


def measure() -> dict:
    from kelly.emotion.thesaurus import state_for
    from kelly.generator import ComposeOptions, compose

    states = {e: state_for(e) for e in EMOTIONS}
    fams = {e: _family(s) for e, s in states.items()}
    corpus = corpus_profiles()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        procs = _processors(Path(tmp))
        variants: dict[str, dict] = {"no-ml": {}}
        pieces: dict[str, dict] = {}
        for name in ("no-ml", *procs):
            pieces[name] = {}
            for e, state in states.items():
                hints = None if name == "no-ml" else procs[name].hints_for_emotion(state)
                for seed in SEEDS:
                    comp = compose(state, ComposeOptions(bars=BARS, seed=seed), hints=hints)
                    pieces[name][(e, seed)] = (comp, _tonic(comp))
        for name, proc in procs.items():
            variants[name] = {"network": {f: _network_profile(proc, [states[e] for e in EMOTIONS if fams[e] == f])
                                          for f in ("major", "minor")},
                              "live": proc.status()["models"]["melodytransformer"].get("loaded", False)}
        for name in pieces:
            variants.setdefault(name, {})
            variants[name]["melody"] = {}
            for f in ("major", "minor"):
                sel = [pieces[name][(e, s)] for e in EMOTIONS if fams[e] == f for s in SEEDS]
                variants[name]["melody"][f] = _melody_profile(sel)
            if name != "no-ml":
                rows = [_changes(pieces["no-ml"][k][0], pieces[name][k][0]) for k in pieces[name]]
                variants[name]["changes"] = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
            variants[name]["quality"] = _quality([c for c, _ in pieces[name].values()])
    return {"corpus": corpus, "variants": variants, "seconds": time.perf_counter() - t0}


def _tonic(comp) -> int:
    """The tonic pitch class of the piece's home key ("F minor" → 5)."""
    from kelly.theory.pitch import parse_note

    return parse_note(comp.explanation.parameters.key.split()[0])[1]


def run() -> str:
    res = measure()
    corpus, variants = res["corpus"], res["variants"]
    out = ["## Trained networks in the music", "",
           f"{len(EMOTIONS)} emotions × {len(SEEDS)} seeds × {BARS} bars composed four ways in one run "
           f"({res['seconds']:.0f} s): rule engines alone (`--no-ml`), the networks' fallback heuristics, "
           "untrained networks (seed 0), and the trained networks (`kelly/assets/models`). "
           "`benchmarks/bench_trained.py` says how each figure is made.", ""]
    if "trained" not in variants:
        out += ["No trained weights found (kelly/assets/models is empty): only the other variants are shown.", ""]
    if corpus is not None:
        out += ["**Direction of the data**: Jensen–Shannon divergence (bits; lower = closer) of pitch-class "
                "distributions, relative to the tonic, from the corpus's major-key / minor-key pieces "
                "(training split of the shipped collections).", "",
                "| variant | melody network output, major | minor | composed melodies, major | minor |",
                "|---|---:|---:|---:|---:|"]
        for name, v in variants.items():
            net = v.get("network")
            cells = [f"{_js_bits(net[f], corpus[f]):.3f}" if net else "–" for f in ("major", "minor")]
            cells += [f"{_js_bits(v['melody'][f], corpus[f]):.3f}" for f in ("major", "minor")]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    else:
        out += ["(No converted corpus in build/corpus: the direction-of-data figures need "
                "`python -m kelly.ml.data convert`.)", ""]
    out += ["**How much changes against `--no-ml`** (median over the pieces):", "",
            "| variant | melody pitches changed | bars with another chord | drum hits ± | "
            "controller events | mean velocity ± |", "|---|---:|---:|---:|---:|---:|"]
    for name, v in variants.items():
        c = v.get("changes")
        if not c:
            continue
        out.append(f"| {name} | {c['melody_new']:.0%} | {c['chords_changed']:.0%} | {c['drum_hits']:+.0f} | "
                   f"{c['cc_events']:.0f} | {c['velocity']:+.1f} |")
    out.append("")
    out += ["**The musical bar** (kelly.quality, as in the music report; medians over the pieces, counts summed):",
            "", "| variant | melody clash | melody on top | mode family heard | out of range | duplicate notes | "
            "foreground velocity |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in variants.items():
        q = v["quality"]
        out.append(f"| {name} | {q['clash']:.1%} | {q['on_top']:.0%} | {q['mode_heard']:.0%} | "
                   f"{q['out_of_range']:.0f} | {q['duplicates']:.0f} | {q['foreground_velocity']:.0f} |")
    out.append("")
    area = "trained networks (issue 10)"
    trained, fallback = variants.get("trained"), variants.get("fallback")
    if corpus is not None and trained and fallback and trained.get("network") and fallback.get("network"):
        js = {name: [_js_bits(v["network"][f], corpus[f]) for f in ("major", "minor")]
              for name, v in (("trained", trained), ("fallback", fallback))}
        out.append(figure(area, "melody network's pitch classes against the corpus (JS bits; major, minor)",
                          f"{js['trained'][0]:.3f}, {js['trained'][1]:.3f}",
                          f"fallback heuristic {js['fallback'][0]:.3f}, {js['fallback'][1]:.3f} (same run)",
                          met(all(t < f for t, f in zip(js["trained"], js["fallback"])))))
    if trained:
        q = trained["quality"]
        out.append(figure(area, "music with the trained networks: melody clash, on top, mode heard",
                          f"{q['clash']:.1%}, {q['on_top']:.0%}, {q['mode_heard']:.0%}",
                          f"rule engines alone {variants['no-ml']['quality']['clash']:.1%}, "
                          f"{variants['no-ml']['quality']['on_top']:.0%}, "
                          f"{variants['no-ml']['quality']['mode_heard']:.0%} (same run)"))
    return "\n".join(out)


if __name__ == "__main__":
    print(run())
