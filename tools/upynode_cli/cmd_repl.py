"""`upynode repl`: the board's REPL in this terminal, Ctrl-] to leave.

Over USB (--port) mpremote's own REPL takes over the process; over WiFi
(--host) a small terminal pumps keys and output through the WebREPL
websocket.
"""
import os
import select
import sys
import threading

from . import CliError, port_must_exist, say
from .transport import add_board_arguments, close, open_webrepl
from .webrepl import WebReplError

CTRL_RIGHT_BRACKET = b"\x1d"


def add_arguments(p):
    add_board_arguments(p)


def run(args):
    if args.host:
        return webrepl_terminal(args)
    port_must_exist(args.port)
    # Replace this process: mpremote owns the terminal (raw mode, Ctrl-])
    # and its exit status is the user's.
    argv = [sys.executable, "-m", "mpremote", "connect", args.port, "repl"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def webrepl_terminal(args):
    import termios
    import tty

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("repl needs a terminal (stdin and stdout)")
    t = open_webrepl(args.host, args.timeout)
    t.ws.settimeout(0.2)  # the reader thread polls, so it notices when we leave
    say("Connected to MicroPython at %s over WebREPL; Ctrl-] to leave" % t.device_name)
    done = threading.Event()
    lost = []
    out = sys.stdout.buffer

    def reader():
        while not done.is_set():
            try:
                data = t.recv_text()
            except Exception as e:  # the node closed or reset: the session is over
                lost.append(e)
                done.set()
                return
            if data:
                out.write(data)
                out.flush()

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    th = threading.Thread(target=reader, daemon=True)
    try:
        tty.setraw(fd)
        th.start()
        t.send_text("\r")  # show a prompt
        while not done.is_set():
            if not select.select([fd], [], [], 0.2)[0]:
                continue
            keys = os.read(fd, 256)
            leave = not keys or CTRL_RIGHT_BRACKET in keys
            keys = keys.split(CTRL_RIGHT_BRACKET)[0]
            if keys:
                t.send_text(keys)
            if leave:
                break
    except WebReplError as e:
        lost.append(e)
    finally:
        done.set()
        th.join(1)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        close(t)
    print()
    if lost:
        raise CliError("the WebREPL session with %s ended: %s" % (t.device_name, lost[0]))
    return 0
