"""The WebREPL transport (upynode_cli.webrepl: mpremote's transport interface
over WebREPL), transport.safe_write and `repl --host`, against
upynode_vboard.webrepl_server on 127.0.0.1."""
import errno
import hashlib
import os

import pytest
from mpremote.transport import TransportExecError

from helpers import cli, one_line_error
from upynode_cli import CliError
from upynode_cli.transport import parse_host, safe_write
from upynode_cli.webrepl import WebReplTransport
from upynode_vboard.webrepl_server import WebReplServer

PASSWORD = "s3cret"


@pytest.fixture
def node(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    with WebReplServer(board, PASSWORD) as srv:
        srv.main_running = True
        yield srv


@pytest.fixture
def t(node):
    t = WebReplTransport("127.0.0.1", node.port, PASSWORD, timeout=5)
    yield t
    t.close()


def test_parse_host():
    assert parse_host("192.168.1.42") == ("192.168.1.42", 8266)
    assert parse_host("192.168.1.42:8267") == ("192.168.1.42", 8267)
    assert parse_host("[fe80::1]:1234") == ("fe80::1", 1234)
    assert parse_host("fe80::1") == ("fe80::1", 8266)


@pytest.mark.parametrize("host, error", [
    ("127.0.0.1:x", "bad port number 'x'"),
    ("127.0.0.1:0", "bad port number '0' in --host 127.0.0.1:0 (1 to 65535)"),
    ("127.0.0.1:65536", "bad port number"),
    ("127.0.0.1:", "bad --host 127.0.0.1:: expected IP[:PORT]"),
    (":8266", "bad --host"),
    ("ws://127.0.0.1", "bad --host"),
    ("[::1", "bad --host"),
    ("[::1]x", "bad --host"),
])
def test_bad_host(host, error):
    with pytest.raises(CliError) as e:
        parse_host(host)
    assert str(e.value).startswith(error)


def test_files_over_binary_frames(node, t):
    data = os.urandom(50_000)
    assert t.version() == (1, 24, 1)
    t.fs_writefile("blob.bin", data)
    assert (node.board / "blob.bin").read_bytes() == data
    assert t.fs_readfile("blob.bin") == data
    with pytest.raises(OSError) as e:
        t.fs_readfile("nope.txt")
    assert e.value.errno == errno.ENOENT
    assert node.main_running  # file transfers leave the node's loop alone


def test_raw_repl(node, t):
    assert t.exec("print(6 * 7)") == b"42\r\n"
    assert not node.main_running  # the first exec stopped it (Ctrl-C)
    assert t.eval("1 + 2") == 3
    (node.board / "a.txt").write_bytes(b"hello")
    assert t.fs_stat("a.txt").st_size == 5
    assert t.fs_hashfile("a.txt", "sha256") == hashlib.sha256(b"hello").digest()
    with pytest.raises(TransportExecError, match="ENOENT|No such file"):
        t.exec("import os\nos.rename('nope', 'b.txt')")
    assert t.exec("x = 'caf\u00e9' * 100\nprint(len(x))") == b"400\r\n"  # split UTF-8 safely
    t.exit_raw_repl()
    assert t.exec("print(x[:4])") == "caf\u00e9\r\n".encode()  # enters the raw REPL again


def test_safe_write(node, t):
    (node.board / "c.txt").write_bytes(b"old")
    safe_write(t, "c.txt", b"new contents")
    assert (node.board / "c.txt").read_bytes() == b"new contents"
    assert node.puts == ["c.txt.tmp"] and not (node.board / "c.txt.tmp").exists()

    send = t.fs_writefile
    t.fs_writefile = lambda name, data, **kw: send(name, data[:-1] + b"X", **kw)  # corrupted on the way
    with pytest.raises(TransportExecError, match="c.txt arrived corrupted"):
        safe_write(t, "c.txt", b"newer contents")
    assert (node.board / "c.txt").read_bytes() == b"new contents"
    assert not (node.board / "c.txt.tmp").exists()


def test_repl_over_webrepl(node, terminal):
    t = terminal("repl", "--host", "127.0.0.1:%d" % node.port,
                 env={"UPYNODE_WEBREPL_PASSWORD": PASSWORD})
    assert t.read_until(b"Ctrl-] to leave"), t.out
    assert t.read_until(b">>> "), t.out
    t.type(b"print(6 * 7)\r")
    assert t.read_until(b"42\r\n"), t.out
    t.type(b"\x1d")  # Ctrl-]: leave
    assert t.exit_code() == 0


def test_repl_errors(node):
    one_line_error(cli("repl", "--host", "127.0.0.1:%d" % node.port, password=PASSWORD), "needs a terminal")
    one_line_error(cli("repl", "--port", "/dev/ttyUSB-upynode-none"), "no such port")
    r = cli("repl")
    assert r.returncode == 2 and "--port" in r.stderr
