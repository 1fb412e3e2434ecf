"""`upynode deploy`: build, then copy only what changed onto the board.

The board hashes its own files (sha256 in 512-byte chunks, run through the
REPL) and only files whose hash differs are sent, each with
transport.safe_write (NAME.tmp, hashed again on the board, renamed over
NAME), so an interrupted deploy never leaves a half-written module behind.
config.json is never touched without --config.
"""
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from . import CliError, checked, firmware_config, fit, romfs, say
from .build import fetch_and_build
from .project import CONFIG as CONFIG_FILE
from .transport import HASH_FN, BoardError, add_board_arguments, connect, read_file, reset, safe_write

CONFIG = "config.json"

# Every file under lib/ (found by walking it on the board, not named: the
# names of a whole build cost a no-change redeploy over WebREPL 1.3 KB up,
# make bench row 7), then the files named.
HASH_ALL = HASH_FN + """\
def _w(d):
    try:
        for e in os.ilistdir(d):
            p = d + '/' + e[0]
            if e[1] == 0x4000:
                _w(p)
            else:
                print(_h(p), p)
    except OSError:
        pass
_w('lib')
for _p in {paths!r}:
    print(_h(_p), _p)
"""

MKDIRS = """\
import os
for _d in {dirs!r}:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""

REMOVE = """\
import os
for _p in {paths!r}:
    try:
        os.remove(_p)
    except OSError:
        pass
"""


RMDIRS = """\
import os
for _d in {dirs!r}:
    try:
        os.rmdir(_d)
    except OSError:
        pass
"""


def add_arguments(p):
    add_board_arguments(p, fleet=True)
    p.add_argument("--source", action="store_true",
                   help="deploy .py sources instead of precompiled .mpy")
    p.add_argument("--config", nargs="?", const=str(CONFIG_FILE), metavar="FILE",
                   help="also install a validated config.json (default: %s)" % CONFIG)
    p.add_argument("--reset", action="store_true", help="reset the board afterwards")
    p.add_argument("--build-dir", metavar="DIR",
                   help="deploy this already built board folder instead of building")
    p.add_argument("--trial-s", type=trial_seconds, default=romfs.TRIAL_S, metavar="S",
                   help="a new ROMFS image that delivers no reading within S seconds of a boot restarts, and "
                        "after %d such boots the previous image is written back (default %d; at least 3 of "
                        "the node's intervals in any case)" % (romfs.TRIAL_BOOTS, romfs.TRIAL_S))
    p.add_argument("--wait", action="store_true",
                   help="with a new ROMFS image: reset the board, then wait until it has delivered a reading "
                        "from the new image (exit 0) or taken it back (exit 1); over --host the node's loop "
                        "runs on while it is watched")
    p.add_argument("--wait-awake", nargs="?", type=int, const=600, metavar="S",
                   help="a deep-sleep node: ask it to stay awake S s (default 600) at its next wake (the "
                        "retained MQTT message <base_topic>/<node_id>/awake, through the broker in config.json "
                        "or --config FILE), wait for its WebREPL, update it, then clear the message")
    p.add_argument("--node-id", help="with --wait-awake, when the config does not name the node: its id "
                                     "(esp8266_<chip id>, as its MQTT topics show it)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--romfs", action="store_true",
                       help="lib/ into the board's ROMFS partition or fail: an image too big for it is "
                            "an error (the default puts lib/ there when the board has a partition it "
                            "fits: firmware variant ESP8266_GENERIC FLASH_2M_ROMFS, MicroPython >= 1.25; "
                            "other boards get .mpy files, with a note)")
    where.add_argument("--files", action="store_true",
                       help="lib/ as .mpy files on the board's filesystem, even on a board with a ROMFS "
                            "partition (its image is emptied)")


def trial_seconds(text):
    import argparse
    try:
        s = int(text)
    except ValueError:
        s = 0
    if not 10 <= s <= 86400:
        raise argparse.ArgumentTypeError("%r is not a number of seconds from 10 to 86400" % text)
    return s


def local_files(root):
    """{device path: bytes} of a built board folder, config.json left out."""
    files = {}
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in sorted(names):
            full = Path(dirpath) / n
            rel = full.relative_to(root).as_posix()
            if rel != CONFIG and not n.endswith(".tmp"):
                files[rel] = full.read_bytes()
    return files


def mpy_header(files):
    """(version, sub-version, native?) of the built .mpy files, or None."""
    for path, data in files.items():
        if path.endswith(".mpy") and data[:1] == b"M":
            return data[1], data[2] & 3, (data[2] >> 2) != 0
    return None


def check_mpy(board, files):
    need = mpy_header(files)
    if need is None:
        return
    out = board.exec("import sys\nprint(getattr(sys.implementation, '_mpy', 0))").decode().strip()
    mpy = int(out or 0)
    ver, sub = mpy & 0xFF, (mpy >> 8) & 3
    # MicroPython loads a .mpy whose version equals its own; the sub-version
    # must match too, but only for files holding native code.
    if ver != need[0] or (need[2] and sub != need[1]):
        have = "no .mpy support" if not mpy else ".mpy v%d.%d" % (ver, sub)
        if mpy and need[0] < ver:
            fix = "rebuild them with a current mpy-cross (upynode build)"
        else:
            fix = "flash a current firmware (upynode flash)"
        raise CliError("the board's MicroPython has %s and cannot load these .mpy v%d.%d files: "
                       "%s or deploy sources with --source" % (have, need[0], need[1], fix))


def counterpart(path):
    # A stale .py next to a new .mpy wins the import (MicroPython tries .py
    # first), and a stale .mpy is dead weight: remove the other kind in lib/.
    if path.startswith("lib/"):
        if path.endswith(".mpy"):
            return path[:-4] + ".py"
        if path.endswith(".py"):
            return path[:-3] + ".mpy"
    return None


def board_hashes(board, paths):
    """{path: sha256 hex, or None when the board has no such file} for
    every file under lib/ on the board and the paths given (those under
    lib/ that the board lacks are missing from it: None by .get())."""
    out = {}
    paths = [p for p in paths if not p.startswith("lib/")]
    for line in board.exec(HASH_ALL.format(paths=paths)).decode().splitlines():
        if " " in line:
            h, p = line.split(" ", 1)
            out[p] = None if h == "-" else h
    return out


def progress_printer(i, n, path):
    tty = sys.stderr.isatty()

    def show(done, total):
        if tty:
            say("\r  [%d/%d] %-40s %7d/%d B" % (i, n, path, done, total), end="")
    return show


def rom_plan(board, files, insist):
    """(image, partition size), or the reason (a str) why lib/ cannot go
    into ROMFS: the board's firmware has no ROMFS partition, or the image is
    too big for it; then the .mpy files go to its filesystem (fits() says
    whether the node can run so). An image too big with insist (--romfs):
    an error before anything on the board changed."""
    size = romfs.partition_size(board)
    if size is None:
        return romfs.NO_ROMFS
    image = romfs.build_image(files)
    if len(image) > size:
        if insist:
            raise CliError("the ROMFS image (%d B) is bigger than the board's ROMFS partition (%d B): "
                           "nothing was changed; deploy with --files" % (len(image), size))
        return ("the ROMFS image (%d B) is bigger than the board's ROMFS partition (%d B): "
                "deploying .mpy files instead" % (len(image), size))
    return image, size


def fits(board, cfg_data, reason):
    """Before .mpy files go where ROMFS could not (reason): the config being
    deployed, else the board's own, against the bench's figures (fit.py).
    One that would run out of memory on the chip is an error before anything
    on the board changed, naming the firmware to flash; --files deploys
    anyway. No config yet: the files go, with the reason as a note."""
    if cfg_data is None:
        try:
            cfg_data = read_file(board, CONFIG)
        except BoardError:
            cfg_data = None
    cfg = None
    if cfg_data is not None:
        try:
            cfg = firmware_config().parse(cfg_data)
        except ValueError:
            cfg = None  # the node says why in setup mode
    why = fit.refusal(cfg) if cfg is not None else None
    if why:
        raise CliError("%s: %s; nothing was changed: flash %s and deploy again, or deploy with --files "
                       "to install .mpy files anyway" % (reason.split(":")[0], why, romfs.VARIANT))
    say("upynode deploy: " + reason)


CHIP_ID = "import machine, binascii\nprint(binascii.hexlify(machine.unique_id()).decode())"


def announcement(board, cfg_data, files):
    """discovery.bin for the config being deployed, as the node's boot would
    save it on this chip (its id names the node unless the config does), so
    that the boot after the deploy needs no restart to build it; None when
    the config announces nothing."""
    chip = board.exec(CHIP_ID).decode().strip()
    try:
        old = read_file(board, "discovery.fp").decode()  # what the node announced last
    except BoardError:
        old = ""
    return checked.announcement(cfg_data, checked.package_of(files), chip, old)


def retire_rom(board):
    """A file deploy onto a board whose ROMFS holds the firmware: /rom/lib
    comes before /lib on sys.path, so the old image would still run.
    Write an empty image over it."""
    if romfs.partition_size(board) is None or not romfs.on_board(board):
        return False
    romfs.write_image(board, romfs.empty_image())
    return True


def fleet_hosts(args):
    """The nodes named by --host (repeated) and --hosts FILE, in order."""
    hosts = list(args.host or [])
    if args.hosts:
        try:
            with open(args.hosts) as f:
                text = f.read()
        except OSError as e:
            raise CliError("cannot read the hosts file %s: %s" % (args.hosts, e.strerror))
        listed = [ln.split("#")[0].strip() for ln in text.splitlines()]
        listed = [h for h in listed if h]
        if not listed:
            raise CliError("no node addresses in %s (one IP[:PORT] per line)" % args.hosts)
        hosts += listed
    if len(set(hosts)) < len(hosts):
        raise CliError("a node is named twice: %s" % ", ".join(sorted({h for h in hosts if hosts.count(h) > 1})))
    return hosts


def run(args):
    if args.port is None and not args.host and not getattr(args, "hosts", None):
        raise CliError("name the board: --port DEVICE (USB), or --host IP[:PORT] (WebREPL), or --hosts FILE")
    if args.port is not None and getattr(args, "hosts", None):
        raise CliError("--hosts names nodes reached over WiFi: leave out --port")
    hosts = fleet_hosts(args) if args.port is None else []
    if len(hosts) > 1:
        return deploy_fleet(args, hosts)
    args.host = hosts[0] if hosts else None
    if args.wait_awake is not None:
        if not args.host:
            raise CliError("--wait-awake updates a node over WiFi: give its --host")
        with held_awake(args):
            return deploy_one(args)
    return deploy_one(args)


@contextlib.contextmanager
def held_awake(args):
    """--wait-awake: the retained ~/awake message (seconds) that keeps a
    deep-sleep node up at its next wake (sleep.wake), published through the
    node's broker, then the node's WebREPL awaited; the message is cleared
    at the end, whatever happened."""
    import paho.mqtt.client as paho

    from .transport import open_webrepl
    path = args.config or str(CONFIG_FILE)
    try:
        cfg = firmware_config().parse(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CliError("--wait-awake reaches the node through its broker, named in %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise CliError("%s is not valid: %s" % (path, e))
    if not 10 <= args.wait_awake <= 3600:
        raise CliError("--wait-awake %d: from 10 to 3600 seconds" % args.wait_awake)
    if "mqtt" not in cfg["transports"]:
        raise CliError("--wait-awake needs the node's MQTT broker, and %s has no mqtt transport" % path)
    node = args.node_id or cfg["node_id"]
    if not node:
        raise CliError("%s does not name the node: give --node-id esp8266_<chip id> (its MQTT topics show it)" % path)
    m = cfg["mqtt"]
    topic = "%s/%s/awake" % (m["base_topic"], node)
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="upynode-deploy-%d" % os.getpid())
    if m["user"]:
        c.username_pw_set(m["user"], m["password"])
    try:
        c.connect(m["host"], m["port"], 30)
    except OSError as e:
        raise CliError("cannot reach the broker %s:%d: %s" % (m["host"], m["port"], e.strerror or e))
    c.loop_start()
    cleared = False
    try:
        c.publish(topic, str(args.wait_awake), qos=1, retain=True).wait_for_publish(10)
        limit = cfg["interval_s"] + 120
        say("upynode: asked %s to stay awake %d s at its next wake (%s, retained); waiting up to %d s for it"
            % (node, args.wait_awake, topic, limit))
        deadline = time.monotonic() + limit
        while True:
            try:
                open_webrepl(args.host, 3.0).close()
                break
            except CliError:
                if time.monotonic() > deadline:
                    raise CliError("%s did not wake within %d s (its interval is %d s)"
                                   % (args.host, limit, cfg["interval_s"]))
                time.sleep(1)
        # Cleared now: this wake has it already, and the boots the update
        # makes must not stay up for it again
        c.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        cleared = True
        say("upynode: %s is awake (%s cleared: later wakes sleep on)" % (node, topic))
        yield
    finally:
        if not cleared:
            c.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
            say("upynode: %s cleared" % topic)
        c.loop_stop()
        c.disconnect()


def deploy_fleet(args, hosts):
    """Several nodes, one at a time, the first the canary; each with --wait;
    the first failure (an error, or an update taken back) stops the rest."""
    import copy
    if args.config:
        raise CliError("--config with several nodes would give them one config.json: deploy each node's own")
    say("upynode: %d nodes, one at a time, %s first; each must keep its new firmware before the next"
        % (len(hosts), hosts[0]))
    for i, h in enumerate(hosts):
        one = copy.copy(args)
        one.host, one.hosts, one.wait = h, None, True
        say("upynode: [%d/%d] %s" % (i + 1, len(hosts), h))
        try:
            deploy_one(one)
        except CliError as e:
            say("upynode: %s: FAILED: %s" % (h, e))
            for rest in hosts[i + 1:]:
                say("upynode: %s: not tried" % rest)
            raise CliError("stopped at %s: %d of %d nodes updated" % (h, i, len(hosts)))
        say("upynode: %s: ok" % h)
    say("upynode: all %d nodes updated" % len(hosts))
    return 0


def deploy_one(args):
    if args.romfs and args.source:
        raise CliError("--romfs runs .mpy files from flash: leave out --source")
    # ROMFS unless told otherwise: with lib/ as files the node's code is
    # loaded into the heap, and the node does not fit a chip's (README, Memory)
    use_rom = not (args.files or args.source)
    cfg_data = None
    if args.config:
        try:
            cfg_data = Path(args.config).read_bytes()
        except OSError as e:
            raise CliError("cannot read %s: %s" % (args.config, e.strerror))
        try:
            firmware_config().parse(cfg_data.decode("utf-8"))
        except ValueError as e:
            raise CliError("%s is not valid: %s" % (args.config, e))

    with tempfile.TemporaryDirectory(prefix="upynode-build-") as tmp:
        root = Path(args.build_dir) if args.build_dir else Path(tmp) / "board"
        if args.build_dir:
            if not root.is_dir():
                raise CliError("no such build folder: %s" % root)
        else:
            built = fetch_and_build(root, args.source)
            say("upynode build: %d files%s" % (len(built), " (source)" if args.source else ""))
        files = local_files(root)
    if not files:
        raise CliError("the build produced no files")
    if cfg_data is not None:
        files[CONFIG] = cfg_data
        # checked here as the node would: it boots without checking it again
        files[checked.CHECKED] = checked.entry(cfg_data, checked.package_of(files)).encode()

    t0 = time.monotonic()
    with connect(args) as board:
        if any(p.endswith(".mpy") for p in files):
            check_mpy(board, files)
        if cfg_data is not None:
            ann = announcement(board, cfg_data, files)
            if ann is not None:
                files[checked.ANNOUNCEMENT] = ann
        rom = rom_plan(board, files, args.romfs) if use_rom else None
        if isinstance(rom, str):
            fits(board, cfg_data, rom)
            rom = None
        in_rom = []
        if rom:
            # lib/ goes into the image; on the filesystem, its modules (and
            # their other kind) are stale: a /lib copy would mix with them
            in_rom = sorted(p for p in files if p.startswith(romfs.PREFIX))
            files = {p: d for p, d in files.items() if p not in in_rom}
            stale = sorted(set(in_rom) | {c for c in map(counterpart, in_rom) if c})
        else:
            stale = sorted({c for c in map(counterpart, files) if c and c not in files})
        remote = board_hashes(board, sorted(files) + stale + ([romfs.STAGED, romfs.ROLLED_BACK] if rom else []))
        rom_staged = False
        if rom:
            image, size = rom
            say("  ROMFS image: %d modules, %d B of its %d B partition" % (len(in_rom), len(image), size))
            if romfs.holds(board, image):
                # nothing to send: no erase, no rewrite of flash that the
                # running firmware is mounted from
                say("  ROMFS image unchanged: not written")
            else:
                # Staged, not written in place: sent as a file in small
                # chunks and checked by its hash on the board (a cut link
                # leaves the running firmware as it was); the board's next
                # boot writes it into the partition (update.py) before it
                # imports anything from there.
                if remote.get(romfs.STAGED) == hashlib.sha256(image).hexdigest():
                    say("  ROMFS image staged already as %s" % romfs.STAGED)
                else:
                    safe_write(board, romfs.STAGED, image)
                    say("  ROMFS image staged as %s (%d B): the next boot writes it into flash"
                        % (romfs.STAGED, len(image)))
                # on trial once written: taken back if it delivers no reading
                # in update.TRIAL_BOOTS boots. After the image: a cut link
                # between the two leaves an image not on trial, never the
                # running one on trial.
                safe_write(board, romfs.TRIAL, b"0 %d" % args.trial_s)
                rom_staged = True
                if remote.get(romfs.ROLLED_BACK):  # the last update's verdict, not this one's
                    board.exec(REMOVE.format(paths=[romfs.ROLLED_BACK]))
                # the /lib copies the image replaces stay until it is in
                # place (they are all the firmware a failed write leaves):
                # the next deploy, which finds it there, removes them
                stale = []
        todo = [p for p in sorted(files)
                if remote.get(p) != hashlib.sha256(files[p]).hexdigest()]
        dirs = sorted({"/".join(p.split("/")[:k]) for p in todo
                       for k in range(1, p.count("/") + 1)}, key=lambda d: d.count("/"))
        if dirs:
            board.exec(MKDIRS.format(dirs=dirs))
        sent = 0
        for i, path in enumerate(todo, 1):
            data = files[path]
            safe_write(board, path, data, progress_printer(i, len(todo), path))
            sent += len(data)
            say("\r  [%d/%d] %-40s %7d B sent" % (i, len(todo), path, len(data)))
        gone = [p for p in stale if remote.get(p)]
        if gone:
            board.exec(REMOVE.format(paths=gone))
            for p in gone:
                say("  removed stale %s" % p)
        if rom:
            if not rom_staged:
                # the folders the image replaces, if nothing else is in them
                board.exec(RMDIRS.format(dirs=sorted({p.rsplit("/", 1)[0] for p in in_rom},
                                                     key=lambda d: -d.count("/"))))
            # (staged: the running image stays in the partition until the
            # next boot writes the new one; it is the rollback's copy)
        elif retire_rom(board):
            say("  ROMFS image emptied: its modules would have run instead of these files")
        say("upynode: %d sent (%d B), %d unchanged, %d removed, %.1f s%s"
            % (len(todo), sent, len(files) - len(todo), len(gone), time.monotonic() - t0,
               ", lib/ in ROMFS (%d B%s)" % (len(rom[0]), ", staged" if rom_staged else ", unchanged") if rom else ""))
        if args.wait and not rom_staged:
            say("upynode: --wait: no new ROMFS image, nothing to wait for")
        if args.reset or (args.wait and rom_staged):
            reset(board)
            say("upynode: board reset")
            if args.wait and rom_staged:
                return wait_for_verdict(args, board)
        else:
            say("upynode: the board is at its REPL (its main loop was stopped); reset it, or use --reset"
                + (" (its next boot writes the staged ROMFS image into flash)" if rom_staged else "")
                + ("; over WebREPL it goes back to its loop by itself 60 s after this session ends"
                   if args.host else ""))
    return 0


KEPT = "update: the new image delivered a reading: it stays"


def wait_for_verdict(args, board):
    """--wait, after the reset: 0 once the new image delivered a reading
    (update.py takes it off trial), 1 if it was taken back or the wait
    ran out. Over WebREPL the node's files are read with the file protocol,
    which does not stop its loop (a new session each time: the node drops
    one that asks for a missing file); over USB its console is read."""
    limit = (romfs.TRIAL_BOOTS + 1) * args.trial_s + 120
    say("upynode: waiting for the new image to deliver a reading (on trial for up to %d boots of %d s; "
        "giving up after %d s)" % (romfs.TRIAL_BOOTS, args.trial_s, limit))
    deadline = time.monotonic() + limit
    verdict = _watch_files(args, deadline) if args.host else _watch_console(board, deadline)
    if verdict is True:
        say("upynode: the new image delivered a reading: it stays")
        return 0
    if verdict:
        raise CliError("the update was taken back: %s" % verdict)
    raise CliError("no verdict within %d s: the node neither delivered from the new image nor took it back "
                   "(is its broker or receiver reachable?); romfs.trial on the node says where it is" % limit)


def _peek(args, path):
    """path's bytes on the node over WebREPL, None if it has none; raises
    CliError if the node cannot be reached (it is restarting)."""
    from .transport import open_webrepl
    from .webrepl import WebReplError

    t = open_webrepl(args.host, 5.0)
    try:
        return bytes(t.fs_readfile(path))
    except OSError:
        return None
    except WebReplError as e:
        raise CliError(str(e))
    finally:
        t.close()


def _watch_files(args, deadline):
    said = None
    while time.monotonic() < deadline:
        try:
            trial = _peek(args, romfs.TRIAL)
            if trial is None:
                if _peek(args, romfs.STAGED) is None:
                    why = _peek(args, romfs.ROLLED_BACK)
                    return why.decode("utf-8", "replace").strip() if why is not None else True
                now = "the image is staged, not yet written"
            else:
                n = (trial.split() or [b"0"])[0].decode()
                now = "on trial, boot %s of %d" % (n, romfs.TRIAL_BOOTS) if n != "0" else "not booted yet"
        except CliError:
            now = "restarting"
        if now != said:
            say("  %s" % now)
            said = now
        time.sleep(2)
    return None


def _watch_console(board, deadline):
    # the serial port stays open across machine.reset() (the USB chip is apart)
    import re
    buf = b""
    while time.monotonic() < deadline:
        n = board.serial.in_waiting
        buf += board.serial.read(n or 1)
        *lines, buf = buf.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if text.startswith("update:") or text.startswith("node "):
                say("  " + text)
            if text == KEPT:
                return True
            m = re.match(r"update: (the new image delivered no(thing| reading) in .*)", text)
            if m:
                return m.group(1)
    return None

