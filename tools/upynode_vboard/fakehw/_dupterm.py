# os.dupterm(stream, index=0) as far as the firmware uses it, for the fake
# os module of boards that serve WebREPL (board_os/os.py). On the
# ESP8266 slot 0 holds the WebREPL session's stream from the connection's
# accept until it closes (slot 1 is the UART): dupterm(None) returns what
# the slot held, dupterm(x) puts x back. Here it returns the server's
# connection, or None; detaching and attaching are not modelled (the
# firmware, like micropython-lib's webrepl.py, puts back at once what it
# took).


def dupterm(stream, index=0):
    if index:
        return None  # the UART: not modelled
    import _webrepl_vm
    s = _webrepl_vm.server
    return s.ws if s is not None else None
