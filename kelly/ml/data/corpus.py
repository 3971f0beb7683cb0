"""music21's corpus converted once to MIDI, with per-piece metadata and weak emotion labels.

The music21 wheel ships thousands of public scores (no download): Bach's chorales,
the Essen folk-song collection, O'Neill's, Ryan's and Aird's Irish and Scottish tunes,
Palestrina's masses. Parsing them with music21 is slow (0.05–0.7 s a piece), so
:func:`convert` does it once and caches the result:

``<data_dir>/midi/<collection>/<piece>.mid``
    one Standard MIDI File per piece (music21's writer; type 1, 10,080 ticks a quarter);
``<data_dir>/manifest.jsonl``
    one JSON object per piece: id, collection, title, group, the MIDI path (relative
    to the data folder), key and mode (from the header where the tune has one, else
    Kelly's modal key finder), metre, tempo marking, note count, duration, the weak
    labels (:mod:`kelly.ml.data.labels`) and the split (:mod:`kelly.ml.data.split`).

Conversion is resumable (pieces already in the manifest are skipped, failures too:
they are listed with ``status: "error"``; ``retry_errors=True`` tries them again),
parallel (``workers`` processes), bounded (``limit`` pieces per collection) and shows
a progress bar.

Writing MIDI (:func:`score_to_midi_bytes`): music21's writer expands repeats. About one
Essen song in nine makes it fail, and on chains of ``:|`` without ``|:`` (common in
O'Neill's ABC) it plays sections far too often (one jig came out 290 times its written
length). Such a piece is flattened and written again, each part once, repeats not
expanded (if even that fails, flattened to one part, ``score.flatten().notesAndRests``,
with its time signature and tempo put back); its record says ``"flattened": true``,
``"written"`` says how and ``"midi_error"`` why. Grace notes are dropped first (music21
writes them as notes that never end).

The data folder is ``data_dir``, else ``$KELLY_DATA_DIR``, else ``./build/corpus``
(:func:`kelly.ml.data.store.data_dir`). See ``docs/data.md`` for licences and timings.
"""

from __future__ import annotations

import copy
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from kelly.errors import InputError
from kelly.ml.data import labels as L
from kelly.ml.data.split import normalize_title, split_of
from kelly.ml.data.store import DATA_VERSION, Manifest, data_dir as resolve_data_dir, progress, safe_name, write_file

MANIFEST_NAME = "manifest.jsonl"
#: Put before every ABC tune: music21 applies an accidental to the rest of its bar (as ABC 2.1 and
#: printed music do) only for ABC 2 files; without it the Essen songs lose their flats (``_B2B2`` read
#: as B flat, B natural).
ABC_VERSION_LINE = "%abc-2.1\n"


@dataclass(frozen=True)
class Collection:
    """One repertory of music21's corpus.

    ``kind`` is ``"chorales"`` (music21's chorale iterator), ``"abc"`` (ABC files, one
    or many tunes each, split at ``X:``) or ``"files"`` (one score per file).
    ``k_field`` says what an ABC ``K:`` header means: ``"key"`` (tonic and mode, as in
    O'Neill's ``K:Ador``) or ``"tonic"`` (Essen: the final note only, the mode unsaid).
    """

    name: str
    folder: str
    kind: str
    description: str
    licence: str
    k_field: str = "key"
    exclude: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ("*.abc",)


COLLECTIONS: dict[str, Collection] = {c.name: c for c in (
    Collection("bach", "bach", "chorales", "J. S. Bach, four-part chorales (Riemenschneider's 371; 350 distinct "
               "files in music21)", "public domain music; encodings from music21's corpus (BSD)"),
    Collection("essen", "essenFolksong", "abc", "Essen folk-song collection (German, Chinese and other songs; "
               "monophonic)", "non-commercial use only (music21's essenFolksong/license.txt)", k_field="tonic",
               exclude=("test0.abc", "test1.abc", "testd.abc", "teste.abc")),
    Collection("oneills", "oneills1850", "abc", "O'Neill's Music of Ireland (1903): dance tunes and airs",
               "public domain (transcriptions by Norbert Paap, distributed with music21)"),
    Collection("ryans", "ryansMammoth", "abc", "Ryan's Mammoth Collection (1883): reels, jigs, hornpipes",
               "public domain (transcriptions distributed with music21)"),
    Collection("airds", "airdsAirs", "abc", "Aird's Selection of Scotch, English, Irish and Foreign Airs "
               "(1778–1803)", "public domain (transcriptions by Jack Campin, distributed with music21)"),
    Collection("palestrina", "palestrina", "files", "G. P. da Palestrina, mass movements (four to six voices)",
               "public domain music; Humdrum encodings distributed with music21", patterns=("*.krn",)),
)}
#: What :func:`convert` does when no collection is named.
DEFAULT_COLLECTIONS = ("bach", "essen", "oneills")


@dataclass(frozen=True)
class PieceRef:
    """One piece to convert: where it comes from and what its header says."""

    collection: str
    id: str
    source: str                 # path inside music21's corpus, with "#X" for a tune in a multi-tune file
    title: str = ""
    group: str = ""
    abc: str | None = None      # the tune's ABC text (abc collections)
    header: dict[str, str] = field(default_factory=dict)
    number: int | None = None   # Riemenschneider number (chorales) or ABC X: number


def corpus_root() -> Path:
    """music21's corpus folder inside the installed wheel."""
    try:
        import music21
    except ImportError:
        raise InputError("music21 is not installed: pip install music21 (it is in Kelly's test extra)") from None
    return Path(music21.__file__).parent / "corpus"


def _collection(name: str) -> Collection:
    if name not in COLLECTIONS:
        raise InputError(f"unknown collection {name!r}; choose from: {', '.join(COLLECTIONS)}")
    return COLLECTIONS[name]


# --------------------------------------------------------------------------- ABC headers
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11, "H": 11}
_ABC_MODES = {"maj": "ionian", "ion": "ionian", "min": "aeolian", "aeo": "aeolian", "dor": "dorian",
              "phr": "phrygian", "lyd": "lydian", "mix": "mixolydian", "loc": "locrian"}


def parse_abc_key(value: str) -> tuple[int, str | None] | None:
    """``(tonic pitch class, church mode or None)`` of an ABC ``K:`` value; None if it names no key.

    ``"G"`` → (7, "ionian"), ``"Em"`` → (4, "aeolian"), ``"ADor"`` → (9, "dorian"),
    ``"Dmix"`` → (2, "mixolydian"); German ``"H"`` → (11, "ionian") and ``"Es"`` → (3, "ionian");
    ``"Bn"``, ``"none"`` → None; an unknown mode word → (tonic, None).
    """
    v = (value or "").split("%")[0].strip()
    m = re.match(r"^([A-H])(#|b|s|es|is)?\s*([A-Za-z]*)", v)
    if not m or v.lower().startswith("none"):
        return None
    acc = {"#": 1, "is": 1, "b": -1, "s": -1, "es": -1, None: 0}[m.group(2)]
    pc = (_LETTER[m.group(1)] + acc) % 12
    rest = m.group(3).lower()
    if rest in ("", "maj", "major"):
        return pc, "ionian"
    if rest in ("m", "min", "minor"):
        return pc, "aeolian"
    mode = _ABC_MODES.get(rest[:3])
    if mode is None or not any(word.startswith(rest) for word in (
            "ionian", "major", "minor", "aeolian", "dorian", "phrygian", "lydian", "mixolydian", "locrian")):
        return pc, None
    return pc, mode


def split_abc(text: str) -> list[tuple[int | None, str, dict[str, str]]]:
    """The tunes of an ABC file: ``(X number or None, tune text, header fields)``.

    Header fields are the first value of each one-letter field before the body (``T``,
    ``M``, ``L``, ``Q``, ``K``, ``R``, …); ``N`` joins all notes; ``key_changes`` is
    ``"1"`` when a second ``K:`` line or an inline ``[K:…]`` follows.
    """
    out = []
    for block in re.split(r"(?m)^(?=X:)", text):
        if not block.startswith("X:"):
            continue
        m = re.match(r"X:\s*(\d+)", block)
        number = int(m.group(1)) if m else None
        header: dict[str, str] = {}
        notes = []
        for line in block.splitlines()[1:]:
            fm = re.match(r"^([A-Za-z]):\s*(.*)$", line)
            if not fm:
                if header.get("K") is not None:
                    break  # the body has begun
                continue
            key, value = fm.group(1), fm.group(2).strip()
            if key == "N":
                notes.append(value)
            elif key not in header:
                header[key] = value
            if key == "K":
                break
        header["N"] = " ".join(n for n in notes if n)
        ks = re.findall(r"(?m)^K:", block)
        header["key_changes"] = "1" if len(ks) > 1 or re.search(r"\[K:", block) else ""
        out.append((number, block, header))
    return out


# --------------------------------------------------------------------------- enumeration
def list_pieces(collection: str) -> list[PieceRef]:
    """Every piece of a collection, in a fixed order, without parsing any music (fast).

    Repeated pieces are listed once: a chorale file that the Riemenschneider numbering
    names twice, an O'Neill number that two files of the collection hold, an Essen
    number found twice.
    """
    col = _collection(collection)
    root = corpus_root() / col.folder
    if col.kind == "chorales":
        return _list_chorales(col)
    refs: list[PieceRef] = []
    seen: set[str] = set()
    files = sorted(p for pattern in col.patterns for p in root.glob(pattern) if p.name not in col.exclude)
    for path in files:
        rel = f"{col.folder}/{path.name}"
        if col.kind == "files":
            pid = f"{col.name}/{path.stem}"
            nums = re.findall(r"\d+", path.stem)
            group = f"{col.name}:mass {nums[-1]}" if nums else f"{col.name}:{path.stem}"
            refs.append(PieceRef(col.name, pid, rel, title=path.stem, group=group))
            continue
        text = path.read_text(encoding="latin-1")
        tunes = split_abc(text)
        for number, block, header in tunes:
            title = header.get("T", "")
            if col.name == "essen":
                essen_id = (header.get("N", "").split() or [""])[0]
                pid = f"essen/{essen_id}" if re.fullmatch(r"[A-Z]\w+", essen_id) else f"essen/{path.stem}-{number}"
                base = re.sub(r"[A-Z]$", "", essen_id) if re.fullmatch(r"[A-Z]\d+[A-Z]?", essen_id) else pid
                group = f"essen:{base}"
            elif col.name == "oneills":
                pid = f"oneills/{number:04d}" if number is not None else f"oneills/{path.stem}"
                group = f"oneills:{normalize_title(title) or pid}"
            elif len(tunes) == 1:
                pid = f"{col.name}/{path.stem}"
                group = f"{col.name}:{normalize_title(title) or pid}"
            else:
                pid = f"{col.name}/{path.stem}-{number if number is not None else len(refs)}"
                group = f"{col.name}:{normalize_title(title) or pid}"
            if pid in seen:
                continue
            seen.add(pid)
            refs.append(PieceRef(col.name, pid, f"{rel}#{number}", title=title, group=group, abc=block,
                                 header=header, number=number))
    return refs


def _list_chorales(col: Collection) -> list[PieceRef]:
    from music21.corpus import chorales

    names = list(chorales.Iterator(returnType="filename"))
    table = chorales.ChoraleListRKBWV().byRiemenschneider
    refs, seen = [], set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            continue
        seen.add(name)
        title = str(table.get(number, {}).get("title", "")) or name
        refs.append(PieceRef(col.name, f"bach/{name.split('/', 1)[-1]}", name, title=title,
                             group=f"bach:{normalize_title(title)}", number=number))
    return refs


# --------------------------------------------------------------------------- one piece
#: Longest repeat expansion accepted from music21's writer, as a multiple of the written length (plus one
#: quarter): playing every section twice doubles it; music21 turns chains of ``:|`` without ``|:`` in ABC
#: into far more (O'Neill's no. 1046: 290 times the written length).
MAX_REPEAT_EXPANSION = 2.05


def _midi_quarters(data: bytes) -> float:
    """Length in quarter notes of a MIDI file in memory (inf if it cannot be read)."""
    from kelly.errors import FileFormatError
    from kelly.ml.data.midi import symusic_available

    if symusic_available():
        import symusic

        try:
            sc = symusic.Score.from_midi(data)
            return sc.end() / max(1, sc.ticks_per_quarter)
        except Exception:  # unreadable: treated like a bad expansion
            return float("inf")
    from kelly.song import read_midi_bytes

    try:
        song = read_midi_bytes(data)
    except FileFormatError:
        return float("inf")
    return song.end_tick() / song.ppq


def score_to_midi_bytes(score) -> tuple[bytes, str, str | None]:
    """MIDI bytes of a music21 score: ``(data, how, reason for falling back)``.

    1. ``how="score"``: music21's writer on the score as it is (it expands repeats) —
       accepted unless it raises or its result is longer than :data:`MAX_REPEAT_EXPANSION`
       times the written length;
    2. ``how="parts"``: each part flattened (notes, rests, time/key signatures and tempo
       marks at their offsets, no measures), so each part keeps its track and the music is
       written once, repeats not expanded;
    3. ``how="notes"``: the whole score flattened to its notes and rests in one part
       (``score.flatten().notesAndRests.stream()``), with its first time signature and tempo
       mark put back.

    The last error propagates if all three fail.
    """
    from music21 import meter, stream, tempo
    from music21.midi import translate

    written = float(score.highestTime or 0.0)
    try:
        data = translate.streamToMidiFile(score).writestr()
        quarters = _midi_quarters(data)
        if quarters <= MAX_REPEAT_EXPANSION * written + 1.0:
            return data, "score", None
        reason = f"music21 expanded the repeats to {quarters / max(written, 1e-9):.1f} times the written length"
    except Exception as exc:  # music21 raises many kinds here (StreamException, TypeError …)
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    try:
        parts = stream.Score()
        for part in (score.parts or [score]):
            parts.insert(0, part.flatten())
        return translate.streamToMidiFile(parts).writestr(), "parts", reason
    except Exception:
        pass
    keep = score.flatten().notesAndRests.stream()
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    mm = score.recurse().getElementsByClass(tempo.MetronomeMark).first()
    if ts is not None:
        keep.insert(0, copy.deepcopy(ts))
    if mm is not None:
        keep.insert(0, copy.deepcopy(mm))
    return translate.streamToMidiFile(keep).writestr(), "notes", reason


def _parse(ref: PieceRef):
    from music21 import converter, corpus, stream

    if ref.abc is not None:
        parsed = converter.parse(ABC_VERSION_LINE + ref.abc, format="abc")
    else:
        parsed = corpus.parse(ref.source)
    if isinstance(parsed, stream.Opus):
        parsed = parsed.scores[0]
    return parsed


def drop_grace_notes(score) -> int:
    """Remove grace notes (ornaments without a duration) from a music21 score; returns how many.

    music21 writes a grace note as a note-off followed by a note-on at the same tick, a
    note that never ends: MIDI readers then pair that pitch's later notes differently
    (Kelly's reader and symusic disagree). The ornaments carry no harmony or rhythm the
    networks learn from, so they go.
    """
    graces = [n for n in score.recurse().notes if n.duration.isGrace or n.duration.quarterLength == 0]
    for g in graces:
        site = g.activeSite
        if site is not None:
            site.remove(g)
    return len(graces)


def _score_facts(score) -> dict[str, Any]:
    from music21 import dynamics, meter, tempo

    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    mm = score.recurse().getElementsByClass(tempo.MetronomeMark).first()
    marked = score.recurse().getElementsByClass(dynamics.Dynamic).first() is not None
    bpm = None
    if mm is not None:
        try:
            q = mm.getQuarterBPM()
            bpm = round(float(q), 2) if q and np.isfinite(q) and 10 <= q <= 400 else None
        except Exception:  # a tempo text without a number
            bpm = None
    return {"meter": (int(ts.numerator), int(ts.denominator)) if ts is not None else None, "bpm": bpm,
            "dynamics": marked}


def _ending(notes):
    """The last sonority of pitched notes (for the key finder), from NoteArrays."""
    from kelly.song import Note
    from kelly.theory.analysis import final_sonority

    p = notes.pitched()
    if not len(p):
        return None
    last = int(p.onset.max())
    sel = (p.onset + np.maximum(1, p.duration)) > last
    return final_sonority([Note(int(s), int(pi), int(d), int(v)) for s, pi, d, v in
                           zip(p.onset[sel], p.pitch[sel], p.duration[sel], p.velocity[sel])], p.ppq)


def find_key(notes, header_key: tuple[int, str | None] | None, k_field: str) -> dict[str, Any]:
    """Tonic and church mode of a piece: from the header where it says, else Kelly's modal key finder.

    * header with tonic and mode (``k_field="key"``): taken as is, ``source="header"``;
    * header with the tonic only (Essen, or a ``K:`` mode word Kelly does not know): the
      mode is the best of the seven on that tonic by :func:`kelly.theory.analysis.mode_scores`
      (histogram, ending and prior), ``source="header tonic + analysis"``;
    * no header: :func:`kelly.theory.analysis.estimate_key` with the ending,
      ``source="analysis"``.

    ``confidence`` is the winner's softmax share (temperature 0.04) among the candidates;
    1.0 for a header mode.
    """
    from kelly.theory.analysis import CHURCH_MODES, MODE_TEMPERATURE, estimate_key, mode_scores
    from kelly.ml.data.midi import pitch_class_histogram

    hist = pitch_class_histogram(notes)
    if header_key is not None and header_key[1] is not None and k_field == "key":
        tonic, mode = header_key
        return {"tonic_pc": int(tonic), "mode": mode, "family": L.MODE_FAMILY[mode], "source": "header",
                "confidence": 1.0}
    if hist.sum() <= 0:
        return {"tonic_pc": None, "mode": None, "family": None, "source": "none", "confidence": 0.0}
    ending = _ending(notes)
    if header_key is not None:
        tonic = int(header_key[0])
        col = mode_scores(hist, ending=ending)[:, tonic]
        z = np.exp((col - col.max()) / MODE_TEMPERATURE)
        best = int(np.argmax(col))
        mode = CHURCH_MODES[best]
        return {"tonic_pc": tonic, "mode": mode, "family": L.MODE_FAMILY[mode], "source": "header tonic + analysis",
                "confidence": round(float(z[best] / z.sum()), 4)}
    est = estimate_key(hist, ending=ending)
    modal = est.modal
    return {"tonic_pc": int(modal.key.tonic_pc), "mode": modal.mode, "family": modal.family, "source": "analysis",
            "confidence": round(float(modal.confidence), 4)}


_PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def convert_piece(ref: PieceRef, root: str | os.PathLike) -> dict[str, Any]:
    """Convert one piece into ``root`` and return its manifest record (never raises for bad music).

    A piece music21 cannot parse or write, or that has no notes, gets a record with
    ``status`` ``"error"`` or ``"empty"`` and the reason.
    """
    from kelly.ml.data.midi import distinct_onsets, read_notes

    t0 = time.perf_counter()
    c0 = time.process_time()
    col = _collection(ref.collection)
    rel = Path("midi") / ref.collection / (safe_name(ref.id.split("/", 1)[-1]) + ".mid")
    base: dict[str, Any] = {"id": ref.id, "collection": ref.collection, "source": ref.source, "title": ref.title,
                            "group": ref.group, "version": DATA_VERSION}
    if ref.number is not None:
        base["number"] = ref.number
    try:
        score = _parse(ref)
        graces = drop_grace_notes(score)
        sfacts = _score_facts(score)
        data, how, error = score_to_midi_bytes(score)
        flattened = how != "score"
    except Exception as exc:  # music21 fails in many ways on odd encodings
        return base | {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                       "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3)}
    write_file(Path(root) / rel, data)
    notes = read_notes(Path(root) / rel)
    pitched = notes.pitched()
    if not len(pitched):
        return base | {"status": "empty", "midi": rel.as_posix(), "flattened": flattened,
                       "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3)}
    header = ref.header or {}
    header_key = parse_abc_key(header["K"]) if header.get("K") else None
    key = find_key(notes, header_key, col.k_field)
    meter = sfacts["meter"] or notes.meter
    quarters = max(1e-9, notes.end_tick / notes.ppq)
    opq = len(distinct_onsets(notes)) / quarters
    tempo_text = " ".join([header.get("N", ""), header.get("Q", "") if not sfacts["bpm"] else ""])
    rhythm_text = " ".join([header.get("R", ""), ref.title])
    lab = L.weak_labels(mode=key["mode"], mode_from_header=key["source"] == "header",
                        mode_confidence=key["confidence"], bpm=sfacts["bpm"], tempo_text=tempo_text,
                        rhythm_text=rhythm_text, onsets_per_quarter=opq, meter=meter,
                        velocities=pitched.velocity, dynamics=sfacts["dynamics"])
    vel = pitched.velocity.astype(np.float64)
    record = base | {
        "status": "ok", "midi": rel.as_posix(), "flattened": flattened, "written": how,
        "repeats": "expanded" if how == "score" else "as written", "grace_notes_dropped": graces,
        "key": {**key, "tonic": _PC_NAMES[key["tonic_pc"]], "name": f"{_PC_NAMES[key['tonic_pc']]} {key['mode']}",
                "header": header.get("K") or None, "key_changes": bool(header.get("key_changes"))},
        "meter": f"{meter[0]}/{meter[1]}", "tempo_bpm": sfacts["bpm"], "rhythm": L.rhythm_type(rhythm_text),
        "tempo_word": L.tempo_word(tempo_text), "genre": header.get("R") or None,
        "notes": int(len(pitched)), "parts": int(len(np.unique(pitched.track))),
        "duration_quarters": round(quarters, 3), "duration_s": round(notes.duration_seconds, 3),
        "onsets_per_quarter": round(opq, 4),
        "pitch": {"min": int(pitched.pitch.min()), "max": int(pitched.pitch.max()),
                  "mean": round(float(pitched.pitch.mean()), 2)},
        "velocity": {"mean": round(float(vel.mean()), 2), "std": round(float(vel.std()), 2)},
        "labels": {k: lab[k] for k in ("valence", "arousal", "dominance")},
        "label_terms": lab["components"],
        "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3),
    }
    if error:
        record["midi_error"] = error
    record["split"] = split_of(record)
    return record


def _work(args: tuple[PieceRef, str]) -> dict[str, Any]:
    ref, root = args
    try:
        return convert_piece(ref, root)
    except Exception as exc:  # a bug or a disk problem: recorded, the run goes on
        return {"id": ref.id, "collection": ref.collection, "source": ref.source, "status": "error",
                "error": f"{type(exc).__name__}: {str(exc)[:200]}", "version": DATA_VERSION}


# --------------------------------------------------------------------------- the whole job
@dataclass
class ConversionReport:
    """What :func:`convert` did."""

    data_dir: str
    manifest: str
    converted: dict[str, int] = field(default_factory=dict)   # collection → pieces converted now
    skipped: dict[str, int] = field(default_factory=dict)     # already in the manifest
    errors: dict[str, int] = field(default_factory=dict)      # status error/empty, now
    flattened: dict[str, int] = field(default_factory=dict)   # written after flattening, now
    seconds: dict[str, float] = field(default_factory=dict)   # wall-clock time per collection
    total: dict[str, int] = field(default_factory=dict)       # pieces the collection has

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def convert(collections: Iterable[str] | str | None = None, *, data_dir: str | os.PathLike | None = None,
            limit: int | None = None, workers: int = 1, retry_errors: bool = False,
            show_progress: bool = True) -> ConversionReport:
    """Convert music21 corpus collections to MIDI with a manifest (resumable, parallel, bounded).

    Parameters
    ----------
    collections : str or iterable of str or None
        Names from :data:`COLLECTIONS`; default :data:`DEFAULT_COLLECTIONS`.
    data_dir : path-like or None
        Output folder (:func:`kelly.ml.data.store.data_dir`).
    limit : int or None
        At most this many pieces per collection *in total* (those already converted count),
        taken from the start of :func:`list_pieces`' order.
    workers : int
        Processes converting in parallel (1: in this process).
    retry_errors : bool
        Try again the pieces whose earlier attempt failed.
    show_progress : bool
        A progress bar on standard error (tqdm, else rich, else none).

    Returns
    -------
    ConversionReport
    """
    if isinstance(collections, str):
        collections = [collections]
    names = list(collections) if collections is not None else list(DEFAULT_COLLECTIONS)
    for n in names:
        _collection(n)
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit must be a whole number ≥ 0, got {limit!r}")
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a whole number ≥ 1, got {workers!r}")
    root = resolve_data_dir(data_dir, create=True)
    manifest = Manifest(root / MANIFEST_NAME)
    report = ConversionReport(data_dir=str(root), manifest=str(manifest.path))
    records = {r["id"]: r for r in manifest.records()}
    for name in names:
        t0 = time.perf_counter()
        refs = list_pieces(name)
        report.total[name] = len(refs)
        if limit is not None:
            refs = refs[:limit]
        todo = [r for r in refs if r.id not in records
                or (retry_errors and records[r.id].get("status") in ("error", "empty"))
                or (records[r.id].get("status") == "ok" and not (root / records[r.id].get("midi", "")).is_file())]
        report.skipped[name] = len(refs) - len(todo)
        done = errors = flat = 0
        for rec in _run(todo, root, workers, show_progress, name):
            manifest.append([rec])
            records[rec["id"]] = rec
            done += 1
            errors += rec.get("status") != "ok"
            flat += bool(rec.get("flattened"))
        report.converted[name] = done
        report.errors[name] = errors
        report.flattened[name] = flat
        report.seconds[name] = round(time.perf_counter() - t0, 2)
    return report


def _run(todo: list[PieceRef], root: Path, workers: int, show: bool, desc: str):
    args = [(ref, str(root)) for ref in todo]
    if not args:
        return
    if workers == 1 or len(args) == 1:
        for a in progress(args, total=len(args), desc=desc, enabled=show):
            yield _work(a)
        return
    import multiprocessing

    with multiprocessing.get_context().Pool(processes=min(workers, len(args))) as pool:
        yield from progress(pool.imap_unordered(_work, args, chunksize=4), total=len(args), desc=desc, enabled=show)


def load_manifest(data_dir: str | os.PathLike | None = None, *, collection: str | None = None,
                  status: str | None = "ok") -> list[dict[str, Any]]:
    """The records of the converted corpus (only ``status`` ones; None for all), optionally one collection."""
    from kelly.ml.data.store import read_manifest

    root = resolve_data_dir(data_dir)
    recs = read_manifest(root / MANIFEST_NAME)
    return [r for r in recs if (collection is None or r.get("collection") == collection)
            and (status is None or r.get("status") == status)]


def midi_path(record: dict[str, Any], data_dir: str | os.PathLike | None = None) -> Path:
    """Absolute path of a record's MIDI file."""
    if not record.get("midi"):
        raise InputError(f"{record.get('id')}: has no MIDI file (status {record.get('status')!r})")
    return resolve_data_dir(data_dir) / record["midi"]
