"""``kelly serve``: the companion web app on this computer (``docs/app.md``).

::

    kelly serve [--host 127.0.0.1] [--port 8765] [--open] [--app-dir DIR]

Binds to loopback by default: only this computer can reach it. Another host is allowed
only when asked, with a warning (the app has no accounts: whoever reaches it can use it).
"""

from __future__ import annotations

import sys

from kelly.errors import InputError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(sub) -> None:
    p = sub.add_parser("serve", help="the companion web app in a browser: compose, listen, keep, train, play live",
                       description="Start Kelly's web app on this computer and print its address "
                                   "(http://127.0.0.1:8765 by default). Compose from a feeling or the V/A pad, "
                                   "see and hear the result, keep it in your library, analyse MIDI files, "
                                   "validate and switch models, train a network, steer a running kelly engine.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
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

    if args.host not in LOOPBACK:
        print(f"kelly: warning: listening on {args.host}: other computers on this network can use this Kelly and "
              "its library (there are no accounts); use the default 127.0.0.1 to keep it to this computer",
              file=sys.stderr)
    app = create_app(args.app_dir, models_dir=args.models_dir, engine_socket=args.engine_socket)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    print(f"Kelly is at {url} (library: {app.state.kelly.folder}); Ctrl+C stops it", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
