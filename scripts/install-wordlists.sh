#!/usr/bin/env bash
# The word lists the lexicon is built from and measured on: Debian's wamerican, wbritish
# and wordnet-base. Reading text never needs them; the coverage tests and `make lexicon` do.
set -u
if [ -e /usr/share/dict/american-english ] && [ -e /usr/share/wordnet/index.verb ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if (apt-get update -qq && apt-get install -y -qq wamerican wbritish wordnet-base) >/dev/null 2>&1; then
    echo "kelly: installed the word lists (wamerican, wbritish, wordnet-base)"
    exit 0
  fi
fi
echo "kelly: word lists missing; install Debian's wamerican, wbritish and wordnet-base (as root:" \
     "apt-get install wamerican wbritish wordnet-base). Until then the lexicon coverage tests are skipped."
exit 0
