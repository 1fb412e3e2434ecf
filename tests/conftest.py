"""Shared fixtures, and the markers each test gets from where it lives.

Two runtimes: the firmware modules under CPython against the fakes in
tools/upynode_vboard/fakehw (tests/unit), and the real MicroPython VM on a
virtual board against a real broker on 127.0.0.1 (tests/vm, and the CLI
tests that talk to a virtual board). `make test-fast` runs what needs
neither the VM, a broker nor a browser.
"""
import os
import re
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
from upynode import config  # noqa: E402  (the firmware's, from lib/)

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
    """build/board, made by `make board`; built here if missing.
    UPYNODE_TEST_BOARD=DIR: that folder instead, built from lib/ now (for
    people working side by side, each on their own build)."""
    own = os.environ.get("UPYNODE_TEST_BOARD")
    if own:
        fetch_and_build(own)
        return own
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
    """make_vboard(config=None, heapsize=None, rom=True, **world) -> a
    stopped VBoard on a fresh copy of the built board, stopped again at the
    end of the test. By default the firmware as the README deploys it: lib/
    in the ROMFS partition, at the heap of a chip less the headroom the
    node keeps (runner.GUARD_HEAPSIZE), so a change that would eat into
    that headroom fails the test.
    rom=False: lib/ as .mpy files on the filesystem, at runner.HEAPSIZE."""
    boards = []

    def make(config=None, heapsize=None, rom=True, **world):
        heapsize = heapsize or (runner.GUARD_HEAPSIZE if rom else runner.HEAPSIZE)
        n = len(boards)
        board_dir = tmp_path / ("board%d" % n)
        shutil.copytree(board_build, board_dir)
        vb = runner.VBoard(board_dir, tmp_path / ("state%d" % n), heapsize=heapsize, rom=rom)
        vb.world(**world)
        write = vb.write_config
        vb.configs = []

        def write_config(cfg):
            vb.configs.append(cfg)
            write(cfg)
        vb.write_config = write_config
        if config is not None:
            vb.write_config(config)
        boards.append(vb)
        return vb

    yield make
    for vb in boards:
        vb.stop()
    # At a chip's heap (less the guarded headroom), running out of memory is
    # a failure of the test that saw it, even where the node recovered
    # (issues 8 and 18: a change that would exhaust it fails them).
    for vb in boards:
        if vb.heapsize in (runner.CHIP_HEAPSIZE, runner.CHIP_WEBREPL_HEAPSIZE, runner.GUARD_HEAPSIZE,
                           runner.GUARD_WEBREPL_HEAPSIZE):
            bad = [ln for ln in vb.lines if OUT_OF_MEMORY.search(ln)]
            assert not bad, "the node ran out of memory at the chip's heap (%s): %s" % (vb.heapsize, bad[:3])
    # Every secret of every config the boards were given stays off their
    # consoles (issue 7: secrets redacted in every log line).
    for vb in boards:
        out = vb.output()
        for secret in config_secrets(vb.configs):
            assert secret not in out, "a secret from config.json is on the node's console: %r" % secret


OUT_OF_MEMORY = re.compile(r"out of memory|MemoryError|not enough memory")
SECRET_KEYS = config.SECRETS  # the keys the firmware masks (lib/upynode/config.py)


def config_secrets(configs):
    """Every secret the configs hold: the values of the keys the firmware
    masks (config.SECRETS), and the password of every URL among their
    strings (http://user:pw@host), whatever its key."""
    found = set()

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in SECRET_KEYS and isinstance(x, str) and len(x) >= 4:
                    found.add(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and "://" in v and "@" in v:
            user = v.split("://", 1)[1].rsplit("@", 1)[0]
            pw = user.split(":", 1)[1] if ":" in user else user
            if len(pw) >= 4:
                found.add(pw)
    for c in configs:
        walk(c)
    return found
