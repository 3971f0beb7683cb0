"""``make demo``: compose one sample sentence and say what was made and where.

The demo owns ``kelly-out/demo.mid`` and ``kelly-out/demo.json``: it passes ``--force`` so
``make demo`` can run again and again, each run replacing the last one's pair (atomically,
and never through a symbolic link or over a folder: see :mod:`kelly.fileio`).
"""

from __future__ import annotations

import sys

from kelly.cli import main

SENTENCE = "I feel grief, but I'm starting to hope"


def run() -> int:
    print(f'Kelly demo: composing "{SENTENCE}"\n')
    code = main(["compose", SENTENCE, "--bars", "16", "--seed", "1", "--out", "kelly-out/demo.mid",
                 "--force"])
    if code == 0:
        print("\nOpen kelly-out/demo.mid in your DAW; kelly-out/demo.json explains every choice.")
        print('Try: .venv/bin/kelly compose "I am so angry at them" --bars 8 --seed 2')
    return code


if __name__ == "__main__":
    sys.exit(run())
