"""The web app's library: kept compositions, their files, search, migrations, and the folders they live in."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import threading
import zipfile
from dataclasses import replace

import pytest

from kelly.app import library as library_module
from kelly.app import paths
from kelly.app.library import (ALLOWED_FILES, MIGRATIONS, SCHEMA_VERSION, Composition, Library, NotFound)
from kelly.errors import FileFormatError, InputError, KellyError, OutputError

MIDI = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00"


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _add(lib: Library, **over) -> Composition:
    args = dict(text="I feel calm by the sea", label="calm", valence=0.4, arousal=0.2, dominance=0.5,
                parameters={"tempo": 72, "mode": "major"},
                files={"song.mid": MIDI, "song.json": b'{"ok": true}\n'})
    args.update(over)
    return lib.add(**args)


@pytest.fixture
def lib(tmp_path):
    with Library(tmp_path / "app") as library:
        yield library


# --------------------------------------------------------------------------- add / get
def test_add_and_get_round_trip_with_files_on_disk(lib, tmp_path):
    item = _add(lib, composer="melody-net")
    assert len(item.id) == 32 and int(item.id, 16) >= 0
    assert item.created.endswith("+00:00")
    assert item.files == ("song.mid", "song.json")
    assert item.rating is None and item.notes is None and item.composer == "melody-net"
    got = lib.get(item.id)
    assert got == item
    folder = tmp_path / "app" / "compositions" / item.id
    assert (folder / "song.mid").read_bytes() == MIDI
    assert lib.file_path(item.id, "song.mid") == (folder / "song.mid").resolve()
    assert lib.count() == 1
    assert item.to_dict()["files"] == ["song.mid", "song.json"]
    assert json.loads(json.dumps(item.to_dict()))["parameters"] == {"mode": "major", "tempo": 72}


def test_get_of_a_malformed_or_unknown_id_is_none(lib):
    _add(lib)
    for bad in ("", "../etc/passwd", "x" * 32, "0" * 31, "A" * 32, None, 7, "0" * 32 + "\n"):
        assert lib.get(bad) is None
    assert lib.get("0" * 32) is None


def test_text_may_be_none_and_files_may_be_added_later(lib):
    item = _add(lib, text=None, files={"song.mid": MIDI})
    updated = lib.add_file(item.id, "song.wav", b"RIFF....WAVE")
    assert updated.files == ("song.mid", "song.wav")
    assert lib.get(item.id).files == ("song.mid", "song.wav")
    assert lib.file_path(item.id, "song.wav").read_bytes() == b"RIFF....WAVE"
    assert lib.get(item.id).text is None
    again = lib.add_file(item.id, "song.wav", b"RIFF2")  # re-rendered: replaced, listed once
    assert again.files == ("song.mid", "song.wav")
    assert lib.file_path(item.id, "song.wav").read_bytes() == b"RIFF2"
    with pytest.raises(NotFound):
        lib.add_file("0" * 32, "song.wav", b"x")
    with pytest.raises(InputError):
        lib.add_file(item.id, "notes.txt", b"x")


@pytest.mark.parametrize("over", [
    {"valence": 1.5}, {"valence": -1.01}, {"valence": float("nan")}, {"arousal": -0.1},
    {"arousal": float("inf")}, {"dominance": 2}, {"valence": True}, {"valence": "0.5"},
    {"text": "x" * 10_001}, {"text": 5}, {"label": None},
    {"parameters": {"x": float("nan")}}, {"parameters": [1, 2]}, {"parameters": {"x": object()}},
    {"files": {"../x": b"x"}}, {"files": {"song.exe": b"x"}}, {"files": {"/etc/passwd": b"x"}},
    {"files": {"song.mid": "text, not bytes"}}, {"composer": ""},
])
def test_bad_input_is_refused_and_nothing_is_written(lib, tmp_path, over):
    with pytest.raises(InputError):
        _add(lib, **over)
    assert lib.count() == 0
    assert list((tmp_path / "app" / "compositions").iterdir()) == []


def test_edges_of_the_ranges_are_accepted(lib):
    _add(lib, valence=-1, arousal=0, dominance=1, text="x" * 10_000, files={})
    assert lib.count() == 1


def test_total_size_is_limited(lib, monkeypatch):
    monkeypatch.setattr(library_module, "MAX_FILES_BYTES", 100)
    with pytest.raises(InputError, match="at most 100"):
        _add(lib, files={"song.mid": b"x" * 60, "song.wav": b"y" * 60})
    item = _add(lib, files={"song.mid": b"x" * 60})
    with pytest.raises(InputError):
        lib.add_file(item.id, "song.wav", b"y" * 41)
    lib.add_file(item.id, "song.mid", b"z" * 100)  # replacing counts the new size only


# --------------------------------------------------------------------------- search
def test_search_by_text_is_case_insensitive_and_takes_wildcards_literally(lib):
    a = _add(lib, text="I am 100% happy", label="joy")
    b = _add(lib, text="I am 100 happy", label="joy")
    c = _add(lib, text="snake_case feelings", label="calm")
    d = _add(lib, text="snakeXcase feelings", label="calm")
    e = _add(lib, text=None, label="Ärger")
    f = _add(lib, text="back\\slash", label="calm")
    ids = lambda found: {x.id for x in found}  # noqa: E731
    assert ids(lib.search(text="100%")) == {a.id}
    assert ids(lib.search(text="%")) == {a.id}
    assert ids(lib.search(text="e_c")) == {c.id}
    assert ids(lib.search(text="_")) == {c.id}
    assert ids(lib.search(text="SNAKE")) == {c.id, d.id}
    assert ids(lib.search(text="äRGER")) == {e.id}  # by the label, beyond ASCII
    assert ids(lib.search(text="JOY")) == {a.id, b.id}
    assert ids(lib.search(text="\\")) == {f.id}
    assert ids(lib.search(text="'; DROP TABLE compositions; --")) == set()
    assert lib.count() == 6


def test_search_orders_newest_first_or_by_nearness_in_the_va_plane(lib):
    far = _add(lib, valence=-0.9, arousal=0.9)
    near = _add(lib, valence=0.5, arousal=0.5)
    mid = _add(lib, valence=0.0, arousal=0.5)
    assert [x.id for x in lib.search()] == [mid.id, near.id, far.id]
    assert [x.id for x in lib.search(valence=0.6, arousal=0.45)] == [near.id, mid.id, far.id]
    assert [x.id for x in lib.search(valence=-1.0, arousal=1.0)] == [far.id, mid.id, near.id]
    assert [x.id for x in lib.search(limit=1, offset=1)] == [near.id]
    with pytest.raises(InputError):
        lib.search(valence=2.0, arousal=0.5)
    for bad in ({"limit": 0}, {"limit": True}, {"offset": -1}, {"limit": "5"}):
        with pytest.raises(InputError):
            lib.search(**bad)


def test_search_limit_is_capped(lib, monkeypatch):
    monkeypatch.setattr(library_module, "MAX_SEARCH_LIMIT", 2)
    for _ in range(3):
        _add(lib, files={})
    assert len(lib.search(limit=10_000)) == 2


def test_search_by_minimum_rating(lib):
    low, high, unrated = _add(lib), _add(lib), _add(lib)
    lib.update(low.id, rating=2)
    lib.update(high.id, rating=5)
    assert {x.id for x in lib.search(rating_min=2)} == {low.id, high.id}
    assert [x.id for x in lib.search(rating_min=3)] == [high.id]
    assert unrated.id in {x.id for x in lib.search()}
    with pytest.raises(InputError):
        lib.search(rating_min=6)


# --------------------------------------------------------------------------- update / delete
def test_update_rating_and_notes(lib):
    item = _add(lib)
    assert lib.update(item.id, rating=4).rating == 4
    changed = lib.update(item.id, notes="play it at dusk")
    assert (changed.rating, changed.notes) == (4, "play it at dusk")
    cleared = lib.update(item.id, rating=None)
    assert (cleared.rating, cleared.notes) == (None, "play it at dusk")
    assert lib.update(item.id, notes=None).notes is None
    assert lib.update(item.id) == lib.get(item.id)


@pytest.mark.parametrize("rating", [0, 6, 2.5, True, False, "3", -1])
def test_bad_ratings_are_refused(lib, rating):
    item = _add(lib)
    with pytest.raises(InputError):
        lib.update(item.id, rating=rating)
    assert lib.get(item.id).rating is None


def test_update_of_an_unknown_id_and_over_long_notes(lib):
    item = _add(lib)
    with pytest.raises(NotFound, match="no composition"):
        lib.update("f" * 32, rating=3)
    with pytest.raises(NotFound):
        lib.update("../x", notes="hi")
    assert issubclass(NotFound, InputError)
    with pytest.raises(InputError):
        lib.update(item.id, notes="n" * 10_001)


def test_delete_removes_row_and_files(lib, tmp_path):
    keep, gone = _add(lib), _add(lib)
    folder = tmp_path / "app" / "compositions" / gone.id
    assert folder.is_dir()
    assert lib.delete(gone.id) is True
    assert not folder.exists()
    assert lib.get(gone.id) is None
    assert lib.delete(gone.id) is False
    assert lib.delete("../../etc") is False
    assert [x.id for x in lib.search()] == [keep.id]
    with pytest.raises(NotFound):
        lib.file_path(gone.id, "song.mid")


# --------------------------------------------------------------------------- files
def test_file_path_refuses_names_outside_the_allowed_set(lib):
    item = _add(lib, files={"song.mid": MIDI})
    for bad in ("../x", "../../etc/passwd", "song.MID", "library.sqlite", "", "/etc/passwd"):
        with pytest.raises(InputError):
            lib.file_path(item.id, bad)
    with pytest.raises(NotFound):  # allowed, but this composition has none
        lib.file_path(item.id, "song.wav")
    with pytest.raises(NotFound):
        lib.file_path("../" + item.id, "song.mid")


def test_file_path_refuses_a_file_swapped_for_a_link(lib, tmp_path):
    item = _add(lib, files={"song.mid": MIDI})
    target = tmp_path / "app" / "compositions" / item.id / "song.mid"
    target.unlink()
    (tmp_path / "secret").write_bytes(b"secret")
    target.symlink_to(tmp_path / "secret")
    with pytest.raises(InputError):
        lib.file_path(item.id, "song.mid")


def test_export_zip_has_the_files_and_composition_json(lib):
    item = _add(lib)
    lib.update(item.id, rating=5)
    data = lib.export(item.id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["composition.json", "song.json", "song.mid"]
        assert archive.read("song.mid") == MIDI
        manifest = json.loads(archive.read("composition.json"))
    assert manifest == lib.get(item.id).to_dict()
    assert manifest["rating"] == 5
    assert lib.export(item.id) == data  # same bytes each time
    with pytest.raises(NotFound):
        lib.export("0" * 32)


# --------------------------------------------------------------------------- failures leave nothing
def test_a_failing_insert_leaves_no_folder_behind(lib, tmp_path, monkeypatch):
    _add(lib)

    def broken(self, conn, item):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Library, "_insert", broken)
    with pytest.raises(OutputError, match="disk I/O error"):
        _add(lib)
    assert lib.count() == 1
    assert len(list((tmp_path / "app" / "compositions").iterdir())) == 1


def test_an_insert_refused_by_the_database_leaves_no_folder_behind(lib, tmp_path):
    other = sqlite3.connect(tmp_path / "app" / "library.sqlite")
    other.execute("CREATE TRIGGER refuse BEFORE INSERT ON compositions BEGIN SELECT RAISE(ABORT, 'no room'); END")
    other.commit()
    other.close()
    with pytest.raises(KellyError, match="no room"):
        _add(lib)
    assert lib.count() == 0
    assert list((tmp_path / "app" / "compositions").iterdir()) == []


# --------------------------------------------------------------------------- restarts and versions
def test_reopening_keeps_everything(tmp_path):
    with Library(tmp_path / "app") as first:
        a = _add(first)
        first.update(a.id, rating=3, notes="keep")
        b = _add(first, files={"song.mid": MIDI})
    with Library(tmp_path / "app") as second:
        assert second.count() == 2
        assert second.get(a.id) == replace(a, rating=3, notes="keep")
        assert second.file_path(b.id, "song.mid").read_bytes() == MIDI
    conn = sqlite3.connect(tmp_path / "app" / "library.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_closed_library_refuses_work(tmp_path):
    lib = Library(tmp_path / "app")
    lib.close()
    lib.close()
    with pytest.raises(ValueError, match="closed"):
        lib.count()


# The version-1 schema as it shipped, written out by hand: migration 1 must never change.
_V1 = """
CREATE TABLE compositions (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, text TEXT, label TEXT NOT NULL,
    valence REAL NOT NULL, arousal REAL NOT NULL, dominance REAL NOT NULL,
    parameters TEXT NOT NULL, files TEXT NOT NULL,
    rating INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5), notes TEXT);
CREATE INDEX compositions_created ON compositions (created);
PRAGMA user_version = 1;
"""


def test_a_version_1_database_is_migrated_keeping_its_rows(tmp_path):
    folder = tmp_path / "app"
    (folder / "compositions" / ("a" * 32)).mkdir(parents=True)
    (folder / "compositions" / ("a" * 32) / "song.mid").write_bytes(MIDI)
    conn = sqlite3.connect(folder / "library.sqlite")
    conn.executescript(_V1)
    conn.execute("INSERT INTO compositions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 ("a" * 32, "2024-05-01T10:00:00.000000+00:00", "old text", "sad", -0.5, 0.3, 0.4,
                  '{"tempo": 60}', '["song.mid"]', 4, "from v1"))
    conn.commit()
    conn.close()
    assert SCHEMA_VERSION == len(MIGRATIONS) == 2
    with Library(folder) as lib:
        old = lib.get("a" * 32)
        assert old is not None
        assert (old.text, old.label, old.rating, old.notes, old.composer) == ("old text", "sad", 4, "from v1", "rules")
        assert old.parameters == {"tempo": 60} and old.files == ("song.mid",)
        assert lib.file_path(old.id, "song.mid").read_bytes() == MIDI
        new = _add(lib, composer="net")
        assert [x.id for x in lib.search()] == [new.id, old.id]
    conn = sqlite3.connect(folder / "library.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def test_a_failing_migration_leaves_the_old_version(tmp_path, monkeypatch):
    folder = tmp_path / "app"
    folder.mkdir()
    conn = sqlite3.connect(folder / "library.sqlite")
    conn.executescript(_V1)
    conn.close()
    broken = MIGRATIONS[1] + "; SELECT nonsense FROM nowhere;"
    monkeypatch.setattr(library_module, "MIGRATIONS", [MIGRATIONS[0], broken])
    with pytest.raises(KellyError, match="upgrade"):
        Library(folder)
    conn = sqlite3.connect(folder / "library.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [row[1] for row in conn.execute("PRAGMA table_info(compositions)")]
    assert "composer" not in columns  # the ALTER was rolled back with the rest
    conn.close()


def test_a_database_from_a_newer_kelly_is_refused(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    conn = sqlite3.connect(folder / "library.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(FileFormatError, match="newer Kelly"):
        Library(folder)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "library.sqlite").write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(FileFormatError, match="library.sqlite"):
        Library(folder)
    (folder / "library.sqlite").unlink()
    (folder / "library.sqlite").mkdir()
    with pytest.raises(FileFormatError):
        Library(folder)


# --------------------------------------------------------------------------- threads
def test_concurrent_adds_from_eight_threads_all_land(lib):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                _add(lib, text=f"thread {n} item {i}", files={"song.mid": MIDI})
                if i % 5 == 0:
                    lib.search(text="thread", limit=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    _run_threads([threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)])
    assert errors == []
    assert lib.count() == 160
    assert len(lib.search(limit=500)) == 160
    assert len({x.id for x in lib.search(limit=500)}) == 160


def _run_threads(threads: list[threading.Thread], timeout: float = 20.0) -> None:
    """Start and join ``threads``; fail (rather than hang) if one is stuck."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread is stuck: the library deadlocked or waits forever"


def test_two_libraries_on_one_folder_share_it(tmp_path):
    """Two server processes on one app folder: SQLite's file lock and WAL keep both writers whole."""
    first, second = Library(tmp_path / "app"), Library(tmp_path / "app")
    errors: list[BaseException] = []

    def work(lib: Library) -> None:
        try:
            for _ in range(10):
                _add(lib, files={"song.mid": MIDI})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    _run_threads([threading.Thread(target=work, args=(lib,), daemon=True)
                  for lib in (first, second, first, second)])
    assert errors == []
    assert first.count() == second.count() == 40
    first.close()
    second.close()


# --------------------------------------------------------------------------- paths
def test_confined_joins_inside_the_base(tmp_path):
    (tmp_path / "a").mkdir()
    assert paths.confined(tmp_path, "a", "b.txt") == (tmp_path / "a" / "b.txt").resolve()
    assert paths.confined(tmp_path, "a/b.txt") == (tmp_path / "a" / "b.txt").resolve()


@pytest.mark.parametrize("parts", [
    ("..",), ("a", ".."), ("../x",), ("a/../../x",), ("/etc/passwd",), ("",), ("a", ""),
    ("a\x00b",), ("a\\b",), ("..\\x",), (None,),
])
def test_confined_refuses_escapes(tmp_path, parts):
    with pytest.raises(InputError):
        paths.confined(tmp_path, *parts)


def test_confined_refuses_a_symlinked_parent_or_leaf(tmp_path):
    base, outside = tmp_path / "base", tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    (base / "inner").mkdir()
    (base / "out").symlink_to(outside)
    (base / "loop").symlink_to(base / "inner")  # pointing inside is refused too
    (base / "inner" / "leaf").symlink_to(outside / "f")
    for parts in (("out", "x"), ("loop", "x"), ("inner", "leaf")):
        with pytest.raises(InputError, match="symbolic link"):
            paths.confined(base, *parts)
    # a base reached through a link is fine: it is resolved first
    (tmp_path / "base-link").symlink_to(base)
    assert paths.confined(tmp_path / "base-link", "inner", "x") == (base / "inner" / "x").resolve()


def test_app_dir_creates_a_private_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KELLY_APP_DIR", str(tmp_path / "env"))
    target = tmp_path / "deep" / "er" / "app"
    assert paths.app_dir(target) == target
    assert _mode(target) == 0o700
    assert _mode(tmp_path / "deep") == 0o700  # the parents Kelly made too
    assert paths.app_dir() == tmp_path / "env" and _mode(tmp_path / "env") == 0o700
    monkeypatch.delenv("KELLY_APP_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.app_dir() == tmp_path / "xdg" / "kelly" / "app"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.app_dir() == tmp_path / "home" / ".local" / "share" / "kelly" / "app"
    with pytest.raises(InputError):
        paths.app_dir("")


def test_app_dir_tightens_an_open_folder(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    os.chmod(folder, 0o755)
    paths.app_dir(folder)
    assert _mode(folder) == 0o700


def test_app_dir_refuses_a_link_a_file_and_another_users_folder(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OutputError, match="symbolic link"):
        paths.app_dir(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        paths.app_dir(tmp_path / "file")
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.raises(OutputError, match="another user"):
        paths.app_dir(real)


def test_library_folder_is_created_private(tmp_path):
    with Library(tmp_path / "new" / "lib") as lib:
        _add(lib)
    assert _mode(tmp_path / "new" / "lib") == 0o700
    assert _mode(tmp_path / "new" / "lib" / "compositions") == 0o700
    assert ALLOWED_FILES == ("song.mid", "song.json", "song.wav", "song-ddsp.wav", "song.musicxml")
