# The part of the fake `machine` that tutorials and users' own code touch
# and the node does not; machine.__getattr__ loads it at first use, so it
# costs the VM's heap only when used (fakehw/machine.py _LAZY).
import time

import _world


def lightsleep(time_ms=None):
    # ports/esp8266/modmachine.c busy-waits (ets_event_poll) until the time
    # is up; with no time it never returns, and nothing here would wake it.
    if time_ms is None:
        raise NotImplementedError("virtual board: lightsleep() without a time never wakes")
    time.sleep_ms(max(0, time_ms))


def freq(hz=None):
    if hz is None:
        return _world.get_state("cpu_mhz", 80) * 1000000
    mhz = hz // 1000000
    if mhz not in (80, 160):
        raise ValueError("frequency can only be either 80Mhz or 160MHz")
    _world.put_state("cpu_mhz", mhz)


def _unsupported(what):
    raise NotImplementedError("virtual board: " + what + " is not simulated")


# PWM, Timer callbacks, UART and SPI exist on the chip
# (ports/esp8266/modmachine.c) but nothing here simulates them: they raise
# rather than do nothing.
class PWM:
    def __init__(self, dest, **kw):
        _unsupported("PWM")


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        if kw.get("callback") is not None:
            self.init(**kw)

    def init(self, **kw):
        _unsupported("machine.Timer")

    def deinit(self):
        pass


class UART:
    def __init__(self, id, *a, **kw):
        _unsupported("UART")


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, *a, **kw):
        _unsupported("SPI")
