"""A WebREPL server for tests: MicroPython's modwebrepl protocol over a folder.

Speaks what a node speaks (see tools/upynode_cli/webrepl.py for the wire
format) on the `websockets` library's sync server: the "Password: " prompt,
file put/get/version on binary frames, and a small REPL on text frames
(friendly lines, Ctrl-C, Ctrl-E paste mode) that executes Python against the
board folder with fake `os`, `machine` and `sys` modules; and the raw REPL
(Ctrl-A ... Ctrl-D -> "OK", output, \x04, error, \x04, ">"; Ctrl-B leaves) as
mpremote-style clients drive it. Paths never leave
the folder, `machine.reset()` is counted and drops the connection as a
rebooting node does.

Like a node, a put writes straight into the named file as the data arrives,
so a connection lost mid-put leaves that file half-written: which is why
the client puts config.json.tmp and renames it.

    python -m upynode_vboard.webrepl_server BOARD_DIR [--password PW] [--port 8266]
"""
import builtins
import io
import os
import socket
import struct
import sys
import threading
import traceback
import types
from contextlib import contextmanager
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


REQ = "<2sBBQLH64s"
REQ_SIZE = struct.calcsize(REQ)  # 82
PUT, GET, VERSION = 1, 2, 3
BANNER = ("MicroPython v1.24.1 on 2024-11-29; ESP module with ESP8266\r\n"
          "Type \"help()\" for more information.\r\n")
# sys.implementation._mpy of an ESP8266 build: .mpy v6.3, xtensa (9).
ESP8266_MPY = 6 | (3 << 8) | (9 << 10)


class _Reset(BaseException):
    pass


class WebReplServer:
    def __init__(self, board, password="secret", mpy=ESP8266_MPY, port=0):
        self.board = Path(board).resolve()
        self.password = password
        self.mpy = mpy
        self.resets = 0
        self.puts = []              # device paths written, in order
        self.drop_put_after = None  # bytes: lose the connection mid-put, once
        self.main_running = True    # the node's main loop, until a Ctrl-C
        self.port = port

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        # compression=None: a node's WebREPL has no permessage-deflate.
        self._server = serve(self._handle, "127.0.0.1", self.port, compression=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- paths -------------------------------------------------------------
    def path(self, name):
        p = (self.board / str(name).lstrip("/")).resolve()
        if p != self.board and self.board not in p.parents:
            raise OSError(13, "EACCES")
        return p

    # -- connection --------------------------------------------------------
    def _handle(self, ws):
        ws.send("Password: ")
        typed = ""
        while "\r" not in typed and "\n" not in typed:
            msg = ws.recv()
            typed += msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
        if typed.splitlines()[0] != self.password:
            ws.send("\r\nAccess denied\r\n")
            ws.close()
            return
        ws.send("\r\nWebREPL connected\r\n>>> ")
        s = _Session(self, ws)
        try:
            for msg in ws:
                if isinstance(msg, str):
                    s.repl(msg)
                else:
                    s.binary(msg)
        except _Reset:
            self.resets += 1
            self.main_running = True
            ws.close_socket()  # a rebooting node just vanishes
        except (ConnectionError, ConnectionClosed):
            pass


class _Session:
    def __init__(self, server, ws):
        self.srv, self.ws = server, ws
        self.inbuf = bytearray()
        self.state = None           # None, ("put", file, left) or ("get", file)
        self.line = ""
        self.paste = None           # text collected in paste mode
        self.raw = None             # text collected in the raw REPL

    # -- file transfer -----------------------------------------------------
    def binary(self, data):
        self.inbuf += data
        while self.inbuf:
            if self.state is None:
                if len(self.inbuf) < REQ_SIZE:
                    return
                self._request(bytes(self.inbuf[:REQ_SIZE]))
                del self.inbuf[:REQ_SIZE]
            elif self.state[0] == "put":
                _, f, name, left = self.state
                chunk = bytes(self.inbuf[:left])
                del self.inbuf[:len(chunk)]
                drop = self.srv.drop_put_after
                if drop is not None and f.tell() + len(chunk) >= drop:
                    f.write(chunk[:max(drop - f.tell(), 0)])
                    f.close()
                    self.srv.drop_put_after = None
                    self.ws.close_socket()  # the WiFi link went away
                    raise ConnectionError("dropped")
                f.write(chunk)
                left -= len(chunk)
                self.state = ("put", f, name, left)
                if not left:
                    f.close()
                    self.srv.puts.append(name)
                    self.state = None
                    self._status(0)
            else:  # get: each b"\0" asks for the next chunk
                del self.inbuf[:1]
                f = self.state[1]
                chunk = f.read(256)
                self.ws.send(struct.pack("<H", len(chunk)) + chunk)
                if not chunk:
                    f.close()
                    self.state = None
                    self._status(0)

    def _request(self, rec):
        sig, op, _, _, size, n, fname = struct.unpack(REQ, rec)
        name = fname[:n].decode("utf-8")
        if sig != b"WA":
            return
        if op == VERSION:
            self.ws.send(bytes((1, 24, 1)))
            return
        try:
            f = open(self.srv.path(name), "wb" if op == PUT else "rb")
        except OSError:
            self._status(1)
            return
        self._status(0)
        if op == PUT:
            self.state = ("put", f, name, size)
            if size == 0:
                self.binary(b"")
        else:
            self.state = ("get", f)

    def _status(self, code):
        self.ws.send(b"WB" + struct.pack("<H", code))

    # -- REPL --------------------------------------------------------------
    def out(self, text):
        # A node keeps executing when nobody listens any more.
        try:
            self.ws.send(text.replace("\r\n", "\n").replace("\n", "\r\n"))
        except ConnectionClosed:
            pass

    def repl(self, text):
        for ch in text:
            if self.raw is not None:
                self.raw_repl(ch)
            elif ch == "\x01":
                self.raw_repl(ch)
            elif ch == "\x03":
                self.paste, self.line = None, ""
                if self.srv.main_running:
                    self.srv.main_running = False
                    self.out('Traceback (most recent call last):\n  File "main.py", line 9, '
                             'in <module>\nKeyboardInterrupt: \n\n' + BANNER + ">>> ")
                else:
                    self.out("\n>>> ")
            elif self.paste is not None:
                if ch == "\x04":
                    self.out("\n")
                    self.run(self.paste)
                    self.paste = None
                    self.out(">>> ")
                elif ch in "\r\n":
                    self.paste += "\n"
                    self.out("\n=== ")
                else:
                    self.paste += ch
                    self.out(ch)
            elif ch == "\x05":
                self.paste = ""
                self.out("\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== ")
            elif ch == "\r":
                self.out("\n")
                if self.line.strip():
                    self.run(self.line)
                self.line = ""
                self.out(">>> ")
            elif ch >= " ":
                self.line += ch
                self.out(ch)

    def raw_repl(self, ch):
        if ch == "\x01":    # enter, or start over
            self.raw = ""
            self.out("raw REPL; CTRL-B to exit\n>")
        elif ch == "\x02":  # back to the friendly REPL
            self.raw = None
            self.out("\n" + BANNER + ">>> ")
        elif ch == "\x03":
            self.raw = ""
        elif ch == "\x04":
            code, self.raw = self.raw, ""
            self.ws.send("OK")
            out, err = self.execute(code)
            self.ws.send(out.replace("\n", "\r\n") + "\x04" + err.replace("\n", "\r\n") + "\x04>")
        else:
            self.raw += ch

    def run(self, code):
        out, err = self.execute(code)
        if out + err:
            self.out(out + err)

    def execute(self, code):
        """(output, traceback) of running code in the session's namespace."""
        buf, err = io.StringIO(), ""
        if not hasattr(self, "globals"):  # one namespace per session, as a REPL has
            self.globals = {"__name__": "__main__"}
        self.globals["__builtins__"] = self._builtins(buf)
        try:
            exec(compile(code.replace("\r", "\n"), "<stdin>", "exec"), self.globals)
        except _Reset:
            raise
        except Exception as e:
            err = ('Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
                   "%s: %s\n" % (type(e).__name__, e))
        return buf.getvalue(), err

    def _builtins(self, buf):
        srv = self.srv
        fake_os = types.SimpleNamespace(
            rename=lambda a, b: os.replace(srv.path(a), srv.path(b)),
            remove=lambda p: os.remove(srv.path(p)),
            mkdir=lambda p: os.mkdir(srv.path(p)),
            rmdir=lambda p: os.rmdir(srv.path(p)),
            stat=lambda p: tuple(os.stat(srv.path(p)))[:10],
            listdir=lambda p="": sorted(os.listdir(srv.path(p))),
            getcwd=lambda: "/",
        )

        def reset():
            raise _Reset()

        modules = {
            "os": fake_os, "uos": fake_os,
            "machine": types.SimpleNamespace(reset=reset),
            "sys": types.SimpleNamespace(
                implementation=types.SimpleNamespace(name="micropython", _mpy=srv.mpy),
                print_exception=lambda e, f=None: traceback.print_exception(e, file=buf)),
        }

        def _import(name, globals=None, locals=None, fromlist=(), level=0):
            if name in modules:
                return modules[name]
            if name in ("hashlib", "binascii", "gc", "time", "json", "struct"):
                return __import__(name)
            raise ImportError("no module named '%s'" % name)

        b = dict(vars(builtins))
        b.update(__import__=_import,
                 open=lambda p, mode="r", *a, **k: open(srv.path(p), mode, *a, **k),
                 print=lambda *a, **k: print(*a, file=buf, **{x: k[x] for x in ("sep", "end") if x in k}))
        return b


@contextmanager
def silent_server():
    """A TCP port that accepts connections and never answers: for timeouts."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)  # the kernel completes the handshake; nobody ever reads
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def main():
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("board")
    p.add_argument("--password", default="secret")
    p.add_argument("--port", type=int, default=8266)
    a = p.parse_args()
    srv = WebReplServer(a.board, a.password, port=a.port).start()
    print("WebREPL test server on ws://127.0.0.1:%d/ serving %s" % (srv.port, srv.board), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
