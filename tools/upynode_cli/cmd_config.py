"""`upynode config get|set|put|edit`: a node's config.json, over WebREPL
(--host) or USB (--port); `upynode config check FILE` checks a file here.

Every write is validated by the firmware's own config module first, then
written with transport.safe_write: uploaded to config.json.tmp, checked by
its hash on the node, and only then renamed over config.json. A dropped
connection leaves at most a stray config.json.tmp, never a half-written
config.json.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

from . import CliError, firmware_config, say
from .transport import add_board_arguments, connect, read_file, reset, safe_write

CONFIG = "config.json"


def add_arguments(p):
    common = argparse.ArgumentParser(add_help=False)
    add_board_arguments(common)
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument("--reset", action="store_true",
                        help="reset the node afterwards so the new config takes effect")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser("get", parents=[common], help="print the node's config.json")
    g.add_argument("--show-secrets", action="store_true", help="do not mask passwords")
    s = sub.add_parser("set", parents=[common, writes], help="change keys: a.b=value ...")
    s.add_argument("pairs", nargs="+", metavar="KEY=VALUE",
                   help="dotted key (list items by index: sensors.0.pin); "
                        "value as JSON when it parses, else a string")
    u = sub.add_parser("put", parents=[common, writes], help="upload a whole config file")
    u.add_argument("file", help="local config.json to upload")
    sub.add_parser("edit", parents=[common, writes], help="edit the node's config.json in $EDITOR")
    c = sub.add_parser("check", help="check a local config file as the node would (no board needed)")
    c.add_argument("file", help="local config.json to check")


def validate(data, what, done="nothing was written"):
    # data: the file's bytes (or text), checked as the node reads it:
    # size, UTF-8, JSON, then every key.
    try:
        firmware_config().parse(data)
    except ValueError as e:  # config.ConfigError is a ValueError
        raise CliError("%s is not valid, %s: %s" % (what, done, e))


def read_local(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CliError("cannot read %s: %s" % (path, e.strerror))


def parse_pairs(pairs):
    """['wifi.ssid=home', 'interval_s=30'] -> [(['wifi', 'ssid'], 'home'), (['interval_s'], 30)]"""
    defaults = firmware_config().DEFAULTS
    out = []
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key or any(not k for k in key.split(".")):
            raise CliError("expected KEY=VALUE, got %r" % pair)
        path = key.split(".")
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):  # validation says what is wrong with it
            value = raw
        # Where the default is a string, a bare word stays a string: no need
        # to quote wifi.ssid=1234 as '"1234"'.
        d = defaults
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        if isinstance(d, str) and not isinstance(value, str):
            value = raw
        out.append((path, value))
    return out


def apply(cfg, path, value):
    node = cfg
    for i, k in enumerate(path[:-1]):
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise CliError("%s: no list item %s" % (".".join(path[:i + 1]), k))
            node = node[int(k)]
        elif isinstance(node, dict):
            node = node.setdefault(k, {})
        else:
            raise CliError("%s is not an object" % ".".join(path[:i]))
    last = path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise CliError("%s: no list item %s" % (".".join(path), last))
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise CliError("%s is not an object" % ".".join(path[:-1]))


def dumps(cfg):
    return json.dumps(cfg, indent=2) + "\n"


def read_device(t):
    return read_file(t, CONFIG).decode("utf-8", "replace")


def write_device(t, text, reset_after):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    safe_write(t, CONFIG, data)
    say("upynode: config.json written on %s (%d bytes)" % (t.device_name, len(data)))
    if reset_after:
        reset(t)
        say("upynode: node reset")
    else:
        say("upynode: the node stopped at its REPL; reset it (or pass --reset) to use the new config")


def edit_text(text):
    """Run $VISUAL/$EDITOR on a private temp copy until it validates (or the user gives up)."""
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="upynode-") as d:  # 0700: the copy holds secrets
        path = os.path.join(d, CONFIG)
        with open(path, "w") as f:
            f.write(text)
        while True:
            if subprocess.call(editor + [path]):
                raise CliError("the editor (%s) failed; nothing was written" % editor[0])
            with open(path) as f:
                new = f.read()
            try:
                validate(new, "the edited config")
                return new
            except CliError as e:
                if not sys.stdin.isatty():
                    raise
                say("upynode: %s" % e)
                if input("Edit again? [Y/n] ").strip().lower() not in ("", "y", "yes"):
                    raise CliError("nothing was written")


def run(args):
    try:
        return _run(args)
    except RecursionError:  # CPython's json and dumps on a value nested thousands deep
        raise CliError("config.json is nested too deeply to handle; replace it with `config put`")


def _run(args):
    # Check what can be checked before the network.
    if args.action == "check":
        validate(read_local(args.file), args.file, "the node would go to setup mode")
        say("upynode: %s is valid" % args.file)
        return 0
    if args.action == "set":
        pairs = parse_pairs(args.pairs)
    if args.action == "put":
        put_text = read_local(args.file)
        validate(put_text, args.file)

    with connect(args) as t:
        if args.action == "get":
            raw = read_file(t, CONFIG)
            text = raw.decode("utf-8", "replace")
            try:
                cfg = json.loads(text)
            except ValueError as e:
                if args.show_secrets:
                    sys.stdout.write(text)
                    return 1
                raise CliError("config.json on the node is not valid JSON (%s); "
                               "--show-secrets prints it as it is" % e)
            conf = firmware_config()
            sys.stdout.write(dumps(cfg if args.show_secrets else conf.masked(cfg)))
            try:
                conf.parse(raw)  # the bytes, as the node reads them
            except ValueError as e:
                say("upynode: warning: this config does not validate: %s" % e)
            return 0
        if args.action == "put":
            write_device(t, put_text, args.reset)
            return 0
        current = read_device(t)
        if args.action == "set":
            try:
                cfg = json.loads(current)
            except ValueError:
                raise CliError("config.json on the node is not valid JSON; replace it with `config put`")
            for path, value in pairs:
                apply(cfg, path, value)
            new = dumps(cfg)
            validate(new, "the changed config")
            write_device(t, new, args.reset)
            return 0
    # edit: no connection held open while a person edits (it would time out).
    new = edit_text(current)
    if new == current:
        say("upynode: no change; nothing was written")
        return 0
    with connect(args) as t:
        write_device(t, new, args.reset)
    return 0
