"""upynode_vboard.vserial: a virtual board that behaves at its serial port as a board does."""
import os
import select
import subprocess
import sys
import time

import pytest

from upynode_vboard.vserial import VirtualSerial

pytestmark = pytest.mark.vm

MAIN = """\
import time
print('main starts')
n = 0
while True:
    n += 1
    time.sleep(0.05)
"""


def mpremote(dev, *args):
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", dev, *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


class Port:
    """The client end, as a terminal program sees it."""

    def __init__(self, dev):
        self.fd = os.open(dev, os.O_RDWR | os.O_NOCTTY)
        self.out = b""

    def read_until(self, marker, timeout=10):
        end = time.monotonic() + timeout
        while marker not in self.out and time.monotonic() < end:
            if select.select([self.fd], [], [], 0.1)[0]:
                self.out += os.read(self.fd, 4096)
        assert marker in self.out, self.out
        before, _, self.out = self.out.partition(marker)
        return before

    def write(self, data):
        os.write(self.fd, data)

    def close(self):
        os.close(self.fd)


@pytest.fixture
def board(tmp_path):
    b = tmp_path / "device"
    b.mkdir()
    (b / "boot.py").write_text("print('boot runs')\nbooted = 'yes'\n")
    (b / "main.py").write_text(MAIN)
    with VirtualSerial(b, state_dir=tmp_path / "state") as v:
        yield v


def test_boots_and_ctrl_c_stops_main(board):
    p = Port(board.device)
    try:
        p.write(b"\x03")  # interrupt the loop, as at a board's serial console
        p.read_until(b"KeyboardInterrupt")
        p.read_until(b">>> ")
        # boot.py and main.py ran in the REPL's globals, as on a board
        p.write(b"print(n > 0, booted)\r")
        assert b"True yes" in p.read_until(b">>> ")
    finally:
        p.close()


def test_mpremote_soft_reset_reruns_boot_only_in_raw_repl(board):
    # mpremote soft-resets by default on entering the raw REPL: "soft reboot"
    # must come, boot.py runs again, main.py does not (as on the ESP8266).
    out = mpremote(board.device, "exec", "print('x' in dir(), 'n' in dir())")
    assert out.strip().endswith("False False")
    assert board.soft_resets == 1 and board.resets == 0


def test_machine_reset_boots_again(board):
    mpremote(board.device, "resume", "exec", "import machine\nmachine.reset()")
    deadline = time.monotonic() + 10
    while (board.resets < 1 or board.boots < 2) and time.monotonic() < deadline:
        time.sleep(0.05)  # the two counters move one after the other
    assert board.resets == 1 and board.boots == 2
    p = Port(board.device)
    try:
        p.write(b"\x03")
        p.read_until(b"KeyboardInterrupt")  # main.py was running again
    finally:
        p.close()


def test_binary_safe_file_roundtrip(board, tmp_path):
    data = bytes(range(256)) * 20
    (tmp_path / "blob").write_bytes(data)
    mpremote(board.device, "resume", "fs", "cp", str(tmp_path / "blob"), ":blob")
    assert (board.board / "blob").read_bytes() == data
    mpremote(board.device, "resume", "fs", "cp", ":blob", str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data


def test_mpremote_sees_the_board_not_the_host(board):
    # "/" is the board's folder (fakehw/_boardfs.py): mpremote lists the
    # board's files at its root and cannot read the host's
    out = mpremote(board.device, "resume", "fs", "ls", ":/")
    assert sorted(line.split()[-1] for line in out.splitlines()[1:]) == ["boot.py", "main.py"]
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.device, "resume", "cat", ":/etc/passwd"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "root:" not in r.stdout
    mpremote(board.device, "resume", "fs", "cp", str(board.board / "boot.py"), ":/copy.py")
    assert (board.board / "copy.py").read_text() == (board.board / "boot.py").read_text()
