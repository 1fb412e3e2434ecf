"""The WebREPL transport (upynode_cli.webrepl: mpremote's transport interface
over WebREPL), transport.safe_write and `repl --host`, against WebREPL as a
node serves it: from inside the virtual board's MicroPython VM (the
webrepl_node fixture, conftest.py), with the node's main.py running."""
import errno
import hashlib
import os
import subprocess

import pytest
from mpremote.transport import TransportExecError

from helpers import cli, one_line_error
from upynode_cli import CliError
from upynode_cli.project import micropython
from upynode_cli.transport import parse_host, read_file, safe_write
from upynode_cli.webrepl import WebReplTransport

vm = pytest.mark.vm  # the tests that run a node (parse_host's do not)
PASSWORD = "s3cret"  # the webrepl_node fixture's


@pytest.fixture
def node(webrepl_node):
    return webrepl_node()


@pytest.fixture
def t(node):
    t = WebReplTransport("127.0.0.1", node.port, PASSWORD, timeout=5)
    yield t
    t.close()


def vm_version():
    """The VM's MicroPython version, which its WebREPL reports."""
    out = subprocess.run([micropython(), "-c", "import sys; print(*sys.implementation.version[:3])"],
                         capture_output=True, text=True, check=True).stdout
    return tuple(map(int, out.split()))


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


@vm
def test_files_over_binary_frames(node, t):
    data = os.urandom(50_000)
    assert t.version() == vm_version()
    t.fs_writefile("blob.bin", data)
    assert (node.dir / "blob.bin").read_bytes() == data
    assert t.fs_readfile("blob.bin") == data
    t.fs_writefile("empty.txt", b"")  # a node answers an empty put twice at once
    assert t.fs_readfile("empty.txt") == b"" and (node.dir / "empty.txt").read_bytes() == b""
    assert node.main_running()  # file transfers leave the node's loop alone


@vm
def test_a_missing_file_drops_the_connection(node, t):
    # A node cannot open it: no answer, the connection is dropped.
    with pytest.raises(OSError) as e:
        t.fs_readfile("nope.txt")
    assert e.value.errno == errno.ENOENT
    assert "dropped the connection" in e.value.strerror and "no such file" in e.value.strerror
    assert "Exception in read() method" in node.output()
    assert node.main_running()  # the node itself goes on
    t2 = WebReplTransport("127.0.0.1", node.port, PASSWORD, timeout=5)  # and takes a new client
    try:
        with pytest.raises(CliError, match="cannot read nope.txt: 127.0.0.1:%d dropped the connection "
                                           "when asked to read nope.txt" % node.port):
            read_file(t2, "nope.txt")
    finally:
        t2.close()


@vm
def test_a_put_into_a_missing_folder_drops_the_connection(node, t):
    with pytest.raises(OSError) as e:
        t.fs_writefile("no/such/dir.txt", b"data")
    assert e.value.errno == errno.ENOENT and "no such folder" in e.value.strerror


@vm
def test_a_second_client_is_refused(node, t):
    with pytest.raises(CliError, match="127.0.0.1:%d closed the connection before asking for the "
                                       "password: a node serves one WebREPL client at a time" % node.port):
        WebReplTransport("127.0.0.1", node.port, PASSWORD, timeout=5)
    assert t.version() == vm_version()  # the first one goes on
    one_line_error(cli("config", "get", "--host", node.host, password=PASSWORD), "one WebREPL client at a time")


@vm
def test_raw_repl(node, t):
    assert t.exec("print(6 * 7)") == b"42\r\n"
    assert "KeyboardInterrupt" in node.output()  # the first exec stopped main.py (Ctrl-C)
    assert not node.main_running(timeout=1)
    assert t.eval("n > 0")  # in main.py's globals, as on the chip
    assert t.eval("1 + 2") == 3
    (node.dir / "a.txt").write_bytes(b"hello")
    assert t.fs_stat("a.txt").st_size == 5
    assert t.fs_hashfile("a.txt", "sha256") == hashlib.sha256(b"hello").digest()
    with pytest.raises(TransportExecError, match="ENOENT|No such file"):
        t.exec("import os\nos.rename('nope', 'b.txt')")
    assert t.exec("x = 'caf\u00e9' * 100\nprint(len(x))") == b"400\r\n"  # split UTF-8 safely
    t.exit_raw_repl()
    assert t.exec("print(x[:4])") == "caf\u00e9\r\n".encode()  # enters the raw REPL again


@vm
def test_safe_write(node, t):
    (node.dir / "c.txt").write_bytes(b"old")
    before = (node.dir / "c.txt").stat().st_ino
    safe_write(t, "c.txt", b"new contents")
    assert (node.dir / "c.txt").read_bytes() == b"new contents"
    assert (node.dir / "c.txt").stat().st_ino != before  # written beside, then renamed over
    assert not (node.dir / "c.txt.tmp").exists()

    send = t.fs_writefile
    t.fs_writefile = lambda name, data, **kw: send(name, data[:-1] + b"X", **kw)  # corrupted on the way
    with pytest.raises(TransportExecError, match="c.txt arrived corrupted"):
        safe_write(t, "c.txt", b"newer contents")
    assert (node.dir / "c.txt").read_bytes() == b"new contents"
    assert not (node.dir / "c.txt.tmp").exists()


@vm
def test_repl_over_webrepl(node, terminal):
    t = terminal("repl", "--host", node.host, env={"UPYNODE_WEBREPL_PASSWORD": PASSWORD})
    assert t.read_until(b"Ctrl-] to leave"), t.out
    assert t.read_until(b"main: loop"), t.out  # main.py's output, mirrored as dupterm does
    t.type(b"\x03")  # stop main.py, as at a serial REPL
    assert t.read_until(b"KeyboardInterrupt"), t.out
    assert t.read_until(b">>> "), t.out
    t.type(b"print(6 * 7)\r")
    assert t.read_until(b"42\r\n"), t.out
    t.type(b"\x1d")  # Ctrl-]: leave
    assert t.exit_code() == 0


@vm
def test_repl_errors(node):
    one_line_error(cli("repl", "--host", node.host, password=PASSWORD), "needs a terminal")
    one_line_error(cli("repl", "--port", "/dev/ttyUSB-upynode-none"), "no such port")
    r = cli("repl")
    assert r.returncode == 2 and "--port" in r.stderr
