"""WebREPL as an mpremote transport: the interface of mpremote's
SerialTransport (exec, eval, enter_raw_repl/exit_raw_repl, fs_readfile,
fs_writefile, fs_stat, fs_hashfile, close, ...) over a node's WebREPL, on
websocket-client. mpremote has no WebREPL transport of its own
(micropython/micropython#13540).

Protocol (MicroPython's modwebrepl / webrepl_cli.py): the device sends
"Password: "; after the password it answers "WebREPL connected" or "Access
denied". Text frames carry the REPL, here driven in raw REPL mode as
mpremote drives a serial port (Ctrl-A; code, Ctrl-D; "OK", output, \\x04,
error output, \\x04, ">"). Binary frames carry file transfers, each started
by an 82-byte request:
    struct "<2sBBQLH64s": b"WA", op (1 put, 2 get, 3 version), 0, 0, size, len(name), name
and answered by b"WB" + u16 status (0 = OK); a node that cannot open the
file (missing file or folder) answers nothing and drops the connection. Get
data comes in chunks, each
prefixed by a u16 length and requested by the client sending b"\\0"; length 0
ends it. Binary replies are read as a byte stream, as webrepl_cli does,
since frame boundaries are not part of the protocol. File transfers do not
touch the REPL, so reading a file does not stop the node's main loop; the
first exec() does (it enters the raw REPL, which sends Ctrl-C).
"""
import ast
import errno
import socket
import struct
import time

import websocket
from mpremote.transport import Transport, TransportError, TransportExecError

from . import CliError

PUT, GET, VERSION = 1, 2, 3
REQ = "<2sBBQLH64s"
CHUNK = 1024          # put frame size, as the browser client and webrepl_cli use
DEFAULT_PORT = 8266
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"


class WebReplError(TransportError):
    """Lost connection, timeout or protocol trouble after login; the message
    names the node and what was going on."""


class WebReplTimeout(WebReplError):
    pass


class WebReplConnectError(CliError):
    """Could not connect or log in: refused, timed out, wrong password."""


class WebReplTransport(Transport):
    def __init__(self, host, port=DEFAULT_PORT, password="", timeout=10.0):
        self.device_name = "%s:%d" % (host, port)
        self.timeout = timeout
        self.in_raw_repl = False
        self.bin = bytearray()     # binary frames: file transfer replies
        self.text = bytearray()    # text frames: the REPL
        url = "ws://%s:%d/" % ("[%s]" % host if ":" in host else host, port)
        try:
            self.ws = websocket.create_connection(url, timeout=timeout)
        except ConnectionRefusedError:
            raise WebReplConnectError(
                "connection refused by %s: is the node on and WebREPL enabled "
                "(it is, once config.json has webrepl.password)?" % self.device_name)
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplConnectError("timed out connecting to %s (wrong address, or the node "
                                      "is not on this network)" % self.device_name)
        except socket.gaierror as e:
            raise WebReplConnectError("cannot resolve %s: %s" % (host, e.strerror))
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplConnectError("cannot connect to %s: %s" % (self.device_name, e))
        try:
            self._login(password)
        except WebReplError as e:
            self.close()
            raise WebReplConnectError(str(e))

    # -- websocket ---------------------------------------------------------
    def _recv(self, what):
        """Receive one frame into the text or binary buffer."""
        try:
            op, data = self.ws.recv_data()
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplTimeout("timed out waiting for %s from %s" % (what, self.device_name))
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplError("connection to %s lost during %s (%s)"
                               % (self.device_name, what, e or type(e).__name__))
        if op == websocket.ABNF.OPCODE_TEXT:
            self.text += data
        elif op == websocket.ABNF.OPCODE_BINARY:
            self.bin += data
        elif op == websocket.ABNF.OPCODE_CLOSE:
            raise WebReplError("%s closed the connection during %s" % (self.device_name, what))

    def _send(self, data, what):
        try:
            if isinstance(data, str):
                self.ws.send(data)
            else:
                self.ws.send_binary(bytes(data))
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplError("timed out sending %s to %s" % (what, self.device_name))
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplError("connection to %s lost during %s (%s)"
                               % (self.device_name, what, e or type(e).__name__))

    def _read_bin(self, n, what):
        while len(self.bin) < n:
            self._recv(what)
        out = bytes(self.bin[:n])
        del self.bin[:n]
        return out

    def read_until(self, ending, what, timeout=None, idle=False):
        """REPL bytes up to and including ending (the rest stays buffered),
        within timeout seconds; with idle, of silence (command output, which
        may take long but keeps coming)."""
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        while ending not in self.text:
            if time.monotonic() > deadline:
                raise WebReplTimeout("timed out waiting for %s from %s" % (what, self.device_name))
            self._recv(what)
            if idle:
                deadline = time.monotonic() + timeout
        i = self.text.index(ending) + len(ending)
        out = bytes(self.text[:i])
        del self.text[:i]
        return out

    def recv_text(self):
        """The next REPL output, for a terminal: b'' when nothing came in time."""
        if not self.text:
            try:
                self._recv("REPL output")
            except WebReplTimeout:
                return b""
        out = bytes(self.text)
        self.text.clear()
        return out

    def send_text(self, data):
        """Keys for the REPL, as a terminal sends them."""
        self._send(data.decode("utf-8", "replace") if isinstance(data, bytes) else data, "input")

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    # -- login -------------------------------------------------------------
    def _login(self, password):
        try:
            self.read_until(b"Password:", "the password prompt")
        except WebReplTimeout:
            raise
        except WebReplError:
            # A node takes one client at a time: it closes a second one
            # right after the handshake.
            raise WebReplError("%s closed the connection before asking for the password: a node "
                               "serves one WebREPL client at a time; is another one connected "
                               "(a browser tab, another upynode)?" % self.device_name)
        self._send(password + "\r", "login")
        try:
            self.read_until(b"WebREPL connected", "the login answer")
        except WebReplError:
            # It says "Access denied" and may close before we read more.
            if b"Access denied" in self.text:
                raise WebReplError("wrong WebREPL password for %s" % self.device_name)
            raise
        self.read_until(b"\n", "the login answer")

    # -- raw REPL (as mpremote's SerialTransport) -------------------------
    def enter_raw_repl(self, soft_reset=False, timeout_overall=None):
        if soft_reset:
            # On a node a soft reset restarts the network stack: the session ends.
            raise TransportError("no soft reset over WebREPL: it would end the session")
        self._send("\r\x03\x03", "Ctrl-C")   # stop the node's main loop, if it runs
        self._send("\r\x01", "Ctrl-A")       # raw REPL
        self.read_until(RAW_BANNER, "the raw REPL", timeout_overall)
        self.in_raw_repl = True

    def exit_raw_repl(self):
        self._send("\r\x02", "Ctrl-B")
        self.in_raw_repl = False

    def exec_raw_no_follow(self, command):
        if isinstance(command, bytes):
            command = command.decode("utf-8")
        if not self.in_raw_repl:
            self.enter_raw_repl()
        self.read_until(b">", "the raw REPL prompt")
        # Text frames must be whole UTF-8: split by characters, not bytes;
        # paced as mpremote paces the plain raw REPL (256 bytes / 10 ms).
        for i in range(0, len(command), 256):
            if i:
                time.sleep(0.01)
            self._send(command[i:i + 256], "a command")
        self._send("\x04", "a command")
        ok = self.read_until(b"OK", "the raw REPL's OK")
        if ok != b"OK":
            raise TransportError("could not exec command on %s (response: %r)"
                                 % (self.device_name, ok[-40:]))

    def follow(self, timeout, data_consumer=None):
        out = self.read_until(b"\x04", "command output", timeout, idle=True)[:-1]
        if data_consumer:
            data_consumer(out)
        err = self.read_until(b"\x04", "command output", timeout, idle=True)[:-1]
        return out, err

    def exec_raw(self, command, timeout=None, data_consumer=None):
        self.exec_raw_no_follow(command)
        return self.follow(timeout, data_consumer)

    def exec(self, command, data_consumer=None):
        out, err = self.exec_raw(command, data_consumer=data_consumer)
        if err:
            raise TransportExecError(out, err.decode("utf-8", "replace"))
        return out

    def eval(self, expression, parse=True):
        if parse:
            return ast.literal_eval(self.exec("print(repr({}))".format(expression)).strip().decode())
        return self.exec("print({})".format(expression)).strip()

    def wait_closed(self, wait=3.0):
        """After machine.reset(): wait (a little) for the node to drop the
        connection, so the command is not lost by closing first."""
        self.ws.settimeout(wait)
        try:
            while True:
                self._recv("the reset")
        except WebReplError:
            pass

    # -- files over binary frames -----------------------------------------
    def _request(self, op, name, size=0):
        raw = name.encode("utf-8")
        if len(raw) > 64:
            raise OSError(errno.ENAMETOOLONG, "device path too long for WebREPL (64 bytes max)", name)
        rec = struct.pack(REQ, b"WA", op, 0, 0, size, len(raw), raw)
        # webrepl_cli sends the first 10 bytes apart: some ports drop a
        # request arriving in one piece.
        self._send(rec[:10], "a file request")
        self._send(rec[10:], "a file request")

    def _status(self, what):
        sig, code = struct.unpack("<2sH", self._read_bin(4, what))
        if sig != b"WB":
            raise WebReplError("unexpected reply to %s from %s: %r" % (what, self.device_name, sig))
        return code

    def _opened(self, what, name, doing):
        """The node's answer to a put/get request. A node that cannot open
        the file (missing file, missing folder) answers nothing: the
        exception ends its WebREPL session and it drops the connection
        (extmod/modwebrepl.c under dupterm). That becomes OSError(ENOENT)
        saying so; the session is over."""
        try:
            code = self._status(what)
        except WebReplTimeout:
            raise
        except WebReplError:
            raise OSError(errno.ENOENT, "%s dropped the connection when asked to %s %s, as a node "
                          "does when it cannot open the file (no such %s?)"
                          % (self.device_name, doing, name, "file" if doing == "read" else "folder"), name)
        if code:  # not what a MicroPython node sends: it has no error statuses
            raise OSError(errno.EIO, "%s answered status %d to %s" % (self.device_name, code, what), name)

    def fs_readfile(self, src, chunk_size=None, progress_callback=None):
        """The file's bytes; OSError(ENOENT) if the node cannot open it (it
        drops the connection). progress_callback is not called: the protocol
        does not tell the size first, and asking (fs_stat) would stop the
        node's loop."""
        what = "get " + src
        self._request(GET, src)
        self._opened(what, src, "read")
        data = bytearray()
        while True:
            self._send(b"\0", what)
            (n,) = struct.unpack("<H", self._read_bin(2, what))
            if n == 0:
                break
            data += self._read_bin(n, what)
        if self._status(what):
            raise WebReplError("reading %s on %s failed at the end" % (src, self.device_name))
        return data

    def fs_writefile(self, dest, data, chunk_size=CHUNK, progress_callback=None):
        """Write the file as the data arrives on the node (not atomic: see
        transport.safe_write)."""
        what = "put " + dest
        self._request(PUT, dest, len(data))
        self._opened(what, dest, "write")
        for i in range(0, len(data), chunk_size):
            self._send(data[i:i + chunk_size], what)
            if progress_callback:
                progress_callback(min(i + chunk_size, len(data)), len(data))
        if self._status(what):
            raise WebReplError("writing %s on %s failed" % (dest, self.device_name))

    def version(self):
        """The node's MicroPython version, (major, minor, micro)."""
        self._send(struct.pack(REQ, b"WA", VERSION, 0, 0, 0, 0, b""), "version")
        return struct.unpack("<BBB", self._read_bin(3, "version"))
