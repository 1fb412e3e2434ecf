# upynode: every target bootstraps its own virtualenv on a fresh machine.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CYCLES  ?= 10
SERVER_PORT ?= 8080
TRANSPORT ?= both

.PHONY: venv deps board sim test bench server flash deploy config repl ports clean

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
	@# Chart.js for the receiver's page (npm registry); the sim runs without it
	-@$(BIN)/python -m tools.server.chartjs
	$(BIN)/python tools/sim.py --cycles $(CYCLES) --transport $(TRANSPORT)

test: board
	$(BIN)/python -m pytest -q tests

# The reference receiver (Flask on waitress) on 127.0.0.1:$(SERVER_PORT)
server: venv
	$(BIN)/python -m tools.server.chartjs
	$(BIN)/python -m tools.server --port $(SERVER_PORT)

# The daily loop on a real board (tools/upynode --help for every option)
UPY = $(BIN)/python tools/upynode
ports: venv
	$(UPY) ports
flash: venv
	@test -n "$(PORT)" -a -n "$(FIRMWARE)" || { echo "usage: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP8266_GENERIC-....bin"; exit 2; }
	$(UPY) flash --port $(PORT) --firmware $(FIRMWARE)
deploy: deps
	@test -n "$(PORT)$(HOST)" || { echo "usage: make deploy PORT=/dev/ttyUSB0 | HOST=192.168.1.42 [ARGS='--config --reset']"; exit 2; }
	$(UPY) deploy $(if $(HOST),--host $(HOST),--port $(PORT)) $(ARGS)
config: venv
	@test -n "$(HOST)" || { echo "usage: make config HOST=192.168.1.42 [ARGS='set interval_s=30 --reset']"; exit 2; }
	$(UPY) config $(or $(ARGS),get) --host $(HOST)
repl: venv
	@test -n "$(PORT)" || { echo "usage: make repl PORT=/dev/ttyUSB0"; exit 2; }
	$(UPY) repl --port $(PORT)

# Heap the firmware takes in the MicroPython VM, module by module
bench: board
	$(BIN)/python tools/bench.py

clean:
	rm -rf build
