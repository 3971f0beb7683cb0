"""``kelly models``: which network weights Kelly would use, where they come from, how good they are.

For each of the five networks: the file found along the search path (``--models-dir``,
``$KELLY_MODELS``, ``~/.local/share/kelly/models``, the shipped ``kelly/assets/models``)
or "fallback heuristic"; whether its sidecar matches it (SHA-256); what it was trained on;
and its validation and held-out test metric beside the trivial baseline. Then the two
shipped generators, the compound-word transformer (``--composer transformer``) and the
DDSP voice (``--voice ddsp``), with how they were trained and their held-out figure beside
its baseline. No torch needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from kelly.fileio import show_path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="show the networks' weights: where they are, what they were trained on, their metrics",
        description="List the five networks Kelly would load (the first file found along the search path), "
                    "with the provenance and metrics their sidecars record.")
    p.add_argument("--models-dir", metavar="DIR", help="search this folder first (as kelly compose does)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)


def _sidecar(path: Path) -> tuple[dict | None, str]:
    """The sidecar beside ``path`` and whether it matches the file's bytes."""
    from kelly.errors import KellyError
    from kelly.fileio import read_json, read_regular_file

    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        meta = read_json(meta_path, max_bytes=1 << 20)
    except KellyError:
        return None, "no sidecar"
    if not isinstance(meta, dict):
        return None, "sidecar is not a JSON object"
    try:
        digest = hashlib.sha256(read_regular_file(path, max_bytes=64 << 20)).hexdigest()
    except KellyError as exc:
        return meta, f"unreadable: {exc}"
    want = meta.get("sha256") or meta.get("model_sha256")
    return meta, "sha256 ok" if want == digest else "sha256 MISMATCH (the sidecar describes other weights)"


def _headline(meta: dict) -> dict[str, Any]:
    """The first metric of validation and test, with its baseline."""
    tr = meta.get("training", meta)
    val, base = tr.get("metrics") or {}, tr.get("baseline") or {}
    name = next((k for k in val if k != "val_loss"), None)
    out: dict[str, Any] = {"metric": name}
    if name:
        out["validation"] = val.get(name)
        out["validation_baseline"] = base.get(name)
    test = meta.get("test") or {}
    if name and test:
        out["test"] = (test.get("model") or {}).get(name)
        out["test_baseline"] = (test.get("baseline") or {}).get(name)
    for folder, q in (meta.get("quadrants") or {}).items():
        out[f"quadrant_accuracy_{folder}"] = q.get("accuracy")
    return out


def describe(models_dir: str | None = None) -> list[dict[str, Any]]:
    """One row per network: key, file, status, trained, data, headline metrics."""
    from kelly.ml.processor import MultiModelProcessor
    from kelly.ml.specs import MODEL_KEYS, SPECS

    proc = MultiModelProcessor(models_dir, strict=False)
    status = proc.status()["models"]
    rows = []
    for key in MODEL_KEYS:
        info = status[key]
        row: dict[str, Any] = {"model": SPECS[key].name, "key": key, "params": SPECS[key].params,
                               "live": bool(proc.is_live(key)), "file": info.get("path"), "error": info.get("error")}
        if info.get("path") and proc.is_live(key):
            meta, check = _sidecar(Path(info["path"]))
            row["sidecar"] = check
            if meta is not None:
                tr = meta.get("training", meta)
                row["trained"] = bool(meta.get("trained"))
                row["provenance"] = meta.get("provenance") or meta.get("note") or ""
                row["data"] = (tr.get("config") or {}).get("collections") or tr.get("data")
                row["epochs"] = tr.get("epochs_run")
                row["shipped"] = meta.get("shipped")
                row.update(_headline(meta))
        rows.append(row)
    return rows


def describe_generators() -> list[dict[str, Any]]:
    """The shipped transformer composer and DDSP voice: what they are, where, how trained, one figure each."""
    from kelly.ddsp.voice import SHIPPED_VOICE
    from kelly.errors import KellyError
    from kelly.fileio import read_json
    from kelly.transformer.composer import SHIPPED

    rows: list[dict[str, Any]] = []
    try:
        m = read_json(SHIPPED / "transformer.meta.json", max_bytes=1 << 20)
    except KellyError:
        m = None
    if isinstance(m, dict):
        test = m.get("test") or {}
        rows.append({"model": "CompoundTransformer", "key": "transformer", "kind": "transformer", "live": True,
                     "use": "kelly compose --composer transformer", "folder": str(SHIPPED), "trained": True,
                     "provenance": f"kelly transformer train, {m.get('steps')} steps, {m.get('minutes')} min",
                     "metric": "test_loss", "test": test.get("loss"), "test_baseline": test.get("unigram"),
                     "baseline": "unigram", "baseline_metric": "unigram_loss",
                     "files": sorted(m.get("files") or []) + ["transformer.meta.json"]})
    try:
        m = read_json(SHIPPED_VOICE / "ddsp.meta.json", max_bytes=1 << 20)
    except KellyError:
        m = None
    if isinstance(m, dict):
        rs = (m.get("evaluation") or {}).get("resynthesis") or {}
        rows.append({"model": "DDSP voice", "key": "ddsp", "kind": "ddsp", "live": True,
                     "use": "kelly render --voice ddsp", "folder": str(SHIPPED_VOICE),
                     "trained": bool(m.get("trained")), "provenance": m.get("provenance", ""),
                     "metric": "spectral_loss", "test": (rs.get("voice") or {}).get("spectral_loss"),
                     "test_baseline": (rs.get("baseline") or {}).get("spectral_loss"), "baseline": "non-learned",
                     "baseline_metric": "baseline_spectral_loss",
                     "files": ["ddsp.json", "ddsp.onnx", "ddsp.meta.json"]})
    return rows


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, float) else "–" if x is None else str(x)


def cmd_models(args: argparse.Namespace) -> int:
    rows = describe(args.models_dir)
    generators = describe_generators()
    if args.json:
        print(json.dumps([{"kind": "network", **r} for r in rows] + generators, indent=2))
        return 0
    for row in rows:
        print(f"{row['model']} ({row['params']:,} parameters)")
        if not row["live"]:
            why = f" ({row['error']})" if row.get("error") else ""
            print(f"  fallback heuristic: no usable weights found{why}")
            continue
        print(f"  file      {show_path(Path(row['file']))} ({row.get('sidecar', 'no sidecar')})")
        if "trained" in row:
            print(f"  trained   {'yes' if row['trained'] else 'no: ' + str(row.get('provenance'))}"
                  + (f", on {row['data']}, {row['epochs']} epochs" if row["trained"] and row.get("data") else "")
                  + (f", shipped {row['shipped']}" if row.get("shipped") else ""))
        if row.get("metric"):
            line = (f"  {row['metric']:<9} validation {_num(row.get('validation'))} "
                    f"(baseline {_num(row.get('validation_baseline'))})")
            if "test" in row:
                line += f", test {_num(row.get('test'))} (baseline {_num(row.get('test_baseline'))})"
            print(line)
        for k, v in row.items():
            if k.startswith("quadrant_accuracy_"):
                sf = "training soundfont" if k.endswith("_audio") else "unseen soundfont"
                print(f"  quadrant  {_num(v)} of held-out pieces ({sf})")
    for row in generators:
        print(f"{row['model']} ({row['use']})")
        print(f"  folder    {show_path(Path(row['folder']))}")
        print(f"  trained   {row['provenance'] or ('yes' if row['trained'] else 'no')}")
        print(f"  {row['metric']:<9} held out {_num(row.get('test'))} ({row['baseline']} baseline "
              f"{_num(row.get('test_baseline'))})")
    sys.stdout.flush()
    return 0
