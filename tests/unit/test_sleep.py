"""RTC memory (upynode.rtcmem) and deep sleep (upynode.sleep) against the
CPython fakes: machine.deepsleep() raises SystemExit as the VM's fake does,
after recording the sleep and the reset cause a wake will see."""
import pytest

import _world
import machine
from upynode import rtcmem, sleep


def asked_sleep():
    return _world.STATE.get("sleep_ms")


def test_nothing_saved_after_a_power_on(world):
    assert rtcmem.load() is None


def test_what_is_saved_comes_back(world):
    m = rtcmem.empty()
    m.update(wakes=3, seq=17, disc=-5, led=1, bssid=bytes.fromhex("c0ffee000001"), ch=11,
             chain_ms=1234, ts=1795600000, sleep_ms=60000)
    rtcmem.save(m)
    got = rtcmem.load()
    assert got == dict(m, disc=2**32 - 5)  # an int fingerprint, kept as 32 bits
    assert len(machine.RTC().memory()) == rtcmem.SIZE == 37


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],                      # short
    lambda b: b[:10] + bytes([b[10] ^ 1]) + b[11:],  # a bit flipped
    lambda b: b"\x00" + b[1:],             # another magic
    lambda b: bytes(range(37)),            # someone else's data
    lambda b: b"",
])
def test_anything_but_a_whole_record_reads_as_nothing(world, damage):
    m = rtcmem.empty()
    m["seq"] = 5
    rtcmem.save(m)
    machine.RTC().memory(damage(machine.RTC().memory()))
    assert rtcmem.load() is None


def test_a_nap_sleeps_what_is_left_of_the_interval_and_keeps_the_state(world):
    m = rtcmem.empty()
    m["seq"] = 9
    lines = []
    with pytest.raises(SystemExit):
        sleep.nap(60, 2500, lines.append, m, ts=1795600000)
    assert asked_sleep() == 57500 and machine.reset_cause() == machine.DEEPSLEEP_RESET
    got = rtcmem.load()
    assert (got["seq"], got["wakes"], got["chain_ms"], got["sleep_ms"]) == (9, 1, 0, 57500)
    assert sleep.wall(got) == 1795600000 + 57
    assert lines == ["sleep: 57500 ms"]
    assert not sleep.chained()  # the wake of a whole nap is a real one


def test_a_long_interval_sleeps_in_links_and_their_wakes_sleep_on_at_once(world):
    lines = []
    with pytest.raises(SystemExit):
        sleep.nap(3 * 3600, 1000, lines.append)  # 3 h: more than one deepsleep() can take
    assert asked_sleep() == sleep.MAX_MS and lines == ["sleep: 10799000 ms in 3 links"]
    links = [asked_sleep()]
    while True:
        try:
            if not sleep.chained():
                break
        except SystemExit:
            links.append(asked_sleep())
    assert links == [3600000, 3600000, 3599000]
    assert sleep.MAX_MS * 1000 < 2**32  # what the port's uint32 microseconds can hold


def test_no_chain_after_a_reset_that_is_not_a_wake(world):
    with pytest.raises(SystemExit):
        sleep.nap(3 * 3600, 0, lambda m: None)
    _world.STATE["reset_cause"] = machine.SOFT_RESET  # e.g. the RST button during a link
    assert not sleep.chained()


def test_the_awake_cap_counts_from_the_wake(world, clock, monkeypatch):
    monkeypatch.setattr(sleep, "_T0", clock.ms)
    clock.sleep_ms(4500)
    assert sleep.awake_ms() == 4500 and sleep.awake_left_ms(20) == 15500
    clock.sleep_ms(16000)
    assert sleep.awake_left_ms(20) < 0


def test_wall_is_unknown_without_a_synced_clock(world):
    assert sleep.wall(None) is None and sleep.wall(rtcmem.empty()) is None
