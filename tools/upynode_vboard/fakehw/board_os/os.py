# The chip's `os` on the virtual board: the unix port's own os, with paths
# taken inside the board's folder ("/" is the board's root: _boardfs.py),
# statvfs() reporting the board's flash, not the host's disk, and
# os.dupterm (fakehw/_dupterm.py; the unix port has none). The runner puts
# it on MICROPYPATH for every board (runner.vm_argv); its cost in the VM's
# heap is added to the board's (runner.FS_HEAP_KB).
import sys

_path = sys.path
sys.path = ()  # MicroPython's way to extend a built-in: with no path, import finds only it
try:
    import os as _os
finally:
    sys.path = _path
    del _path


def __getattr__(name):  # the rest of the unix port's os, as it is (copied, its names cost 1 KB)
    return getattr(_os, name)


def _h(p):
    from _boardfs import host
    return host(p)



def ilistdir(path=""):
    from _boardfs import hidden, is_root
    skip = hidden if is_root(path) else None
    for e in _os.ilistdir(_h(path) if path else ""):
        if e[0] != skip:
            yield e


def listdir(path=""):
    return [e[0] for e in ilistdir(path)]


def stat(path):
    return _os.stat(_h(path))


def remove(path):
    _os.remove(_h(path))


def rename(old, new):
    _os.rename(_h(old), _h(new))


def mkdir(path):
    _os.mkdir(_h(path))


def rmdir(path):
    _os.rmdir(_h(path))


def chdir(path):
    import _boardfs
    h = _h(path if path[:1] == "/" or ".." in path else _boardfs.cwd.rstrip("/") + "/" + path)
    _os.chdir(h)
    r = _boardfs.ROOT
    _boardfs.cwd = (h[len(r):] or "/") if h == r or h.startswith(r + "/") else h


def getcwd():
    from _boardfs import cwd
    return cwd


def statvfs(path="/"):
    from _boardfs import statvfs
    return statvfs()


def dupterm(stream, index=0):
    from _dupterm import dupterm as d
    return d(stream, index)
