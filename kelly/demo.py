"""``make demo``: compose one sample sentence and say what was made and where."""

from __future__ import annotations

import sys

from kelly.cli import main

SENTENCE = "I feel grief, but I'm starting to hope"


def run() -> int:
    print(f'Kelly demo: composing "{SENTENCE}"\n')
    code = main(["compose", SENTENCE, "--bars", "16", "--seed", "1", "--out", "kelly-out/demo.mid"])
    if code == 0:
        print("\nOpen kelly-out/demo.mid in your DAW; kelly-out/demo.json explains every choice.")
        print('Try: .venv/bin/kelly compose "I am so angry at them" --bars 8 --seed 2')
    return code


if __name__ == "__main__":
    sys.exit(run())
