"""The ``kelly`` command line.

Each sub-command lives in its own module under :mod:`kelly.commands` and registers
itself with :func:`register`. Modules are imported only when listed here, and heavy
libraries are imported inside the handlers, so ``kelly compose`` starts fast and never
imports torch.

Every ``KellyError`` becomes one line on standard error and exit code 2; argparse
usage errors also exit 2. Anything else that escapes a handler (a full disk under
standard output, a closed stream, ``MemoryError``, a bug of ours) also becomes one line
and exit 2; ``kelly --debug COMMAND …`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys
import warnings

from kelly import __version__
from kelly.errors import KellyError, OutputError

#: Command modules, in the order ``kelly --help`` lists them.
COMMAND_MODULES = (
    "kelly.commands.compose",
    "kelly.commands.render",
    "kelly.commands.emotions",
    "kelly.commands.feel",
    "kelly.commands.lexicon",
    "kelly.commands.analyze",
    "kelly.commands.groove",
    "kelly.commands.ml",
    "kelly.commands.train",
    "kelly.commands.models",
    "kelly.commands.intent",
    "kelly.commands.rules",
    "kelly.commands.schema",
    "kelly.commands.engine",
    "kelly.commands.ctl",
    "kelly.commands.transformer",
    "kelly.commands.ddsp",
    "kelly.commands.serve",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"kelly: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kelly", description="Kelly: turn how you feel into music.")
    parser.add_argument("--version", action="version", version=f"kelly {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: A full disk, a full quota, a file-size limit: said in words (kelly.fileio.NO_SPACE_ERRNOS, without importing it).
_NO_SPACE = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None)


class _GuardedOutput:
    """Standard output whose write errors (a full disk, a closed file) are one clear KellyError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(_stdout_error(exc)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(_stdout_error(exc)) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    saved = sys.stdout
    _ensure_streams()
    if not isinstance(sys.stdout, _GuardedOutput):
        sys.stdout = _GuardedOutput(sys.stdout)
    try:
        return _run(argv)
    finally:
        if isinstance(sys.stdout, _GuardedOutput) and saved is not None:
            sys.stdout = saved


#: A list of numbers that starts with a minus sign, such as ``-0.6,0.8,0.4``.
_NEGATIVE_LIST = re.compile(r"^-(\d+\.?\d*|\.\d+)(,\s*-?(\d+\.?\d*|\.\d+))+$")


def _attach_negative_lists(argv: list[str]) -> list[str]:
    """``--emotion -0.6,0.8,0.4`` → ``--emotion=-0.6,0.8,0.4``.

    argparse takes a value that starts with ``-`` for an option unless it is a single
    negative number, so a V,A,D triple with a negative valence (as the README writes it)
    would fail with "expected one argument". Joining it to its option is what the user meant.
    """
    out: list[str] = []
    for i, tok in enumerate(argv):
        if out and i > 0 and _NEGATIVE_LIST.match(tok) and argv[i - 1].startswith("--") and "=" not in argv[i - 1] \
                and out[-1] == argv[i - 1]:
            out[-1] = f"{argv[i - 1]}={tok}"
        else:
            out.append(tok)
    return out


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(_attach_negative_lists(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        with warnings.catch_warnings():
            if not debug:  # numerical warnings are handled where they matter; never as noise on stderr
                warnings.simplefilter("ignore", RuntimeWarning)
            code = int(args.func(args) or 0)
        _flush_stdout()
        return code
    except KellyError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("kelly: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        if debug:
            raise
        if exc.errno == errno.EPIPE:
            _silence_stdout()
            return 0
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        if exc.errno in _NO_SPACE:
            return _fail(f"no space left: the disk is full or a file is too large for it{where} ({exc.strerror}); "
                         "free some space and run again")
        return _fail(f"{exc.strerror or exc}{where}")
    except MemoryError:
        if debug:
            raise
        return _fail("out of memory; the input is too large for this machine (split it or lower the sizes)")
    except RecursionError:
        if debug:
            raise
        return _fail("the input is nested too deeply to read")
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        if debug:
            raise
        return _fail(f"unexpected internal error ({type(exc).__name__}: {str(exc)[:200]}); "
                     "run again with kelly --debug … to see where, and please report it")


def _stdout_error(exc: BaseException) -> str:
    """The one line for a failed write to standard output (a full disk says so)."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if getattr(exc, "errno", None) in _NO_SPACE:
        return f"cannot write to standard output: no space left: the disk is full or the file is too large ({reason})"
    return f"cannot write to standard output: {reason}"


def _fail(message: str) -> int:
    """Print one error line (valid UTF-8, one line) and return exit code 2."""
    line = " ".join(str(message).split()) or "unknown error"
    try:
        print(f"kelly: error: {line}", file=sys.stderr)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    _flush_stdout(quiet=True)
    return 2


def _flush_stdout(*, quiet: bool = False) -> None:
    """Flush standard output now, so that a full disk or a closed pipe is reported here, not at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError, KellyError) as exc:
        _silence_stdout()
        if not quiet:
            if isinstance(exc, KellyError):
                raise
            raise OutputError(_stdout_error(exc)) from None


def _silence_stdout() -> None:
    """Point standard output at the null device so that the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _ensure_streams() -> None:
    """Closed standard streams become the null device; output is always valid UTF-8."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            fd = stream.fileno() if stream is not None else None
        except (AttributeError, ValueError, OSError):
            fd = None  # not a real file (a StringIO, a test capture): leave it as it is
        if fd is not None:
            try:
                os.fstat(fd)
            except OSError:
                stream = None  # started with the descriptor closed
        if stream is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process
            continue
        try:
            stream.reconfigure(errors="replace")  # a lone surrogate from a bad argv byte never reaches the output
        except (AttributeError, ValueError, OSError):
            pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
