"""What stands between the network and the web app's routes: Host, Origin and body size.

Why: ``kelly serve`` has no accounts, so anything that can make a request to it can read
the library (the words people wrote about how they felt) and change it. Binding to
loopback keeps other computers out, but not a web page in the user's own browser:

* **DNS rebinding**: a page at ``http://evil.example:8765`` whose name is made to resolve
  to ``127.0.0.1`` becomes same-origin with the app, so the browser lets it read every
  answer. Its requests still carry ``Host: evil.example:8765``, so only requests whose
  ``Host`` names the address the server was started on (loopback names by default) are
  served; anything else is answered 421 before any route runs.
* **Cross-site requests** (CSRF): a page elsewhere cannot read the app's answers (no CORS
  headers are ever sent), but a form or ``fetch(..., {mode: "no-cors"})`` can still
  *send* a simple POST (a multipart upload, a bodyless "cancel"). Browsers mark those
  with ``Origin`` (and ``Sec-Fetch-Site: cross-site``); a request whose ``Origin`` is not
  the app's own, or that the browser says came from another site, is answered 403. A
  navigation to the page itself (a link, a bookmark) is still allowed.
* **Body size**: ``Content-Length`` over the cap is answered 413 before reading; a body
  without one (``Transfer-Encoding: chunked``) is counted as it arrives and cut off at
  the same cap, so neither memory nor the multipart parser's spool file can grow past it.

It is plain ASGI (no ``BaseHTTPMiddleware``) so that it can wrap ``receive`` and see the
body as it streams.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any, Awaitable, Callable, Iterable

from kelly.logsafe import redacted_traceback

#: Host names every server accepts: this computer's loopback names.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Paths a cross-site navigation may open (the page and its files); everything under /api is not one of them.
NAVIGABLE = ("/", "/static/", "/docs", "/redoc", "/openapi.json")

log = logging.getLogger("kelly.app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 with or without brackets) is this computer only."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The host part of a ``Host`` header (``"[::1]:8765"`` → ``"::1"``), lowercased; None when malformed."""
    header = header.strip().lower()
    if not header or len(header) > 300 or any(c in header for c in "/\\@?#% \t\x00"):
        return None
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        name, rest = header[1:end], header[end + 1:]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return name
    name, sep, port = header.partition(":")
    if sep and not port.isdigit():
        return None
    return name.rstrip(".") or None


class RequestGuard:
    """ASGI middleware: refuse requests for another host, from another site, or too large.

    Parameters
    ----------
    app : ASGI application
    allowed_hosts : iterable of str, or None
        Host names (no port) a request's ``Host`` may carry; None accepts any (only when
        the user asked for it). Loopback names are always accepted.
    body_limit : callable
        ``body_limit(path) -> int``: the most bytes a request to ``path`` may carry.
    """

    def __init__(self, app, *, allowed_hosts: Iterable[str] | None, body_limit: Callable[[str], int]) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else \
            frozenset(h.strip().strip("[]").lower().rstrip(".") for h in allowed_hosts) | LOOPBACK_HOSTS
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        path = scope.get("path", "")
        refusal = self._refusal(headers, path, scope.get("scheme", "http"))
        if refusal is not None:
            await _answer(send, *refusal)
            return
        limit = self.body_limit(path)
        length = headers.get("content-length")
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
            await _answer(send, 413, f"the request is larger than {limit // 1024:,} KB")
            return
        await self._capped(scope, receive, send, limit)

    def _refusal(self, headers: dict[str, str], path: str, scheme: str) -> tuple[int, str] | None:
        host = host_name(headers.get("host", ""))
        if self.allowed is not None and (host is None or host not in self.allowed):
            return (421, "this Kelly answers only requests addressed to the address it was started on "
                         f"({', '.join(sorted(self.allowed))}); to reach it under another name, start it with "
                         "kelly serve --allow-host NAME")
        origin = headers.get("origin")
        if origin is not None:
            own = {f"{s}://{headers.get('host', '').lower()}" for s in ("http", "https")}
            if origin.lower() not in own:
                return 403, "cross-origin requests are refused: Kelly answers only its own page"
        site = headers.get("sec-fetch-site")
        navigable = path == "/" or any(path.startswith(p) for p in NAVIGABLE[1:])
        if site == "cross-site" and not (navigable and headers.get("sec-fetch-mode") == "navigate"):
            return 403, "cross-site requests are refused: Kelly answers only its own page"
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app, counting the body as it arrives; past ``limit`` bytes the request is answered 413.

        Once the body passes the cap, reading it raises inside the app (which may turn that
        into an error answer of its own); whatever the app then answers is replaced by one
        413, and a 413 is sent if the app answered nothing.
        """
        seen = 0
        over = False
        sent = False  # the response start went out (ours or the app's)

        async def counted_receive() -> dict:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _TooLarge(f"the request body passed {limit} bytes")
            return message

        async def watched_send(message: dict) -> None:
            nonlocal sent
            if over:
                if not sent:
                    sent = True
                    await _answer(send, 413, f"the request is larger than {limit // 1024:,} KB")
                return  # the app's own answer to a cut-off body is dropped
            if message.get("type") == "http.response.start":
                sent = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except Exception as exc:  # noqa: BLE001 - the last stop before the server's own logging
            if not over:
                # Starlette re-raises a route's unexpected error after answering it, and uvicorn then logs the
                # whole traceback, message and all; stop it here and log where it happened, not what it said.
                log.error("unexpected error in %s %s: %s", scope.get("method", "?"), scope.get("path", "")[:200],
                          redacted_traceback(exc))
                if not sent:
                    sent = True
                    await _answer(send, 500, f"Kelly hit an unexpected error ({type(exc).__name__}); the server "
                                             "log has the details")
                return
        if over and not sent:
            await _answer(send, 413, f"the request is larger than {limit // 1024:,} KB")


class _TooLarge(Exception):
    """The body passed its cap while it was being read."""


async def _answer(send: Send, status: int, message: str) -> None:
    """Send the app's JSON error ``{"error": {"status", "message"}}`` directly (no route ran)."""
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
