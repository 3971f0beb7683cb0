"""The real-time engine's socket: length-prefixed JSON frames over a Unix domain socket.

* :mod:`kelly.ipc.framing`: frames (4-byte little-endian length + UTF-8 JSON) and their checks;
* :mod:`kelly.ipc.server`: :class:`~kelly.ipc.server.EngineServer`, which answers requests by
  calling an :class:`~kelly.ipc.server.EngineControl` (the engine);
* :mod:`kelly.ipc.client`: :class:`~kelly.ipc.client.KellyClient`, used by ``kelly ctl``;
* :mod:`kelly.ipc.paths`: where the socket lives and how it is made private.

The messages are the typed models at the end of :mod:`kelly.contracts`; the wire format is
described for other languages in ``docs/ipc.md``.
"""
