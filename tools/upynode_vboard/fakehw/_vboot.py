# Starts the virtual board as the ESP8266 port does: boot.py, then main.py,
# each as __main__; an exception in boot.py is printed and main.py still runs.
import sys


def _run(name):
    try:
        src = open(name).read()
    except OSError:
        return
    try:
        exec(src, {"__name__": "__main__"})
    except KeyboardInterrupt:
        raise
    except SystemExit:
        raise
    except Exception as e:
        sys.print_exception(e)


_run("boot.py")
_run("main.py")
