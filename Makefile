# Kelly: `make demo` and `make test` work on a fresh machine (they run `setup` first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kelly-setup

.PHONY: setup demo test bench lexicon fuzz soak clean

setup: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. Torch (CPU build, pinned) is
# installed before anything that depends on it, so pip never pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[ml,test,audio,live,app]'
	@bash scripts/install-wordlists.sh
	@bash scripts/install-synth.sh
	@bash scripts/install-browser.sh
	touch $(STAMP)

demo: setup
	$(PY) -m kelly.demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.run

# Coverage-guided fuzzing of every reader (100,000 inputs per target); findings go to fuzz/_findings/.
fuzz: setup
	$(PY) -m fuzz.run --runs $${FUZZ_RUNS:-100000} --results fuzz/results.md
	$(PY) tests/kill_pair.py --trials 50 --bars 512 --seed 0 --verify

# Load and live-fault soaks (about 10 minutes): the async pipeline at 10,000 frames/s for 60 s, the socket
# (32 clients x 10,000 requests) and the web app (16 compositions + 16 uploads) with audio playing, model files
# changed under a running engine, 1,000 vanishing socket clients; writes soak/results.md. Short versions run in
# `make test` (tests/soak/). Then kill -9 during training, model exports and WAV writes (tests/kill_faults.py,
# about 10 minutes more; soak/kill-faults.md).
soak: setup
	$(PY) -m soak.run
	$(PY) tests/kill_faults.py --trials $${KILL_TRIALS:-10} --seed 1 --results soak/kill-faults.md

# Rebuild kelly/emotion/data/lexicon.bin.gz from its sources (byte-identical for the same inputs).
lexicon: setup
	$(PY) -m pip install --quiet -e '.[lexicon]'
	HF_HUB_OFFLINE=1 $(PY) -m kelly.emotion.lexicon_build

clean:
	rm -rf kelly-out benchmarks/_work .pytest_cache
