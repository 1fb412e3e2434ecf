# MicroPython's const() for the firmware under CPython (the unit tests). In
# the VM and on the chip the built-in micropython module is found first, and
# the compiler folds const() away: a `_NAME = const(n)` costs no heap.


def const(expr):
    return expr
