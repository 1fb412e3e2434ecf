"""Shared fixtures, and the markers each test gets from where it lives.

Two runtimes: the firmware modules under CPython against the fakes in
tools/upynode_vboard/fakehw (tests/unit), and the real MicroPython VM on a
virtual board against a real broker on 127.0.0.1 (tests/vm, and the CLI
tests that talk to a virtual board). `make test-fast` runs what needs
neither the VM, a broker nor a browser.
"""
import os
import shutil
import sys
import time
import traceback

import pytest

os.environ.pop("UPYNODE_VBOARD", None)  # CPython fakes keep their world in memory

# CPython lacks MicroPython's ticks and print_exception; the firmware uses them.
if not hasattr(time, "ticks_ms"):
    time.ticks_ms = lambda: int(time.monotonic() * 1000)
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b
    time.sleep_ms = lambda ms: time.sleep(ms / 1000)
if not hasattr(sys, "print_exception"):
    sys.print_exception = lambda e, f=None: traceback.print_exception(type(e), e, e.__traceback__, file=f)

from upynode_cli.build import fetch_and_build  # noqa: E402
from upynode_cli.project import BOARD  # noqa: E402
from upynode_vboard import brokers, runner  # noqa: E402
from upynode_vboard.mqttwatch import Watch  # noqa: E402

GROUPS = ("unit", "vm", "cli", "receiver", "faults", "ha")
# Fixtures that start the VM or a broker: a test using one gets the marker.
NEEDS = {"make_vboard": "vm", "board_build": "vm", "broker": "broker", "watch": "broker"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = os.path.basename(os.path.dirname(str(item.path)))
        if group in GROUPS:
            item.add_marker(group)
        if group in ("vm", "faults", "ha"):
            item.add_marker("vm")
        for fixture, marker in NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(scope="session")
def board_build():
    """build/board, made by `make board`; built here if missing."""
    if not (BOARD / "lib" / "upynode" / "node.mpy").exists():
        fetch_and_build(BOARD)
    return str(BOARD)


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

    def make(config=None, heapsize=runner.HEAPSIZE, **world):
        n = len(boards)
        board_dir = tmp_path / ("board%d" % n)
        shutil.copytree(board_build, board_dir)
        vb = runner.VBoard(board_dir, tmp_path / ("state%d" % n), heapsize=heapsize)
        vb.world(**world)
        if config is not None:
            vb.write_config(config)
        boards.append(vb)
        return vb

    yield make
    for vb in boards:
        vb.stop()
