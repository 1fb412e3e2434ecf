"""One interface over the two ways to reach a board: run code, write a file.

SerialBoard uses mpremote's SerialTransport (raw REPL, raw-paste); WebBoard
uses our WebREPL client. Deploy is written once against both.
"""
import contextlib
import getpass
import io
import os
import sys

from . import CliError, port_must_exist
from .webrepl import DEFAULT_PORT, WebRepl


def webrepl_password(host):
    """From $UPYNODE_WEBREPL_PASSWORD or a prompt: never from the command line,
    where it would land in shell history and `ps`."""
    pw = os.environ.get("UPYNODE_WEBREPL_PASSWORD")
    if pw is not None:
        return pw
    if not sys.stdin.isatty():
        raise CliError("no WebREPL password: set UPYNODE_WEBREPL_PASSWORD or run in a terminal")
    return getpass.getpass("WebREPL password for %s: " % host)


def split_host(host, port=None):
    if ":" in host and port is None:
        host, p = host.rsplit(":", 1)
        port = int(p)
    return host, port or DEFAULT_PORT


class BoardError(CliError):
    pass


class SerialBoard:
    def __init__(self, port):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.name = port
        port_must_exist(port)
        try:
            # A read timeout: mpremote reads a pty (a virtual board) with
            # blocking reads, which would hang forever on a silent port.
            self.t = SerialTransport(port, baudrate=115200, timeout=5)
        except TransportError:
            from .cmd_flash import check_port_free

            check_port_free(port)  # names a busy port or missing permission
            raise BoardError("cannot open %s" % port)
        try:
            # No soft reset (mpremote's `resume`): on a node it would rerun
            # boot.py, which waits for WiFi. Ctrl-C stops main.py instead.
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got
                self.t.enter_raw_repl(soft_reset=False)
        except TransportError:
            self.t.close()
            raise BoardError("no MicroPython REPL answers on %s: is MicroPython flashed "
                             "(upynode flash) and no other program using the port?" % port)

    def exec(self, code):
        from mpremote.transport import TransportError, TransportExecError

        try:
            return self.t.exec(code).decode("utf-8", "replace").replace("\r\n", "\n")
        except TransportExecError as e:
            lines = e.error_output.strip().splitlines()
            raise BoardError("command failed on %s: %s" % (self.name, lines[-1] if lines else e))
        except TransportError as e:
            raise BoardError("lost contact with %s: %s" % (self.name, e))

    def write(self, path, data, progress=None):
        from mpremote.transport import TransportError

        try:
            self.t.fs_writefile(path, data, chunk_size=256, progress_callback=progress)
        except (TransportError, OSError) as e:
            raise BoardError("writing %s on %s failed: %s" % (path, self.name, e))

    def reset(self):
        self.t.exec_raw_no_follow("import machine\nmachine.reset()")

    def close(self, reset=False):
        if not reset:
            self.t.exit_raw_repl()
        self.t.close()


class WebBoard:
    def __init__(self, host, port=None, timeout=10.0):
        host, port = split_host(host, port)
        self.name = "%s:%d" % (host, port)
        self.w = WebRepl(host, port, webrepl_password(self.name), timeout=timeout)

    def exec(self, code):
        return self.w.exec(code)

    def write(self, path, data, progress=None):
        # Deploy checks each file's hash on the board afterwards, so the
        # read-back verification of put() would only double the traffic.
        self.w.put(path, data, progress=progress, verify=False)

    def reset(self):
        self.w.exec_no_reply("import machine\nmachine.reset()")

    def close(self, reset=False):
        self.w.close()


def open_board(args):
    if getattr(args, "host", None):
        return WebBoard(args.host, timeout=args.timeout)
    return SerialBoard(args.port)

