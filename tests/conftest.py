"""Shared fixtures.

Two runtimes: the firmware modules under CPython against the fakes in
tools/fakehw (unit tests), and the real MicroPython VM on a virtual board
against a real broker on 127.0.0.1 (scenario tests, marked `vm`).
"""
import gc
import os
import shutil
import subprocess
import sys
import time
import traceback

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools", "fakehw"), os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)
os.environ.pop("UPYNODE_VBOARD", None)  # CPython fakes keep their world in memory

# CPython lacks MicroPython's ticks and print_exception; the firmware uses them.
if not hasattr(time, "ticks_ms"):
    time.ticks_ms = lambda: int(time.monotonic() * 1000)
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)
if not hasattr(gc, "mem_free"):  # CPython has no fixed heap: a plausible figure
    gc.mem_free = lambda: 30000
    gc.mem_alloc = lambda: 6000
if not hasattr(sys, "print_exception"):
    sys.print_exception = lambda e, f=None: traceback.print_exception(type(e), e, e.__traceback__, file=f)

import _world  # noqa: E402  (tools/fakehw)
import network  # noqa: E402
import brokers  # noqa: E402
import vboard  # noqa: E402
from mqttwatch import Watch  # noqa: E402

BOARD = os.path.join(ROOT, "build", "board")


@pytest.fixture
def world():
    """The CPython fakes' world, fresh for each test."""
    _world.WORLD.clear()
    _world.STATE.clear()
    network._IFACES.clear()
    yield _world.WORLD


@pytest.fixture(scope="session")
def board_build():
    """build/board, made by `make board`; rebuilt here if missing."""
    if not os.path.exists(os.path.join(BOARD, "lib", "upynode", "node.mpy")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build.py")], check=True)
    return BOARD


@pytest.fixture(scope="session")
def broker():
    with brokers.Broker() as b:
        yield b


@pytest.fixture
def watch(broker):
    w = Watch(broker.port)
    yield w
    w.close()


@pytest.fixture
def make_vboard(board_build, tmp_path):
    """make_vboard(config=None, **world) -> a stopped VBoard on a fresh copy
    of the built board; stopped again at the end of the test."""
    boards = []

    def make(config=None, heapsize=vboard.HEAPSIZE, **world):
        n = len(boards)
        board_dir = tmp_path / ("board%d" % n)
        shutil.copytree(board_build, board_dir)
        vb = vboard.VBoard(board_dir, tmp_path / ("state%d" % n), heapsize=heapsize)
        vb.world(**world)
        if config is not None:
            vb.write_config(config)
        boards.append(vb)
        return vb

    yield make
    for vb in boards:
        vb.stop()


def node_config(port, **over):
    """A config for the virtual board's home WiFi and the test broker."""
    cfg = {"wifi": {"ssid": "home", "password": "secret123", "timeout_s": 3, "retries": 2},
           "webrepl": {"password": "s3cret"},
           "interval_s": 1,
           "mqtt": {"host": "127.0.0.1", "port": port},
           "sensors": [{"type": "adc"}, {"type": "mcp9808"}]}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = dict(cfg[k], **v)
        else:
            cfg[k] = v
    return cfg


HOME_AP = {"home": {"password": "secret123"}}
