# Fake `os` for a virtual board that serves WebREPL: the unix port's own os
# (which has no dupterm), plus os.dupterm (fakehw/_dupterm.py). On
# MICROPYPATH only when the world names a
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
    from _dupterm import dupterm as d
    return d(stream, index)
