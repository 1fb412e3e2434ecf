# MQTT with umqtt.simple: the state message (JSON, or one bare value per
# quantity in "raw" format), availability (last will "offline", "online"
# after each connect), Home Assistant discovery, and the LED switch.
# A failure closes the connection and costs this one message; the next
# publish reconnects and restores the subscriptions (umqtt does not).
import time

from micropython import const

from upynode import save
from upynode.sock import describe
from upynode.sensors import num

FP_FILE = "discovery.fp"  # what was announced: fingerprint, quantities, "+led" for the switch
# The announcement, built at boot when the config changed (discovery.write)
DISC_FILE = "discovery.bin"

# Mqtt.announce, what the next chance to announce the entities to Home
# Assistant does. const() with a leading underscore: the compiler puts the
# number in the code, so the names cost no heap (module globals cost the
# loop 96 bytes, measured in the VM).
_NOTHING = const(0)  # no discovery (raw format, or discovery off)
_CHANGED = const(1)  # only if they differ from what FP_FILE says was announced
_AGAIN = const(2)    # all of them: Home Assistant restarted and forgot them
# An announcement the heap had no room for is tried again after this, then
# twice as long each time, up to an hour (Mqtt._announce_when_it_fits).
_RETRY_S = const(60)
# Home Assistant's "online" starts an announcement at most this often: a
# storm of them (20 a second) made one full announcement each.
_AGAIN_MS = const(30000)


class Mqtt:
    name = "mqtt"
    sleepy = False  # a deep-sleep node (set by the loop)
    announce_at = None  # ticks before which no announcement is tried (None: now)
    announce_ooms = 0  # announcements in a row that ran out of memory
    announced = None  # ticks of the last announcement sent
    too_big = ()  # topics whose oversized messages were reported (a few)
    cause = 0  # why the node started (set by the loop: assemble.cause)
    stay_s = 0  # a deep-sleep node asked to stay awake this long (~/awake, retained: deploy --wait-awake)

    def __init__(self, c, node_id, units=None, led=None, log=print):
        self.c = c
        self.node_id = node_id
        # The topics used at a connect or a replay only (status, HA's
        # status, backlog) are made there, not kept, and the raw format's
        # order only for that format: make bench --quick (the loop from
        # ROMFS, 64-bit VM, at 052504e) 256 and 96 B less.
        self.order = [q for q, u in units or ()] if c["format"] != "json" else ()  # the raw format's topics
        self.led = led if led is not None and led.mode == "remote" else None
        self.log = log
        self.client = None
        self.base = "%s/%s" % (c["base_topic"], node_id)
        self.state_topic = self.base + ("/state" if c["format"] == "json" else "")
        # Old readings go to their own topic, never onto the live state:
        # Home Assistant would show a replayed value as the current one.
        # The raw format carries no seq: it keeps no history.
        self.history = c["format"] == "json"
        self.discovery = c["discovery"] and c["format"] == "json"
        self.announce = _CHANGED if self.discovery else _NOTHING
        self.where = "mqtt %s:%d" % (c["host"], c["port"])
        # Loaded now, while the heap is in one piece: loading code needs
        # contiguous blocks, which a fragmented loop heap may not have.
        try:
            import umqtt.simple  # noqa: F401
        except ImportError:  # not deployed: each connect() says so
            pass

    def connect(self):
        from umqtt import simple as U
        c = self.c
        # umqtt.simple has no timeout of its own: without one a silent broker
        # or a half-open connection blocks the node forever.
        from upynode.sock import Net
        U.socket = Net(c["timeout_s"])
        # bytes throughout: umqtt counts len(), which for a str is characters
        user = c["user"].encode() if c["user"] else None
        cl = U.MQTTClient(self.node_id.encode(), c["host"], c["port"], user,
                          c["password"].encode() if user else None, c["keepalive"])
        status = (self.base + "/status").encode()
        cl.set_last_will(status, b"offline", True)
        cl.set_callback(self._message)
        self.client = cl  # so that close() closes its socket if connect fails
        cl.connect()
        self.pinged = False
        cl.publish(status, b"online", True)
        if self.sleepy:
            # A deep-sleep wake takes one command: stay awake (for an
            # update, ESPHome's ota_mode). Retained, it arrives after the
            # SUBACK, while the reading's PUBACK is awaited: one round trip.
            cl.subscribe((self.base + "/awake").encode())
            return
        if self.led:
            cl.subscribe((self.base + "/led/set").encode())
            self._led_state()
        if self.discovery:
            cl.subscribe((c["discovery_prefix"] + "/status").encode())
        self.log("mqtt: connected to %s:%d" % (c["host"], c["port"]))

    def bye(self):
        # Before deep sleep: DISCONNECT, so that the broker does not send the
        # last will: the node is asleep, not gone (expire_after tells HA when
        # a wake is missed).
        if self.client:
            try:
                self.client.disconnect()
            except Exception:
                pass
        self.client = None

    def close(self):
        if self.client and self.client.sock:
            try:
                self.client.sock.close()
            except Exception:
                pass
        self.client = None

    def _message(self, topic, msg):
        s = self.client.sock if self.client else None
        if s is not None and s.dropped:
            # Over sock.MAX_IN: read off the socket and thrown away (umqtt
            # would have held it whole). Said once per topic, not per
            # delivery: a retained one comes back at every connect.
            if topic not in self.too_big:
                self.too_big = (self.too_big + (topic,))[-4:]
                self.log("mqtt: ignored a message of %d bytes on %s (commands are short)"
                         % (s.dropped, topic.decode() or "a topic too long"))
            s.dropped = 0
            return
        topic = topic.decode()
        if msg == b"online" and topic == self.c["discovery_prefix"] + "/status":
            self.announce = _AGAIN
            t = self.announced
            if t is not None and time.ticks_diff(time.ticks_ms(), t) < _AGAIN_MS:
                self.announce_at = time.ticks_add(t, _AGAIN_MS)  # debounced, not dropped
        elif topic.endswith("/awake"):
            msg = msg.decode()
            self.stay_s = min(int(msg), 3600) if msg.isdigit() else 0
        elif self.led and topic.endswith("/led/set"):
            if msg in (b"ON", b"OFF"):
                self.led.sig.value(1 if msg == b"ON" else 0)
                self._led_state()
            else:
                self.log("mqtt: led/set wants ON or OFF, not %r" % msg[:20])

    def _led_state(self):
        self.client.publish((self.base + "/led/state").encode(), b"ON" if self.led.sig.value() else b"OFF", True)

    def _announce_when_it_fits(self):
        # Announcing needs more heap than a reading does. When a fragmented
        # heap has not got it, the readings go on without it (node.Node
        # would count a MemoryError, and three in a row reset the node: a
        # node that fails to announce after every boot would then never
        # deliver), and it is tried again later, backing off.
        if self.announce_at is not None and time.ticks_diff(time.ticks_ms(), self.announce_at) < 0:
            return
        pending = self.announce
        try:
            self._announce()
            self.announce_at, self.announce_ooms = None, 0
            self.announced = time.ticks_ms()
        except MemoryError:
            import gc
            self.close()  # it may hold half a packet: the reading gets a new one
            self.announce = pending
            gc.collect()
            self.announce_ooms += 1
            wait = min(3600, _RETRY_S << min(self.announce_ooms - 1, 6))
            self.announce_at = time.ticks_add(time.ticks_ms(), wait * 1000)
            self.log("mqtt: not enough memory to announce to Home Assistant (%d B free): again in %d s"
                     % (gc.mem_free(), wait))

    def _announce(self):
        # The info, then the entities as discovery.write() saved them: ready
        # packets, streamed from flash in small pieces (never a payload in
        # RAM), when they differ from what FP_FILE says was announced, or
        # all of them again when HA restarted.
        again, self.announce = self.announce == _AGAIN, _NOTHING
        try:
            # What HA shows of the node beyond its readings, retained on
            # ~/info: its address (an attribute of the WiFi signal), why
            # it started (an entity of its own: the state message says
            # reset only once), the firmware (in discovery.bin's first
            # line: startup.announcement) and an update taken back
            # (update.ROLLED_BACK, until the next deploy stages one).
            import network
            try:
                f = open(DISC_FILE, "rb")
            except OSError:
                f = None
            fw = f.readline().split()[2:3] if f else ()  # what it was built from: key, node, firmware
            info = '{"ip":"%s","reset":%d' % (network.WLAN(network.STA_IF).ifconfig()[0], self.cause)
            if fw:
                info += ',"fw":"%s"' % fw[0].decode()
            try:
                with open("romfs.rolledback") as g:  # update.ROLLED_BACK
                    info += ',"update":"%s"' % g.read().strip().replace('"', "'")
            except OSError:
                pass
            self.client.publish((self.base + "/info").encode(), (info + "}").encode(), True)
            if f is None:
                self.log("mqtt: nothing to announce: %s is missing (see the boot's log)" % DISC_FILE)
                return
            with f:
                fp = f.readline().strip()
                n = int(f.readline())
                try:
                    with open(FP_FILE, "rb") as g:
                        old = g.read().split()
                except OSError:
                    old = ()
                if not again and fp.split() == old:
                    return
                buf = bytearray(128)
                s = self.client.sock
                while True:
                    k = f.readinto(buf)
                    if not k:
                        break
                    s.write(buf, k)
        except OSError:
            # the connection lost halfway: all of it again at the next
            # connect, not at the next boot
            self.announce = _AGAIN if again else _CHANGED
            raise
        # whole or not at all: a torn file would announce again, or worse, not
        save(FP_FILE, fp)
        self.log("mqtt: announced %d entities to Home Assistant" % n)

    def poll(self):
        # Between readings: take LED commands and HA's restarts as they come,
        # and keep the connection alive (umqtt.simple never pings by itself).
        if self.client is None:
            return
        try:
            while self.client.check_msg() is not None:
                pass
            if self.announce:
                self._announce_when_it_fits()
                if self.client is None:  # no memory for it: connected again at the next reading
                    return
            ka = self.c["keepalive"] * 1000
            quiet = time.ticks_diff(time.ticks_ms(), self.client.sock.rx)
            if ka and quiet > ka // 2 and not self.pinged:
                self.client.ping()
                self.pinged = True
            elif ka and quiet > ka:
                # no answer to the ping: the connection is dead though
                # writes still "succeed" into the TCP buffer
                raise OSError(110)
            elif quiet < ka // 2:
                self.pinged = False
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s: %s" % (self.where, describe(e)))
            self.close()

    def send(self, msg, text):
        # msg: the state message; text: it as JSON (node.Node.cycle); None:
        # only connect and announce (before the first reading: node.Node.start).
        try:
            if self.client is None:
                self.connect()
            if self.announce:
                self._announce_when_it_fits()
                if self.client is None:  # it had no memory and dropped the connection
                    self.connect()
            if msg is None:
                pass
            elif self.c["format"] == "json":
                # QoS 1: True only once the broker has it (PUBACK). QoS 0
                # into a dead connection "succeeds" and the reading is lost.
                self.client.publish(self.state_topic.encode(), text.encode(), False, 1)
            else:
                self._send_raw(msg)
            return True
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s: %s" % (self.where, describe(e)))
            self.close()
            return False

    def replay(self, records):
        # Queued readings (JSON bytes), oldest first, each acknowledged by
        # PUBACK -> how many the broker has.
        n = 0
        topic = (self.base + "/backlog").encode()
        try:
            for r in records:
                self.client.publish(topic, r, False, 1)
                n += 1
        except MemoryError:
            raise
        except Exception as e:
            self.log("mqtt: %s: %s" % (self.where, describe(e)))
            self.close()
        return n

    def _send_raw(self, msg):
        # The tutorial's format: a bare value per quantity, and the first
        # quantity also on <base_topic>/<node_id>, where its YAML looks.
        first = True
        for q in self.order:
            if q in msg:
                v = num(msg[q]).encode()
                if first:
                    self.client.publish(self.base.encode(), v)
                    first = False
                self.client.publish((self.base + "/" + q).encode(), v)
