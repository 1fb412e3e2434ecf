# Stand-in for `time` in the benchmarks (upynode_vboard.bench, heap32):
# sleeps return at once and move the clock on by as long, so the waits the
# firmware makes (the DHT's power-up, the interval between readings) cost
# the benchmark no real time while the firmware sees them pass. Everything
# else is the built-in module's. Other threads (the fake watchdog's timer)
# sleep for real: they keep time for the firmware, which the clock serves.
from utime import *  # noqa: F401,F403
import utime as _t

try:
    import _thread
    _main = _thread.get_ident()
except ImportError:  # the WebAssembly port: one thread
    _thread = None

_skipped = 0  # ms of sleep skipped so far


def sleep_ms(ms):
    global _skipped
    if _thread and _thread.get_ident() != _main:
        _t.sleep_ms(ms)
    elif ms > 0:
        _skipped += ms


def sleep(s):
    sleep_ms(int(s * 1000))


def ticks_ms():
    return _t.ticks_add(_t.ticks_ms(), _skipped)


def ticks_us():
    return _t.ticks_add(_t.ticks_us(), _skipped * 1000)


def time():
    return _t.time() + _skipped // 1000
