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


def socket_frame(data: bytes) -> None:
    """A frame from a socket client: the 4-byte length header, then the body as a request."""
    from kelly.ipc.framing import decode_request, frame_length

    if len(data) >= 4:
        frame_length(data[:4])
    decode_request(data[4:] if len(data) >= 4 else data)


def tokens(data: bytes) -> None:
    """Any compound-token rows the transformer could emit, decoded (repaired, never raising) to MIDI bytes."""
    import numpy as np

    from kelly.transformer.tokens import FAMILIES, CompoundTokenizer

    width = len(FAMILIES)
    rows = np.frombuffer(data[: (len(data) // width) * width], dtype=np.uint8).astype(np.int64).reshape(-1, width)
    song = CompoundTokenizer().decode(rows[:2000])
    song.to_bytes()


def train_config(data: bytes) -> None:
    """A TOML config for the DDSP voice's and the transformer's trainers (the section [tiny])."""
    from kelly.ddsp.train import TrainSettings as DdspSettings
    from kelly.ml.train.sections import load_section
    from kelly.transformer.train import TrainSettings as TransformerSettings

    path = _as_file(data, ".toml")
    for cls, what in ((DdspSettings, "ddsp"), (TransformerSettings, "transformer")):
        try:
            load_section(cls, "tiny", path, what=what)
        except KellyError:
            pass  # a clear refusal; the other trainer still reads the file


def ddsp_voice(data: bytes) -> None:
    """A DDSP voice's decoder JSON: checked by the runtime's reader and the decoder's own shape check."""
    from kelly.ddsp.decoder import NumpyDecoder

    NumpyDecoder(data, name="fuzz-ddsp.json")


TARGETS = {"text": text, "midi": midi, "midi_chain": midi_chain, "intent": intent, "groove_template": groove_template,
           "rtneural": rtneural, "onnx": onnx, "csv": csv, "lexicon": lexicon, "socket_frame": socket_frame,
           "tokens": tokens, "train_config": train_config, "ddsp_voice": ddsp_voice}


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
