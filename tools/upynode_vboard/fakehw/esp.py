# Fake `esp`: the few calls a node might make.
import _world

SLEEP_NONE = 0
SLEEP_LIGHT = 1
SLEEP_MODEM = 2


def osdebug(uart_no, level=None):
    pass


def flash_size():
    return 4 * 1024 * 1024


def deepsleep(time_us=0, option=0):
    # ports/esp8266/modesp.c: the older spelling of machine.deepsleep(), in
    # microseconds; the chip wakes through a reset (GPIO16 wired to RST).
    import machine
    machine.deepsleep(max(1, time_us // 1000)) if time_us else machine.deepsleep()
