# The virtual board's filesystem, as the chip's (issue 20):
# - "/" is the board's folder and nothing above it. A path that starts
#   with "/" or climbs with ".." is taken inside the board's folder
#   (host()): os.listdir("/"), open("/x") or `mpremote cat /etc/passwd`
#   see the board, never the host's disk. Passed through as they are: the
#   fakes' own files (the state folder), the board folder's own host path
#   (modules' __file__ and __path__), and /rom (the ROMFS mount, a VFS of
#   its own). The state folder, when it lies in the board's root
#   (".vboard"), is not the board's: listings leave it out.
# - The flash has a size: the world's "fs_kb", by default what
#   ESP8266_GENERIC's flashbdev gives a 4 MB board (763 blocks of 4 KB:
#   from 1 MB to the SDK's 20 KB at the end; ports/esp8266/modules/
#   flashbdev.py, v1.28). A write past it fails with OSError(28) after
#   writing what fit, as the chip's littlefs or FAT does; os.statvfs
#   (board_os/os.py) reports it.
# _vboot.run() installs it before boot.py: builtins.open is wrapped, and
# the runner puts board_os/os.py (the board's `os`) on the path.
import builtins
import sys

_path = sys.path
sys.path = ()  # the unix port's own os, not the board's (board_os/os.py)
try:
    import os
finally:
    sys.path = _path
    del _path

_open = builtins.open
BLOCK = 4096
cap = 0  # bytes; 0: not installed
ROOT = ""  # the board folder's host path
cwd = "/"  # the board's working directory (board_os: chdir, getcwd)
hidden = ""  # the state folder's name, when it lies in the board's root
_through = ()  # host paths that are not the board's
# Bytes in use when last counted, plus every byte written since: never
# below the truth, so a write that fits by it fits. Counting walks the
# whole board (its garbage in the VM's heap): only when this runs short.
_seen = 0
_RECOUNT = 65536


def host(p):
    # The host path of the board's path p (str or bytes).
    b = isinstance(p, bytes)
    s = p.decode() if b else p
    if not ROOT or not s.startswith("/") and ".." not in s:
        return p
    if ".." not in s:
        for t in _through:
            if s == t or s.startswith(t + "/"):
                return p
    parts = []
    for c in (s if s.startswith("/") else cwd + "/" + s).split("/"):
        if c == "..":
            if parts:
                parts.pop()
        elif c and c != ".":
            parts.append(c)
    s = "/".join([ROOT] + parts)
    return s.encode() if b else s


def is_root(p):
    # whether the board's path p (str) names its root (where `hidden` is)
    h = host(p) if isinstance(p, str) else ""
    return h == ROOT or cwd == "/" and h in ("", ".")


def used(top=None):
    n = 0
    for e in os.ilistdir(top or ROOT):
        if top is None and e[0] == hidden:
            continue
        p = (top or ROOT) + "/" + e[0]
        try:
            n += used(p) if e[1] == 0x4000 else os.stat(p)[6]
        except OSError:  # gone meanwhile, or a link to nothing
            pass
    return n


class _Capped:
    # A file open for writing on the board: write() as far as there is room.
    def __init__(self, f):
        self.f = f

    def write(self, b):
        global _seen
        n = len(b)
        if _seen + n > cap:
            _seen = used()
            if _seen + n > cap:
                room = cap - _seen
                if room > 0:
                    self.f.write(b[:room])
                    _seen += room
                raise OSError(28)
        _seen += n
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _board_open(path, mode="r", *a, **k):
    if not isinstance(path, (str, bytes)):
        return _open(path, mode, *a, **k)
    h = host(path)
    f = _open(h, mode, *a, **k)
    if not ("w" in mode or "a" in mode or "+" in mode) or h is path and path.startswith("/" if isinstance(path, str) else b"/"):
        return f  # reads, and the fakes' own files (passed through)
    return _Capped(f)


def install(kb, state_dir):
    global cap, ROOT, hidden, _through, _seen
    ROOT = os.getcwd()
    _through = tuple(t for t in (ROOT, state_dir, "/rom") if t)
    if state_dir and state_dir.startswith(ROOT + "/") and "/" not in state_dir[len(ROOT) + 1:]:
        hidden = state_dir[len(ROOT) + 1:]
    cap = kb * 1024
    _seen = used()
    builtins.open = _board_open


def statvfs():
    global _seen
    if cap - _seen < _RECOUNT:
        _seen = used()
    free = max(0, cap - _seen) // BLOCK
    return (BLOCK, BLOCK, cap // BLOCK, free, free, 0, 0, 0, 0, 255)
