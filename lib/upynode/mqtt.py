# MQTT with umqtt.simple: the state message (JSON, or one bare value per
# quantity in "raw" format), availability (last will "offline", "online"
# after each connect), Home Assistant discovery, and the LED switch.
# A failure closes the connection and costs this one message; the next
# publish reconnects and restores the subscriptions (umqtt does not).
import json
import time

from micropython import const

from upynode import release, save
from upynode.sock import describe
from upynode.sensors import num

FP_FILE = "discovery.fp"  # what was announced: fingerprint, quantities, "+led" for the switch

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


class Mqtt:
    name = "mqtt"
    sleepy = False  # a deep-sleep node (set by the loop)
    announce_at = None  # ticks before which no announcement is tried (None: now)
    announce_ooms = 0  # announcements in a row that ran out of memory

    def __init__(self, c, node_id, units=None, led=None, log=print, sens=None):
        self.c = c
        self.node_id = node_id
        self.order = [q for q, u in units or ()]
        self.units = dict(units or ())
        # The sensors: their drivers' HA device classes and display precision,
        # asked for when announcing (a dict of them kept here costs the loop heap).
        self.sens = sens or ()
        self.led = led if led is not None and led.mode == "remote" else None
        self.log = log
        self.client = None
        self.base = "%s/%s" % (c["base_topic"], node_id)
        self.state_topic = self.base + ("/state" if c["format"] == "json" else "")
        # Old readings go to their own topic, never onto the live state:
        # Home Assistant would show a replayed value as the current one.
        # The raw format carries no seq: it keeps no history.
        self.history = c["format"] == "json"
        self.backlog_topic = self.base + "/backlog"
        self.status_topic = self.base + "/status"
        self.discovery = c["discovery"] and c["format"] == "json"
        self.ha_status = c["discovery_prefix"] + "/status"
        self.announce = _CHANGED if self.discovery else _NOTHING
        self.where = "mqtt %s:%d" % (c["host"], c["port"])
        from upynode.sock import prime
        prime(c["host"], c["port"], log)
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
        cl.set_last_will(self.status_topic.encode(), b"offline", True)
        cl.set_callback(self._message)
        self.client = cl  # so that close() closes its socket if connect fails
        cl.connect()
        self.pinged = False
        cl.publish(self.status_topic.encode(), b"online", True)
        if self.sleepy:
            return  # a deep-sleep wake takes no commands: no subscriptions
        if self.led:
            cl.subscribe((self.base + "/led/set").encode())
            self._led_state()
        if self.discovery:
            cl.subscribe(self.ha_status.encode())
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
        topic = topic.decode()
        if topic == self.ha_status and msg == b"online":
            self.announce = _AGAIN
        elif self.led and topic.endswith("/led/set"):
            if msg in (b"ON", b"OFF"):
                self.led.set(msg == b"ON")
                self._led_state()
            else:
                self.log("mqtt: led/set wants ON or OFF, not %r" % msg[:20])

    def _led_state(self):
        self.client.publish((self.base + "/led/state").encode(), b"ON" if self.led.value() else b"OFF", True)

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
        except MemoryError:
            import gc
            self.close()  # it may hold half a packet: the reading gets a new one
            self.announce = pending
            release("discovery")
            gc.collect()
            self.announce_ooms += 1
            wait = min(3600, _RETRY_S << min(self.announce_ooms - 1, 6))
            self.announce_at = time.ticks_add(time.ticks_ms(), wait * 1000)
            self.log("mqtt: not enough memory to announce to Home Assistant (%d B free): again in %d s"
                     % (gc.mem_free(), wait))

    def _announce(self):
        import gc
        gc.collect()  # the import and the payloads want the heap in one piece
        from upynode import discovery as D
        again, self.announce = self.announce == _AGAIN, _NOTHING
        try:
            D.info(self.client, self.base)
            led = self.led is not None
            from upynode.sensors import about
            a = about(self.sens)
            fp = "%d" % D.fingerprint(D.configs(self.node_id, self.units, self.c, led, a, True))
            try:
                with open(FP_FILE) as f:
                    old = f.read().split("\n")
            except OSError:
                old = ["", ""]
            if fp != old[0] or again:
                n = 0
                for topic, parts in D.configs(self.node_id, self.units, self.c, led, a, True):
                    n += 1
                    self._publish(topic, D.flat, parts)
                # A quantity no sensor measures any more: clear its retained config.
                for q in old[1].split(",") if len(old) > 1 and old[1] else ():
                    if q not in self.units:
                        self.client.publish(D.topic("sensor", self.node_id, q, self.c).encode(), b"", True)
                if not led and len(old) > 2 and old[2] == "+led":
                    # the LED switch announced before: an empty retained config removes it
                    self.client.publish(D.topic("switch", self.node_id, "led", self.c).encode(), b"", True)
        except OSError:
            # the connection lost halfway: all of it again at the next
            # connect, not at the next boot
            self.announce = _AGAIN if again else _CHANGED
            raise
        if fp != old[0] or again:
            # whole or not at all: a torn file would announce again, or worse, not
            save(FP_FILE, fp + "\n" + ",".join(self.order) + ("\n+led" if led else ""))
            self.log("mqtt: announced %d entities to Home Assistant" % n)
        release("discovery")  # needed once per connect at most

    def _publish(self, topic, flat, parts):
        # umqtt.simple's publish (QoS 0, retained) of a payload given in
        # parts (discovery._entity; flat(parts): its strings), each written
        # as it comes: the payload is never in RAM in one piece. Bytes
        # throughout: umqtt and MQTT count bytes, and "°C" is 2 bytes but 1
        # character.
        n = len(topic.encode()) + 2
        for p in flat(parts):
            n += len(p.encode())
        hdr = bytearray(b"\x31\0\0\0\0")  # PUBLISH, retained; the remaining length
        i = 1
        while n > 0x7F:
            hdr[i] = (n & 0x7F) | 0x80
            n >>= 7
            i += 1
        hdr[i] = n
        s = self.client.sock
        s.write(hdr, i + 1)
        self.client._send_str(topic.encode())
        for p in flat(parts):
            if p:
                s.write(p.encode())

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

    def open(self):
        # Connect and announce, before the first reading (node.Node.start).
        return self.send(None, None)

    def send(self, msg, text):
        # msg: the state message; text: it as JSON (node.Node.cycle); None:
        # only connect and announce (open).
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
        try:
            for r in records:
                self.client.publish(self.backlog_topic.encode(), r, False, 1)
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
