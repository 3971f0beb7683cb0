"""``kelly serve``: the companion web app on this computer (``docs/app.md``).

::

    kelly serve [--host 127.0.0.1] [--port 8765] [--open] [--app-dir DIR]

Binds to loopback by default: only this computer can reach it. Another host is allowed
only when asked, with a warning (the app has no accounts: whoever reaches it can use it).
Requests must name the address the server listens on in their ``Host`` header (loopback
names, the ``--host`` given, and each ``--allow-host``), which defeats DNS rebinding; on a
wildcard address (``0.0.0.0``, ``::``) this computer's names are accepted too.

No access log is written: a request line carries query strings (a library search is the
person's own words), and the app's own log names where an error happened, not what it said.
"""

from __future__ import annotations

import sys

from kelly.errors import InputError

LOOPBACK = ("127.0.0.1", "::1", "localhost")
WILDCARD = ("0.0.0.0", "::", "")


def listen_warning(host: str) -> str | None:
    """What ``kelly serve`` prints before listening on ``host``; None for loopback (the default)."""
    from kelly.app.guard import is_loopback

    if is_loopback(host):
        return None
    where = "every network this computer is on" if host in WILDCARD else host
    return (f"kelly: warning: listening on {where}: other computers can reach this Kelly and use it, and read and "
            "change its library (there are no accounts, and nothing is encrypted); use the default 127.0.0.1 to "
            "keep it to this computer")


def allowed_hosts(host: str, extra: list[str] | None = None) -> list[str]:
    """The ``Host`` names the app answers (loopback's are always added by the app): the listening address and
    ``extra``; for a wildcard address also this computer's name and its addresses."""
    import socket

    names = [h for h in [host, *(extra or [])] if h and h not in WILDCARD]
    if host in WILDCARD:
        for name in {socket.gethostname(), socket.getfqdn()}:
            names.append(name)
            try:
                names += [info[4][0] for info in socket.getaddrinfo(name, None)]
            except OSError:
                pass
    return sorted(set(names))


def _check_host_name(name: str) -> None:
    """Refuse an ``--allow-host`` value that is neither an IP address nor a plain host name (no port, path, …)."""
    import ipaddress

    from kelly.app.guard import host_name

    try:
        ipaddress.ip_address(name.strip("[]"))
        return
    except ValueError:
        pass
    if ":" in name or host_name(name) != name.lower().rstrip("."):
        raise InputError(f"--allow-host takes a host name or an IP address (no port), got {name[:80]!r}")


def register(sub) -> None:
    p = sub.add_parser("serve", help="the companion web app in a browser: compose, listen, keep, train, play live",
                       description="Start Kelly's web app on this computer and print its address "
                                   "(http://127.0.0.1:8765 by default). Compose from a feeling or the V/A pad, "
                                   "see and hear the result, keep it in your library, analyse MIDI files, "
                                   "validate and switch models, train a network, steer a running kelly engine.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests addressed to this host name (e.g. the name other computers use); "
                        "requests for any other name are refused, which stops DNS-rebinding pages")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--app-dir", metavar="DIR",
                   help="the library's folder (default $KELLY_APP_DIR, else ~/.local/share/kelly/app)")
    p.add_argument("--models-dir", metavar="DIR", help="look for network files here first")
    p.add_argument("--engine-socket", metavar="PATH",
                   help="the running kelly engine's socket for the Live tab (default: the engine's own default)")
    p.set_defaults(func=run)


def run(args) -> int:
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be 1-65535, got {args.port}")
    try:
        import uvicorn
    except ImportError as exc:
        raise InputError(f"the web app needs its server libraries (pip install 'kelly[app]'): {exc}") from None
    from kelly.app.server import create_app

    for name in args.allow_host:
        _check_host_name(name)
    warning = listen_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    app = create_app(args.app_dir, models_dir=args.models_dir, engine_socket=args.engine_socket,
                     allowed_hosts=allowed_hosts(args.host, args.allow_host))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    print(f"Kelly is at {url} (library: {app.state.kelly.folder}); Ctrl+C stops it", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    # access_log=False: request lines carry query strings (a library search is the person's own words)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, server_header=False)
    return 0
