"""The firmware under CPython: the fakes keep their world in memory."""
import gc

import pytest

import _world  # the fakes (tools/upynode_vboard/fakehw), on pytest's pythonpath
import machine
import network


@pytest.fixture
def world():
    """The CPython fakes' world, fresh for each test."""
    _world.WORLD.clear()
    _world.STATE.clear()
    network._IFACES.clear()
    machine._PINS.clear()  # GPIO levels and modes: a fresh chip
    yield _world.WORLD



class Heap:
    free = 30000


@pytest.fixture(autouse=True)
def heap():
    """CPython has no fixed heap: the firmware's gc.mem_free() reports
    heap.free, which a test may set."""
    h = Heap()
    gc.mem_free = lambda: h.free
    yield h
    del gc.mem_free


class Clock:
    """MicroPython's ticks for the firmware and the fakes, on a virtual
    clock: sleeping advances it at once, so a test of a 2 s sensor gap or
    a 20 s WiFi deadline checks the timing without waiting for it."""

    def __init__(self):
        self.ms = 1000

    def ticks_ms(self):
        return self.ms

    def sleep_ms(self, ms):
        self.ms += max(0, int(ms))

    def sleep(self, s):
        self.sleep_ms(s * 1000)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    import time
    c = Clock()
    monkeypatch.setattr(time, "ticks_ms", c.ticks_ms, raising=False)
    monkeypatch.setattr(time, "sleep_ms", c.sleep_ms, raising=False)
    monkeypatch.setattr(time, "sleep", c.sleep)
    yield c


@pytest.fixture
def flash_writes(monkeypatch):
    """The paths opened for writing from now on (the node's flash wear)."""
    import builtins
    writes = []
    real_open = builtins.open

    def counting_open(path, mode="r", *a, **k):
        if "w" in mode or "a" in mode:
            writes.append(str(path))
        return real_open(path, mode, *a, **k)
    monkeypatch.setattr(builtins, "open", counting_open)
    return writes
