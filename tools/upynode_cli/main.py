"""Command table and dispatch for the `upynode` command."""
import argparse
import importlib
import sys

from . import CliError

# name -> (module, one-line help). Modules are imported on use only, so
# `upynode ports` does not pay for esptool or mpremote.
COMMANDS = {
    "ports": ("cmd_ports", "list serial ports and name the known USB-serial boards"),
    "flash": ("cmd_flash", "erase the chip and write a MicroPython firmware image (esptool)"),
    "build": ("build", "fetch the dependencies and lay out the board's filesystem in build/board"),
    "deploy": ("cmd_deploy", "build the firmware and copy what changed onto a board"),
    "repl": ("cmd_repl", "open the board's REPL, over USB (mpremote) or WebREPL"),
    "config": ("cmd_config", "read or change config.json on a node, over WebREPL or USB"),
}


def parser():
    p = argparse.ArgumentParser(
        prog="upynode", description="Flash, deploy and configure upynode ESP8266 sensor nodes.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (modname, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_module=modname)
        _module(modname).add_arguments(sp)
    return p


def _module(name):
    return importlib.import_module("upynode_cli." + name)


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return _module(args._module).run(args) or 0
    except CliError as e:
        print("upynode %s: error: %s" % (args.command, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("upynode %s: interrupted" % args.command, file=sys.stderr)
        return 130
