"""upynode host CLI: flash, deploy and configure ESP8266 sensor nodes.

Shaped like mpremote: `main.py` holds the command table, each command lives
in its own module with `add_arguments(parser)` and `run(args)`.
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class CliError(Exception):
    """A user-facing failure: main() prints its message on one line, exits 1."""


def firmware_config():
    """The firmware's own config module (lib/upynode/config.py).

    Imported, never copied, so the host validates exactly as the node does.
    """
    lib = str(REPO / "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)
    try:
        from upynode import config
    except ImportError as e:
        raise CliError("cannot import the firmware's config module from %s: %s" % (lib, e))
    return config


def say(*args, **kw):
    """Progress goes to stderr so stdout stays clean for data (config get)."""
    kw.setdefault("file", sys.stderr)
    kw.setdefault("flush", True)
    print(*args, **kw)


def port_must_exist(port):
    # On POSIX a serial port is a device file; anything else (COM3,
    # rfc2217://...) is left for pyserial to judge.
    if os.name == "posix" and "://" not in port and not os.path.exists(port):
        from serial.tools import list_ports

        found = ", ".join(p.device for p in list_ports.comports()) or "none"
        raise CliError("no such port %s (serial ports found: %s; see `upynode ports`)"
                       % (port, found))
