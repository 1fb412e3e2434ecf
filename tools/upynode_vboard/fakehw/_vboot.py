# Boots the virtual board as the ESP8266 port does: boot.py, then main.py,
# each in the globals of __main__ (the REPL's, as pyexec_file does on the
# chip); an exception in boot.py is printed and main.py still runs. A
# reset (SystemExit from the fake machine module) or Ctrl-C goes through.
# The runner starts the VM with run(); vserial calls it inside the REPL.
import sys

import __main__

# The chip's modules keep their names in its flash: the fakes' names are
# interned now, before the firmware's (runner.names_module).
try:
    import _vnames  # noqa: F401
    del sys.modules["_vnames"]
except ImportError:  # the CPython tests import this file too
    pass


def fs():
    # The board's filesystem: "/" is its folder, and its flash has a size
    # (_boardfs.py; the runner puts board_os/os.py, the board's os, on the
    # path). Before boot.py, as the chip's is; the bench's stage runs call
    # it first too, so that it is part of the VM's floor there.
    import _boardfs
    import _world
    _boardfs.install(_world.get("fs_kb"), _world.DIR)


def run(names=("boot.py", "main.py")):
    fs()
    for name in names:
        try:
            src = open(name).read()
        except OSError:
            continue
        try:
            exec(src, __main__.__dict__)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            sys.print_exception(e)
