# Fake `webrepl`: records that it was started, and with which password, so
# tests can check setup mode. The WebREPL protocol itself is served by the
# test fixture in tests/, not from inside the VM.
import _world


def start(port=8266, password=None, accept_handler=None):
    _world.put_state("webrepl", {"port": port, "password": password})
    print("WebREPL server started on http://127.0.0.1:%d/" % port)


def stop():
    _world.put_state("webrepl", None)
