"""Where the socket lives and who may use it: 0600 socket, 0700 folder, stale sockets, refusals."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from kelly.errors import KellyError
from kelly.ipc import paths
from kelly.ipc.client import KellyClient
from kelly.ipc.server import EngineServer


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_default_path_uses_an_owned_xdg_runtime_dir(monkeypatch, short_tmp):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    assert paths.default_socket_path() == short_tmp / "kelly" / "engine.sock"
    fallback = paths.Path("/tmp") / f"kelly-{os.getuid()}" / "engine.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp / "missing"))
    assert paths.default_socket_path() == fallback
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert paths.default_socket_path() == fallback
    assert not (short_tmp / "kelly").exists()  # computing the path creates nothing


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
def test_an_xdg_runtime_dir_of_another_user_is_not_used(monkeypatch, short_tmp):
    other = short_tmp / "other"
    other.mkdir()
    os.chown(other, 12345, 12345)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(other))
    assert paths.default_socket_path().parent.name == f"kelly-{os.getuid()}"


def test_the_default_socket_is_0600_in_a_0700_folder(monkeypatch, short_tmp, engine):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    folder = short_tmp / "kelly"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    umask = os.umask(0)  # even a permissive umask must not widen the socket
    try:
        server = EngineServer(engine).start()
    finally:
        os.umask(umask)
    try:
        assert os.umask(umask) == umask  # the server put the umask back
        assert server.path == folder / "engine.sock"
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode)
        assert _mode(server.path) == 0o600
        assert _mode(folder) == 0o700  # tightened
        with KellyClient() as c:  # the client finds it at the same default
            assert c.state().running
    finally:
        server.stop()
    assert not (folder / "engine.sock").exists() and not (folder / "engine.sock.lock").exists()


def test_a_chosen_folder_is_created_private(short_tmp, engine):
    path = short_tmp / "a" / "b" / "e.sock"
    with EngineServer(engine, path):
        assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_a_chosen_folder_others_can_write_is_refused(short_tmp, engine):
    folder = short_tmp / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)
    with pytest.raises(KellyError, match="can be written by other users"):
        EngineServer(engine, folder / "e.sock").start()
    assert os.listdir(folder) == []


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
@pytest.mark.parametrize("dedicated", [True, False])
def test_a_folder_of_another_user_is_refused(monkeypatch, short_tmp, engine, dedicated):
    folder = short_tmp / "kelly"
    folder.mkdir(mode=0o700)
    os.chown(folder, 12345, 12345)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    with pytest.raises(KellyError, match=r"belongs to another user \(uid 12345\)"):
        EngineServer(engine, None if dedicated else folder / "engine.sock").start()
    assert os.listdir(folder) == []


def test_a_symlinked_runtime_folder_is_refused(monkeypatch, short_tmp, engine):
    target = short_tmp / "elsewhere"
    target.mkdir(mode=0o700)
    (short_tmp / "kelly").symlink_to(target)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    with pytest.raises(KellyError, match="is a symbolic link"):
        EngineServer(engine).start()


def test_a_path_that_is_not_a_socket_is_refused_and_left_alone(sock_path, engine):
    sock_path.write_text("my notes")
    with pytest.raises(KellyError, match="exists and is not a socket"):
        EngineServer(engine, sock_path).start()
    assert sock_path.read_text() == "my notes"


def test_a_stale_socket_is_replaced(sock_path, engine):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays, nobody listens: what a killed engine leaves
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    with EngineServer(engine, sock_path), KellyClient(sock_path) as c:
        assert c.state().running


def test_a_second_server_on_the_same_path_is_refused(server, sock_path, engine):
    with pytest.raises(KellyError, match=f"another kelly engine is listening at {sock_path}"):
        EngineServer(engine, sock_path).start()
    with KellyClient(sock_path) as c:  # the first one is untouched
        assert c.state().running


def test_a_live_listener_that_is_not_ours_is_not_removed(sock_path, engine):
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(sock_path))
    other.listen(1)
    try:
        with pytest.raises(KellyError, match="another kelly engine is listening at"):
            EngineServer(engine, sock_path).start()
        assert sock_path.exists()
    finally:
        other.close()


def test_a_path_too_long_for_a_socket_is_refused_before_bind(short_tmp, engine):
    long = short_tmp / ("d" * 60) / ("s" * 60 + ".sock")
    with pytest.raises(KellyError, match=r"bytes, over the 107-byte limit of Unix socket addresses"):
        EngineServer(engine, long).start()
    with pytest.raises(KellyError, match="over the 107-byte limit"):
        KellyClient(long)


def test_no_engine_is_one_clear_error(sock_path):
    with pytest.raises(KellyError, match=f"no kelly engine is listening at {sock_path}; start one with `kelly engine`"):
        KellyClient(sock_path)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()
    with pytest.raises(KellyError, match="no kelly engine is listening at"):
        KellyClient(sock_path)
