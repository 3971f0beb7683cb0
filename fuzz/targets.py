"""Fuzz targets: raw bytes → one of Kelly's readers. Run by :mod:`fuzz.run`.

A target returns normally or raises :class:`kelly.errors.KellyError`; the harness treats
anything else as a finding. Targets that read paths get the bytes in a temporary file, so
that the real path-level checks (regular file, size caps) run too. Readers are imported
inside the targets so that ``main`` can import them under atheris's instrumentation.

``python -m fuzz.targets NAME CORPUS [libFuzzer flags]`` fuzzes one target.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

from kelly.errors import KellyError

_TMP = tempfile.mkdtemp(prefix="kelly-fuzz-")


def _as_file(data: bytes, suffix: str) -> str:
    path = os.path.join(_TMP, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def text(data: bytes) -> None:
    """Any bytes as text (invalid UTF-8 replaced, as `kelly feel` does)."""
    from kelly.emotion.text import read_text

    state = read_text(data.decode("utf-8", "replace"))
    assert -1 <= state.valence <= 1 and 0 <= state.arousal <= 1 and 0 <= state.confidence <= 1


def midi(data: bytes) -> None:
    from kelly.song import read_midi_bytes

    read_midi_bytes(data)


def midi_chain(data: bytes) -> None:
    """A MIDI file through everything that reads one: analysis and groove extraction."""
    from kelly.groove.extract import extract_groove
    from kelly.song import read_midi_bytes
    from kelly.theory.analysis import analyze_song

    song = read_midi_bytes(data)
    analyze_song(song)
    extract_groove(song)


def intent(data: bytes) -> None:
    from kelly.fileio import read_json
    from kelly.intent.schema import check_document

    check_document(read_json(_as_file(data, ".json"), what="intent file"))


def groove_template(data: bytes) -> None:
    from kelly.groove.templates import load_template

    load_template(_as_file(data, ".json"))


def rtneural(data: bytes) -> None:
    from kelly.ml.runtime import load_model

    load_model(_as_file(data, ".json"))


def onnx(data: bytes) -> None:
    """An ONNX file for the dynamics network: parsed and checked before anything would run it."""
    from kelly.ml.onnx_graphs import check_onnx_bytes

    check_onnx_bytes(data, key="dynamicsengine", name="fuzz.onnx")


def csv(data: bytes) -> None:
    """`kelly runtime --input` rows for a 32-wide model."""
    from kelly.ml.runtime import read_csv_file

    read_csv_file(_as_file(data, ".csv"), 32)


def lexicon(data: bytes) -> None:
    """The table format; inputs without gzip's magic are compressed first, so the fuzzer
    reaches the structure inside (random bytes rarely survive inflation)."""
    import gzip

    from kelly.emotion.lexicon import decode_table

    decode_table(data if data[:2] == b"\x1f\x8b" else gzip.compress(data, mtime=0))


TARGETS = {"text": text, "midi": midi, "midi_chain": midi_chain, "intent": intent, "groove_template": groove_template,
           "rtneural": rtneural, "onnx": onnx, "csv": csv, "lexicon": lexicon}


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]
    with atheris.instrument_imports(include=["kelly"]):
        try:  # the first call imports the reader's modules, instrumented for coverage
            target(b"")
        except Exception:  # noqa: BLE001 - only the imports matter here
            pass

    def one(data: bytes) -> None:
        try:
            target(data)
        except KellyError:
            pass

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
