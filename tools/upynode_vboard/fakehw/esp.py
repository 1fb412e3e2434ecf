# Fake `esp`: the few calls a node might make.
SLEEP_NONE = 0
SLEEP_LIGHT = 1
SLEEP_MODEM = 2


def osdebug(uart_no, level=None):
    pass


def flash_size():
    return 4 * 1024 * 1024
