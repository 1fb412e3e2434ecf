# Fake `os` for a virtual board that serves WebREPL or whose flash has a
# size: the unix port's own os, plus os.dupterm (fakehw/_dupterm.py; the
# unix port has none), and statvfs() reporting the board's flash when the
# world names "fs_kb" (fakehw/_fsfull.py), not the host's disk. On
# MICROPYPATH only for such boards (runner.vm_argv): its module and copied
# names cost the VM's heap about 1 KB that other boards need not pay.
import sys

_path = sys.path
sys.path = ()  # MicroPython's way to extend a built-in: with no path, import finds only it
try:
    from os import *  # noqa: F401,F403
    from os import statvfs as _host_statvfs
finally:
    sys.path = _path
    del _path


def statvfs(path="/"):
    import _fsfull
    return _fsfull.statvfs() if _fsfull.cap else _host_statvfs(path)


def dupterm(stream, index=0):
    from _dupterm import dupterm as d
    return d(stream, index)
