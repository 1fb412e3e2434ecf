"""ROMFS: lib/ as a read-only image in the chip's flash (`deploy` does it by default
on boards whose firmware has the partition; `--romfs` insists, `--files` declines).

MicroPython 1.25 and later, in the ESP8266_GENERIC variant FLASH_2M_ROMFS
(boards with 2 MB of flash or more: NodeMCU, D1 mini, Feather HUZZAH), keep
a 320 KB ROMFS partition in the memory-mapped flash. At start-up the port
mounts it at /rom and puts "/rom" and "/rom/lib" on sys.path ahead of
"/lib"; a .mpy imported from it runs in place: its bytecode and constant
strings are not copied into the heap.

The image is built here with mpremote's own writer (VfsRomWriter) from the
.mpy files that `upynode build` makes, laid out as lib/... so that
/rom/lib/upynode/... is what `import upynode` finds, and written with
mpremote's `romfs deploy` code (vfs.rom_ioctl on the board), not a
protocol of our own.
"""
import argparse
import contextlib
import os
import sys
import tempfile

from . import CliError, say

HEADER = b"\xd2\xcd\x31"
VARIANT = ("the ESP8266_GENERIC firmware variant FLASH_2M_ROMFS, MicroPython 1.25 or later, "
           "for boards with 2 MB of flash or more")
NO_ROMFS = ("this board's MicroPython has no ROMFS partition: deploying .mpy files instead, "
            "whose code takes heap the node may not have (README, Memory); for ROMFS, flash %s"
            % VARIANT)
# What the image keeps: the firmware and its dependencies, never boot.py,
# main.py, update.py or config.json (files the board runs or rewrites).
PREFIX = "lib/"
# A new image, sent by deploy as a file; the board's next boot writes it
# into the partition (update.py, update.NEW).
STAGED = "romfs.new"
# The image written from it is on trial until it delivers a reading
# (update.TRIAL: "<boots so far> <seconds a boot may go without one>")
TRIAL = "romfs.trial"
TRIAL_S = 600  # update.TRIAL_S
TRIAL_BOOTS = 3  # update.TRIAL_BOOTS
ROLLED_BACK = "romfs.rolledback"  # update.ROLLED_BACK: why the last update was taken back


def build_image(files):
    """The ROMFS image (bytes) of {device path: bytes}, for the paths under
    lib/ (kept as lib/... in the image)."""
    from mpremote.romfs import VfsRomWriter

    paths = sorted(p for p in files if p.startswith(PREFIX))
    if not paths:
        raise CliError("nothing under lib/ to put in a ROMFS image")
    w = VfsRomWriter()
    cwd = []
    for p in paths:
        parts = p.split("/")
        dirs, name = parts[:-1], parts[-1]
        while cwd and cwd != dirs[:len(cwd)]:
            w.closedir()
            cwd.pop()
        for d in dirs[len(cwd):]:
            w.opendir(d)
            cwd.append(d)
        w.mkfile(name, bytes(files[p]))
    while cwd:
        w.closedir()
        cwd.pop()
    return w.finalise()


def empty_image():
    """A valid image holding nothing: written over an old one to retire it."""
    from mpremote.romfs import VfsRomWriter

    return VfsRomWriter().finalise()


def image_length(head):
    """The length of the image that the bytes head begin (header, its
    varuint payload size, the payload), or 0 if they begin none."""
    if not head.startswith(HEADER):
        return 0
    size, i = 0, len(HEADER)
    while i < len(head):
        b = head[i]
        size = (size << 7) | (b & 0x7F)
        i += 1
        if not b & 0x80:
            return i + size
    return 0


def vuint(data, i):
    """MicroPython's variable-length unsigned int at data[i] (7 bits a byte,
    most significant first), as ROMFS images and .mpy files both write it:
    (value, index after it)."""
    v = 0
    while True:
        b = data[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i


def image_files(image):
    """The file paths in an image (a check of what build_image wrote)."""
    out = []

    def walk(i, end, prefix):
        while i < end:
            kind, i = vuint(image, i)
            n, i = vuint(image, i)
            if kind in (4, 5):  # directory, file: name then contents
                ln, j = vuint(image, i)
                name = bytes(image[j:j + ln]).decode()
                if kind == 4:
                    walk(j + ln, i + n, prefix + name + "/")
                else:
                    out.append(prefix + name)
            i += n

    start = len(HEADER)
    size, start = vuint(image, start)
    walk(start, start + size, "")
    return out


class _State:
    """What mpremote's romfs commands ask of their `state`: the transport,
    in the raw REPL."""

    def __init__(self, transport):
        self.transport = transport

    def ensure_raw_repl(self, soft_reset=None):
        if not getattr(self.transport, "in_raw_repl", True):
            self.transport.enter_raw_repl(soft_reset=False)

    def did_action(self):
        pass


@contextlib.contextmanager
def _quiet():
    """mpremote prints its progress on stdout, which stays ours: to stderr
    in a terminal, else nowhere."""
    if sys.stderr.isatty():
        with contextlib.redirect_stdout(sys.stderr):
            yield
    else:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            yield


def partition_size(t):
    """The size in bytes of the board's ROMFS partition 0, or None when its
    MicroPython has none (no vfs.rom_ioctl, or no partition)."""
    from mpremote.commands import CommandError, _do_romfs_query_partition

    t.exec("import vfs")
    if not t.eval("hasattr(vfs,'rom_ioctl')"):
        return None
    if t.eval("vfs.rom_ioctl(1)") <= 0:
        return None
    try:
        with _quiet():
            _, size, _ = _do_romfs_query_partition(t, 0)
    except CommandError:
        return None
    return size


ROM_PROBE = """\
import os
try:
    os.stat('/rom/lib/upynode')
    print(1)
except OSError:
    print(0)
"""


def on_board(t):
    """Whether the board has an image mounted at /rom with the firmware in it."""
    return t.exec(ROM_PROBE).strip() == b"1"


# sha256 of the partition's first n bytes, on the board: the chip's
# rom_ioctl(2) is a memoryview of the flash, sliced without a copy; 512 B
# at a time (the virtual board's stand-in reads its file for each slice).
PARTITION_HASH = """\
import vfs, hashlib, binascii
_s = vfs.rom_ioctl(2, 0)
_h = hashlib.sha256()
for _i in range(0, {n}, 512):
    _h.update(_s[_i:min(_i + 512, {n})])
print(binascii.hexlify(_h.digest()).decode())
del _s, _h
"""


def holds(t, image):
    """Whether the board's partition 0 holds image already, byte for byte
    (the bytes after it do not count: the image's header gives its size)."""
    import hashlib

    got = t.exec(PARTITION_HASH.format(n=len(image))).decode().strip()
    return got == hashlib.sha256(image).hexdigest()


def write_image(t, image):
    """Write image into partition 0 with mpremote's `romfs deploy` code
    (it unmounts /rom first; the board mounts the new image at its next
    reset). The caller has checked that it fits."""
    from mpremote.commands import CommandError, _do_romfs_deploy

    with tempfile.TemporaryDirectory(prefix="upynode-romfs-") as tmp:
        path = os.path.join(tmp, "board.romfs")
        with open(path, "wb") as f:
            f.write(image)
        args = argparse.Namespace(path=path, partition=0, mpy=False, output=None)
        try:
            with _quiet():
                _do_romfs_deploy(_State(t), args)
        except CommandError as e:
            raise CliError("writing the ROMFS image on %s: %s" % (t.device_name, e))
        except SystemExit:
            raise CliError("the board refused the ROMFS image (invalid, or bigger than its partition)")
