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


# PWM, UART and SPI exist on the chip
# (ports/esp8266/modmachine.c) but nothing here simulates them: they raise
# rather than do nothing.
class PWM:
    def __init__(self, dest, **kw):
        _unsupported("PWM")


class Timer:
    # ports/esp8266/machine_timer.c: virtual timers (id -1) whose callbacks
    # run as soft interrupts, between bytecodes and at the REPL too. Here a
    # thread calls them. Only what the node uses: PERIODIC with a period.
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        self._on = False
        if kw.get("callback") is not None:
            self.init(**kw)

    def init(self, *, mode=PERIODIC, period=None, callback=None, hard=None):
        if mode != self.PERIODIC or not period or callback is None:
            _unsupported("machine.Timer other than PERIODIC with a period and a callback")
        import _thread
        self._on = True
        _thread.start_new_thread(self._run, (period, callback))

    def _run(self, period, callback):
        try:
            while self._on:
                time.sleep_ms(period)
                if self._on:
                    callback(self)
        except SystemExit as e:  # machine.reset() in the callback: the chip resets
            self._on = False
            import _webrepl_vm
            _webrepl_vm.exit_code = e.code  # the main thread, waiting at the REPL, ends the VM with it
        except BaseException:  # the VM stopping under it (a reset, a soft reboot)
            self._on = False

    def deinit(self):
        self._on = False


class UART:
    def __init__(self, id, *a, **kw):
        _unsupported("UART")


class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, *a, **kw):
        _unsupported("SPI")
