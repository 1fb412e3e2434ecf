# The identity and time of a reading: (boot, seq) and ts or up.
# boot: a counter on flash, +1 per boot and written once per boot
# (assemble.next_boot), so that (node, boot, seq) names a reading across
# reboots and a receiver can drop duplicates. ts: unix seconds once NTP
# answered; before that "up", seconds since boot, which the node turns
# into ts before replaying a queued reading if it syncs within the same
# boot (backlog.replay).
import time

RESYNC_MS = 3 * 3600 * 1000  # the ESP8266's RTC drifts and wraps every ~7 h 45 min
# time.time() counts from 2000-01-01 on ports built that way (the ESP8266)
EPOCH_2000 = 946684800
# An NTP answer is believed only from EARLIEST (no build of this source is
# older) to 20 years after: a server that says 2100 would stamp every
# reading with a time its receiver refuses, and the queue would hold them.
EARLIEST = 1767225600  # 2026-01-01
LATEST = EARLIEST + 20 * 365 * 86400


class Clock:
    def __init__(self, host, log=print):
        self.host = host      # "" = no NTP
        self.log = log
        self.up_ms = 0        # uptime, kept across ticks_ms wrapping (2**30 ms on the chip)
        self.last = time.ticks_ms()
        self.epoch = None     # unix seconds at up_ms == 0, once synced
        self.synced_at = None
        if host:
            # Loaded now, while the heap is in one piece (frozen in the
            # ESP8266's firmware, where it costs no heap at all)
            import ntptime  # noqa: F401

    def uptime(self):
        now = time.ticks_ms()
        self.up_ms += time.ticks_diff(now, self.last)
        self.last = now
        return self.up_ms // 1000

    def sync(self):
        # One attempt, at most every RESYNC_MS; a failure costs ntptime's
        # timeout (1 s) and is tried again at the next sync().
        up = self.uptime()
        if not self.host or (self.synced_at is not None and self.up_ms - self.synced_at < RESYNC_MS):
            return
        try:
            import ntptime
            ntptime.host = self.host
            # the server's seconds (since 2000 where the port counts from
            # there); the RTC is left alone: readings take self.epoch
            u = int(ntptime.time())
            t = u + EPOCH_2000 if time.gmtime(0)[0] == 2000 else u
            if not EARLIEST <= t <= LATEST:
                raise ValueError("%d-%02d-%02d is not believed (before this firmware, or 20 years after it): "
                                 "readings keep their uptime" % time.gmtime(u)[:3])
        except Exception as e:
            self.log("ntp: %s: %s" % (self.host, e))
            self.synced_at = self.up_ms - RESYNC_MS + 60000  # again in a minute
            return
        first = self.epoch is None
        self.epoch = t - up
        self.synced_at = self.up_ms
        if first:
            self.log("ntp: synced")

    def stamp(self, rec):
        # Put ts (synced) or up (not yet) into a reading.
        up = self.uptime()
        if self.epoch is None:
            rec["up"] = up
        else:
            rec["ts"] = self.epoch + up
