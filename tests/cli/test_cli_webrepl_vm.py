"""WebREPL served from inside the virtual board's VM (fakehw/webrepl.py,
_webrepl_srv.py), checked on the wire with raw sockets: exactly what the
official client (micropython/webrepl webrepl_cli.py) sends, and the
protocol of extmod/modwebrepl.c and micropython-lib's webrepl.py."""
import socket
import struct
import time

import pytest

from upynode_vboard.runner import WEBREPL_HEAPSIZE, VBoard
from upynode_vboard.services import free_port

pytestmark = pytest.mark.vm
PASSWORD = "s3cret"
REQ = "<2sBBQLH64s"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A running main.py (counting) that started WebREPL, as the firmware does."""
    root = tmp_path_factory.mktemp("wr")
    (root / "board").mkdir()
    (root / "board" / "boot.py").write_text("import webrepl\nwebrepl.start(password=%r)\n" % PASSWORD)
    (root / "board" / "main.py").write_text("import time\nn = 0\nwhile True:\n    n += 1\n    time.sleep_ms(50)\n")
    v = VBoard(root / "board", root / "state", heapsize=WEBREPL_HEAPSIZE)
    port = free_port()
    v.world(webrepl_port=port)
    v.start()
    v.wait_for("WebREPL server started")
    v.port = port
    yield v
    v.stop()


class Client:
    """webrepl_cli.py's websocket: `Sec-WebSocket-Key: foo`, no version
    header, unmasked frames; reads frames as that client does."""

    def __init__(self, port, handshake=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.bin = b""
        if handshake:
            self.s.sendall(b"GET / HTTP/1.1\r\nHost: echo.websocket.org\r\nConnection: Upgrade\r\n"
                           b"Upgrade: websocket\r\nSec-WebSocket-Key: foo\r\n\r\n")
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                c = self.s.recv(1)
                assert c, head
                head += c
            assert head.startswith(b"HTTP/1.1 101 ")

    def frame(self, data, binary=False):
        data = data.encode() if isinstance(data, str) else data
        op = 0x82 if binary else 0x81
        n = len(data)
        if n < 126:
            hdr = struct.pack(">BB", op, n)
        else:
            hdr = struct.pack(">BBH", op, 126, n)
        self.s.sendall(hdr + data)

    def exact(self, n):
        out = b""
        while len(out) < n:
            c = self.s.recv(n - len(out))
            if not c:
                raise EOFError(out)
            out += c
        return out

    def recv(self):
        """(opcode, payload) of the next frame; EOFError when closed."""
        b0, b1 = self.exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack(">H", self.exact(2))
        return b0 & 0x0F, self.exact(n)

    def text_until(self, marker, timeout=10):
        out = b""
        end = time.monotonic() + timeout
        while marker not in out:
            assert time.monotonic() < end, out
            op, data = self.recv()
            if op == 1:
                out += data
        return out

    def binary(self, n):
        """n bytes of binary frames, read as a stream as webrepl_cli does."""
        while len(self.bin) < n:
            op, data = self.recv()
            if op == 2:
                self.bin += data
        out, self.bin = self.bin[:n], self.bin[n:]
        return out

    def login(self, pw=PASSWORD):
        assert self.text_until(b"Password: ") == b"Password: "
        self.frame(pw + "\r")
        return self

    def closed(self, timeout=3):
        """True when the server drops the connection within timeout (no data first)."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def request(self, op, name, size=0):
        raw = name.encode()
        rec = struct.pack(REQ, b"WA", op, 0, 0, size, len(raw), raw)
        self.frame(rec[:10], True)
        self.frame(rec[10:], True)

    def close(self):
        self.s.close()


@pytest.fixture
def client(board):
    c = Client(board.port)
    yield c
    c.close()
    time.sleep(0.1)  # the server sees the close before the next test connects


def test_official_client_put_get_and_version(board, client):
    client.login()
    assert client.text_until(b"WebREPL connected\r\n>>> ")
    data = bytes(range(256)) * 8
    client.request(1, "up.bin", len(data))
    assert client.binary(4) == b"WB\0\0"
    for i in range(0, len(data), 1024):
        client.frame(data[i:i + 1024], True)
    assert client.binary(4) == b"WB\0\0"
    assert (board.board and open(board.board + "/up.bin", "rb").read()) == data
    client.request(2, "up.bin")
    assert client.binary(4) == b"WB\0\0"
    got = b""
    while True:
        client.frame(b"\0", True)
        (n,) = struct.unpack("<H", client.binary(2))
        if not n:
            break
        assert n <= 256
        got += client.binary(n)
    assert got == data
    assert client.binary(4) == b"WB\0\0"
    client.frame(struct.pack(REQ, b"WA", 3, 0, 0, 0, 0, b""), True)
    assert len(client.binary(3)) == 3


def test_empty_put_answers_exactly_twice(board, client):
    client.login()
    client.request(1, "empty.txt", 0)
    assert client.binary(8) == b"WB\0\0WB\0\0"
    client.frame(struct.pack(REQ, b"WA", 3, 0, 0, 0, 0, b""), True)  # the session goes on
    assert len(client.binary(3)) == 3
    assert open(board.board + "/empty.txt", "rb").read() == b""


@pytest.mark.parametrize("op, name", [(2, "missing.txt"), (1, "no/such/dir.txt")])
def test_a_file_that_cannot_be_opened_drops_the_connection(board, client, op, name):
    client.login()
    client.text_until(b">>> ")
    client.request(op, name, 5)
    while True:  # nothing binary comes: no status reply
        try:
            opcode, data = client.recv()
        except (EOFError, ConnectionResetError):
            break
        assert opcode != 2, data


def test_wrong_password_drops_at_once(board, client):
    client.login("wrong")
    t0 = time.monotonic()
    assert client.text_until(b"Access denied")
    assert client.closed(timeout=2)
    assert time.monotonic() - t0 < 1


def test_a_second_client_is_refused(board, client):
    client.login()
    client.text_until(b">>> ")
    second = Client(board.port)
    try:
        assert second.closed(timeout=3)
    finally:
        second.close()
    client.frame(struct.pack(REQ, b"WA", 3, 0, 0, 0, 0, b""), True)  # the first goes on
    assert len(client.binary(3)) == 3


def test_not_a_websocket_gets_the_page_and_is_closed(board):
    c = Client(board.port, handshake=False)
    c.s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        b = c.s.recv(4096)
        if not b:
            break
        data += b
    c.close()
    assert data.startswith(b"HTTP/1.0 200 OK") and b"webrepl_content.js" in data


def test_repl_over_text_frames_stops_main(board, client):
    client.login()
    client.text_until(b">>> ")
    client.frame("\r\x03")
    client.text_until(b"KeyboardInterrupt")
    client.text_until(b">>> ")
    client.frame("print(6 * 7)\r")
    assert b"42\r\n" in client.text_until(b"42\r\n>>> ")
    client.frame("\x01")
    client.text_until(b"raw REPL; CTRL-B to exit\r\n>")
    client.frame("print(n > 0)\x04")
    assert client.text_until(b"\x04>") == b"OKTrue\r\n\x04\x04>"
    client.frame("1/0\x04")
    assert b"ZeroDivisionError" in client.text_until(b"\x04>")
