"""The ``kelly`` command line.

Each sub-command lives in its own module under :mod:`kelly.commands` and registers
itself with :func:`register`. Modules are imported only when listed here, and heavy
libraries are imported inside the handlers, so ``kelly compose`` starts fast and never
imports torch.

Every ``KellyError`` becomes one line on standard error and exit code 2; argparse
usage errors also exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kelly import __version__
from kelly.errors import KellyError

#: Command modules, in the order ``kelly --help`` lists them.
COMMAND_MODULES = (
    "kelly.commands.compose",
    "kelly.commands.emotions",
    "kelly.commands.feel",
    "kelly.commands.lexicon",
    "kelly.commands.analyze",
    "kelly.commands.groove",
    "kelly.commands.ml",
    "kelly.commands.intent",
    "kelly.commands.rules",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"kelly: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kelly", description="Kelly: turn how you feel into music.")
    parser.add_argument("--version", action="version", version=f"kelly {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KellyError as exc:
        print(f"kelly: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kelly: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
