# The ROMFS partition of the ESP8266_GENERIC variant FLASH_2M_ROMFS
# (MicroPython >= 1.25), on the virtual board: a file in the board's state
# folder (romfs.bin) stands for the 320 KB of flash.
#
# At start-up the chip mounts the partition's image at /rom and puts "/rom"
# and "/rom/lib" on sys.path after ".frozen" and before "/lib". A board
# that can be deployed to (vserial, WebREPL) does the same through boot()
# here, first thing in the VM (runner.rom_boot_code), so that the image
# sits in one block at the bottom of the heap: the unix port has no
# memory-mapped flash, so the image lives in the GC heap, and the runner
# raises the heap by its size and this module's (runner.ROMFS_KB). Imports
# from it run in place as on the chip (VfsRom hands the .mpy loader the
# image's memory). Other boards mount the image without this module: its
# names, interned, would move the interned-name table's growth.
#
# The chip's built-in `vfs` has rom_ioctl(); the unix port's has not, so
# this module stands in for `vfs` (sys.modules["vfs"], which an import
# finds before the built-in): everything of the built-in plus rom_ioctl()
# as ports/esp8266/vfs_rom_ioctl.c answers it, which is what
# `mpremote romfs deploy` and `upynode deploy --romfs` call:
#   1: number of partitions (1); 2: the partition (a memoryview of the
#   flash on the chip; here a bytearray whose len() is the partition's
#   size, holding its first bytes); 3, id, n: erase the sectors for n
#   bytes from the start, return 4 (the minimum write); 4, id, offset,
#   buf: write; anything else: -EINVAL (22).
# The new image is mounted at the next boot, as on the chip.
import sys

import vfs as _vfs
from vfs import *  # noqa: F401,F403  (mount, umount, VfsRom, VfsPosix, ...)

_PART = None  # the partition's file
_SIZE = 0     # the partition's size, bytes
_img = None   # the mounted image (kept referenced: VfsRom reads it in place)
_SECTOR = 4096
# A power cut in the middle of a flash write, for the tests: the world's
# "rom_cut_at" = n (boot()'s cut_at) makes the n-th write stop halfway, say
# "vrom: power cut" and hang, until the test powers the board off.
_cut_at = 0
_writes = 0


class _Seg(bytearray):
    # The partition as rom_ioctl(2) gives it: its len() is the partition's;
    # a slice reads the file, as the chip's memoryview reads the flash
    # (the bytearray itself holds only the first bytes).
    def __len__(self):
        return _SIZE

    def __getitem__(self, k):
        if not isinstance(k, slice):
            return self[k:k + 1][0]
        start, stop = k.start or 0, _SIZE if k.stop is None else min(k.stop, _SIZE)
        try:
            with open(_PART, "rb") as f:
                f.seek(start)
                b = f.read(max(0, stop - start))
        except OSError:
            b = b""
        return b + b"\xff" * (max(0, stop - start) - len(b))  # erased flash past the file's end


def boot(part, size, n, cut_at=0):
    """Mount the image of n bytes at the start of file part (n = 0: none
    valid) at /rom, and stand in for `vfs`."""
    global _PART, _SIZE, _img, _cut_at
    _cut_at = cut_at
    if n:
        _img = bytearray(n)  # first: one block at the bottom of the heap
    _PART, _SIZE = part, size
    sys.modules["vfs"] = sys.modules[__name__]
    if not n:
        return
    try:
        with open(part, "rb") as f:
            f.readinto(_img)
        _vfs.mount(_vfs.VfsRom(_img), "/rom")
    except OSError:  # a broken image: the chip starts without /rom too
        _img = None
        return
    # after the chip's built-in modules (the fakes) and ".frozen", before /lib
    i = len(sys.path) - 1 if sys.path[-1].endswith("/lib") else len(sys.path)
    sys.path[i:i] = ["/rom", "/rom/lib"]


def _open():
    try:
        return open(_PART, "r+b")
    except OSError:
        return open(_PART, "w+b")


def rom_ioctl(op, *args):
    if op == 1:
        return 1
    if op == 2:
        try:
            with open(_PART, "rb") as f:
                head = f.read(16)
        except OSError:
            head = b""
        return _Seg(head + b"\xff" * (16 - len(head)))
    if op == 3:
        n = (args[1] + _SECTOR - 1) // _SECTOR * _SECTOR
        if n > _SIZE:
            return -22
        blank = b"\xff" * _SECTOR
        with _open() as f:
            for _ in range(n // _SECTOR):
                f.write(blank)
        return 4
    if op == 4:
        global _writes
        offset, buf = args[1], args[2]
        if offset < 0 or offset + len(buf) > _SIZE:
            return -22
        _writes += 1
        cut = _writes == _cut_at
        with _open() as f:
            f.seek(offset)
            f.write(buf[:len(buf) // 2] if cut else buf)
        if cut:
            import time
            print("vrom: power cut")
            while True:
                time.sleep(1)
        return 0
    return -22
