# Fake `os` for a virtual board that serves WebREPL: the unix port's own os
# (which has no dupterm), plus os.dupterm(stream, index=0) as far as the
# firmware uses it. On the ESP8266 slot 0 holds the WebREPL session's
# stream from the connection's accept until it closes (slot 1 is the UART):
# dupterm(None) returns what the slot held, dupterm(x) puts x back. Here it
# returns the server's connection, or None; detaching and attaching are
# not modelled (the firmware, like micropython-lib's webrepl.py, puts back
# at once what it took). On MICROPYPATH only when the world names a
# "webrepl_port" (runner.vm_argv): its module and copied names cost the
# VM's heap about 1 KB that other boards need not pay.
import sys

_path = sys.path
sys.path = ()  # MicroPython's way to extend a built-in: with no path, import finds only it
try:
    from os import *  # noqa: F401,F403
finally:
    sys.path = _path
    del _path


def dupterm(stream, index=0):
    if index:
        return None  # the UART: not modelled
    import _webrepl_vm
    s = _webrepl_vm.server
    return s.ws if s is not None else None
