# Fake `webrepl` (micropython-lib's webrepl.py on the chip). It records what
# it was started with, for tests to check setup mode: state "webrepl" =
# {"port", "password", "host_port"}. In the VM, when the world names a
# "webrepl_port" (a free one the test picked), it also serves WebREPL there
# on 127.0.0.1 from inside the VM (_webrepl_srv.py). Only then: the server's
# code takes about 10 KB of the VM's heap (make bench: 25952 -> 15712 bytes
# free), which on the chip lives in flash, so a node that serves needs a
# bigger virtual heap to be measured fairly; and no test binds 8266.
# Under CPython (unit tests) it only records.
import sys

import _world

listen_s = None
client_s = None


def _host_port():
    try:
        return _world.get("webrepl_port")
    except KeyError:
        return None


def start(port=8266, password=None, accept_handler=None):
    stop()
    pw = password
    if pw is None:
        try:
            import webrepl_cfg
            pw = webrepl_cfg.PASS
        except Exception:
            print("WebREPL is not configured, run 'import webrepl_setup'")
    # _webrepl.password(pw) on the chip: a str of at most 9 bytes
    # (extmod/modwebrepl.c: a 10-byte buffer with its NUL).
    if not isinstance(pw, str):
        raise TypeError("can't convert %s to str" % type(pw).__name__)
    if len(pw.encode()) > 9:
        raise ValueError
    host_port = _host_port()
    if host_port and sys.implementation.name == "micropython":
        global listen_s
        import _webrepl_srv
        import _webrepl_vm
        _webrepl_vm.server = listen_s = _webrepl_srv.Server(host_port, pw)
    _world.put_state("webrepl", {"port": port, "password": pw, "host_port": host_port})
    print("WebREPL server started on http://127.0.0.1:%d/" % (host_port or port))
    print("Started webrepl in %s mode" % ("normal" if password is None else "manual override"))


def stop():
    global listen_s
    if listen_s is not None:
        import _webrepl_vm
        listen_s.stop()
        _webrepl_vm.server = listen_s = None
    _world.put_state("webrepl", None)
