# Fake `ntptime` (micropython-lib micropython/net/ntptime): time() asks the
# NTP server, settime() sets the RTC from it. The "server" is the host's
# clock; nothing is dialled (the chip's default host is "pool.ntp.org"; the
# node sets its own). A world fault "ntptime": "timeout", or a station that
# is not joined, is a server that does not answer: recv() gives up after
# `timeout` seconds with OSError(110), ETIMEDOUT, as on the chip. The world's
# "ntp_offset_s" makes the server wrong by that many seconds.
import time as _time

import _world

host = "127.0.0.1"
timeout = 1


def time():
    import network
    if _world.fault("ntptime") == "timeout" or not network.WLAN(network.STA_IF).isconnected():
        _time.sleep(timeout)
        raise OSError(110)
    try:  # the host's clock: the VM's own time, also under fakehw/clock
        import utime
    except ImportError:  # CPython (the unit tests)
        import time as utime
    t = int(utime.time()) + _world.get("ntp_offset_s")  # a server that is wrong by that much
    # NTP_DELTA by the port's epoch, as ntptime.py picks it
    return t - 946684800 if _time.gmtime(0)[0] == 2000 else t


def settime():
    t = time()
    import machine
    tm = _time.gmtime(t)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6] + 1, tm[3], tm[4], tm[5], 0))
