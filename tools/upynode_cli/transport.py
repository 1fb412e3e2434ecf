"""Reaching a board: one way to open it, one way to write a file on it.

Every command that talks to a board takes `--port DEVICE` (USB serial:
mpremote's SerialTransport) or `--host IP[:PORT]` (WiFi: our
WebReplTransport, the same interface over WebREPL), through
add_board_arguments() and connect(). Errors on the way are one-line
CliErrors naming the board.
"""
import contextlib
import getpass
import io
import os
import sys

from . import CliError, port_must_exist
from .webrepl import DEFAULT_PORT, WebReplError, WebReplTransport

SERIAL_READ_TIMEOUT = 5  # s; mpremote reads a pty with blocking reads


class BoardError(CliError):
    pass


def add_board_arguments(p, fleet=False):
    """--port or --host; fleet (deploy): --host may be repeated, and
    --hosts FILE names the nodes (args.host is then a list, or None)."""
    where = p.add_mutually_exclusive_group(required=not fleet)
    where.add_argument("--port", metavar="DEVICE", help="the board's serial port (USB), e.g. /dev/ttyUSB0")
    where.add_argument("--host", metavar="IP[:PORT]", action="append" if fleet else "store",
                       help="the node's address, over WebREPL (port %d unless given)%s"
                       % (DEFAULT_PORT, "; repeat it to update several nodes, one at a time, the first as "
                          "the canary" if fleet else ""))
    if fleet:
        p.add_argument("--hosts", metavar="FILE",
                       help="the nodes' addresses, one per line ('#' starts a comment), updated as --host ...")
    p.add_argument("--timeout", type=float, default=10.0, help="WebREPL network timeout, seconds")


def parse_host(text):
    """'192.168.1.42' -> ('192.168.1.42', 8266); 'h:8267' -> ('h', 8267);
    '[fe80::1]:8266' and a bare IPv6 address work too."""
    host, port = text.strip(), None
    if not host or any(c in host for c in "/ @"):  # not a URL: just the address
        raise CliError("bad --host %s: expected IP[:PORT], e.g. 192.168.1.42 or 192.168.1.42:8266" % text)
    if host.startswith("["):
        inside, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise CliError("bad --host %s: expected IP[:PORT] ([IPv6]:PORT)" % text)
        host, port = inside, rest[1:] if rest else None
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host or port == "":
        raise CliError("bad --host %s: expected IP[:PORT], e.g. 192.168.1.42 or 192.168.1.42:8266" % text)
    if port is None:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise CliError("bad port number %r in --host %s (1 to 65535)" % (port, text))
    return host, int(port)


def webrepl_password(where):
    """From $UPYNODE_WEBREPL_PASSWORD or a prompt: never from the command line,
    where it would land in shell history and `ps`."""
    pw = os.environ.get("UPYNODE_WEBREPL_PASSWORD")
    if pw is not None:
        return pw
    if where in _asked:  # asked once per node and run (deploy --wait reconnects often)
        return _asked[where]
    if not sys.stdin.isatty():
        raise CliError("no WebREPL password: set UPYNODE_WEBREPL_PASSWORD or run in a terminal")
    _asked[where] = getpass.getpass("WebREPL password for %s: " % where)
    return _asked[where]


_asked = {}


def open_webrepl(host_arg, timeout=10.0):
    host, port = parse_host(host_arg)
    return WebReplTransport(host, port, webrepl_password("%s:%d" % (host, port)), timeout=timeout)


def open_serial(device):
    """mpremote's SerialTransport in the raw REPL, or a one-line error."""
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    port_must_exist(device)
    try:
        t = SerialTransport(device, baudrate=115200, timeout=SERIAL_READ_TIMEOUT)
    except TransportError:
        from .cmd_flash import check_port_free

        check_port_free(device)  # names a busy port or missing permission
        raise BoardError("cannot open %s" % device)
    try:
        # No soft reset (mpremote's `resume`): on a node it would rerun
        # boot.py, which waits for WiFi. Ctrl-C stops main.py instead.
        with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got
            t.enter_raw_repl(soft_reset=False)
    except (TransportError, OSError):
        t.close()
        raise BoardError("no MicroPython REPL answers on %s: is MicroPython flashed "
                         "(upynode flash) and no other program using the port?" % device)
    return t


def open_transport(args):
    """The board named by --port or --host. A serial board is left in its
    raw REPL (its main loop stopped); a WebREPL one only logged in: its
    first exec() enters the raw REPL, file transfers do not need it."""
    if getattr(args, "host", None):
        return open_webrepl(args.host, getattr(args, "timeout", 10.0))
    return open_serial(args.port)


def close(t):
    """Back to the friendly REPL (unless reset() already ended the session), then close."""
    try:
        if t.in_raw_repl:
            t.exit_raw_repl()
    except Exception:
        pass
    t.close()


def error_line(e):
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


@contextlib.contextmanager
def connect(args):
    """with connect(args) as t: ... the board's transport, closed at the end;
    its errors become one-line BoardErrors."""
    from mpremote.transport import TransportError, TransportExecError

    t = open_transport(args)
    try:
        yield t
    except TransportExecError as e:
        raise BoardError("command failed on %s: %s" % (t.device_name, error_line(e.error_output)))
    except WebReplError as e:
        raise BoardError(str(e))
    except TransportError as e:
        raise BoardError("lost contact with %s: %s" % (t.device_name, error_line(e)))
    finally:
        close(t)


def reset(t):
    """machine.reset(); the session ends with it."""
    t.exec_raw_no_follow("import machine\nmachine.reset()")
    if isinstance(t, WebReplTransport):
        t.wait_closed()
    t.in_raw_repl = False


def read_file(t, path):
    """A board file's bytes, or a one-line error."""
    try:
        return bytes(t.fs_readfile(path))
    except OSError as e:
        if isinstance(t, WebReplTransport) and e.strerror:
            # the node dropped the connection: say so, not more
            raise BoardError("cannot read %s: %s" % (path, e.strerror))
        raise BoardError("cannot read %s on %s (%s)" % (path, t.device_name,
                         "no such file" if e.errno == 2 else e.strerror or e))


# Board-side helpers (MicroPython). _h hashes a file without loading it
# whole: the ESP8266 has about 40 kB of heap. '-' for a missing file.
HASH_FN = """\
import hashlib, binascii, os, gc
gc.collect()
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return '-'
    b = bytearray(512)
    m = memoryview(b)
    h = hashlib.sha256()
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
"""

# Verify the uploaded temp file, then move it into place.
INSTALL = HASH_FN + """\
if _h({tmp!r}) != {want!r}:
    os.remove({tmp!r})
    raise OSError('{path} arrived corrupted')
os.rename({tmp!r}, {path!r})
"""


def safe_write(t, path, data, progress=None):
    """Write a board file so that it is never half-written: send NAME.tmp,
    check its sha256 on the board, rename it over NAME. A dropped
    connection leaves at most a stray NAME.tmp."""
    import hashlib

    tmp = path + ".tmp"
    try:
        t.fs_writefile(tmp, data, progress_callback=progress)
    except OSError as e:
        raise BoardError("writing %s on %s failed: %s" % (tmp, t.device_name, e.strerror or e))
    t.exec(INSTALL.format(tmp=tmp, path=path, want=hashlib.sha256(data).hexdigest()))
