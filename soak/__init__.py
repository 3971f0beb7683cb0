"""Load and live-fault soaks of the running parts (issue 15): ``make soak`` runs them in full.

* :mod:`soak.pipeline`: the engine's async inference pipeline under a paced 10,000 mel
  frames a second for a minute, nothing lost, its memory sampled every second;
* :mod:`soak.services`: the engine's socket (32 clients × 10,000 requests against a real
  :class:`~kelly.realtime.engine.Engine`) and the web app (16 concurrent compositions and
  16 uploads against a real uvicorn server) at once, while the engine's audio path plays
  a real recording in real time and every block is timed against its deadline;
* :mod:`soak.faults`: socket clients that vanish mid-frame, and model files deleted or
  replaced under a running engine.

``python -m soak.run`` runs the full versions and writes ``soak/results.md``; the tests in
``tests/soak/`` run short versions of each in the default suite. Everything here measures
the process it runs in: RSS from ``/proc/self/status``, open descriptors from
``/proc/self/fd``, threads from :func:`threading.active_count`.
"""
