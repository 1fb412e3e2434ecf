"""The virtual NodeMCU: the MicroPython unix port as the CPU, a folder laid
out like the device's filesystem, and the fake hardware of fakehw/.

A VBoard boots boot.py then main.py in the real MicroPython VM with a
limited heap, restarts it when the firmware calls machine.reset() or
deepsleep() (as the chip would), and lets the caller change the world
(temperature, access points, faults) while it runs.
"""
import ast
import json
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from upynode_cli import checked as checked_config
from upynode_cli import firmware_config
from upynode_cli.project import BUILD, micropython, mpy_cross

from . import FAKES


def fake_constant(module, name):
    """A constant of a fake, read from its source: the fakes run inside the
    VM and cannot import the host's modules, so the host reads theirs."""
    with open(os.path.join(FAKES, module + ".py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError("%s is not defined in fakehw/%s.py" % (name, module))


# The VM's exit status when the firmware asked for a reset (machine.reset,
# deepsleep): the runner boots it again.
RESET_EXIT = fake_constant("machine", "_RESET_EXIT")
# The VM's exit status when the fake machine.WDT fired (its thread sends the
# VM this signal): a reset too.
WDT_EXIT = -signal.SIGUSR2

# The heap of the virtual board, from `make bench` (upynode_vboard.bench,
# calibrate(); figures of the bench at 2cce98b), not a guess:
# - A chip with 32,768 B free after boot is, in this 64-bit VM, with lib/
#   in ROMFS as the VM tests run it: the interpreter and the fakes' names
#   interned first 15,520 B + the fakes the node imports 22,016 B (the chip
#   keeps machine, network, ... and their names in flash) - 2,624 B of
#   them that the chip does spend (its dht, ntptime and webrepl are frozen
#   Python: their code in flash, their objects in the heap) + 32,768 B x
#   1.80 (what the node keeps from ROMFS, 64-bit VM against 32 bits: the
#   WebAssembly port's .mpy figures less what ROMFS leaves in flash), less
#   NAMES_HEAP_KB (added to every heap below) = 87.8K: CHIP_HEAPSIZE, 87K
#   rounded down. (With .mpy files the ratio is 1.50, and 80K.)
# - The node (ADC + MCP9808 + DHT22, MQTT with discovery, heartbeat LED,
#   the offline queue) delivers 20 cycles from 70K with lib/ in ROMFS, the
#   full configuration (+ HTTP to the receiver) from 73K (the image not
#   counted; and at the 3 sizes above: near its limit the heap fails on
#   fragmentation, not monotonically in its size); with .mpy files the
#   node needs 86K and the full one 90K.
# - So the VM scenario tests (tests/conftest.py, make_vboard) run the
#   firmware from ROMFS at a chip's heap less the headroom they guard
#   (GUARD_HEAPSIZE): a change that would exhaust it fails them. HEAPSIZE,
#   what the .mpy firmware needs plus a little, is for boards with lib/ as
#   .mpy files (deploying to the virtual serial port or WebREPL, a bad
#   module injected, `make sim`).
CHIP_HEAPSIZE = "87K"
HEAPSIZE = "110K"
# The headroom the VM tests guard (issue 18): the scenario boards (tests/
# conftest.py, make_vboard) run at the heap of a chip with GUARD_KB less
# free than CHIP_HEAPSIZE's 32,768 B, so a change that eats into the
# headroom the node has today fails the suite, not a user's node. The
# bench gives node_romfs 9.9 KB and full_romfs 7.3 KB (c036c8b; 10.1 and
# 8.3 at 2cce98b, the layout moving them by a 1K step); the goals are 12
# and 8. GUARD_KB is 7, not 8: 8 gives 72K, below the full configuration's
# 73-74K, and the suite would fail on fragmentation noise.
# Raise it as the headroom grows.
GUARD_KB = 7
# A chip KB is RATIO_64_32 KB in this VM (what the node keeps from ROMFS,
# the bench's calibration: 1.80 at 2cce98b); the guard in whole KB, rounded
# up: 87K - 13K = 74K.
RATIO_64_32 = 1.80
GUARD_HEAPSIZE = "%dK" % (int(CHIP_HEAPSIZE[:-1]) - math.ceil(GUARD_KB * RATIO_64_32))
# The fake chip clock (fakehw/clock/time.py, when the world asks for it)
# keeps 1856 B more (machine, network, time, ntptime imported): added then.
CLOCK_HEAP_KB = 2
# The fakes' names interned before the firmware runs (names_module): every
# fake's, used or not, and the pool that holds them allocated at start.
# Measured (gc.mem_alloc() after gc.collect()): machine, network, dht, esp,
# webrepl, _world and ntptime imported alone keep 27,328 B; after _vnames,
# 31,136 B: 3.8 KB the chip (names in flash) does not spend. Added to every
# board's heap, as the names' share of the fakes.
NAMES_HEAP_KB = 4
# The board's filesystem as the chip's (fakehw/_boardfs.py: "/" is the
# board's folder, the flash has a size; board_os/os.py, the board's os):
# code and state the chip does not spend. Measured (gc.mem_alloc() after
# gc.collect() in a main.py that imports os): 18,304 B without, 23,200 B
# with: 4.8 KB, 5 KB rounded up, added to every board's heap.
FS_HEAP_KB = 5
# What serving WebREPL costs the VM's heap (fakehw/webrepl.py starts
# _webrepl_srv.py and the boot wraps in _webrepl_vm.py): code and buffers
# that the chip keeps in flash. A board that serves WebREPL runs with its
# heap raised by this much (WEBREPL_HEAPSIZE), so the firmware sees the
# headroom it has on the chip. Measured with gc.collect(); gc.mem_free() in
# a small main.py (boot.py: webrepl.start()): at -X heapsize=85K 79840 B
# free without WebREPL, 68576 serving (11.0 KB); a logged-in client keeps
# 480 B more (at 80K: 63424 -> 62944): 12 KB, rounded up.
WEBREPL_HEAP_KB = 12
WEBREPL_HEAPSIZE = "%dK" % (int(HEAPSIZE[:-1]) + WEBREPL_HEAP_KB)
CHIP_WEBREPL_HEAPSIZE = "%dK" % (int(CHIP_HEAPSIZE[:-1]) + WEBREPL_HEAP_KB)
GUARD_WEBREPL_HEAPSIZE = "%dK" % (int(GUARD_HEAPSIZE[:-1]) + WEBREPL_HEAP_KB)
LOOPBACK = ("127.0.0.1", "localhost", "::1")

# ROMFS: a board whose world has "romfs_kb" runs the ESP8266_GENERIC
# variant FLASH_2M_ROMFS (MicroPython >= 1.25), whose ROMFS partition is
# 320 KB (ports/esp8266/boards/esp8266_2MiB_ROMFS.ld); its flash is the file
# ROMFS_FILE in the state folder. At start-up the chip mounts the image at
# /rom (mp_vfs_mount_romfs_protected(), extmod/vfs.c, micropython PR 16857)
# and puts "/rom" and "/rom/lib" on sys.path after ".frozen" and before
# "/lib" (as on PYBD: ['', '.frozen', '/rom', '/rom/lib', '/flash',
# '/flash/lib'], micropython PR 16905; "/rom/lib is usually before the
# writable filesystem's lib", micropython-lib PR 981. PR 16857's review
# diff appends "/rom/lib" alone: not checked against the 1.25 ESP8266
# source, which the stored index lacks; deploy --romfs removes the /lib
# copies, so either order runs the image). The chip maps that flash into
# its address space and runs the .mpy files in it in place: the image
# costs its heap nothing. The unix port has no such
# flash (and no ffi to map a file), so the boot (rom_boot_code()) reads the
# image into the GC heap, first thing, in one block (a bytearray that the
# VfsRom object keeps), and the VM's heap is raised by what that costs
# (romfs_heap_kb()): the image's n bytes plus ROMFS_BOOT_BYTES, rounded up
# to 1 KB. Measured with gc.collect(); gc.mem_alloc() at -X heapsize=106K on
# the fakes' path, for the node's 47,130-byte image (2026-11-25): 896 B
# before, 48,576 after: n + 550 B (the bytearray's object and 32-byte GC
# block rounding, the VfsRom, its mount entry, sys.path's growth);
# ROMFS_BOOT_BYTES allows for the rounding of any n (+ 26 B).
# The mount code uses only names the unix port interns already ("/rom/lib"
# is built at run time): an interned name more (the chip has /rom and
# /rom/lib in its firmware) moves the point where the interned-name table
# doubles into one contiguous block, and 16 more names (the stand-in below,
# at first used on every board) made the node fail that doubling at boot in
# heaps where it boots with .mpy files: a fault of the VM, not of the chip.
# A board that can be deployed to (vserial, or one serving WebREPL), or
# one with an update staged (update.py writes it at boot), also gets the
# stand-in for the chip's C `vfs.rom_ioctl` (fakehw/_vrom.py), and its heap
# is raised by ROMFS_STAND_IN_BYTES more (measured as above, the node's
# 54,266-byte image at 601f6d0: 55,680 B mounted, 57,920 through the
# stand-in with its partition reads and power-cut knob: 2,240 more).
ROMFS_KB = 320
ROMFS_FILE = "romfs.bin"
ROMFS_BOOT_BYTES = 576
ROMFS_STAND_IN_BYTES = 2240


def compiled_fakes():
    """The fakes precompiled, so that compiling them does not eat the heap
    that the chip would have (its machine, network, ... live in flash).
    fakehw/clock/ (the chip's `time`) goes to its own folder: see
    clock_dir(); so does fakehw/board_os/ (os.dupterm, statvfs: see vm_argv)."""
    out = str(BUILD / "fakehw")
    exe = mpy_cross()
    for sub in ("", "clock", "board_os"):
        src_dir, out_dir = os.path.join(FAKES, sub), os.path.join(out, sub)
        os.makedirs(out_dir, exist_ok=True)
        for name in os.listdir(src_dir):
            if not name.endswith(".py"):
                continue
            src, dest = os.path.join(src_dir, name), os.path.join(out_dir, name[:-3] + ".mpy")
            if not os.path.exists(dest) or os.path.getmtime(dest) < os.path.getmtime(src):
                subprocess.run([exe, "-o", dest + ".tmp", src], check=True)
                os.replace(dest + ".tmp", dest)
        for name in os.listdir(out_dir):  # a fake that moved or went must not linger
            if (name.endswith(".mpy") and name != "_vnames.mpy"
                    and not os.path.exists(os.path.join(src_dir, name[:-4] + ".py"))):
                os.remove(os.path.join(out_dir, name))
    names_module(out, exe)
    return out


def mpy_names(path):
    """The interned names (qstrs) an .mpy file brings that are not in every
    MicroPython's own table (mpy v6: those flagged static are)."""
    from upynode_cli.romfs import vuint
    with open(path, "rb") as f:
        b = f.read()
    n, i = vuint(b, 4)
    _, i = vuint(b, i)
    out = []
    for _ in range(n):
        ln, i = vuint(b, i)
        if not ln & 1:
            out.append(b[i:i + (ln >> 1)].decode("utf-8", "replace"))
            i += (ln >> 1) + 1
    return out


def names_module(out, exe):
    """_vnames.mpy: every name the fakes intern, loaded by _vboot before the
    firmware runs. On the chip machine, network, ... are C (or frozen) in
    flash and their names are in the firmware's own table; the fakes intern
    theirs in the heap. Loaded as the firmware reached them, they made the
    table's doubling (one block of 640 entries, ~7 KB here) come wherever a
    fake was first imported, mid-boot, in a fragmented heap, and fail where
    the chip would not double at all (its ~400 names of firmware fit the
    pools a boot grows). Interned first, the firmware's own names are what
    grows the table, as on the chip, and where boot.py loads them."""
    names = set()
    for name in sorted(os.listdir(out)):
        if name.endswith(".mpy") and name != "_vnames.mpy":
            names.update(mpy_names(os.path.join(out, name)))
    idents = sorted(n for n in names if n.isidentifier())
    short = sorted(n for n in names if not n.isidentifier() and len(n) <= 10 and "/" not in n)
    text = "def _(_):\n" + "".join("    _.%s\n" % n for n in idents) + "\n\nS = (%s)\n" % "".join(
        "%r, " % n for n in short)
    # The source is kept as .txt (a _vnames.py on MICROPYPATH would be
    # compiled in the VM's heap instead of loading the .mpy); boards start
    # in parallel threads: each writes its own temporary files.
    seen, dest = os.path.join(out, "_vnames.txt"), os.path.join(out, "_vnames.mpy")
    try:
        with open(seen) as f:
            if f.read() == text and os.path.exists(dest):
                return
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "_vnames.py")
        with open(src, "w") as f:
            f.write(text)
        subprocess.run([exe, "-o", os.path.join(tmp, "_vnames.mpy"), src], check=True)
        os.replace(os.path.join(tmp, "_vnames.mpy"), dest)
        with open(os.path.join(tmp, "seen"), "w") as f:
            f.write(text)
        os.replace(os.path.join(tmp, "seen"), seen)


def clock_dir():
    """The folder of the fake `time` (fakehw/clock/time.py: the chip's 2000
    epoch, a clock that starts at 2000-01-01 at power-on and is set by
    ntptime, ticks from boot wrapping at 2**30). On MICROPYPATH it replaces
    the VM's built-in time; the board uses it when the world says
    "chip_clock": true. Not by default: any `time` module in Python shifts
    the VM's heap layout, and the firmware of 2026-11-25 then failed
    allocations in its first cycle at heap sizes up to ~100K that pass with
    the built-in time (a fragmentation effect of the VM, not a chip fact)."""
    return os.path.join(compiled_fakes(), "clock")


def vm_argv(board_dir, heapsize=HEAPSIZE, state_dir=None, boot=True, rom_stand_in=None):
    """(argv, env) to boot the VM on board_dir (boot.py, then main.py), or
    with boot=False to start its REPL; cwd must be board_dir. On a ROMFS
    board the heap is raised for the image, and for the stand-in for
    vfs.rom_ioctl if rom_stand_in (default: at the REPL (vserial), or when
    the board serves WebREPL: boards that can be deployed to)."""
    board_dir = os.path.abspath(board_dir)
    env = dict(os.environ)
    # As on the chip: '' (the board folder is "/" and the cwd), '.frozen'
    # (the VM's own frozen modules), then lib; the fakes stand in for the
    # chip's built-in modules.
    env["UPYNODE_VBOARD"] = os.path.abspath(state_dir or os.path.join(board_dir, ".vboard"))
    chip_clock = world_says(env["UPYNODE_VBOARD"], "chip_clock")
    fakes = [compiled_fakes()] + ([clock_dir()] if chip_clock else [])
    fakes.append(os.path.join(compiled_fakes(), "board_os"))  # the board's os: fakehw/board_os/os.py
    if chip_clock and heapsize.endswith("K"):
        heapsize = "%dK" % (int(heapsize[:-1]) + CLOCK_HEAP_KB)
    if heapsize.endswith("K"):
        heapsize = "%dK" % (int(heapsize[:-1]) + NAMES_HEAP_KB + FS_HEAP_KB)
    elif heapsize.isdigit():
        heapsize = str(int(heapsize) + (NAMES_HEAP_KB + FS_HEAP_KB) * 1024)
    if romfs_kb(env["UPYNODE_VBOARD"]):
        if rom_stand_in is None:
            rom_stand_in = not boot or serves_webrepl(env["UPYNODE_VBOARD"]) or staged(board_dir)
        kb = romfs_heap_kb(env["UPYNODE_VBOARD"], rom_stand_in)
        if heapsize.endswith("K"):
            heapsize = "%dK" % (int(heapsize[:-1]) + kb)
        elif heapsize.isdigit():  # bytes (the bench's searches)
            heapsize = str(int(heapsize) + kb * 1024)
    env["MICROPYPATH"] = os.pathsep.join(["", ".frozen"] + fakes + [os.path.join(board_dir, "lib")])
    argv = [micropython(), "-X", "heapsize=" + heapsize]
    return argv + (["-c", boot_line(env["UPYNODE_VBOARD"], stand_in=rom_stand_in)] if boot else []), env


def staged(board_dir):
    """Whether `upynode deploy` left a ROMFS image for the next boot to write,
    or one on trial that the boot may take back (update.py): that boot needs
    rom_ioctl, which the chip always has."""
    from upynode_cli.romfs import STAGED, TRIAL
    return any(os.path.exists(os.path.join(board_dir, f)) for f in (STAGED, TRIAL))


def romfs_kb(state_dir):
    """The ROMFS partition's size in KB if the world gives the board one
    (world key "romfs_kb"), else 0: a firmware without ROMFS."""
    try:
        with open(os.path.join(state_dir, "world.json")) as f:
            return int(json.load(f).get("romfs_kb") or 0)
    except (OSError, ValueError, TypeError):
        return 0


def romfs_image_len(state_dir):
    """The length of the ROMFS image at the start of the board's partition
    (0: none, or an erased or broken one)."""
    from upynode_cli.romfs import image_length

    try:
        with open(os.path.join(state_dir, ROMFS_FILE), "rb") as f:
            head = f.read(16)
            n = image_length(head)
            f.seek(0, os.SEEK_END)
            return n if 0 < n <= f.tell() else 0
    except OSError:
        return 0


def romfs_heap_kb(state_dir, stand_in=False):
    """What a ROMFS board's VM heap is raised by, in KB: see ROMFS_KB."""
    n = romfs_image_len(state_dir) + ROMFS_BOOT_BYTES + (ROMFS_STAND_IN_BYTES if stand_in else 0)
    return (n + 1023) // 1024


def write_romfs(state_dir, image):
    """Write image into the board's ROMFS partition, as `romfs deploy` would."""
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, ROMFS_FILE)
    with open(path + ".tmp", "wb") as f:
        f.write(image)
    os.replace(path + ".tmp", path)


def world_value(state_dir, key):
    """What the world in state_dir sets key to (None: nothing)."""
    try:
        with open(os.path.join(state_dir, "world.json")) as f:
            return json.load(f).get(key)
    except (OSError, ValueError):
        return None


def world_says(state_dir, key):
    """Whether the world in state_dir sets key to something true."""
    return bool(world_value(state_dir, key))


def serves_webrepl(state_dir):
    """Whether the world asks the board to serve WebREPL (a "webrepl_port")."""
    return world_says(state_dir, "webrepl_port")


def rom_boot_code(state_dir, stand_in=False):
    """What a ROMFS board runs first thing (see ROMFS_KB): mount the image
    at /rom, and with stand_in, stand in for `vfs` (rom_ioctl); "" for a
    board without ROMFS. No interned name that the chip does not have."""
    kb = romfs_kb(state_dir)
    if not kb:
        return ""
    part, n = os.path.join(os.path.abspath(state_dir), ROMFS_FILE), romfs_image_len(state_dir)
    if stand_in:
        cut = ", %d" % world_value(state_dir, "rom_cut_at") if world_value(state_dir, "rom_cut_at") else ""
        return "import _vrom; _vrom.boot(%r, %d, %d%s); " % (part, kb * 1024, n, cut)
    if not n:  # erased or broken: the chip starts without /rom
        return ""
    return ("import vfs, sys; (lambda data: vfs.mount(vfs.VfsRom(data), '/rom') if open(%r, 'rb').readinto(data) "
            "else 0)(bytearray(%d)); sys.path[-1:-1] = ['/rom', '/rom' + '/lib']; " % (part, n))


def boot_line(state_dir, files=("boot.py", "main.py"), at_repl=False, stand_in=None):
    """MicroPython code that boots the board: _vboot.run(), or, when the
    board serves WebREPL, _webrepl_vm.boot(), which also lets WebREPL stop
    main.py and wait at the REPL. Only then: it costs the VM's heap about
    2 KB that the chip does not pay (make bench). stand_in: whether a ROMFS
    board gets rom_ioctl (None: at the REPL, or serving WebREPL)."""
    if stand_in is None:
        stand_in = at_repl or serves_webrepl(state_dir)
    rom = rom_boot_code(state_dir, stand_in=stand_in)
    if serves_webrepl(state_dir):
        return rom + "import _webrepl_vm; _webrepl_vm.boot(%r, %r)" % (tuple(files), at_repl)
    return rom + "import _vboot; _vboot.run(%r)" % (tuple(files),)


def check_loopback(cfg):
    """Example addresses (a broker, Home Assistant, a Flask server) must
    never be dialled from a test or the sim: every address must be loopback."""
    from urllib.parse import urlsplit
    targets = [("mqtt.host", cfg.get("mqtt", {}).get("host", ""))]
    targets += [(k + ".url", urlsplit(cfg.get(k, {}).get("url", "")).hostname or "") for k in ("http", "homeassistant")]
    for key, host in targets:
        if host and host not in LOOPBACK:
            raise ValueError("virtual board: %s %r is not loopback; use 127.0.0.1" % (key, host))


class VBoard:
    def __init__(self, board_dir, state_dir, heapsize=HEAPSIZE, echo=False, rom=False):
        """rom=True: the board runs the FLASH_2M_ROMFS firmware and lib/ is
        moved into its ROMFS partition (the image `upynode deploy --romfs`
        writes), not left on its filesystem."""
        self.board = os.path.abspath(board_dir)
        self.state_dir = os.path.abspath(state_dir)
        if rom:
            self.install_rom()
        self.heapsize = heapsize
        self.echo = echo
        self.lines = []
        self.boots = 0
        # One entry per boot that ended in deep sleep: {"boot": n,
        # "awake_ms": wall time from starting the VM to its exit,
        # "sleep_ms": what the firmware asked for}. The awake time is what
        # the chip's battery pays for (plus its own boot, ~0.1-0.3 s).
        self.wakes = []
        self.proc = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread = None
        os.makedirs(self.state_dir, exist_ok=True)

    # -- the world and the board's files --------------------------------
    def install_rom(self):
        """lib/ into the ROMFS partition as deploy --romfs lays it out; the
        world gets a partition (romfs_kb) unless it has one."""
        import shutil

        from upynode_cli.cmd_deploy import local_files
        from upynode_cli.romfs import build_image

        lib = os.path.join(self.board, "lib")
        files = local_files(self.board)
        self.rom_package = checked_config.package_of(files)  # for config.ok (write_config)
        image = build_image({p: d for p, d in files.items() if p.startswith("lib/")})
        os.makedirs(self.state_dir, exist_ok=True)
        write_romfs(self.state_dir, image)
        shutil.rmtree(lib)
        if not romfs_kb(self.state_dir):
            self.world(romfs_kb=ROMFS_KB)
        self.rom_image = image

    def world(self, **changes):
        """Change the world; the fakes see it at their next access."""
        path = os.path.join(self.state_dir, "world.json")
        w = self.read_json("world.json") or {}
        w.update(changes)
        with open(path + ".tmp", "w") as f:
            json.dump(w, f)
        os.replace(path + ".tmp", path)

    def read_json(self, name):
        try:
            with open(os.path.join(self.state_dir, name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def state(self, name):
        return self.read_json(name + ".json")

    def write_config(self, cfg, checked=True):
        """config.json, and (checked) config.ok as `upynode deploy --config`
        and `upynode config` install it (upynode_cli.checked): the node
        boots without checking the file itself. checked=False, or a config
        the node would refuse: config.json alone, as a user copying the file
        by hand leaves it; the node checks it at boot (and restarts)."""
        check_loopback(cfg)
        text = json.dumps(cfg, indent=1)
        ok = ann = None
        if checked:
            conf = firmware_config()
            try:
                pkg = getattr(self, "rom_package", None) or os.path.join(self.board, "lib", "upynode")
                ok = checked_config.entry(text.encode(), pkg)
                try:
                    with open(os.path.join(self.board, "discovery.fp")) as f:
                        old = f.read()
                except OSError:
                    old = ""
                ann = checked_config.announcement(text.encode(), pkg, self.chip_hex(), old)
            except conf.ConfigError:
                pass
        self.write_file("config.json", text)
        if ok is None:
            try:
                os.remove(os.path.join(self.board, checked_config.CHECKED))
            except OSError:
                pass
        else:
            self.write_file(checked_config.CHECKED, ok)
        if ann is not None:
            with open(os.path.join(self.board, checked_config.ANNOUNCEMENT + ".tmp"), "wb") as f:
                f.write(ann)
            os.replace(os.path.join(self.board, checked_config.ANNOUNCEMENT + ".tmp"),
                       os.path.join(self.board, checked_config.ANNOUNCEMENT))

    def chip_hex(self):
        """machine.unique_id() of this board, in hex, as its fake computes
        it (fakehw/machine.py: the MAC's last three bytes reversed, and 0)."""
        mac = (self.read_json("world.json") or {}).get("mac") or fake_constant("_world", "DEFAULTS")["mac"]
        m = bytes.fromhex(mac.replace(":", ""))
        return bytes((m[5], m[4], m[3], 0)).hex()

    def write_file(self, name, text):
        path = os.path.join(self.board, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    # -- running ---------------------------------------------------------
    def start(self):
        """Power on: RTC memory, the clock and the reset cause do not
        survive this."""
        for name in ("rtc.json", "reset_cause.json", "sleep_ms.json", "clock.json"):
            try:
                os.remove(os.path.join(self.state_dir, name))
            except OSError:
                pass
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop:
            # per boot: a deploy may have changed the ROMFS image, and the heap with it
            argv, env = vm_argv(self.board, self.heapsize, self.state_dir)
            self.boots += 1
            try:  # what the last boot asked for; a reset that is not a sleep leaves none
                os.remove(os.path.join(self.state_dir, "sleep_ms.json"))
            except OSError:
                pass
            t0 = time.monotonic()
            self.proc = subprocess.Popen(argv, cwd=self.board, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if self._stop:  # powered off as this boot started (stop() saw the last one's VM)
                self.proc.kill()
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self.echo:
                    print("  node| " + line, flush=True)
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
            rc = self.proc.wait()
            awake_ms = (time.monotonic() - t0) * 1000
            if rc not in (RESET_EXIT, WDT_EXIT) or self._stop:
                self._note("[vboard: VM exited with status %d]" % rc)
                break
            sleep_ms = self.state("sleep_ms") if rc == RESET_EXIT else None
            if rc == WDT_EXIT:
                self._note("[vboard: watchdog reset]")
            elif self.state("reset_cause") == fake_constant("machine", "DEEPSLEEP_RESET"):
                self.wakes.append({"boot": self.boots, "awake_ms": awake_ms, "sleep_ms": sleep_ms})
                if sleep_ms is None:  # machine.deepsleep(): only the RST pin wakes it
                    self._note("[vboard: deep sleep until reset]")
                    break
                self._note("[vboard: deep sleep %d ms]" % sleep_ms)
                self._sleep(sleep_ms * self.sleep_scale())
            else:
                self._note("[vboard: reset]")

    def _note(self, line):
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def sleep_scale(self):
        """The world's "sleep_scale" (default 0.01): how much of a deep
        sleep the runner really waits, so 50 wakes of 60 s take 30 s."""
        return (self.read_json("world.json") or {}).get("sleep_scale", 0.01)

    def _sleep(self, ms):
        t_end = time.monotonic() + ms / 1000
        while not self._stop and time.monotonic() < t_end:
            time.sleep(min(0.05, max(0, t_end - time.monotonic())))

    def stop(self):
        """Power off."""
        self._stop = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self._thread:
            self._thread.join(10)

    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=30, start=0):
        """The first output line (from index start) matching pattern, or
        AssertionError with the output so far."""
        rx = re.compile(pattern)
        t_end = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = t_end - time.monotonic()
                if left <= 0 or (not self.running() and i >= len(self.lines)):
                    raise AssertionError("no line matching %r within %ss; node output:\n%s"
                                         % (pattern, timeout, "\n".join(self.lines[-60:])))
                self._cond.wait(min(left, 0.5))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
