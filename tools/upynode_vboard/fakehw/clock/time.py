# Fake `time`: the ESP8266's clock over the VM's (utime, the unix port's).
# - Epoch 2000-01-01 (ports other than unix, windows, webassembly, alif,
#   mimxrt and rp2): time() is int seconds since then, gmtime(0)[0] == 2000.
# - The RTC (ports/esp8266/machine_rtc.c) reads 2000-01-01 00:00:00 at
#   power-on, runs on over a deep sleep, and falls back by the last boot's
#   uptime at any other reset (its tick counter restarts at 0 but the delta
#   in RTC memory stays). RTC().datetime(...) (ntptime.settime()) sets it.
#   Its state is "clock": {"base": host time at which it read 0, "boot":
#   host time this boot started}; the runner's power-on deletes it.
# - ticks_ms()/ticks_us() count from boot and wrap at 2**30, as on the chip
#   (the unix port's count from the host's boot and wrap at 2**62).
import utime
from utime import sleep, sleep_ms, sleep_us, ticks_cpu

import _world

_EPOCH_2000 = 946684800  # unix seconds at 2000-01-01
_MASK = (1 << 30) - 1
_HALF = 1 << 29
_T0_MS = utime.ticks_ms()
_T0_US = utime.ticks_us()


_BOOT = utime.time()
_base = None  # host time at which the RTC read 0; read at first use


def _clock():
    # This boot's clock from the last one's, once: at first use, so that
    # importing time (every module does) costs the heap nothing more.
    global _base
    if _base is None:
        c = _world.get_state("clock")
        if c is None:
            c = {"base": _BOOT}
        elif _world.get_state("reset_cause", 0) != 5:  # not a deep-sleep wake
            c["base"] += _BOOT - c["boot"]
        c["boot"] = _BOOT
        _world.put_state("clock", c)
        _base = c["base"]
    return _base


def settime(secs):
    # RTC().datetime(...): the clock reads secs (since 2000) from now on.
    # (Not the chip's: its time module has no settime; the name is one the
    # VM has already, so it costs no qstr.)
    global _base
    _clock()
    _base = utime.time() - secs
    _world.put_state("clock", {"base": _base, "boot": _BOOT})


def time():
    return int(utime.time() - _clock())


def time_ns():
    return int((utime.time() - _clock()) * 1000000) * 1000


def gmtime(secs=None):
    if secs is None:
        secs = time()
    return utime.gmtime(int(secs) + _EPOCH_2000)[:8]


localtime = gmtime  # no time zones on the chip


def mktime(t):
    # days from 2000-01-01 (shared/timeutils timeutils_seconds_since_2000)
    y, m = t[0], t[1]
    if m <= 2:
        y, m = y - 1, m + 12
    days = 365 * y + y // 4 - y // 100 + y // 400 + (153 * (m - 3) + 2) // 5 + t[2] - 730426
    return ((days * 24 + t[3]) * 60 + t[4]) * 60 + t[5]


def ticks_ms():
    return (utime.ticks_ms() - _T0_MS) & _MASK


def ticks_us():
    return (utime.ticks_us() - _T0_US) & _MASK


def ticks_add(ticks, delta):
    return (ticks + delta) & _MASK


def ticks_diff(ticks1, ticks2):
    return ((ticks1 - ticks2 + _HALF) & _MASK) - _HALF
