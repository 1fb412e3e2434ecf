# Fake `os` for a virtual board whose flash has a size (world "fs_kb",
# fakehw/_fsfull.py): the unix port's own os, with statvfs() reporting that
# flash, not the host's disk; and os.dupterm when the board serves WebREPL
# (as webrepl_os/os.py, which this replaces then). On MICROPYPATH only when
# the world names "fs_kb" (runner.vm_argv).
import sys

_path = sys.path
sys.path = ()  # MicroPython's way to extend a built-in: with no path, import finds only it
try:
    from os import *  # noqa: F401,F403
finally:
    sys.path = _path
    del _path


def statvfs(path="/"):
    import _fsfull
    return _fsfull.statvfs()


def dupterm(stream, index=0):
    from _dupterm import dupterm as d
    return d(stream, index)
