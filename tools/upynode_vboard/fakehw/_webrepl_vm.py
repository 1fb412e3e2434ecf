# The virtual board's boot with WebREPL: runs boot.py and main.py (through
# _vboot) in the VM's main thread, and lets the WebREPL server (a _thread,
# _webrepl_srv.py) interrupt them as Ctrl-C over WebREPL does on the chip.
# Small on purpose: it is loaded on every boot; the server only by
# webrepl.start().
#
# On the ESP8266, WebREPL input reaches the REPL through dupterm while
# main.py runs, and Ctrl-C raises KeyboardInterrupt in main.py. The unix
# port has no os.dupterm; it has _thread (no GIL) and a SIGINT handler that
# raises KeyboardInterrupt in the main thread. So the server thread sends
# the VM a SIGINT, and runs the REPL's commands itself once main.py has
# stopped (see _webrepl_srv.py).
import sys

running = False    # boot.py/main.py are running in the main thread
idle = False       # the main thread waits at the "REPL" (no UART input)
exit_code = None   # machine.reset() from WebREPL: the VM's exit status
server = None      # the _webrepl_srv.Server, once webrepl.start() ran


def boot(files=("boot.py", "main.py"), at_repl=False):
    """As _vboot.run(files). at_repl: the unix port's own REPL takes over
    afterwards (vserial); else (the runner) the main thread waits as a chip
    at its REPL does, while WebREPL is served, until a reset."""
    global running, idle
    import _vboot
    running = True
    try:
        _vboot.run(files)
    except KeyboardInterrupt as e:
        running = False
        if exit_code is not None:
            raise SystemExit(exit_code)
        if server is None:
            raise
        sys.print_exception(e)
        server.tee_exception(e)
    finally:
        running = False
    if server is not None:
        server.main_stopped()
    if at_repl or server is None:
        return
    import time
    idle = True
    while exit_code is None:
        time.sleep_ms(20)
    raise SystemExit(exit_code)
