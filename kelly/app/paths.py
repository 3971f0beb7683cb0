"""Where the web app keeps its data, and how paths built from user data stay inside it.

Why these rules: the app folder holds everything a user has composed, with the text they
wrote about how they felt, so only they may read it (``0700``). A folder that is a
symbolic link, a file, or someone else's is refused rather than trusted: writing there
could put a user's words where another user reads them.

Every path the app builds from something that came over the network (a composition id,
a file name) goes through :func:`confined`, which refuses anything that could leave the
folder it names: ``..``, absolute parts, backslashes, NUL bytes and symbolic links.

Default location, first that applies: the ``explicit`` argument, ``$KELLY_APP_DIR``,
``$XDG_DATA_HOME/kelly/app`` (an absolute ``XDG_DATA_HOME`` only, as the XDG spec asks),
``~/.local/share/kelly/app``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kelly.errors import InputError, OutputError
from kelly.fileio import show_path

#: The environment variable that names the app folder.
APP_DIR_ENV = "KELLY_APP_DIR"
#: Permission bits of the app folder and of every folder Kelly creates for it.
PRIVATE_MODE = 0o700


def default_app_dir() -> Path:
    """The app folder when none is given (not created here): see the module docstring."""
    env = os.environ.get(APP_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "kelly" / "app"
    return Path.home() / ".local" / "share" / "kelly" / "app"


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each ``0700``; existing folders are left as they are.

    ``Path.mkdir(parents=True)`` would give the parents the umask's mode (usually
    ``0755``), so the missing ones are made one by one, outermost first.

    Raises
    ------
    OutputError
        A folder cannot be created (no permission, a file in the way, a name too long).
    """
    missing: list[Path] = []
    current = Path(folder)
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_MODE)
        except FileExistsError:  # made meanwhile by another thread or process
            continue
        except OSError as exc:
            raise OutputError(f"cannot create the folder {show_path(path)}: {exc.strerror or exc}") from None
        try:
            os.chmod(path, PRIVATE_MODE)  # mkdir's mode passes through the umask
        except OSError:
            pass


def app_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The app's data folder, created ``0700`` if missing and made private if it is not.

    Parameters
    ----------
    explicit : path, optional
        A folder the user chose (``--app-dir``); otherwise :func:`default_app_dir`.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    InputError
        ``explicit`` is an empty name (which would mean the current folder).
    OutputError
        The folder cannot be created; it is a symbolic link, a file, or belongs to another
        user; or it cannot be made private.
    """
    if explicit is not None:
        if os.fspath(explicit) in ("", b""):
            raise InputError("the app folder name is empty; give a folder, or leave it out to use the default")
        folder = Path(os.fsdecode(explicit)).expanduser()
    else:
        folder = default_app_dir()
    folder = folder.absolute()
    shown = show_path(folder)
    make_private_dirs(folder)
    try:
        st = os.lstat(folder)
    except OSError as exc:
        raise OutputError(f"cannot use the app folder {shown}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"the app folder {shown} is a symbolic link; Kelly keeps its library only in a real "
                          f"folder: remove the link or choose another folder with {APP_DIR_ENV}")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"the app folder {shown} exists and is not a folder; move it aside or choose another "
                          f"folder with {APP_DIR_ENV}")
    if st.st_uid != os.getuid():
        raise OutputError(f"the app folder {shown} belongs to another user (uid {st.st_uid}); choose a folder of "
                          f"your own with {APP_DIR_ENV}")
    if stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
        try:
            os.chmod(folder, PRIVATE_MODE)
        except OSError as exc:
            raise OutputError(f"cannot make the app folder {shown} private (mode 0700): "
                              f"{exc.strerror or exc}") from None
    return folder


def _check_part(part: object) -> str:
    """``part`` if it is a relative, clean path piece; else InputError saying what is wrong with it."""
    if not isinstance(part, str):
        raise InputError(f"a path part must be text, not {type(part).__name__}")
    shown = repr(part[:80])
    if not part:
        raise InputError("a path part is empty")
    if "\x00" in part:
        raise InputError(f"the name {shown} contains a NUL byte")
    if "\\" in part:
        raise InputError(f"the name {shown} contains a backslash")
    if part.startswith("/") or os.path.isabs(part):
        raise InputError(f"the name {shown} is an absolute path; only names inside Kelly's folder are allowed")
    if ".." in part:
        raise InputError(f"the name {shown} contains '..'; only names inside Kelly's folder are allowed")
    return part


def confined(base: Path, *parts: str) -> Path:
    """``base`` joined with ``parts`` and resolved, guaranteed to lie inside ``base``.

    Use it for every path built from user data (an id from a URL, a file name): whatever
    the data says, the result names something inside ``base``, reached without following
    a symbolic link. ``base`` itself (and its parents) may be links; they are resolved
    first. Nothing is created.

    Parameters
    ----------
    base : Path
        The folder the result must stay in.
    *parts : str
        Path pieces; one may hold ``/`` between names (``"compositions/abc"``).

    Raises
    ------
    InputError
        A part is empty, not text, absolute, contains ``..`` (anywhere: stricter than
        needed, never wrong for the names Kelly makes), a NUL byte or a backslash; or
        the path passes through a symbolic link (the last part included) or, resolved,
        lies outside ``base``.
    """
    for part in parts:
        _check_part(part)
    root = Path(base).resolve()
    joined = root.joinpath(*parts)
    current = root
    for name in joined.relative_to(root).parts:
        current = current / name
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            break  # nothing below a missing name exists, so no link either
        except OSError as exc:
            raise InputError(f"cannot use {show_path(current)}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise InputError(f"{show_path(current)} is a symbolic link; Kelly follows no links inside its folder")
    resolved = joined.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise InputError(f"{show_path(resolved)} lies outside {show_path(root)}")
    return resolved
