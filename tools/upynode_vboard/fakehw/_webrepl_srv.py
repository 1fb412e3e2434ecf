# WebREPL served from inside the virtual board's VM, as the ESP8266 port
# serves it: the handshake of micropython-lib's webrepl.py (any
# Sec-WebSocket-Key, no version header needed; anything else gets the HTML
# stub and is closed), the websocket framing of the VM's own `websocket`
# module (masked or unmasked client frames), and the password, REPL and
# file protocol of extmod/modwebrepl.c:
#   * "Password: "; up to 9 characters then CR or LF; a wrong one gets
#     "\r\nAccess denied\r\n" and the connection is dropped at once;
#   * text frames are REPL input, output goes out as text frames;
#   * binary frames carry file requests, struct "<2sBBQLH64s" (b"WA", op,
#     ...); replies are binary, b"WB" + u16 status. Put: a reply once the
#     file is open, another when `size` bytes were written (so an empty file
#     gets both at once). Get: a reply, then for each b"\0" from the client
#     a u16 length + up to 256 bytes, length 0 last, then a reply. A file
#     that cannot be opened drops the connection without a reply (on the
#     chip the exception ends the dupterm session);
#   * one client at a time: a second one is closed after its handshake.
#
# Concurrency (the unix port has _thread without a GIL, no os.dupterm): one
# thread serves the socket. File transfers run there while main.py runs, as
# on the chip. REPL input waits while main.py runs; Ctrl-C sends the VM a
# SIGINT (KeyboardInterrupt in the main thread, as the chip raises it in
# main.py). Once main.py has stopped, this thread runs the REPL's commands in
# the globals of __main__. builtins.print is teed to the session, as dupterm
# mirrors the console; sys.stdout.write output reaches only the console.
# machine.reset() in a command ends the VM with its exit status (the runner
# and vserial boot it again). Not modelled: Ctrl-C during a command typed
# over WebREPL, soft reset (Ctrl-D), paste mode (Ctrl-E).
#
# A fault for tests, in world.json: "faults": {"webrepl_put_drop_after": N}
# (bytes): the WiFi link dies N bytes into every put's data, which leaves
# the file half-written as on the chip (it writes as the data arrives).
import builtins
import io
import os
import select
import socket
import struct
import sys
import _thread

import __main__
import _webrepl_vm as vm
import _world

REQ = "<2sBBQLH64s"
PUT, GET, VERSION = 1, 2, 3
BANNER = "MicroPython v%d.%d.%d on virtual board; ESP module with ESP8266\r\nType \"help()\" for more information.\r\n" \
    % sys.implementation.version[:3]
RAW_BANNER = "raw REPL; CTRL-B to exit\r\n>"
_print = builtins.print


def _crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def _tee(*args, **kw):
    _print(*args, **kw)
    srv = vm.server
    if kw.get("file") is None and srv is not None and srv.live:
        kw.pop("file", None)
        s = io.StringIO()
        _print(*args, file=s, **kw)
        srv.send(_crlf(s.getvalue()))


def handshake(cl):
    # As micropython-lib's webrepl.server_handshake: any key will do.
    cl.readline()
    key = None
    upgrade = ws = False
    while True:
        ln = cl.readline()
        if not ln:
            return False
        if ln == b"\r\n":
            break
        h, _, v = ln.partition(b":")
        h, v = h.strip(), v.strip()
        if h == b"Sec-WebSocket-Key":
            key = v
        elif h == b"Connection" and b"Upgrade" in v:
            upgrade = True
        elif h == b"Upgrade" and v == b"websocket":
            ws = True
    if not (upgrade and ws and key):
        return False
    import binascii
    import hashlib
    d = hashlib.sha1(key)
    d.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    cl.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: ")
    cl.send(binascii.b2a_base64(d.digest())[:-1])
    cl.send(b"\r\n\r\n")
    return True


class Server:
    def __init__(self, port, password):
        self.password = password.encode()
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        self.ls.listen(1)
        self.lock = _thread.allocate_lock()
        self.cl = self.ws = None
        self.live = False
        self.stopped = False
        self.kbd_sent = False
        self.pending = bytearray()   # REPL input held while main.py runs
        self.flush = False           # main.py stopped: greet, then feed pending
        builtins.print = _tee
        _thread.start_new_thread(self._loop, ())

    def stop(self):
        self.stopped = True
        self._drop()
        try:
            self.ls.close()
        except OSError:
            pass
        builtins.print = _print

    # -- called from the main thread -----------------------------------------
    def main_stopped(self):
        self.kbd_sent = False
        self.flush = True

    def tee_exception(self, e):
        if self.live:
            s = io.StringIO()
            sys.print_exception(e, s)
            self.send(_crlf(s.getvalue()))

    # -- output ----------------------------------------------------------------
    def send(self, data, binary=False):
        with self.lock:
            ws = self.ws
            if ws is None:
                return
            try:
                if binary:
                    old = ws.ioctl(9, 2)
                    ws.write(data)
                    ws.ioctl(9, old)
                else:
                    ws.write(data)
            except OSError:
                pass

    # -- the thread --------------------------------------------------------------
    def _loop(self):
        p = select.poll()
        p.register(self.ls, select.POLLIN)
        self.poll = p
        while not self.stopped:
            try:
                events = p.poll(50)
            except OSError:
                continue
            for obj, ev in events:
                if self.stopped:
                    break
                try:
                    if obj is self.ls:
                        self._accept()
                    elif obj is self.cl:
                        if ev & (select.POLLHUP | select.POLLERR):
                            self._drop()
                        else:
                            self._readable()
                except Exception as e:
                    _print("webrepl: %r" % (e,))
                    self._drop()
            if self.flush and self.cl is not None and not vm.running:
                self.flush = False
                if self.live:
                    self.send("\r\n" + BANNER + ">>> ")
                    self.mode, self.line = "friendly", bytearray()
                    data, self.pending = bytes(self.pending), bytearray()
                    if data:
                        self._text(data)

    def _accept(self):
        cl, addr = self.ls.accept()
        try:
            addr = socket.sockaddr(addr)[1:3]
        except Exception:
            pass
        cl.settimeout(5)
        try:
            ok = handshake(cl)
            if not ok:
                cl.send(b"HTTP/1.0 200 OK\r\n\r\n<base href=\"https://micropython.org/webrepl/\"></base>\r\n"
                        b"<script src=\"webrepl_content.js\"></script>\r\n")
        except OSError:
            ok = False
        if not ok or self.cl is not None:
            if ok:
                _print("\nConcurrent WebREPL connection from", addr, "rejected")
            cl.close()
            return
        _print("\nWebREPL connection from:", addr)
        import websocket
        cl.settimeout(10)
        self.cl = cl
        self.ws = websocket.websocket(cl, True)
        self.live = False
        self.pw = bytearray()
        self.hdr = bytearray()
        self.todo = 0          # bytes of the current file operation still to receive
        self.file = None
        self.mode, self.line = "friendly", bytearray()
        self.pending = bytearray()
        self.poll.register(cl, select.POLLIN)
        self.send("Password: ")

    def _drop(self):
        with self.lock:
            cl, self.cl, self.ws, self.live = self.cl, None, None, False
        if cl is not None:
            try:
                self.poll.unregister(cl)
            except (OSError, AttributeError):
                pass
            cl.close()
        if getattr(self, "file", None):
            self.file.close()
            self.file = None

    def _readable(self):
        data = self.ws.read(600)
        if data is None:
            return
        if not data:
            return self._drop()
        if not self.live:
            for i in range(len(data)):
                c = data[i]
                if c in (13, 10):
                    if self.pw != self.password:
                        self.send("\r\nAccess denied\r\n")
                        return self._drop()
                    self.live = True
                    self.send("\r\nWebREPL connected\r\n>>> ")
                    data = data[i + 1:]
                    break
                if len(self.pw) < 10:
                    self.pw.append(c)
            else:
                return
            if not data:
                return
        if self.ws.ioctl(8) == 1:
            self._text(data)
        else:
            self._binary(data)

    # -- files -----------------------------------------------------------------
    def _reply(self, code):
        self.send(b"WB" + struct.pack("<H", code), True)

    def _binary(self, data):
        i = 0
        while i < len(data):
            if not self.todo:
                n = min(82 - len(self.hdr), len(data) - i)
                self.hdr += data[i:i + n]
                i += n
                if len(self.hdr) == 82:
                    self._op()
                continue
            chunk = data[i:i + self.todo]
            i += len(chunk)
            self.todo -= len(chunk)
            if self.op == PUT:
                if 0 <= self.cut <= len(chunk):
                    self.file.write(chunk[:self.cut])
                    return self._drop()  # the link died
                self.cut -= len(chunk)
                self.file.write(chunk)
            else:
                buf = self.file.read(256)
                self.send(struct.pack("<H", len(buf)) + buf, True)
                if buf:
                    self.todo = 1
            if not self.todo:
                self._done()

    def _op(self):
        _, op, _, _, size, _, name = struct.unpack(REQ, self.hdr)
        self.hdr = bytearray()
        self.op = op
        if op == VERSION:
            return self.send(bytes(sys.implementation.version[:3]), True)
        name = name.split(b"\0")[0].decode()
        try:
            self.file = open(name, "wb" if op == PUT else "rb")
        except OSError as e:
            # The chip: the exception ends the dupterm session, no reply.
            _print("dupterm: Exception in read() method, deactivating: %r" % (e,))
            return self._drop()
        self._reply(0)
        if op == PUT:
            self.todo = size
            self.cut = _world.fault("webrepl_put_drop_after")
            if self.cut is None:
                self.cut = -1
            if not size:
                self._done()
        else:
            self.todo = 1

    def _done(self):
        self.file.close()
        self.file = None
        self._reply(0)

    # -- the REPL ----------------------------------------------------------------
    def _text(self, data):
        if vm.running:
            # As on the chip: input waits in the UART buffer while main.py
            # runs; Ctrl-C interrupts main.py.
            if b"\x03" in data and not self.kbd_sent:
                self.kbd_sent = True
                # system() ignores SIGINT while it waits: signal a moment after.
                os.system("(sleep 0.05; kill -INT $PPID) >/dev/null 2>&1 &")
            self.pending += data.replace(b"\x03", b"")
            return
        if self.flush:
            self.pending += data
            return
        for c in data:
            if self.stopped or self.cl is None:
                return
            if self.mode == "raw":
                self._raw_key(c)
            else:
                self._friendly_key(c)

    def _raw_key(self, c):
        if c == 1:
            self.line = bytearray()
            self.send("\r\n" + RAW_BANNER)
        elif c == 2:
            self.mode, self.line = "friendly", bytearray()
            self.send("\r\n" + BANNER + ">>> ")
        elif c == 3:
            self.line = bytearray()
        elif c == 4:
            if not self.line:
                return  # a soft reset: not modelled
            src, self.line = bytes(self.line), bytearray()
            self.send("OK")
            err = self._run(src, "exec")
            self.send("\x04" + err + "\x04>")
        else:
            self.line.append(c)

    def _friendly_key(self, c):
        if c == 1:
            self.mode, self.line = "raw", bytearray()
            self.send("\r\n" + RAW_BANNER)
        elif c == 2:
            self.line = bytearray()
            self.send("\r\n" + BANNER + ">>> ")
        elif c == 3:
            self.line = bytearray()
            self.send("\r\n>>> ")
        elif c in (8, 127):
            if self.line and self.line[-1] != 10:
                self.line = self.line[:-1]
                self.send("\x08 \x08")
        elif c == 13:
            self.send("\r\n")
            src = bytes(self.line)
            last = src.split(b"\n")[-1]
            if last.rstrip().endswith(b":") or (b"\n" in src and last.strip()):
                self.line.append(10)
                self.send("... ")
                return
            self.line = bytearray()
            if src.strip():
                self.send(self._run(src, "single"))
            self.send(">>> ")
        elif c >= 32 or c == 9:
            self.line.append(c)
            self.send(bytes([c]).decode("utf-8", "ignore") if c < 128 else "")

    def _run(self, src, mode):
        """Run src in the REPL's globals; output goes out through print
        (teed); returns the error text (a traceback)."""
        try:
            src = src.decode()
            g = __main__.__dict__
            if mode == "single":
                try:
                    code = compile(src, "<stdin>", "eval")
                except SyntaxError:
                    code = None
                if code is not None:
                    v = eval(code, g)
                    if v is not None:
                        print(repr(v))
                    return ""
            exec(compile(src, "<stdin>", "exec"), g)
            return ""
        except SystemExit as e:
            self._reset(e.value if hasattr(e, "value") else (e.args[0] if e.args else 0))
            return ""
        except BaseException as e:
            s = io.StringIO()
            sys.print_exception(e, s)
            return _crlf(s.getvalue())

    def _reset(self, code):
        """sys.exit()/machine.reset() from WebREPL: the VM ends with code."""
        vm.exit_code = code if isinstance(code, int) else 1
        self.stop()
        if vm.idle:
            return                    # the main thread exits (the runner)
        if vm.running:
            os.system("(sleep 0.05; kill -INT $PPID) >/dev/null 2>&1 &")
        else:
            # vserial: the unix port's own REPL waits on the pty: end the VM.
            os.system("kill -9 $PPID")
