#!/usr/bin/env bash
# Debian's Chromium, for the web app's end-to-end tests (tests/app/test_e2e.py drives it through Playwright's
# executablePath; no browser is ever downloaded). The app itself needs no browser here; without it those tests skip.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "${KELLY_CHROMIUM:-}" ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)) >/dev/null 2>&1; then
    echo "kelly: installed Debian's chromium (for the web app's browser tests)"
    exit 0
  fi
fi
echo "kelly: note: no Chromium found; install Debian's chromium (as root: apt-get install chromium) or set" \
     "KELLY_CHROMIUM to a Chromium binary to run the web app's browser tests (they are skipped until then)"
exit 0
