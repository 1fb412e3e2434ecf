# config.json: merged over DEFAULTS and validated.
# The host tool imports this same module to validate a config before it
# leaves the host, so it must run under CPython too: no machine import at
# module level, only json.
import json

PATH = "config.json"
# The largest config.json a node reads: about three times the example
# (config.example.json, 1.3 KB). Parsing holds the bytes, the text and the
# objects at once, several times the file's size, of a heap of ~32 KB; a
# 6 KB file padded with spaces ran a node in setup mode out of memory.
MAX_BYTES = 4096

DEFAULTS = {
    "node_id": "",  # "" -> esp8266_<hex of machine.unique_id()>
    "interval_s": 60,
    "wifi": {"ssid": "", "password": "", "timeout_s": 20, "retries": 3,
             "retry_s": 300, "ifconfig": []},  # [ip, netmask, gateway, dns]; [] = DHCP
    "webrepl": {"password": ""},
    "sensors": [],
    "led": {"pin": 2, "invert": True, "mode": "heartbeat",
            "quantity": "temperature", "threshold": 20.0, "entity_id": ""},
    "transports": ["mqtt"],  # any of "mqtt", "http"
    # Readings a transport could not deliver wait on flash, per transport.
    "backlog": {"max_kb": 32, "per_cycle": 5},
    "retry": {"min_s": 2, "max_s": 300},  # reconnect backoff, doubling, with jitter
    "sleep": "none",  # or "deep": sleep between readings (GPIO16 wired to RST)
    "awake_max_s": 20,  # "deep": the longest a wake may take before sleeping anyway
    "ntp": {"host": "pool.ntp.org"},  # "" = no NTP: readings carry "up", not "ts"
    "mqtt": {"host": "", "port": 1883, "user": "", "password": "",
             "base_topic": "home", "keepalive": 60, "timeout_s": 10,
             "format": "json", "discovery": True,
             "discovery_prefix": "homeassistant", "expire_after": 0},
    # "ha": Home Assistant's REST API; "flask": the tutorial's Flask server;
    # "receiver": the reference receiver's batch API (upynode-receiver)
    "http": {"target": "ha", "url": "", "api_key": "",
             "fields": {"temperature": 1, "humidity": 2, "light": 3},
             "timeout_s": 10},
    # Home Assistant's REST API, for the "ha" target and the ha_state LED
    "homeassistant": {"url": "", "token": "", "api_password": ""},
    # The offline queue on flash, per transport (upynode.backlog)
    "backlog": {"max_kb": 32, "per_cycle": 5},
    # Reconnecting to a sink or WiFi: exponential backoff, capped
    "retry": {"min_s": 2, "max_s": 300},
    "ntp": {"host": "pool.ntp.org"},  # "" = no NTP: readings carry uptime
}

LED_MODES = ("heartbeat", "threshold", "remote", "ha_state", "off")
HTTP_TARGETS = ("ha", "flask", "receiver")
TRANSPORTS = ("mqtt", "http")
MAPS = ("http.fields",)  # objects whose keys are the user's (quantity names)
SECRETS = ("password", "token", "api_key", "key", "api_password")
# The ESP8266's GPIOs a sensor or LED may use: not 6-11 (flash), not 1 and 3
# (the serial port, the REPL's lifeline)
GPIOS = (0, 2, 4, 5, 12, 13, 14, 15, 16)
# The state message's own keys (node.Node.cycle): a quantity of that name
# would be overwritten there, and its HA entity would share the diagnostic's id
RESERVED = ("ep", "boot", "seq", "ts", "up", "err", "heap", "rssi", "q", "drop", "reset", "awake_ms")
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
QUANTITY_MAX = 32  # characters: the reference receiver's (upynode_receiver.validate)
ERR_MAX = 100  # characters of a sensor's error in a reading (sensors.read_all)


class ConfigError(ValueError):
    pass


def _key(s):
    # A key of the user's as a message names it: quoted unless it is a plain
    # name (a newline in it would forge a console line), cut when long.
    return s if 0 < len(s) <= 40 and all(ch in ID_CHARS for ch in s) else json.dumps(s[:40])


def _show(key, value):
    # Errors name the value, except a secret's, or a section's that holds
    # one (or the whole file's) written as something else: "webrepl":
    # "wrPW9x" is the password. A long one is cut short (the message is
    # repeated on the console every minute).
    k = key.split(".")[-1]
    d = DEFAULTS.get(k)
    if value and (k in SECRETS or k == "config" or (type(d) is dict and any(s in d for s in SECRETS))):
        return "***"
    s = json.dumps(masked(value))
    return s if len(s) <= 60 else "%s... (%d characters)" % (s[:40], len(s))


def _fail(key, value, expected):
    raise ConfigError("%s = %s: expected %s" % (key, _show(key, value), expected))


def _kind(v):
    # bool is an int in Python: tell them apart, and let an int stand for a float.
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return "null"


def merge(defaults, user, prefix=""):
    # A new dict: defaults with the user's values, each checked for its type.
    if _kind(user) != "object":
        _fail(prefix[:-1] or "config", user, "a JSON object")
    out = {}
    for k in defaults:
        out[k] = defaults[k]
    for k in user:
        key = prefix + k
        if k not in defaults:
            raise ConfigError("%s%s: unknown key (expected one of: %s)"
                              % (prefix, _key(k), ", ".join(sorted(defaults))))
        d, v = defaults[k], user[k]
        if key in MAPS:
            if _kind(v) != "object":
                _fail(key, v, "an object")
            out[k] = v
        elif _kind(d) == "object":
            out[k] = merge(d, v, key + ".")
        elif _kind(v) != _kind(d):
            _fail(key, v, "a " + _kind(d))
        else:
            out[k] = v
    return out


def _int(c, key, lo, hi, path):
    v = c[key]
    # the range first: int() of 1e999 (inf) raises OverflowError
    if _kind(v) != "number" or not lo <= v <= hi or v != int(v):
        _fail(path + _key(key), v, "a whole number from %d to %d" % (lo, hi))
    # JSON's 60.0 is a whole number, but ticks_add(), range() and Pin() take
    # only an int on the chip: keep the int
    c[key] = int(v)
    return c[key]


def _gpio(c, key, path, expected):
    if c[key] not in GPIOS:  # 2.0 == 2: then kept as the int, as _int() does
        _fail(path + key, c[key], "an ESP8266 GPIO number" + expected)
    c[key] = int(c[key])
    return c[key]


def _ident(v, key, what="letters, digits, _ or -"):
    if not v or any(ch not in ID_CHARS for ch in v):
        _fail(key, v, "a non-empty name of " + what)


def _claim(pins, pin, where, bus):
    # Two uses of one pin break both, except sensors sharing a bus line
    # (the same tag from their drivers' PINS: "i2c.scl", "onewire", ...).
    if pin in pins and not (bus and pins[pin][1] == bus):
        raise ConfigError("%s = %d: GPIO%d is already used by %s" % (where, pin, pin, pins[pin][0]))
    pins[pin] = (where, bus)


class Entry:
    # What a driver's check() is given: the merged entry (c) and ways to
    # refuse one of its keys with an error naming key and value.
    def __init__(self, c, path):
        self.c, self.path = c, path

    def fail(self, key, expected):
        _fail(self.path + key, self.c[key], expected)

    def whole(self, key, lo, hi):
        return _int(self.c, key, lo, hi, self.path)

    def name(self, key):
        _ident(self.c[key], self.path + key)

    def text(self, key, lo, hi):
        v = self.c[key]
        if not lo <= len(v) <= hi or _ctrl(v):
            self.fail(key, "%d to %d characters, none a control character" % (lo, hi))


def sensor_types():
    # Every type a driver declares, for the error message only: the
    # sensor_<name> modules in the package's folder (.py on the host, .mpy
    # on the device). __path__ is a str on MicroPython, a list on CPython.
    import os
    import upynode
    from upynode import release
    out = []
    p = upynode.__path__
    for d in [p] if isinstance(p, str) else p:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if n[:7] == "sensor_" and n.split(".")[-1] in ("py", "mpy"):
                name = n.split(".")[0]
                try:
                    mod = __import__("upynode." + name, None, None, ("TYPES",))
                except ImportError:  # a broken driver: its own entry says why
                    continue
                for t in mod.TYPES:
                    if t not in out:
                        out.append(t)
                release(name)
    return sorted(out)


def _sensor(s, path, pins, mods):
    # One entry of "sensors": its driver's defaults, key types, pins and
    # rules. mods: the driver modules imported, to release.
    from upynode.drivers import driver
    if _kind(s) != "object":
        _fail(path, s, "an object with a \"type\"")
    kind = s.get("type")
    try:
        drv = driver(kind)
    except ImportError as e:  # a driver that is installed but cannot load
        _fail(path + ".type", kind, "a driver that loads (%s)" % e)
    if drv is None:
        _fail(path + ".type", kind, "one of " + ", ".join(sensor_types()))
    mods.append(drv.__name__.split(".")[-1])
    d = {"type": kind}
    d.update(drv.DEFAULTS)
    c = merge(d, s, path + ".")
    for k in drv.PINS:
        _claim(pins, _gpio(c, k, path + ".", ", one of %s" % (GPIOS,)), path + "." + k, drv.PINS[k])
    if c["prefix"]:
        _ident(c["prefix"], path + ".prefix")
    drv.check(Entry(c, path + "."))
    return c, [q[0] for q in drv.quantities(c)]


def _sensors(c, pins):
    # -> the names the sensors publish, in config order, each measured once
    from upynode import release
    entries, out, names, seen, mods = c["sensors"], [], [], {}, []
    if _kind(entries) != "list":
        _fail("sensors", entries, "a list of sensor objects")
    try:
        for i, s in enumerate(entries):
            path = "sensors[%d]" % i
            s, qs = _sensor(s, path, pins, mods)
            for q in qs:
                if q in RESERVED:
                    raise ConfigError("%s: quantity \"%s\" is a name the node's state message has "
                                      "already (%s): choose another quantity or a \"prefix\""
                                      % (path, q, ", ".join(RESERVED)))
                if q in seen:
                    raise ConfigError("%s: quantity \"%s\" is already measured by %s; "
                                      "set a \"prefix\" on one of them" % (path, q, seen[q]))
                if len(q) > QUANTITY_MAX or not q[0].isalpha():
                    # the reference receiver's limit (upynode_receiver.validate.QUANTITY_RE):
                    # it would refuse every reading
                    raise ConfigError("%s: quantity \"%s\" (prefix included): expected a letter first and at "
                                      "most %d characters, as the receiver takes them" % (path, q, QUANTITY_MAX))
                seen[q] = path
                names.append(q)
            out.append(s)
    finally:
        release("drivers", *mods)  # boot only: assemble.load_sensors() asks again
    c["sensors"] = out
    return names


def _ctrl(v):
    # A control character (NUL, newline, ...) breaks an MQTT topic, a JSON
    # consumer or a log line.
    return any(ch < " " or ord(ch) == 127 for ch in v)


def _host(v):
    # -> 2: an IPv4 address, 1: a DNS name, 0: neither
    p = v.split(".")
    if all(x and all(ch in ID_CHARS[52:62] for ch in x) for x in p):  # digits
        return 2 if len(p) == 4 and all(len(x) <= 3 and int(x) < 256 for x in p) else 0
    return len(v) <= 253 and all(x and x[0] != "-" and x[-1] != "-" and all(ch in ID_CHARS and ch != "_" for ch in x)
                                 for x in p)


def _url(u, key, what):
    if u.startswith("https://"):
        _fail(key, u, "an http:// address: TLS needs more heap than an ESP8266 node has; "
              "keep the node on your LAN")
    if not u.startswith("http://") or len(u) < 8:
        _fail(key, u, what)


# validate(): one function per section, in the order their errors are reported.

def _wifi(w):
    if not w["ssid"]:
        _fail("wifi.ssid", w["ssid"], "the name of your WiFi network")
    _int(w, "timeout_s", 1, 300, "wifi.")
    _int(w, "retries", 1, 100, "wifi.")
    _int(w, "retry_s", 10, 86400, "wifi.")
    ip = w["ifconfig"]
    if ip and (len(ip) != 4 or not all(_kind(a) == "string" and _host(a) == 2 for a in ip)):
        _fail("wifi.ifconfig", ip, "[] for DHCP, or four IPv4 addresses: [ip, netmask, gateway, dns]")


def _node(c):
    _int(c, "interval_s", 1, 86400, "")
    pw = c["webrepl"]["password"]
    if not 4 <= len(pw.encode()) <= 9:
        # Required: WebREPL can read config.json, WiFi password included,
        # and in setup mode it is on an open access point. MicroPython's
        # limit is 9 bytes (extmod/modwebrepl.c), not characters: a longer
        # one and WebREPL does not start.
        _fail("webrepl.password", pw, "4 to 9 bytes (a MicroPython limit; an accented letter takes 2); "
              "it guards your other secrets")
    if c["node_id"]:
        _ident(c["node_id"], "node_id")
    if c["sleep"] not in ("none", "deep"):
        _fail("sleep", c["sleep"], "\"none\" or \"deep\" (deep sleep between readings: GPIO16 wired to RST)")
    _int(c, "awake_max_s", 5, 120, "")
    if c["sleep"] == "deep" and c["interval_s"] < 10:
        _fail("interval_s", c["interval_s"], "at least 10 with \"sleep\": \"deep\" (a wake costs a boot and a WiFi join)")


def _transports(ts):
    if not ts or any(t not in TRANSPORTS for t in ts):
        _fail("transports", ts, "a list of one or more of: " + ", ".join(TRANSPORTS))
    if len(ts) != len(set(ts)):
        _fail("transports", ts, "each transport once (each would send every reading)")


def _mqtt(m, c):
    if "mqtt" in c["transports"] and not m["host"]:
        _fail("mqtt.host", m["host"], "the address of your MQTT broker")
    if m["host"] and not _host(m["host"]):  # umqtt would look all of it up as a name
        _fail("mqtt.host", m["host"], "a host name or IPv4 address alone: no mqtt://, no user:password@ "
              "(mqtt.user, mqtt.password), no :port (mqtt.port)")
    _int(m, "port", 1, 65535, "mqtt.")
    _int(m, "timeout_s", 1, 120, "mqtt.")
    ka = _int(m, "keepalive", 0, 65535, "mqtt.")
    if ka and ka < 10:
        _fail("mqtt.keepalive", ka, "0 (never) or at least 10 seconds")
    bt = m["base_topic"]
    if not bt or "+" in bt or "#" in bt or bt[0] == "/" or bt[-1] == "/" or _ctrl(bt):
        _fail("mqtt.base_topic", bt, "a topic such as \"home\", without + # control characters "
              "or a leading or trailing /")
    ea = _int(m, "expire_after", 0, 86400, "mqtt.")
    if ea and ea <= c["interval_s"]:
        _fail("mqtt.expire_after", ea, "0, or more than interval_s (%d), or HA marks every sensor "
              "unavailable between readings" % c["interval_s"])
    if m["format"] not in ("json", "raw"):
        _fail("mqtt.format", m["format"], "json or raw")
    _ident(m["discovery_prefix"], "mqtt.discovery_prefix")


def _http(h, c):
    for q in h["fields"]:
        _int(h["fields"], q, 1, 99, "http.fields.")
    if h["target"] not in HTTP_TARGETS:
        _fail("http.target", h["target"], "one of " + ", ".join(HTTP_TARGETS))
    _int(h, "timeout_s", 1, 120, "http.")
    t = h["target"]
    if "http" in c["transports"] and t != "ha":
        what = "Flask server" if t == "flask" else "receiver (upynode-receiver)"
        _url(h["url"], "http.url", "the %s's address, e.g. http://192.168.1.5:8080" % what)
        if not h["api_key"]:
            _fail("http.api_key", h["api_key"], "the API key your %s expects" % what)


def _led(led, pins, names, c):
    if led["mode"] not in LED_MODES:
        _fail("led.mode", led["mode"], "one of " + ", ".join(LED_MODES))
    _claim(pins, _gpio(led, "pin", "led.", " (2 = on-board LED, 16 = NodeMCU's second LED)"), "led.pin", None)
    e = led["entity_id"]
    if led["mode"] == "ha_state" and ("." not in e or e.split(".")[0] not in (
            "sensor", "binary_sensor", "switch", "input_boolean", "light")):
        _fail("led.entity_id", e, "a Home Assistant entity id such as sensor.kitchen_temperature")
    if led["mode"] == "remote" and "mqtt" not in c["transports"]:
        _fail("led.mode", "remote", "another mode without \"mqtt\" in transports: the switch's commands come over MQTT")
    if led["mode"] == "remote" and c["sleep"] == "deep":
        _fail("led.mode", "remote", "another mode with \"sleep\": \"deep\": a sleeping node takes no commands")
    if led["mode"] == "threshold" and led["quantity"] not in names:
        _fail("led.quantity", led["quantity"],
              "a quantity a configured sensor measures (%s)" % ", ".join(names or ["none configured"]))


def _homeassistant(ha, c):
    # The REST API: for http.target "ha" and the ha_state LED.
    ts = c["transports"]
    if "http" in ts and c["http"]["target"] == "ha" and "mqtt" in ts and c["mqtt"]["discovery"] \
            and c["mqtt"]["format"] == "json":
        # HA would get every quantity twice: sensor.<node>_<q> from the REST
        # posts and sensor.<node>_<q>_2 from discovery
        _fail("http.target", "ha", "another target, or mqtt.discovery false: with MQTT discovery on, "
              "Home Assistant already has every reading and would show each sensor twice")
    if c["led"]["mode"] == "ha_state" or ("http" in c["transports"] and c["http"]["target"] == "ha"):
        _url(ha["url"], "homeassistant.url", "Home Assistant's address, e.g. http://192.168.1.5:8123")
        if not ha["token"]:
            _fail("homeassistant.token", ha["token"], "a long-lived access token (your HA profile page, Security tab)"
                  + ("; api_password was removed from Home Assistant in 2019" if ha["api_password"] else ""))


def validate(c):
    # c: merge(DEFAULTS, user). Fills in each sensor's defaults; raises
    # ConfigError on the first thing wrong.
    _wifi(c["wifi"])
    _node(c)
    _transports(c["transports"])
    _mqtt(c["mqtt"], c)
    _http(c["http"], c)
    # backlog.max_kb bounds each transport's queue file. A 1 MB ESP8266 has
    # a 396 KB filesystem (MicroPython's ports/esp8266/boards/esp8266_1MiB.ld)
    # of which the firmware takes ~48 KB; a queue may briefly hold up to
    # three times its bound on flash (backlog.py compacts it into a new
    # file), so two queues of the default 32 KB need ~192 KB there. 256 fits
    # one queue on a 1 MB board; 4 MB boards have ~3 MB.
    _int(c["backlog"], "max_kb", 1, 256, "backlog.")
    _int(c["backlog"], "per_cycle", 1, 50, "backlog.")
    r = c["retry"]
    lo = _int(r, "min_s", 1, 86400, "retry.")
    _int(r, "max_s", lo, 86400, "retry.")
    h = c["ntp"]["host"]
    if h and not _host(h):
        _fail("ntp.host", h, "\"\" (no NTP) or a host name or IPv4 address such as pool.ntp.org")
    pins = {}
    names = _sensors(c, pins)
    # The largest record a reading can make (backlog.put refuses one over a
    # quarter of the queue): ep, boot, seq and time, each quantity's name and
    # value, each sensor's error (sensors.err_text: at most ERR_MAX).
    most = 80 + sum(len(q) + 18 for q in names) + sum(len(s["type"]) + 10 + ERR_MAX for s in c["sensors"])
    if 4 + most > c["backlog"]["max_kb"] * 256:
        _fail("backlog.max_kb", c["backlog"]["max_kb"],
              "at least %d: a reading of these sensors can take %d bytes, and a queue holds records of up to "
              "a quarter of its size" % (-(-(4 + most) // 256), most))
    _led(c["led"], pins, names, c)
    _homeassistant(c["homeassistant"], c)
    return c


def _bytes(v):
    # One pass over the file's bytes before json.loads: -> the offset of the
    # first byte that is not UTF-8 (MicroPython's UnicodeError does not say
    # where), -2 when [ and { nest deeper than a config can (1,000 of them
    # took all of a node's heap, and CPython's recursion; brackets in
    # strings do not count), else -1. Nesting deeper than a config's but
    # shallow enough to parse is left to _scan(), which names the key.
    i, n, d, q, esc = 0, len(v), 0, False, False
    while i < n:
        c = v[i]
        i += 1
        if c < 0x80:
            if q:
                if esc:
                    esc = False
                elif c == 92:  # backslash
                    esc = True
                elif c == 34:
                    q = False
            elif c == 34:  # "
                q = True
            elif c == 91 or c == 123:  # [ {
                d += 1
                if d > 20:
                    return -2
            elif c == 93 or c == 125:
                d -= 1
            continue
        esc = False
        k = 1 if 0xC2 <= c <= 0xDF else 2 if 0xE0 <= c <= 0xEF else 3 if 0xF0 <= c <= 0xF4 else 0
        # the second byte's range excludes overlong forms and surrogates
        lo = 0xA0 if c == 0xE0 else 0x90 if c == 0xF0 else 0x80
        hi = 0x9F if c == 0xED else 0x8F if c == 0xF4 else 0xBF
        if not k or i + k > n:
            return i - 1
        for j in range(i, i + k):
            if not lo <= v[j] <= hi:
                return i - 1
            lo, hi = 0x80, 0xBF
        i += k
    return -1


def _scan(v):
    # Before merge(): nothing nested deeper than a valid config can be
    # (config > sensors > [0] > key), and no infinity or NaN (1e999 in
    # JSON), which would publish "inf", not JSON. The messages name the key.
    todo = [(v, "config", 0)]
    while todo:
        v, key, d = todo.pop()
        if d > 5:
            raise ConfigError("%s: nested more than 5 levels deep" % key)
        if isinstance(v, float) and v - v != 0:
            raise ConfigError("%s: expected a finite number (1e999 and the like are infinite)" % key)
        if isinstance(v, dict):
            for k in v:
                todo.append((v[k], (key + "." if d else "") + _key(k), d + 1))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                todo.append((x, "%s[%d]" % (key, i), d + 1))


def parse(text, name=PATH):
    # The file's bytes (or text) -> the validated config with every default
    # filled in.
    if isinstance(text, str):
        text = text.encode()
    if len(text) > MAX_BYTES:
        raise ConfigError("%s is %d bytes, over the %d a node reads (its RAM is ~32 KB): "
                          "remove what is not needed" % (name, len(text), MAX_BYTES))
    i = _bytes(text)
    if i >= 0:
        raise ConfigError("%s is not UTF-8 text (byte 0x%02x at offset %d): save it as UTF-8" % (name, text[i], i))
    if i < -1:
        raise ConfigError("%s: nested more than 5 levels deep" % name)
    text = text.decode()  # UTF-8 checked above; the bytes are garbage from here
    try:
        text = json.loads(text)
    except ValueError as e:
        raise ConfigError("%s is not valid JSON (%s)" % (name, e))
    except MemoryError:
        raise ConfigError("%s: too many values for the node's RAM" % name)
    _scan(text)
    return validate(merge(DEFAULTS, text))


def load(path=PATH):
    # The size first: a file too big to parse is not read at all.
    import os
    try:
        n = os.stat(path)[6]
        if n <= MAX_BYTES:
            with open(path, "rb") as f:
                s = f.read(n)  # read(MAX_BYTES) would take 4 KB of heap whatever the size
    except OSError:
        raise ConfigError("%s is missing: copy config.example.json there and fill it in" % path)
    if n <= MAX_BYTES:
        return parse(s, path)
    # (the same words as parse's)
    raise ConfigError("%s is %d bytes, over the %d a node reads (its RAM is ~32 KB): "
                      "remove what is not needed" % (path, n, MAX_BYTES))


def masked(c):
    # A copy fit for printing: secrets replaced, and the password of a URL
    # (http://user:pw@host).
    if isinstance(c, list):
        return [masked(v) for v in c]
    if isinstance(c, str) and "@" in c:
        from upynode.http import hide_url  # the node's log lines hide it the same way
        return hide_url(c)
    if not isinstance(c, dict):
        return c
    out = {}
    for k in c:
        v = c[k]
        out[k] = "***" if (k in SECRETS and v) else masked(v)
    return out
