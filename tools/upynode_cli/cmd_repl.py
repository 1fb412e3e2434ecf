"""`upynode repl`: hand the terminal over to mpremote's REPL."""
import os
import sys

from . import port_must_exist


def add_arguments(p):
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")


def run(args):
    port_must_exist(args.port)
    # Replace this process: mpremote owns the terminal (raw mode, Ctrl-])
    # and its exit status is the user's.
    argv = [sys.executable, "-m", "mpremote", "connect", args.port, "repl"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
