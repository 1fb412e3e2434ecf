# upynode: every target bootstraps its own virtualenv on a fresh machine.
# The host tools are three packages in tools/ (pip install -e tools): the
# `upynode` command, the virtual board (upynode-sim, upynode-bench,
# upynode-vserial) and the reference receiver (upynode-receiver).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
CYCLES  ?= 10
SERVER_PORT ?= 8080
TRANSPORT ?= both
UPY     := $(BIN)/upynode

.PHONY: venv board ha-venv sim test test-fast faults bench server flash deploy config repl ports clean

venv: $(BIN)/.installed
$(BIN)/.installed: requirements.txt tools/pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e tools
	touch $@

# build/board: the device's filesystem, lib/ precompiled with mpy-cross as it
# is deployed, with umqtt.simple and urequests fetched and pinned by sha256
board: venv
	$(UPY) build

sim: board
	@# Chart.js for the receiver's page (npm registry); the sim runs without it
	-@$(BIN)/python -m upynode_receiver.chartjs
	$(BIN)/upynode-sim --cycles $(CYCLES) --transport $(TRANSPORT)

test: board
	$(BIN)/python -m pytest -q tests

# Home Assistant 2024.3.3 for tests/ha, in build/ha-venv (once; a stamp
# marks it done). tests/ha install it themselves when missing.
ha-venv: venv
	$(BIN)/python -m upynode_vboard.homeassistant install

# Everything that needs no MicroPython VM, broker or browser: seconds
test-fast: venv
	$(BIN)/python -m pytest -q -m "not vm and not broker and not browser" tests

# The fault-injection suite (issue 7): the node on the virtual board against
# brokers killed and frozen, WiFi loss, power cuts. Ends with its table
# (build/faults.json); fails if a scenario lost a reading it should not have.
faults: board
	$(BIN)/python -m pytest -q tests/faults; status=$$?; \
	$(BIN)/python -m upynode_vboard.faults build/faults.json || status=1; exit $$status

# The reference receiver (Flask on waitress) on 127.0.0.1:$(SERVER_PORT)
server: venv
	$(BIN)/python -m upynode_receiver.chartjs
	$(BIN)/upynode-receiver --port $(SERVER_PORT)

# The daily loop on a real board (upynode --help for every option).
# A board is reached by PORT=/dev/ttyUSB0 (USB) or HOST=192.168.1.42 (WebREPL).
BOARD_ARGS = $(if $(HOST),--host $(HOST),--port $(PORT))
ports: venv
	$(UPY) ports
flash: venv
	@test -n "$(PORT)" -a -n "$(FIRMWARE)" || { echo "usage: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP8266_GENERIC-....bin"; exit 2; }
	$(UPY) flash --port $(PORT) --firmware $(FIRMWARE)
deploy: venv
	@test -n "$(PORT)$(HOST)" || { echo "usage: make deploy PORT=/dev/ttyUSB0 | HOST=192.168.1.42 [ARGS='--config --reset']"; exit 2; }
	$(UPY) deploy $(BOARD_ARGS) $(ARGS)
config: venv
	@test -n "$(PORT)$(HOST)" || { echo "usage: make config PORT=/dev/ttyUSB0 | HOST=192.168.1.42 [ARGS='set interval_s=30 --reset']"; exit 2; }
	$(UPY) config $(or $(ARGS),get) $(BOARD_ARGS)
repl: venv
	@test -n "$(PORT)$(HOST)" || { echo "usage: make repl PORT=/dev/ttyUSB0 | HOST=192.168.1.42"; exit 2; }
	$(UPY) repl $(BOARD_ARGS)

# The committed firmware beside the 2016 tutorial's publisher, one table and
# build/bench.json (heap 32- and 64-bit, wire bytes, size, boot time); npm
# fetches MicroPython's WebAssembly port into build/heap32 the first time
bench: board
	$(BIN)/upynode-bench

clean:
	rm -rf build
