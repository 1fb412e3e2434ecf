"""upynode host CLI: flash, deploy and configure ESP8266 sensor nodes.

Shaped like mpremote: `main.py` holds the command table, each command lives
in its own module with `add_arguments(parser)` and `run(args)`. Installed
with `pip install -e tools` (make venv does it) as the `upynode` command.
"""
import os
import sys

class CliError(Exception):
    """A user-facing failure: main() prints its message on one line, exits 1."""


def firmware_config():
    """The firmware's own config module (lib/upynode/config.py).

    Imported, never copied, so the host validates exactly as the node does.
    lib/ is not installed on the host: the package `upynode` is loaded from
    its folder under its own name, so its modules import each other as they
    do on the node.
    """
    import importlib.util

    from .project import LIB

    if "upynode" not in sys.modules:
        init = LIB / "upynode" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            "upynode", init, submodule_search_locations=[str(init.parent)])
        if spec is None:
            raise CliError("cannot find the firmware in %s" % LIB)
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["upynode"] = pkg
        try:
            spec.loader.exec_module(pkg)
        except (OSError, ImportError) as e:
            del sys.modules["upynode"]
            raise CliError("cannot import the firmware from %s: %s" % (LIB, e))
    from upynode import config
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
