"""The firmware's heap on a 32-bit MicroPython: the WebAssembly port.

The unix port that runs the virtual board is 64-bit: its pointers, and so
its objects, are twice the ESP8266's. MicroPython's WebAssembly port (npm
@micropython/micropython-webassembly-pyscript) has 32-bit pointers and loads
the same .mpy files (v6.3) as the deployed build; it runs under Node.

- Its heap grows on demand, and it grows instead of collecting while a call
  runs (measured: 1,000 bytearray(1000) of garbage in one call grow a 39 KB
  heap to 1.2 MB): so the bytes a stage keeps are gc.mem_alloc() after
  gc.collect() in a call of its own, and a stage's peak is not visible here.
- The GC scans the stack conservatively, so objects the current runPython()
  call points at stay alive: each stage (boot, loop set-up, cycles, ...)
  runs in its own call, then a call collects, then another collects again
  and counts (one collection left 7.4 KB of a cycle's garbage alive):
  heap32_vm/run.mjs.
- The chip's own modules (machine, network, dht, esp, usocket, ...) are C in
  flash on the ESP8266. Here the virtual board's fakes stand in for them
  (fakehw/, kept in memory instead of files) plus a socket peer in memory
  (heap32_vm/usocket.py); what they and the interpreter hold before boot is
  measured and subtracted from every figure.
- Floats: the ESP8266 stores small floats inside the object word; the
  WebAssembly (and unix) port boxes each float in 16 bytes of heap. A
  reading holds a few floats, so these figures are a little above the
  chip's for the values of one reading, and equal for code and strings.

- ROMFS: this port (1.27.0, the pyscript build) has no vfs.VfsRom
  (dir(vfs): VfsPosix, mount, umount), so lib/ in ROMFS cannot be measured
  here; bench.rom_rows measures it in the 64-bit VM and scales the saving.

`python -m upynode_vboard.heap32` fetches the port into build/heap32 (npm,
pinned by integrity) and prints where it is.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

from upynode_cli.project import BUILD, mpy_cross

from . import FAKES

PACKAGE = "@micropython/micropython-webassembly-pyscript"
VERSION = "1.27.0"
# `npm view @micropython/micropython-webassembly-pyscript@1.27.0 dist.integrity`
INTEGRITY = ("sha512-DnXx4EqxgkeaFESrS3uKrL7mLMk4mRTd0mMzaOd3HUSiZUOAE7t11uLnjf3ftF87N2xm4knH"
             "nWEKcVK4IYIUDA==")
MEMBERS = ("micropython.mjs", "micropython.wasm", "README.md")
DIR = BUILD / "heap32"
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "heap32_vm")
RUNNER = os.path.join(HERE, "run.mjs")
# The chip's modules that the fakes stand in for; micropython is built in.
STAND_INS = ("_world", "machine", "_machine_more", "network", "dht", "esp", "webrepl",
             "ntptime", "onewire", "ds18x20")
# The fakes keep their world and state in files in the folder named by
# $UPYNODE_VBOARD, as in the VM (not in the heap); this port has no
# os.getenv: the folder is named in their code instead.
WORLD_DIR_LINE = 'DIR = os.getenv("UPYNODE_VBOARD")'
WORLD_DIR = "/vboard"


def module_path():
    return DIR / "micropython.mjs"


def ensure():
    """The pinned port in build/heap32 (fetched with npm once); its path."""
    if all((DIR / m).is_file() for m in MEMBERS) and (DIR / "integrity").read_text() == INTEGRITY:
        return module_path()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "%s@%s" % (PACKAGE, VERSION), "--pack-destination", tmp,
                        "--ignore-scripts", "--silent"], check=True, cwd=tmp, stdout=subprocess.DEVNULL)
        tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
        data = open(os.path.join(tmp, tgz), "rb").read()
        algo, expected = INTEGRITY.split("-", 1)
        got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
        if got != expected:
            raise RuntimeError("%s: integrity %s-%s, pinned %s" % (tgz, algo, got, INTEGRITY))
        DIR.mkdir(parents=True, exist_ok=True)
        with tarfile.open(os.path.join(tmp, tgz)) as tar:
            for m in MEMBERS:  # named members only: the archive chooses no paths
                (DIR / m).write_bytes(tar.extractfile("package/" + m).read())
    (DIR / "integrity").write_text(INTEGRITY)
    return module_path()


def _compile(src_text, name, out_dir):
    src = os.path.join(out_dir, name + ".py")
    with open(src, "w") as f:
        f.write(src_text)
    dest = os.path.join(out_dir, name + ".mpy")
    subprocess.run([mpy_cross(), "-o", dest, src], check=True)
    with open(dest, "rb") as f:
        return f.read()


def clock_mpy(tmp):
    """The benchmarks' clock (heap32_vm/time.py), compiled: sleeps skipped."""
    with open(os.path.join(HERE, "time.py")) as f:
        return _compile(f.read(), "time", tmp)


def stand_in_files():
    """{path in the VM: bytes}: the stand-ins, precompiled (the chip's
    modules are not compiled on it either), in /stand_ins."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in STAND_INS:
            with open(os.path.join(FAKES, name + ".py")) as f:
                text = f.read()
            if name == "_world":
                if WORLD_DIR_LINE not in text:
                    raise RuntimeError("fakehw/_world.py no longer has %r: update heap32.py" % WORLD_DIR_LINE)
                text = text.replace(WORLD_DIR_LINE, "DIR = %r" % WORLD_DIR)
            out["/stand_ins/%s.mpy" % name] = _compile(text, name, tmp)
        with open(os.path.join(HERE, "usocket.py")) as f:
            peer = f.read()
        for name in ("usocket", "socket"):  # the firmware and umqtt import either
            out["/stand_ins/%s.mpy" % name] = _compile(peer, name, tmp)
        # `time` is not extensible in this port: the stand-ins' stage puts
        # the clock in sys.modules under that name instead
        out["/stand_ins/_vclock.mpy"] = clock_mpy(tmp)
    return out


def board_files(board_dir, config):
    """{path in the VM: bytes}: a board folder as deployed, and config.json."""
    out = world_file(aps(config))
    for dirpath, dirnames, files in os.walk(board_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in files:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, board_dir).replace(os.sep, "/")
            if rel.endswith((".py", ".mpy")) or rel == "lib/upynode/build.txt":  # the build's id: startup.firmware()
                with open(p, "rb") as fh:
                    out["/" + rel] = fh.read()
    out["/config.json"] = json.dumps(config).encode()
    out["/config.ok"] = checked_entry(board_dir, config).encode()
    return out


def checked_entry(board_dir, config):
    """config.ok for this config on this board, as `upynode deploy --config`
    installs it (upynode_cli.checked): the node boots without checking."""
    from upynode_cli import checked
    return checked.entry(json.dumps(config).encode(), os.path.join(board_dir, "lib", "upynode"))


def aps(config):
    """The access point the config joins, as the fakes' world names it."""
    w = config.get("wifi", {})
    return {w.get("ssid", ""): {"password": w.get("password", "")}}


def world_file(ap):
    """{path: bytes}: the fakes' world (for a program without a config)."""
    return {WORLD_DIR + "/world.json": json.dumps({"aps": ap, "connect_ms": 0}).encode()}


def stand_ins_stage():
    """The stage that loads the stand-ins (measured, then subtracted)."""
    return ("stand-ins", "import sys\nsys.path.append('/stand_ins')\nimport _vclock\nsys.modules['time'] = _vclock\n"
            "import _world, machine, network, dht, esp, webrepl, ntptime, usocket, socket\n")


class Port:
    """The Node process that runs jobs in the WebAssembly port."""

    def __init__(self):
        self.wasm = str(ensure())
        self.proc = subprocess.Popen(["node", RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.cache = {}

    def run(self, files, stages, heap=0):
        """[{"name", "alloc", "total", "out", "error"}] for "start", then
        each stage that ran; heap: the starting heap in bytes (0: 1 MB)."""
        job = {"wasm": self.wasm, "heap": heap, "stages": stages,
               "files": {k: base64.b64encode(v).decode() for k, v in files.items()}}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        res = json.loads(self.proc.stdout.readline() or '{"error": "node exited"}')
        if "error" in res:
            raise RuntimeError("WebAssembly port: " + res["error"])
        return res["stages"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def measure(port, files, stages):
    """Per stage: {"name", "kept", "qstr", "error", "out"}: the bytes in use
    after the stage (of which qstr: the interned strings' pools, which grow
    a chunk at a time, so kept jumps by a KB or two where one is added),
    less what the interpreter and the stand-ins hold after
    theirs (stages[0] must be stand_ins_stage()); row 0 also has
    "stand_ins": that floor. There is no peak: this port does not collect
    while a call runs (it grows the heap instead), so the heap a stage
    needs at its peak cannot be seen here; bench.py finds it in the 64-bit
    VM and scales it."""
    ran = port.run(files, stages)[1:]
    if not ran or ran[0].get("error"):
        raise RuntimeError("stand-ins: %s" % (ran[0].get("error") if ran else "did not run"))
    floor, qfloor = ran[0]["alloc"], ran[0].get("qstr", 0)
    out = []
    for i, (name, _) in enumerate(stages):
        st = ran[i] if i < len(ran) else {"error": "not reached"}
        ok = st.get("alloc") is not None and not st.get("error")
        out.append({"name": name, "kept": st["alloc"] - floor if ok else None,
                    "qstr": st.get("qstr", 0) - qfloor if ok else None,
                    "error": st.get("error"), "out": st.get("out", [])})
    out[0]["stand_ins"] = floor
    return out


if __name__ == "__main__":
    try:
        print("%s %s: %s" % (PACKAGE, VERSION, ensure()))
    except (OSError, subprocess.CalledProcessError, RuntimeError) as e:
        sys.exit("could not fetch %s %s: %s" % (PACKAGE, VERSION, e))
