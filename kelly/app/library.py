"""The library: every composition a user makes, kept, searchable, and never half-written.

Layout inside the app folder (see :func:`kelly.app.paths.app_dir`)::

    library.sqlite            one row per composition (SQLite, WAL journal)
    compositions/<id>/        its files: song.mid, song.json, song.wav, song.musicxml

Why this shape: SQLite gives searching, sorting and crash-safe updates without a server
process; the music itself stays as ordinary files a user can open, copy or back up.

The one rule that keeps the two consistent: **a row exists only when its files do.**
:meth:`Library.add` writes the files first (each atomically, with :mod:`kelly.fileio`)
into a folder named by a fresh id that nothing refers to yet, then inserts the row in a
transaction; if the insert fails, the folder is removed. A crash between the two leaves
at most an unreferenced folder, which no search, listing or download ever shows.
:meth:`Library.delete` removes the row first, then the folder, for the same reason.

Schema changes go in :data:`MIGRATIONS`, append-only: script *n* (1-based) brings a
database from ``PRAGMA user_version`` *n-1* to *n*. They run in order inside one
transaction when a library is opened, so an interrupted upgrade leaves the old version
intact. A database from a newer Kelly is refused rather than guessed at.

Threads: the web server calls one :class:`Library` from its worker threads, so the
connection is shared (``check_same_thread=False``) and every operation holds one
:class:`threading.Lock`. Several processes may open the same folder: SQLite locks the
file, and waits up to :data:`BUSY_TIMEOUT_S` for another writer.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import threading
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from kelly.app.paths import confined, make_private_dirs
from kelly.errors import FileFormatError, InputError, OutputError
from kelly.fileio import json_bytes, show_path, write_bytes_atomic, write_files_atomic

#: The database file inside the library folder.
DB_NAME = "library.sqlite"
#: The folder (inside the library folder) that holds one folder of files per composition.
COMPOSITIONS_DIR = "compositions"
#: The only file names a composition may hold, in the order they are listed.
ALLOWED_FILES = ("song.mid", "song.json", "song.wav", "song-ddsp.wav", "song.musicxml")
#: Longest text (characters) a composition may keep: what the user wrote.
MAX_TEXT_CHARS = 10_000
#: Longest notes (characters) a user may attach to a composition.
MAX_NOTES_CHARS = 10_000
#: Longest emotion label (characters).
MAX_LABEL_CHARS = 1_000
#: Longest composer name (characters): "rules", a model's name.
MAX_COMPOSER_CHARS = 100
#: Largest parameters (bytes of JSON) a composition may keep.
MAX_PARAMETERS_BYTES = 1_000_000
#: Largest total size (bytes) of one composition's files: 200 MB.
MAX_FILES_BYTES = 200_000_000
#: Most compositions one search returns; a larger ``limit`` is cut to this.
MAX_SEARCH_LIMIT = 500
#: Largest limit or offset a search takes (SQLite's integers are 64-bit; a larger one is refused, not a crash).
MAX_OFFSET = 1_000_000_000
#: Seconds to wait for another process that is writing the database.
BUSY_TIMEOUT_S = 10.0
#: Name of ``composition.json`` inside an export.
EXPORT_MANIFEST = "composition.json"

#: Schema migrations, append-only: never edit one that has shipped, add a new one.
MIGRATIONS: list[str] = [
    # 1: the compositions table.
    """
    CREATE TABLE compositions (
        id         TEXT PRIMARY KEY,
        created    TEXT NOT NULL,
        text       TEXT,
        label      TEXT NOT NULL,
        valence    REAL NOT NULL,
        arousal    REAL NOT NULL,
        dominance  REAL NOT NULL,
        parameters TEXT NOT NULL,
        files      TEXT NOT NULL,
        rating     INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
        notes      TEXT
    );
    CREATE INDEX compositions_created ON compositions (created);
    """,
    # 2: which composer made it (the rule-based one for everything before).
    """
    ALTER TABLE compositions ADD COLUMN composer TEXT NOT NULL DEFAULT 'rules';
    """,
]
#: The schema version this Kelly writes: ``PRAGMA user_version`` after all migrations.
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = ("id", "created", "text", "label", "valence", "arousal", "dominance", "parameters", "files",
            "rating", "notes", "composer")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM compositions"
_ID = re.compile(r"[0-9a-f]{32}\Z")
_UNSET: Any = object()


class NotFound(InputError):
    """No composition with that id (or it has no such file): the web app answers 404."""

    def __init__(self, message: str, id: object = None) -> None:
        super().__init__(message)
        self.id = id


@dataclass(frozen=True)
class Composition:
    """One kept composition, as read from the library (a snapshot: changing it changes nothing).

    Attributes
    ----------
    id : str
        32 lowercase hex digits (a uuid4), also the name of its folder.
    created : str
        When it was made, UTC, ISO 8601 (``2025-01-31T12:00:00.000000+00:00``).
    text : str or None
        What the user wrote, if the composition came from text.
    label : str
        The emotion label it was composed for.
    valence, arousal, dominance : float
        The emotion point: valence in [-1, 1], arousal and dominance in [0, 1].
    parameters : dict
        The musical parameters used (JSON-compatible).
    files : tuple of str
        The files it has, in :data:`ALLOWED_FILES` order.
    rating : int or None
        The user's rating, 1 to 5.
    notes : str or None
        The user's notes.
    composer : str
        Which composer made it (``"rules"``, or a model's name).
    """

    id: str
    created: str
    text: str | None
    label: str
    valence: float
    arousal: float
    dominance: float
    parameters: dict = field(hash=False)
    files: tuple[str, ...]
    rating: int | None
    notes: str | None
    composer: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``files`` as a list; ``parameters`` a copy)."""
        return {
            "id": self.id,
            "created": self.created,
            "text": self.text,
            "label": self.label,
            "valence": self.valence,
            "arousal": self.arousal,
            "dominance": self.dominance,
            "parameters": json.loads(json.dumps(self.parameters)),
            "files": list(self.files),
            "rating": self.rating,
            "notes": self.notes,
            "composer": self.composer,
        }


# --------------------------------------------------------------------------- validation
def _is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def _shown_id(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def _number(name: str, value: object, low: float, high: float) -> float:
    """``value`` as a float in [low, high]; InputError for anything else (bools and NaN included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number from {low:g} to {high:g}, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}")
    return number


def _text(name: str, value: object, limit: int, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise InputError(f"{name} is {len(value):,} characters; at most {limit:,} are kept, so shorten it")
    return value


def _rating(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise InputError(f"a rating must be a whole number from 1 to 5 (or none to clear it), not {value!r}")
    return int(value)


def _file_name(name: object) -> str:
    if not isinstance(name, str) or name not in ALLOWED_FILES:
        shown = repr(name[:80]) if isinstance(name, str) else type(name).__name__
        raise InputError(f"{shown} is not a file a composition keeps; allowed: {', '.join(ALLOWED_FILES)}")
    return name


def _file_data(name: str, data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"the contents of {name} must be bytes, not {type(data).__name__}")
    return bytes(data)


def _check_total(total: int) -> None:
    if total > MAX_FILES_BYTES:
        raise InputError(f"the files of one composition total {total:,} bytes; at most {MAX_FILES_BYTES:,} "
                         f"are kept")


def _parameters_json(parameters: object) -> str:
    if not isinstance(parameters, dict):
        raise InputError(f"parameters must be a dict, not {type(parameters).__name__}")
    try:
        text = json.dumps(parameters, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"parameters must be plain JSON data (text keys, finite numbers): {exc}") from None
    if len(text.encode("utf-8")) > MAX_PARAMETERS_BYTES:
        raise InputError(f"parameters are over {MAX_PARAMETERS_BYTES:,} bytes as JSON; that is not a "
                         f"composition's parameters")
    return text


def _ordered(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats, in :data:`ALLOWED_FILES` order."""
    wanted = set(names)
    return tuple(n for n in ALLOWED_FILES if n in wanted)


def _like_pattern(query: str) -> str:
    """A LIKE pattern matching ``query`` anywhere, its ``%``, ``_`` and ``\\`` taken literally."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fold(value: object) -> str | None:
    """SQL function ``kelly_fold``: case-folded text, so LIKE ignores case beyond ASCII too."""
    return value.casefold() if isinstance(value, str) else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _new_id() -> str:
    return uuid.uuid4().hex


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (``sqlite3.complete_statement`` finds the ends).

    ``executescript`` would commit before running, so migrations could not share one
    transaction; this keeps them inside it.
    """
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        yield buffer  # incomplete: let SQLite say what is wrong with it


# --------------------------------------------------------------------------- the library
class Library:
    """The compositions kept in one folder: ``library.sqlite`` and ``compositions/<id>/``.

    Parameters
    ----------
    folder : Path
        The library folder; created (``0700``, parents too) if missing. Callers pass
        :func:`kelly.app.paths.app_dir`'s result; here it is taken as given.

    Raises
    ------
    FileFormatError
        ``library.sqlite`` is not an SQLite database, is not a regular file, or was
        written by a newer Kelly.
    OutputError
        The folder or database cannot be created or opened.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        make_private_dirs(self.folder)
        if not self.folder.is_dir():
            raise OutputError(f"the library folder {show_path(self.folder)} is not a folder; choose another")
        make_private_dirs(self.folder / COMPOSITIONS_DIR)
        self._conn = self._open()

    # ------------------------------------------------------------------ opening
    def _open(self) -> sqlite3.Connection:
        shown = show_path(self.path)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise OutputError(f"cannot open the library {shown}: {exc.strerror or exc}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise FileFormatError(f"{shown} is not a regular file, so not a Kelly library; move it aside")
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise OutputError(f"cannot open the library {shown}: {exc}") from None
        try:
            conn.create_function("kelly_fold", 1, _fold, deterministic=True)
            version = self._user_version(conn)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise OutputError(f"cannot open the library {shown}: {exc}") from None
            if version < SCHEMA_VERSION:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _user_version(self, conn: sqlite3.Connection) -> int:
        """The database's schema version; refuses a non-SQLite file and one from a newer Kelly."""
        shown = show_path(self.path)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "not a database" not in str(exc):
                raise OutputError(f"cannot open the library {shown}: {exc}") from None
            raise FileFormatError(f"{shown} is not a Kelly library (not an SQLite database: {exc}); move it "
                                  f"aside and Kelly starts a new one") from None
        if version > SCHEMA_VERSION:
            raise FileFormatError(f"{shown} was written by a newer Kelly (library schema {version}; this Kelly "
                                  f"reads up to {SCHEMA_VERSION}); upgrade Kelly, or use another app folder")
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION`, all pending migrations in one transaction."""
        shown = show_path(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")  # another process may be upgrading: read the version under the lock
            try:
                version = self._user_version(conn)
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(MIGRATIONS[number - 1]):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise OutputError(f"cannot upgrade the library {shown} to schema {SCHEMA_VERSION}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise FileFormatError(f"cannot upgrade the library {shown} to schema {SCHEMA_VERSION}: {exc}; "
                                  f"it is left as it was") from None

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, held by this thread; SQLite's own errors become Kelly's."""
        with self._lock:
            if self._conn is None:
                raise ValueError(f"the library {show_path(self.path)} is closed")
            try:
                yield self._conn
            except (sqlite3.OperationalError, sqlite3.IntegrityError) as exc:  # locked, disk full, read-only
                raise OutputError(f"library {show_path(self.path)}: {exc}") from None
            except sqlite3.DatabaseError as exc:  # corrupt
                raise FileFormatError(f"library {show_path(self.path)} is damaged: {exc}") from None

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _row(self, row: tuple) -> Composition:
        values = dict(zip(_COLUMNS, row))
        try:
            values["parameters"] = json.loads(values["parameters"])
            values["files"] = _ordered(json.loads(values["files"]))
        except (TypeError, ValueError) as exc:
            raise FileFormatError(f"library {show_path(self.path)}: composition {values['id']} has unreadable "
                                  f"data ({exc})") from None
        return Composition(**values)

    def _fetch(self, conn: sqlite3.Connection, id: str) -> Composition | None:
        row = conn.execute(f"{_SELECT} WHERE id = ?", (id,)).fetchone()
        return None if row is None else self._row(row)

    def _insert(self, conn: sqlite3.Connection, item: Composition) -> None:
        """Insert one row (its own transaction)."""
        with self._transaction(conn):
            conn.execute(
                f"INSERT INTO compositions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                (item.id, item.created, item.text, item.label, item.valence, item.arousal, item.dominance,
                 _parameters_json(item.parameters), json.dumps(list(item.files)), item.rating, item.notes,
                 item.composer))

    def _folder_of(self, id: str) -> Path:
        return confined(self.folder, COMPOSITIONS_DIR, id)

    # ------------------------------------------------------------------ adding
    def add(self, *, text: str | None, label: str, valence: float, arousal: float, dominance: float,
            parameters: dict, files: Mapping[str, bytes], composer: str = "rules") -> Composition:
        """Keep a new composition: its files first, then its row.

        Parameters
        ----------
        text : str or None
            What the user wrote (at most :data:`MAX_TEXT_CHARS`).
        label : str
            The emotion label.
        valence : float
            In [-1, 1].
        arousal, dominance : float
            In [0, 1].
        parameters : dict
            JSON-compatible musical parameters.
        files : mapping name → bytes
            Names from :data:`ALLOWED_FILES`; at most :data:`MAX_FILES_BYTES` in all.
        composer : str
            Which composer made it.

        Returns
        -------
        Composition
            As stored.

        Raises
        ------
        InputError
            Any argument out of range or of the wrong kind; nothing is written.
        OutputError
            The files or the row cannot be written; nothing is left behind.
        """
        item = Composition(
            id=_new_id(),
            created=_now(),
            text=_text("the text", text, MAX_TEXT_CHARS, optional=True),
            label=_text("the label", label, MAX_LABEL_CHARS, optional=False),
            valence=_number("valence", valence, -1.0, 1.0),
            arousal=_number("arousal", arousal, 0.0, 1.0),
            dominance=_number("dominance", dominance, 0.0, 1.0),
            parameters=json.loads(_parameters_json(parameters)),
            files=(),
            rating=None,
            notes=None,
            composer=self._composer(composer),
        )
        if not isinstance(files, Mapping):
            raise InputError(f"files must map file names to bytes, not {type(files).__name__}")
        contents = {_file_name(name): _file_data(name, data) for name, data in files.items()}
        _check_total(sum(len(d) for d in contents.values()))
        item = replace(item, files=_ordered(contents))

        folder = self._folder_of(item.id)
        # The files go in a folder nothing refers to yet, outside the lock: other threads carry on meanwhile.
        make_private_dirs(folder.parent)
        try:
            folder.mkdir(mode=0o700)
        except OSError as exc:
            raise OutputError(f"cannot create {show_path(folder)}: {exc.strerror or exc}") from None
        try:
            if contents:
                write_files_atomic({folder / name: contents[name] for name in item.files}, overwrite=False)
            with self._locked() as conn:
                self._insert(conn, item)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return item

    @staticmethod
    def _composer(value: object) -> str:
        name = _text("the composer", value, MAX_COMPOSER_CHARS, optional=False)
        if not name:
            raise InputError("the composer name is empty")
        return name

    def add_file(self, id: str, name: str, data: bytes) -> Composition:
        """Add (or replace) one file of a kept composition, e.g. a WAV rendered later.

        The file is written atomically, then the row's file list updated; if the update
        fails, a file that was new is removed again.

        Raises
        ------
        NotFound
            No composition ``id``.
        InputError
            ``name`` is not in :data:`ALLOWED_FILES`, ``data`` is not bytes, or the
            composition's files would exceed :data:`MAX_FILES_BYTES`.
        OutputError
            The file or the row cannot be written.
        """
        name = _file_name(name)
        data = _file_data(name, data)
        if not _is_id(id):
            raise NotFound(f"no composition {_shown_id(id)}", id)
        with self._locked() as conn:
            item = self._fetch(conn, id)
            if item is None:
                raise NotFound(f"no composition {id}", id)
            path = confined(self.folder, COMPOSITIONS_DIR, id, name)
            others = 0
            for other in item.files:
                if other != name:
                    try:
                        others += os.lstat(confined(self.folder, COMPOSITIONS_DIR, id, other)).st_size
                    except FileNotFoundError:
                        pass
            _check_total(others + len(data))
            existed = name in item.files
            write_bytes_atomic(path, data, overwrite=True)
            files = _ordered((*item.files, name))
            try:
                with self._transaction(conn):
                    conn.execute("UPDATE compositions SET files = ? WHERE id = ?", (json.dumps(list(files)), id))
            except BaseException:
                if not existed:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
                raise
            return replace(item, files=files)

    # ------------------------------------------------------------------ reading
    def get(self, id: str) -> Composition | None:
        """The composition ``id``, or ``None`` if there is none or ``id`` is not an id at all."""
        if not _is_id(id):
            return None
        with self._locked() as conn:
            return self._fetch(conn, id)

    def search(self, *, text: str | None = None, valence: float | None = None, arousal: float | None = None,
               rating_min: int | None = None, limit: int = 50, offset: int = 0) -> list[Composition]:
        """Compositions matching every filter given.

        Parameters
        ----------
        text : str, optional
            Found anywhere in the text or the label, ignoring case; ``%`` and ``_`` are
            literal characters, not wildcards.
        valence, arousal : float, optional
            Order by distance from this point in the valence/arousal plane, nearest first
            (one alone orders by distance along its own axis). Without them: newest first.
        rating_min : int, optional
            Only compositions rated at least this (1–5); unrated ones are left out.
        limit : int
            At most this many (1 or more; cut to :data:`MAX_SEARCH_LIMIT`).
        offset : int
            Skip this many first (for paging).

        Raises
        ------
        InputError
            A filter out of range or of the wrong kind.
        """
        where: list[str] = []
        args: list[Any] = []
        if text is not None:
            query = _text("the search text", text, MAX_TEXT_CHARS, optional=False)
            where.append("(kelly_fold(text) LIKE ? ESCAPE '\\' OR kelly_fold(label) LIKE ? ESCAPE '\\')")
            pattern = _like_pattern(query.casefold())
            args += [pattern, pattern]
        if rating_min is not None:
            where.append("rating >= ?")
            args.append(_rating(rating_min))
        order: list[str] = []
        order_args: list[Any] = []
        distance: list[str] = []
        if valence is not None:
            distance.append("(valence - ?) * (valence - ?)")
            v = _number("valence", valence, -1.0, 1.0)
            order_args += [v, v]
        if arousal is not None:
            distance.append("(arousal - ?) * (arousal - ?)")
            a = _number("arousal", arousal, 0.0, 1.0)
            order_args += [a, a]
        if distance:
            order.append(" + ".join(distance) + " ASC")
        order += ["created DESC", "rowid DESC"]
        for name, value, low in (("limit", limit, 1), ("offset", offset, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_OFFSET:
                raise InputError(f"{name} must be a whole number from {low} to {MAX_OFFSET:,}, "
                                 f"not {str(value)[:40]}")
        sql = (f"{_SELECT}{' WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY {', '.join(order)} LIMIT ? OFFSET ?")
        with self._locked() as conn:
            rows = conn.execute(sql, (*args, *order_args, min(limit, MAX_SEARCH_LIMIT), offset)).fetchall()
            return [self._row(row) for row in rows]

    def count(self) -> int:
        """How many compositions the library keeps."""
        with self._locked() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM compositions").fetchone()[0])

    def file_path(self, id: str, name: str) -> Path:
        """Where the file ``name`` of composition ``id`` is (built with :func:`~kelly.app.paths.confined`).

        Raises
        ------
        InputError
            ``name`` is not in :data:`ALLOWED_FILES`, or the path passes through a link.
        NotFound
            No composition ``id``, or it has no file ``name`` (or the file is gone from disk).
        """
        name = _file_name(name)
        if not _is_id(id):
            raise NotFound(f"no composition {_shown_id(id)}", id)
        with self._locked() as conn:
            return self._existing_file(conn, id, name)

    def _existing_file(self, conn: sqlite3.Connection, id: str, name: str) -> Path:
        item = self._fetch(conn, id)
        if item is None:
            raise NotFound(f"no composition {id}", id)
        if name not in item.files:
            raise NotFound(f"composition {id} has no {name}", id)
        path = confined(self.folder, COMPOSITIONS_DIR, id, name)
        try:
            st = os.lstat(path)
        except OSError:
            raise NotFound(f"the {name} of composition {id} is missing from {show_path(path.parent)}", id) \
                from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"the {name} of composition {id} is not a regular file", id)
        return path

    def export(self, id: str) -> bytes:
        """A zip archive (in memory) of the composition's files and ``composition.json``.

        Entries carry the composition's creation time, so exporting twice gives the same bytes.

        Raises
        ------
        NotFound
            No composition ``id``, or one of its files is gone from disk.
        """
        if not _is_id(id):
            raise NotFound(f"no composition {_shown_id(id)}", id)
        buffer = io.BytesIO()
        with self._locked() as conn:
            item = self._fetch(conn, id)
            if item is None:
                raise NotFound(f"no composition {id}", id)
            try:
                stamp = max(datetime.fromisoformat(item.created).timetuple()[:6], (1980, 1, 1, 0, 0, 0))
            except ValueError:  # a hand-edited date
                stamp = (1980, 1, 1, 0, 0, 0)
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                entries = [(EXPORT_MANIFEST, None)] + [(n, self._existing_file(conn, id, n)) for n in item.files]
                for name, path in entries:
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    try:
                        data = json_bytes(item.to_dict()) if path is None else path.read_bytes()
                    except OSError as exc:
                        raise OutputError(f"cannot read {show_path(path)}: {exc.strerror or exc}") from None
                    archive.writestr(info, data)
        return buffer.getvalue()

    # ------------------------------------------------------------------ changing
    def update(self, id: str, *, rating: int | None = _UNSET, notes: str | None = _UNSET) -> Composition:
        """Set the user's rating and/or notes; leave out an argument to keep its value.

        Parameters
        ----------
        rating : int or None
            1 to 5; ``None`` clears it.
        notes : str or None
            At most :data:`MAX_NOTES_CHARS`; ``None`` clears them.

        Raises
        ------
        NotFound
            No composition ``id``.
        InputError
            A rating that is not a whole number 1–5 (``True``, ``2.5``, ``0``), notes too long.
        """
        changes: dict[str, Any] = {}
        if rating is not _UNSET:
            changes["rating"] = _rating(rating)
        if notes is not _UNSET:
            changes["notes"] = _text("the notes", notes, MAX_NOTES_CHARS, optional=True)
        if not _is_id(id):
            raise NotFound(f"no composition {_shown_id(id)}", id)
        with self._locked() as conn:
            if changes:
                with self._transaction(conn):
                    cursor = conn.execute(
                        f"UPDATE compositions SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
                        (*changes.values(), id))
                    found = cursor.rowcount > 0
            item = self._fetch(conn, id)
            if item is None or (changes and not found):
                raise NotFound(f"no composition {id}", id)
            return item

    def delete(self, id: str) -> bool:
        """Forget composition ``id``: its row, then its folder. ``False`` if there was none.

        Raises
        ------
        OutputError
            The row is gone but the folder could not be removed (the message names it).
        """
        if not _is_id(id):
            return False
        with self._locked() as conn:
            with self._transaction(conn):
                found = conn.execute("DELETE FROM compositions WHERE id = ?", (id,)).rowcount > 0
            if not found:
                return False
            folder = self.folder / COMPOSITIONS_DIR / id
            try:
                if os.path.islink(folder):
                    os.unlink(folder)
                elif os.path.isdir(folder):
                    shutil.rmtree(folder)
            except OSError as exc:
                raise OutputError(f"composition {id} was removed from the library, but its folder "
                                  f"{show_path(folder)} could not be deleted ({exc.strerror or exc}); "
                                  f"delete it by hand") from None
            return True

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the database (waiting for an operation in progress); closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Library({str(self.folder)!r})"
