# The board's flash as a filesystem of a fixed size, when the world says
# "fs_kb" (the runner then also puts board_os/os.py, whose statvfs reports it,
# on the path): a write past it fails with OSError(28), ENOSPC, after
# writing what fit, as the chip's littlefs or FAT does. Without "fs_kb" the
# board's folder has the host disk's room. What counts is the bytes of the
# files under the board's folder (the cwd); the fakes' state files (absolute
# paths in the state folder) are not the board's and are not counted.
import builtins
import os

_open = builtins.open
BLOCK = 4096
cap = 0  # bytes; 0: not installed


def used(top="."):
    n = 0
    for e in os.ilistdir(top):
        p = top + "/" + e[0]
        n += used(p) if e[1] == 0x4000 else os.stat(p)[6]
    return n


class _Capped:
    # A file open for writing on the board: write() as far as there is room.
    def __init__(self, f):
        self.f = f

    def write(self, b):
        room = cap - used()
        if len(b) > room:
            if room > 0:
                self.f.write(b[:room])
            raise OSError(28)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _open_capped(path, mode="r", *a, **k):
    f = _open(path, mode, *a, **k)
    if isinstance(path, str) and not path.startswith("/") and ("w" in mode or "a" in mode or "+" in mode):
        return _Capped(f)
    return f


def install(kb):
    global cap
    cap = kb * 1024
    builtins.open = _open_capped


def statvfs():
    free = max(0, cap - used()) // BLOCK
    return (BLOCK, BLOCK, cap // BLOCK, free, free, 0, 0, 0, 0, 255)
