"""WebREPL client on websocket-client: login, file get/put, REPL commands.

Protocol (MicroPython's modwebrepl / webrepl_cli.py): the device sends
"Password: "; after the password it answers "WebREPL connected" or "Access
denied". Text frames carry the REPL; binary frames carry file transfers,
each started by an 82-byte request:
    struct "<2sBBQLH64s": b"WA", op (1 put, 2 get, 3 version), 0, 0, size, len(name), name
and answered by b"WB" + u16 status (0 = OK). Get data comes in chunks, each
prefixed by a u16 length and requested by the client sending b"\\0"; length 0
ends it. Binary replies are read as a byte stream, as webrepl_cli does,
since frame boundaries are not part of the protocol.
"""
import socket
import struct
import time

import websocket

from . import CliError

PUT, GET, VERSION = 1, 2, 3
REQ = "<2sBBQLH64s"
CHUNK = 1024          # put frame size, as the browser client and webrepl_cli use
BEGIN, END = "UPYNODE-BEGIN", "UPYNODE-END"
DEFAULT_PORT = 8266


class WebReplError(CliError):
    pass


class WebRepl:
    def __init__(self, host, port=DEFAULT_PORT, password="", timeout=10.0):
        self.where = "%s:%d" % (host, port)
        self.timeout = timeout
        self.bin = bytearray()
        self.text = ""
        try:
            self.ws = websocket.create_connection("ws://%s/" % self.where, timeout=timeout)
        except ConnectionRefusedError:
            raise WebReplError("connection refused by %s: is the node on and WebREPL enabled "
                               "(it is, once config.json has webrepl.password)?" % self.where)
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplError("timed out connecting to %s (wrong address, or the node is "
                               "not on this network)" % self.where)
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplError("cannot connect to %s: %s" % (self.where, e))
        self._login(password)

    # -- transport ---------------------------------------------------------
    def _recv(self, what):
        """Receive one frame into the text or binary buffer."""
        try:
            op, data = self.ws.recv_data()
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplError("timed out waiting for %s from %s" % (what, self.where))
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplError("connection to %s lost during %s (%s)" % (self.where, what, e or type(e).__name__))
        if op == websocket.ABNF.OPCODE_TEXT:
            self.text += data.decode("utf-8", "replace")
        elif op == websocket.ABNF.OPCODE_BINARY:
            self.bin += data
        elif op == websocket.ABNF.OPCODE_CLOSE:
            raise WebReplError("%s closed the connection during %s" % (self.where, what))

    def _send(self, data, what):
        try:
            if isinstance(data, str):
                self.ws.send(data)
            else:
                self.ws.send_binary(bytes(data))
        except (socket.timeout, websocket.WebSocketTimeoutException):
            raise WebReplError("timed out sending %s to %s" % (what, self.where))
        except (OSError, websocket.WebSocketException) as e:
            raise WebReplError("connection to %s lost during %s (%s)" % (self.where, what, e or type(e).__name__))

    def _read_bin(self, n, what):
        while len(self.bin) < n:
            self._recv(what)
        out = bytes(self.bin[:n])
        del self.bin[:n]
        return out

    def _read_text_until(self, *endings, what):
        deadline = time.monotonic() + self.timeout
        while not any(e in self.text for e in endings):
            if time.monotonic() > deadline:
                raise WebReplError("timed out waiting for %s from %s" % (what, self.where))
            self._recv(what)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- login -------------------------------------------------------------
    def _login(self, password):
        self._read_text_until("Password:", what="the password prompt")
        self.text = ""
        self._send(password + "\r", "login")
        try:
            self._read_text_until("WebREPL connected", "Access denied", what="the login answer")
        except WebReplError:
            if "Access denied" not in self.text:  # it may close before we read it all
                raise
        if "Access denied" in self.text:
            self.close()
            raise WebReplError("wrong WebREPL password for %s" % self.where)
        self.text = ""

    # -- file transfer -----------------------------------------------------
    def _request(self, op, name, size=0):
        raw = name.encode("utf-8")
        if len(raw) > 64:
            raise WebReplError("device path too long for WebREPL (64 bytes max): %s" % name)
        rec = struct.pack(REQ, b"WA", op, 0, 0, size, len(raw), raw)
        # webrepl_cli sends the first 10 bytes apart: some ports drop a
        # request arriving in one piece.
        self._send(rec[:10], "a file request")
        self._send(rec[10:], "a file request")

    def _status(self, what):
        sig, code = struct.unpack("<2sH", self._read_bin(4, what))
        if sig != b"WB":
            raise WebReplError("unexpected reply to %s from %s: %r" % (what, self.where, sig))
        return code

    def get(self, name):
        """The device file's bytes; WebReplError if it cannot be read."""
        self._request(GET, name)
        code = self._status("get " + name)
        if code:
            raise WebReplError("cannot read %s on %s (status %d; missing file?)" % (name, self.where, code))
        data = bytearray()
        while True:
            self._send(b"\0", "get " + name)
            (n,) = struct.unpack("<H", self._read_bin(2, "get " + name))
            if n == 0:
                break
            data += self._read_bin(n, "get " + name)
        if self._status("get " + name):
            raise WebReplError("reading %s on %s failed at the end" % (name, self.where))
        return bytes(data)

    def put(self, name, data, progress=None, verify=True):
        """Write a device file, then read it back: long puts are known to fail silently."""
        self._request(PUT, name, len(data))
        if self._status("put " + name):
            raise WebReplError("the node refused to write %s" % name)
        for i in range(0, len(data), CHUNK):
            self._send(data[i:i + CHUNK], "put " + name)
            if progress:
                progress(min(i + CHUNK, len(data)), len(data))
        if self._status("put " + name):
            raise WebReplError("writing %s on %s failed" % (name, self.where))
        if verify and self.get(name) != bytes(data):
            raise WebReplError("%s on %s does not match what was sent (transfer corrupted)" % (name, self.where))

    def version(self):
        self._send(struct.pack(REQ, b"WA", VERSION, 0, 0, 0, 0, b""), "version")
        return struct.unpack("<BBB", self._read_bin(3, "version"))

    # -- REPL --------------------------------------------------------------
    def interrupt(self):
        """Stop whatever runs (the node's main loop) and wait for a prompt."""
        self.text = ""
        self._send("\r\x03\x03", "ctrl-C")
        self._read_text_until(">>> ", what="the REPL prompt")

    def exec(self, code):
        """Run code in paste mode and return its printed output.

        The output is framed by markers the echo cannot contain ('UPY' +
        'NODE-BEGIN' is echoed as written, printed joined), so echoed lines
        never mix into the result. A traceback becomes a WebReplError.
        """
        self.interrupt()
        src = "print('%s'+'%s')\n%s\nprint('%s'+'%s')\n" % (
            BEGIN[:3], BEGIN[3:], code, END[:3], END[3:])
        self.text = ""
        self._send("\x05", "paste mode")
        self._read_text_until("=== ", what="paste mode")
        self._send(src.replace("\n", "\r"), "a command")
        self._send("\x04", "a command")
        self._read_text_until(BEGIN + "\r\n", what="command output")
        out = self.text.split(BEGIN + "\r\n", 1)[1]
        self.text = out
        self._read_text_until(END + "\r\n", "Traceback (most recent call last)", what="command output")
        if END + "\r\n" not in self.text:
            self._read_text_until("\r\n>>> ", what="command output")
            lines = [ln for ln in self.text.split("\r\n") if ln.strip() and ln != ">>> "]
            raise WebReplError("command failed on %s: %s" % (self.where, lines[-1] if lines else "error"))
        out = self.text.split(END + "\r\n", 1)[0]
        self.text = ""
        return out.replace("\r\n", "\n")

    def exec_no_reply(self, code, wait=3.0):
        """Send a command that ends the session (machine.reset()) and wait
        (a little) for the node to drop the connection, so the command is
        not lost by closing first."""
        self.interrupt()
        self._send(code.replace("\n", "\r") + "\r", "a command")
        self.ws.settimeout(wait)
        try:
            while True:
                self._recv("the reset")
        except WebReplError:
            pass
