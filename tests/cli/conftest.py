"""Fixtures of the CLI tests."""
import os
import pty
import select
import time

import pytest

from helpers import upynode_exe


class Terminal:
    """`upynode ARGS` on a pty, as a person at a terminal runs it."""

    def __init__(self, *args, env=None):
        self.out = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(env or {})
            os.execv(upynode_exe(), [upynode_exe(), *map(str, args)])

    def read_until(self, marker, timeout=20):
        end = time.monotonic() + timeout
        while marker not in self.out and time.monotonic() < end:
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.out += os.read(self.fd, 4096)
                except OSError:
                    break
        return marker in self.out

    def type(self, keys):
        os.write(self.fd, keys)

    def exit_code(self):
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return os.waitstatus_to_exitcode(status)

    def close(self):
        if self.pid:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal():
    """terminal(*args, env=None) -> a Terminal, closed at the end of the test."""
    terms = []

    def start(*args, env=None):
        terms.append(Terminal(*args, env=env))
        return terms[-1]

    yield start
    for t in terms:
        t.close()


# -- a node that serves WebREPL from its VM ------------------------------------
WEBREPL_PASSWORD = "s3cret"
BOOT_PY = "import webrepl\nwebrepl.start(password=%r)\n"
# The node's loop: prints now and then, as the firmware logs (the prints
# reach a logged-in WebREPL client too, as dupterm mirrors them on the chip).
MAIN_PY = ("import time\nn = 0\nwhile True:\n    n += 1\n"
           "    if n % 4 == 1:\n        print('main: loop', n)\n    time.sleep_ms(50)\n")


class WebReplNode:
    """A virtual board (runner.VBoard: boot.py, main.py in the MicroPython
    VM) whose boot.py starts WebREPL as the firmware does, served by the VM
    on a free 127.0.0.1 port (fakehw/webrepl.py), with the heap it would
    have on the chip. machine.reset() over WebREPL reboots the VM."""

    def __init__(self, root, files=None, password=WEBREPL_PASSWORD):
        from pathlib import Path

        from upynode_vboard import runner
        from upynode_vboard.services import free_port

        self.dir = Path(root) / "board"
        self.dir.mkdir(parents=True)
        files = dict({"boot.py": BOOT_PY % password, "main.py": MAIN_PY}, **(files or {}))
        for name, text in files.items():
            p = self.dir / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(text if isinstance(text, bytes) else text.encode())
        self.password = password
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.vb = runner.VBoard(self.dir, Path(root) / "state", heapsize=runner.WEBREPL_HEAPSIZE)
        self.vb.world(webrepl_port=self.port)

    def start(self):
        self.vb.start()
        self.up()
        return self

    def up(self, boot=1, timeout=20):
        """Wait until boot number `boot` serves WebREPL and its main.py runs."""
        start = self._boot_line(boot, timeout)
        i = self.vb.lines.index(self.vb.wait_for("WebREPL server started", timeout, start), start)
        self.vb.wait_for("main: loop", timeout, i)

    def _boot_line(self, boot, timeout):
        """Index of the first output line of boot number `boot`."""
        if boot == 1:
            return 0
        end = time.monotonic() + timeout
        while True:
            resets = [i for i, ln in enumerate(self.vb.lines) if ln == "[vboard: reset]"]
            if len(resets) >= boot - 1:
                return resets[boot - 2] + 1
            assert time.monotonic() < end, "no reboot %d; node output:\n%s" % (boot, self.vb.output())
            time.sleep(0.05)

    @property
    def resets(self):
        return self.vb.output().count("[vboard: reset]")

    def main_running(self, timeout=3):
        """Whether main.py still loops: a new "main: loop" line comes."""
        n = len(self.vb.lines)
        try:
            self.vb.wait_for("main: loop", timeout, n)
            return True
        except AssertionError:
            return False

    def output(self):
        return self.vb.output()

    def stop(self):
        self.vb.stop()


@pytest.fixture
def webrepl_node(tmp_path):
    """webrepl_node(files=None) -> a started WebReplNode in tmp_path (files:
    extra or replaced board files, {path: text}); stopped at the end."""
    nodes = []

    def make(files=None, **kw):
        nodes.append(WebReplNode(tmp_path / ("node%d" % len(nodes)), files, **kw))
        return nodes[-1].start()

    yield make
    for n in nodes:
        n.stop()
