"""``kelly feel``: read emotions from text and print them as JSON Lines.

Why: this is the text door into Kelly made visible. Each text becomes one JSON object
on its own line (JSON Lines), so the output can be piped into other tools, and the
``evidence`` field shows which words led to which emotion.

Each TEXT argument is one text; with none, standard input is read one text per line
(blank lines skipped).

``kelly feel --audio FILE`` is the audio door (:mod:`kelly.emotion.audio`): the first
line is the overall reading of the file, then one line per second, with the same keys
as a text reading where they apply (emotion, family, valence, arousal, dominance,
intensity, confidence) plus ``seconds`` ([start, end]), ``source`` ("audio"),
``level_dbfs`` and ``silent``; the overall line also says which ``model`` read it (today
the recognizer's fallback heuristic, until a trained one exists) and how it was summed up.
"""

from __future__ import annotations

import json
import sys

from kelly.errors import InputError

#: The keys of every printed object, in order.
KEYS = ("text", "emotion", "family", "valence", "arousal", "dominance", "intensity", "confidence",
        "secondary", "evidence")


#: The keys of every line of ``--audio`` output, in order.
AUDIO_KEYS = ("audio", "reading", "seconds", "emotion", "family", "valence", "arousal", "dominance", "intensity",
              "confidence", "source", "level_dbfs", "silent")
#: Extra keys of the first (overall) ``--audio`` line.
AUDIO_OVERALL_KEYS = ("model", "summary", "sample_rate")


def register(subparsers) -> None:
    """Add the ``feel`` sub-command to the ``kelly`` parser."""
    parser = subparsers.add_parser(
        "feel", help="read how a text (or a sound file) feels (one JSON line per text)",
        description="Read emotions from text. Prints one JSON object per text (JSON Lines) with the emotion, "
                    "its family, valence/arousal/dominance, intensity, confidence, secondary emotions and "
                    "the evidence. With no TEXT, reads one text per line from standard input. With --audio FILE, "
                    "reads a sound file (WAV, FLAC, OGG; 0.5 s to 20 min) instead: the overall reading, then "
                    "one line per second.")
    parser.add_argument("text", nargs="*", metavar="TEXT", help="a text to read (each argument is one text)")
    parser.add_argument("--audio", metavar="FILE",
                        help="read a sound file instead of text (the EmotionRecognizer, or its fallback heuristic "
                             "while no trained model exists)")
    parser.add_argument("--models-dir", metavar="DIR",
                        help="with --audio: look for emotionrecognizer.json here first")
    parser.add_argument("--json", action="store_true", help="JSON Lines output (the default format)")
    parser.add_argument("--evaluate", metavar="FILE",
                        help="score the reader on labelled sentences (JSON Lines with text, valence +/-, "
                             "arousal high/low, family) and print the rates as JSON")
    parser.set_defaults(func=handler)


def reading(text: str) -> dict:
    """The JSON object for one text, keys exactly :data:`KEYS`."""
    from kelly.emotion.text import read_text

    state = read_text(text).to_dict()
    row = {"text": text}
    row.update({key: state[key] for key in KEYS[1:]})
    return row


#: Most bytes read from standard input (checked while reading: /dev/zero fails fast).
MAX_STDIN_BYTES = 64 * 1024 * 1024


def _valid_text(text: str) -> str:
    """The text with any undecodable argument bytes (lone surrogates) replaced by U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_stdin() -> str:
    """Standard input as text: capped in size, invalid UTF-8 replaced rather than copied through."""
    if sys.stdin is None:
        raise InputError("standard input is closed; pass TEXT as an argument")
    stream = getattr(sys.stdin, "buffer", sys.stdin)  # a text stream (tests, embedding) is read as it is
    data = stream.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise InputError(f"standard input is larger than {MAX_STDIN_BYTES // (1024 * 1024)} MB; "
                         "split it into smaller parts")
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else _valid_text(data)


def evaluate(path: str) -> dict:
    """Score the reader on a labelled sentence file: rates overall and per category, and the misses."""
    from kelly.emotion.evaluation import load_sentences, score_sentences
    from kelly.emotion.text import read_text

    score = score_sentences(load_sentences(path), read_text)
    return {**score.to_dict(), "misses": score.misses}


def audio_rows(path: str, *, models_dir: str | None = None) -> list[dict]:
    """The JSON objects for a sound file: the overall reading, then one per second."""
    from kelly.emotion.audio import recognize_audio

    reading = recognize_audio(path, models_dir=models_dir)
    rate = reading.sample_rate
    rate = int(rate) if float(rate).is_integer() else rate
    shown = _valid_text(path)  # an undecodable file name still prints as valid UTF-8

    def row(moment, kind: str) -> dict:
        values = moment.to_dict()
        out = {"audio": shown, "reading": kind, "seconds": values["seconds"]}
        out.update({key: values[key] for key in AUDIO_KEYS[3:10]})
        out["source"] = "audio"
        out.update({"level_dbfs": values["level_dbfs"], "silent": values["silent"]})
        return out

    overall = row(reading.overall, "overall")
    overall.update({"model": reading.model, "summary": reading.summary, "sample_rate": rate})
    return [overall] + [row(m, "second") for m in reading.seconds]


def handler(args) -> int:
    """Read each text (arguments, else non-blank stdin lines) and print one JSON line each."""
    if args.audio is not None:
        if args.text or args.evaluate:
            raise InputError("give either --audio FILE or TEXT/--evaluate, not both")
        for row in audio_rows(args.audio, models_dir=args.models_dir):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
    if args.models_dir is not None:
        raise InputError("--models-dir applies to --audio only (text is read without the networks)")
    if args.evaluate:
        if args.text:
            raise InputError("give either TEXT or --evaluate FILE, not both")
        sys.stdout.write(json.dumps(evaluate(args.evaluate), ensure_ascii=False, indent=1) + "\n")
        return 0
    texts = [_valid_text(t) for t in args.text]
    if not texts:
        texts = [line for line in _read_stdin().splitlines() if line.strip()]
        if not texts:
            raise InputError('no text given; pass TEXT or pipe lines on standard input, '
                             'e.g. kelly feel "I feel grief, but I\'m starting to hope"')
    rows = [reading(text) for text in texts]  # validate all before printing any
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0
