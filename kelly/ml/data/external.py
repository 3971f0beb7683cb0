"""Loaders for public datasets a user has on disk: DEAM, Lakh MIDI, MAESTRO, Groove MIDI, EMOPIA.

Kelly never downloads them (they are large and their licences differ: see
``docs/data.md``). Point a loader at the folder you unpacked; it checks the layout
first and stops with one :class:`~kelly.errors.InputError` line naming the first thing
missing, for example::

    DEAM: expected annotations/annotations averaged per song/song_level/
    static_annotations_averaged_songs_1_2000.csv under /data/deam; see docs/data.md

Each loader returns a list of :class:`ExternalPiece`: the piece's id, its MIDI and/or
audio file, valence in [-1, 1] and arousal in [0, 1] where the dataset annotates them,
the dataset's own split where it has one (``official_split``, which
:func:`kelly.ml.data.split.split_of` honours), and a ``group`` that keeps versions of one
piece in one split (clips of one song, MIDI files matched to one recording).
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from kelly.errors import InputError

HINT = "see docs/data.md"
#: Rows of a CSV file read at most (every dataset here is far smaller).
MAX_ROWS = 2_000_000


@dataclass(frozen=True)
class ExternalPiece:
    """One piece of an external dataset.

    Attributes
    ----------
    dataset : str
        ``"deam"``, ``"lakh"``, ``"maestro"``, ``"groove"`` or ``"emopia"``.
    id : str
        ``"<dataset>/<the dataset's own id>"``.
    midi, audio : Path or None
    valence : float in [-1, 1] or None
    arousal : float in [0, 1] or None
    official_split : str or None
        ``"train"``, ``"validation"`` or ``"test"`` when the dataset defines it.
    group : str or None
        Pieces sharing a group are kept in one split.
    meta : dict
        Everything else the dataset says (raw annotation values, style, tempo …).
    """

    dataset: str
    id: str
    midi: Path | None = None
    audio: Path | None = None
    valence: float | None = None
    arousal: float | None = None
    official_split: str | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """A manifest-style dict (what :mod:`kelly.ml.data.split` reads)."""
        return {"id": self.id, "dataset": self.dataset, "group": self.group, "official_split": self.official_split,
                "midi": str(self.midi) if self.midi else None, "audio": str(self.audio) if self.audio else None,
                "labels": {"valence": self.valence, "arousal": self.arousal}, "meta": self.meta}


# --------------------------------------------------------------------------- helpers
def _root(name: str, root: str | os.PathLike) -> Path:
    p = Path(root).expanduser()
    if not p.exists():
        raise InputError(f"{name}: no such folder {p}; {HINT}")
    if not p.is_dir():
        raise InputError(f"{name}: {p} is not a folder; {HINT}")
    return p


def _find(name: str, root: Path, candidates: Iterable[str], *, what: str | None = None) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists; else InputError naming the first."""
    cands = list(candidates)
    for c in cands:
        if (root / c).exists():
            return root / c
    raise InputError(f"{name}: expected {what or cands[0]} under {root}; {HINT}")


def _read_csv(name: str, path: Path, required: Iterable[str], *, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV file as dicts with stripped keys and values; InputError if a required column is missing."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise InputError(f"{name}: {path.name} under {path.parent} lacks the column(s) "
                                 f"{', '.join(missing)} (it has: {', '.join(header) or 'nothing'}); {HINT}")
            rows = []
            for i, row in enumerate(reader):
                if i >= MAX_ROWS:
                    raise InputError(f"{name}: {path} has more than {MAX_ROWS:,} rows; is it the right file?")
                if not any(cell.strip() for cell in row):
                    continue
                rows.append({h: (row[j].strip() if j < len(row) else "") for j, h in enumerate(header)})
            return rows
    except OSError as exc:
        raise InputError(f"{name}: cannot read {path} ({exc.strerror or exc}); {HINT}") from None


def _check_files(name: str, pieces: list[ExternalPiece], root: Path, attr: str, strict: bool,
                 listed_in: str) -> list[ExternalPiece]:
    """Keep pieces whose ``attr`` file exists; with ``strict``, raise naming how many and the first missing."""
    missing = [p for p in pieces if getattr(p, attr) is not None and not getattr(p, attr).is_file()]
    if missing and strict:
        first = getattr(missing[0], attr)
        try:
            shown = first.relative_to(root)
        except ValueError:
            shown = first
        raise InputError(f"{name}: {len(missing):,} of {len(pieces):,} {attr.upper() if attr == 'midi' else attr} "
                         f"files listed in {listed_in} are missing under {root}, e.g. {shown}; {HINT}")
    bad = {id(p) for p in missing}
    return [p for p in pieces if id(p) not in bad]


def _float(name: str, value: str, where: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"{name}: {where}: {value!r} is not a number; {HINT}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise InputError(f"{name}: {where}: {value!r} is not a finite number; {HINT}")
    return x


def _clip(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))


# --------------------------------------------------------------------------- DEAM
DEAM_STATIC = "annotations/annotations averaged per song/song_level/static_annotations_averaged_songs_1_2000.csv"
DEAM_STATIC_2 = "annotations/annotations averaged per song/song_level/static_annotations_averaged_songs_2000_2058.csv"
DEAM_DYNAMIC = "annotations/annotations averaged per song/dynamic (per second annotations)"
DEAM_AUDIO_DIRS = ("MEMD_audio", "DEAM_audio/MEMD_audio", "audio")


def load_deam(root: str | os.PathLike, *, require_audio: bool = True, strict: bool = True) -> list[ExternalPiece]:
    """DEAM (MediaEval Database for Emotional Analysis in Music): 1,802 excerpts with static V/A.

    Expected layout under ``root`` (the two archives unpacked side by side)::

        annotations/annotations averaged per song/song_level/
            static_annotations_averaged_songs_1_2000.csv      (required)
            static_annotations_averaged_songs_2000_2058.csv   (read when present)
        MEMD_audio/<song_id>.mp3                                (or DEAM_audio/MEMD_audio/, audio/)

    Labels: the song-level means on DEAM's 1–9 scale, mapped to Kelly's ranges:
    ``valence = (valence_mean − 5) / 4`` in [-1, 1], ``arousal = (arousal_mean − 1) / 8`` in
    [0, 1]. No official split; ``group`` is the song id.

    Parameters
    ----------
    require_audio : bool
        Require the audio folder and each song's file (the recognizer trains on audio).
    strict : bool
        Raise when a listed song's audio file is missing; False skips such songs.
    """
    name = "DEAM"
    base = _root(name, root)
    if not (base / DEAM_STATIC).exists() and (base / "DEAM_Annotations" / DEAM_STATIC).exists():
        base = base / "DEAM_Annotations"
    static = _find(name, base, [DEAM_STATIC])
    rows = _read_csv(name, static, ("song_id", "valence_mean", "arousal_mean"))
    if (base / DEAM_STATIC_2).exists():
        rows += _read_csv(name, base / DEAM_STATIC_2, ("song_id", "valence_mean", "arousal_mean"))
    audio_dir = None
    for cand in DEAM_AUDIO_DIRS:
        for folder in (base, base.parent):
            if (folder / cand).is_dir():
                audio_dir = folder / cand
                break
        if audio_dir:
            break
    if require_audio and audio_dir is None:
        raise InputError(f"{name}: expected the audio folder MEMD_audio/ (or DEAM_audio/MEMD_audio/) under {base}; "
                         f"{HINT}")
    pieces, seen = [], set()
    for row in rows:
        sid = row["song_id"]
        if not sid or sid in seen:
            continue
        seen.add(sid)
        where = f"{static.name}, song {sid}"
        v = _float(name, row["valence_mean"], where)
        a = _float(name, row["arousal_mean"], where)
        audio = None
        if audio_dir is not None:
            found = [audio_dir / f"{sid}{ext}" for ext in (".mp3", ".wav") if (audio_dir / f"{sid}{ext}").exists()]
            audio = found[0] if found else audio_dir / f"{sid}.mp3"
        meta = {k: row[k] for k in row if k != "song_id"}
        pieces.append(ExternalPiece("deam", f"deam/{sid}", audio=audio, valence=round(_clip((v - 5.0) / 4.0, -1, 1), 4),
                                    arousal=round(_clip((a - 1.0) / 8.0, 0, 1), 4), group=f"deam:{sid}", meta=meta))
    if not pieces:
        raise InputError(f"{name}: {static} lists no songs; {HINT}")
    if require_audio:
        pieces = _check_files(name, pieces, audio_dir, "audio", strict, static.name)
    return pieces


def load_deam_dynamic(root: str | os.PathLike) -> dict[str, dict[str, list[float]]]:
    """DEAM's per-second (2 Hz) annotations: ``{song_id: {"time_s", "valence", "arousal"}}``.

    Both files hold values in [-1, 1]; arousal is mapped to [0, 1] by ``(a + 1) / 2``.
    Expects ``annotations/annotations averaged per song/dynamic (per second annotations)/
    {valence,arousal}.csv`` under ``root``.
    """
    name = "DEAM"
    base = _root(name, root)
    if not (base / DEAM_DYNAMIC).exists() and (base / "DEAM_Annotations" / DEAM_DYNAMIC).exists():
        base = base / "DEAM_Annotations"
    out: dict[str, dict[str, list[float]]] = {}
    for kind in ("valence", "arousal"):
        path = _find(name, base, [f"{DEAM_DYNAMIC}/{kind}.csv"])
        rows = _read_csv(name, path, ("song_id",))
        for row in rows:
            sid = row["song_id"]
            cols = [c for c in row if c.startswith("sample_") and row[c] != ""]
            times = [int(re.sub(r"\D", "", c)) / 1000.0 for c in cols]
            vals = [_float(name, row[c], f"{path.name}, song {sid}") for c in cols]
            if kind == "arousal":
                vals = [round((v + 1.0) / 2.0, 4) for v in vals]
            entry = out.setdefault(sid, {"time_s": times})
            entry[kind] = vals
    return out


# --------------------------------------------------------------------------- Lakh MIDI
LAKH_FOLDERS = ("lmd_full", "lmd_matched", "lmd_aligned")


def load_lakh(root: str | os.PathLike, *, limit: int | None = None) -> list[ExternalPiece]:
    """The Lakh MIDI Dataset: ``lmd_full/<0-f>/<md5>.mid`` or ``lmd_matched/<A>/<B>/<C>/<MSD id>/<md5>.mid``.

    ``root`` may hold ``lmd_full/``, ``lmd_matched/`` or ``lmd_aligned/`` (the first found is
    read), or be one of them. No emotion labels and no official split. In the matched
    sets, files matched to one Million Song Dataset track share a ``group`` (they are
    transcriptions of one recording); in ``lmd_full`` each file is its own group.

    Parameters
    ----------
    limit : int or None
        Stop after this many files (in sorted path order).
    """
    name = "Lakh MIDI"
    base = _root(name, root)
    folder = base if base.name in LAKH_FOLDERS else None
    if folder is None:
        folder = next((base / f for f in LAKH_FOLDERS if (base / f).is_dir()), None)
    if folder is None:
        raise InputError(f"{name}: expected lmd_full/ (or lmd_matched/, lmd_aligned/) with .mid files under {base}; "
                         f"{HINT}")
    matched = folder.name != "lmd_full"
    pieces: list[ExternalPiece] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.lower().endswith((".mid", ".midi")):
                continue
            path = Path(dirpath) / fn
            md5 = path.stem
            msd = path.parent.name if matched and re.fullmatch(r"TR[A-Z0-9]{16}", path.parent.name) else None
            pieces.append(ExternalPiece("lakh", f"lakh/{md5}" if not msd else f"lakh/{msd}/{md5}", midi=path,
                                        group=f"lakh:{msd or md5}", meta={"msd_id": msd, "subset": folder.name}))
            if limit is not None and len(pieces) >= limit:
                return pieces
    if not pieces:
        raise InputError(f"{name}: no .mid files in {folder}; {HINT}")
    return pieces


# --------------------------------------------------------------------------- MAESTRO
MAESTRO_COLUMNS = ("canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename",
                   "duration")


def load_maestro(root: str | os.PathLike, *, require_audio: bool = False, strict: bool = True) -> list[ExternalPiece]:
    """MAESTRO v3 (or v2): ~1,276 virtuoso piano performances, MIDI aligned with audio.

    Expected under ``root``: ``maestro-v3.0.0.csv`` (or ``maestro-v3.0.0.json``, or the
    v2.0.0 files) with the columns ``canonical_composer, canonical_title, split, year,
    midi_filename, audio_filename, duration``, and the files it names (``2018/….midi``,
    ``2018/….wav``) relative to ``root``. The official split is kept; ``group`` is the
    composer and title. No emotion labels.

    Parameters
    ----------
    require_audio : bool
        Also require every audio file.
    strict : bool
        Raise when a listed file is missing; False skips the performance.
    """
    name = "MAESTRO"
    base = _root(name, root)
    meta_file = next((base / f for f in ("maestro-v3.0.0.csv", "maestro-v3.0.0.json", "maestro-v2.0.0.csv",
                                          "maestro-v2.0.0.json") if (base / f).is_file()), None)
    if meta_file is None:
        raise InputError(f"{name}: expected maestro-v3.0.0.csv (or maestro-v3.0.0.json) under {base}; {HINT}")
    if meta_file.suffix == ".csv":
        rows = _read_csv(name, meta_file, ("split", "midi_filename", "audio_filename"))
    else:
        rows = _maestro_json(name, meta_file)
    pieces = []
    for i, row in enumerate(rows):
        midi = row.get("midi_filename", "")
        if not midi:
            continue
        split = {"train": "train", "validation": "validation", "test": "test"}.get(row.get("split", ""))
        group = f"maestro:{row.get('canonical_composer', '')}|{row.get('canonical_title', '')}"
        pieces.append(ExternalPiece("maestro", f"maestro/{Path(midi).with_suffix('').as_posix()}", midi=base / midi,
                                    audio=base / row["audio_filename"] if row.get("audio_filename") else None,
                                    official_split=split, group=group,
                                    meta={k: row.get(k) for k in MAESTRO_COLUMNS if k in row}))
    if not pieces:
        raise InputError(f"{name}: {meta_file.name} lists no performances; {HINT}")
    pieces = _check_files(name, pieces, base, "midi", strict, meta_file.name)
    if require_audio:
        pieces = _check_files(name, pieces, base, "audio", strict, meta_file.name)
    return pieces


def _maestro_json(name: str, path: Path) -> list[dict[str, str]]:
    from kelly.fileio import read_json

    doc = read_json(path, what="MAESTRO metadata")
    if isinstance(doc, list):  # v2: a list of row objects
        rows = doc
    elif isinstance(doc, dict) and "midi_filename" in doc and isinstance(doc["midi_filename"], dict):
        keys = list(doc["midi_filename"])  # v3: {column: {row index: value}}
        rows = [{col: doc[col].get(k) for col in doc if isinstance(doc[col], dict)} for k in keys]
    else:
        raise InputError(f"{name}: {path.name} is not MAESTRO metadata (no midi_filename); {HINT}")
    for r in rows:
        if not isinstance(r, dict) or "midi_filename" not in r or "split" not in r:
            raise InputError(f"{name}: {path.name} lacks midi_filename/split in a row; {HINT}")
    return [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]


# --------------------------------------------------------------------------- Groove MIDI
GROOVE_COLUMNS = ("drummer", "session", "id", "style", "bpm", "beat_type", "time_signature", "midi_filename",
                  "audio_filename", "duration", "split")


def load_groove(root: str | os.PathLike, *, require_audio: bool = False, strict: bool = True) -> list[ExternalPiece]:
    """The Groove MIDI Dataset: 1,150 drum performances (13.6 hours) by ten drummers.

    Expected: ``groove/info.csv`` under ``root`` (or ``info.csv`` in ``root`` itself) with the
    columns ``drummer, session, id, style, bpm, beat_type, time_signature, midi_filename,
    audio_filename, duration, split``, and the MIDI files it names relative to the folder
    holding ``info.csv``. The official split is kept; ``group`` is the session. No emotion
    labels (``meta`` has style, bpm, beat type and time signature).
    """
    name = "Groove MIDI"
    base = _root(name, root)
    info = _find(name, base, ["groove/info.csv", "info.csv"], what="groove/info.csv")
    folder = info.parent
    rows = _read_csv(name, info, ("id", "midi_filename", "split", "bpm", "style"))
    pieces = []
    for row in rows:
        if not row.get("midi_filename"):
            continue
        split = {"train": "train", "validation": "validation", "test": "test"}.get(row.get("split", ""))
        audio = folder / row["audio_filename"] if row.get("audio_filename") else None
        meta = {k: row.get(k) for k in GROOVE_COLUMNS if k in row and k not in ("midi_filename", "audio_filename")}
        if row.get("bpm"):
            meta["bpm"] = _float(name, row["bpm"], f"info.csv, {row.get('id')}")
        pieces.append(ExternalPiece("groove", f"groove/{row['id']}", midi=folder / row["midi_filename"], audio=audio,
                                    official_split=split, group=f"groove:{row.get('session') or row['id']}",
                                    meta=meta))
    if not pieces:
        raise InputError(f"{name}: {info} lists no performances; {HINT}")
    pieces = _check_files(name, pieces, folder, "midi", strict, "info.csv")
    if require_audio:
        pieces = _check_files(name, pieces, folder, "audio", strict, "info.csv")
    return pieces


# --------------------------------------------------------------------------- EMOPIA
#: Russell quadrant → (valence, arousal) at the quadrant's centre, in Kelly's ranges.
EMOPIA_QUADRANTS = {"Q1": (0.5, 0.75), "Q2": (-0.5, 0.75), "Q3": (-0.5, 0.25), "Q4": (0.5, 0.25)}


def load_emopia(root: str | os.PathLike, *, strict: bool = True) -> list[ExternalPiece]:
    """EMOPIA: 1,087 pop-piano clips from 387 songs, each labelled with a Russell quadrant.

    Expected under ``root`` (or ``root/EMOPIA_1.0``): ``label.csv`` with the columns
    ``ID, 4Q, annotator`` and ``midis/<ID>.mid``. The quadrant becomes the centre of its
    quarter of the valence/arousal plane (:data:`EMOPIA_QUADRANTS`: Q1 happy V+ A+, Q2
    tense V− A+, Q3 sad V− A−, Q4 calm V+ A−): a coarse label, ±0.5 and 0.25/0.75. Clips
    of one song share a ``group`` (the YouTube id in the clip name, ``Q1_<id>_<n>``), so
    they never straddle splits.
    """
    name = "EMOPIA"
    base = _root(name, root)
    if not (base / "label.csv").exists() and (base / "EMOPIA_1.0" / "label.csv").exists():
        base = base / "EMOPIA_1.0"
    label = _find(name, base, ["label.csv"])
    midis = _find(name, base, ["midis"], what="midis/ (the clips' MIDI files)")
    rows = _read_csv(name, label, ("ID", "4Q"))
    pieces = []
    for row in rows:
        cid = row["ID"]
        q = row["4Q"].strip().upper()
        q = q if q.startswith("Q") else f"Q{q}"
        if q not in EMOPIA_QUADRANTS:
            raise InputError(f"{name}: label.csv, clip {cid}: quadrant {row['4Q']!r} is not 1–4; {HINT}")
        v, a = EMOPIA_QUADRANTS[q]
        m = re.match(r"^Q[1-4]_(.+)_\d+$", cid)
        song = m.group(1) if m else cid
        pieces.append(ExternalPiece("emopia", f"emopia/{cid}", midi=midis / f"{cid}.mid", valence=v, arousal=a,
                                    group=f"emopia:{song}",
                                    meta={"quadrant": q, "annotator": row.get("annotator"), "song": song}))
    if not pieces:
        raise InputError(f"{name}: label.csv under {base} lists no clips; {HINT}")
    return _check_files(name, pieces, base, "midi", strict, "label.csv")


#: Loader by dataset name.
LOADERS: dict[str, Callable[..., list[ExternalPiece]]] = {
    "deam": load_deam, "lakh": load_lakh, "maestro": load_maestro, "groove": load_groove, "emopia": load_emopia,
}


def load_external(dataset: str, root: str | os.PathLike, **options: Any) -> list[ExternalPiece]:
    """Load one dataset by name (``deam``, ``lakh``, ``maestro``, ``groove``, ``emopia``)."""
    key = dataset.strip().lower()
    if key not in LOADERS:
        raise InputError(f"unknown dataset {dataset!r}; choose from: {', '.join(LOADERS)}")
    return LOADERS[key](root, **options)


def write_external_manifest(pieces: list[ExternalPiece], path: str | os.PathLike) -> Path:
    """Write the pieces as a JSON-lines manifest (absolute paths), e.g. to keep with a training run."""
    from kelly.ml.data.split import split_of
    from kelly.ml.data.store import write_file

    lines = []
    for p in pieces:
        rec = p.record()
        rec["split"] = split_of(rec)
        lines.append(json.dumps(rec, ensure_ascii=False, allow_nan=False))
    out = Path(path)
    write_file(out, ("\n".join(lines) + "\n").encode("utf-8"))
    return out
