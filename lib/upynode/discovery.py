# Home Assistant MQTT discovery: one small retained config message per
# entity, so that HA creates the node's sensors, its diagnostics and its LED
# switch itself. Payloads are built as strings with HA's abbreviated keys;
# `~` is the node's base topic. Runs under MicroPython and CPython (host
# tool, tests). On the node it runs only in a boot of its own, when the
# config or the firmware changed (startup.announcement): write() saves the
# whole announcement to flash as ready MQTT packets (FILE), and the loop
# streams that file to the broker (mqtt.Mqtt._announce), so announcing costs
# the loop neither this module nor a payload in RAM.

FILE = "discovery.bin"

VERSION = "0.3.0"  # startup.VERSION
SW = VERSION  # dev.sw and o.sw, the firmware HA shows: startup.firmware(), set by startup.save_announcement

# Diagnostics of the node from the same state message (no extra traffic),
# entity_category diagnostic (HA shows them apart), one per line: key,
# entity name, unit, device class, state class, the value when the message
# lacks the key. One string, split while announcing: a table of tuples and
# their short strings costs the module more heap.
_DIAG = """rssi,WiFi signal,dBm,signal_strength,measurement,'None'
heap,Free memory,B,data_size,measurement,'None'
up,Uptime,s,duration,total_increasing,'None'
q,Queued readings,,,measurement,0"""
# machine.reset_cause() on the ESP8266 (the SDK's rst_info reasons 0-6),
# as HA shows it; from the retained ~/info (mqtt.Mqtt._announce)
_RESET = ("{{['power on','hardware watchdog','exception','watchdog','software reset',"
          "'deep sleep wake','reset pin'][value_json.reset]|default(value_json.reset)}}")


# Beside the reset cause, from the same ~/info: the firmware that runs and,
# after a rollback (update.py), the update taken back and why
_UPDATE = ("{{ {'firmware':value_json.fw|default(None),"
           "'update taken back':value_json.update|default(None)}|tojson }}")


def dev_class(quantity, unit):
    # For a quantity whose driver leaves the class to its unit (the ADC's
    # quantity and unit are the user's), and when no driver is asked.
    # Only pairs HA accepts (sensor DEVICE_CLASS_UNITS): it rejects an entity
    # whose unit does not fit its class, and no class is always valid. "%" is
    # humidity, moisture or battery only by the quantity's name (not light).
    if unit == "%":
        for c in ("humidity", "moisture", "battery"):
            if quantity.endswith(c):
                return c
    elif unit in ("°C", "°F", "K"):
        return "temperature"
    elif unit == "lx":
        return "illuminance"
    elif unit in ("V", "mV"):
        return "voltage"
    return None


def _str(v):
    # A JSON string, the same bytes on MicroPython and CPython (json.dumps
    # escapes non-ASCII only on CPython), so the fingerprint is too.
    for ch in v:
        if ch < " ":
            raise ValueError("HA discovery: control character in %r" % v)
    return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')


def topic(component, node_id, object_id, c):
    # <prefix>/<component>/<node_id>/<object_id>/config; ids [a-zA-Z0-9_-]
    # (not config.ID_CHARS: config is released from RAM after boot)
    for v in (node_id, object_id):
        for ch in v or " ":
            if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_-"):
                raise ValueError("HA discovery: %r is not a name of [a-zA-Z0-9_-]" % v)
    return "%s/%s/%s/%s/config" % (c["discovery_prefix"], component, node_id, object_id)


def common(node_id, c):
    # What every entity of the node shares, first in each payload: the
    # base topic, availability (HA's default payloads online/offline), the
    # device block (HA groups the entities by dev.ids and names each
    # "<device name> <entity name>"), the origin block (who announced it,
    # which HA logs and shows with the device's MQTT info). Built once per
    # announcement. No configuration_url: the node serves no page a
    # browser can open (WebREPL is a websocket on port 8266).
    return ('{"~":%s,"avty_t":"~/status","dev":{"ids":["%s"],"name":"%s","mf":"upynode",'
            '"mdl":"ESP8266","sw":"%s"},"o":{"name":"upynode","sw":"%s"}'
            % (_str(c["base_topic"] + "/" + node_id), node_id, node_id, SW, SW))


def _entity(comp, node_id, obj, title, c, head, tail):
    # -> (topic, parts): one entity's payload is "".join(flat(parts)).
    # head: common(); tail: a tuple of the entity's own keys, after its
    # name and id.
    return topic(comp, node_id, obj, c), (head or common(node_id, c), ',"name":"', title, '","uniq_id":"',
                                          node_id, "_", obj, '"', tail, "}")


def flat(parts):
    # The strings of an entity's parts, in order (parts nest one level).
    for p in parts:
        if isinstance(p, str):
            yield p
        else:
            yield from p


def sensor_config(node_id, quantity, unit, c, cls=None, prec=None, title=None, absent="'None'",
                  scls="measurement", diag=False, head=None):
    # -> (topic, parts) for one quantity of the JSON state message. cls,
    # prec: the device class and display precision its driver declares
    # (sensors.about()); no class: the unit's (dev_class). title: the
    # entity's name, else the quantity's; HA puts the device's before it
    # (has_entity_name): kitchen_temperature -> "<device> Kitchen
    # temperature", and renaming the device in HA renames them all. The
    # entity id stays <node_id>_<quantity>.
    # .get(q, 'None'): a reading without q (its sensor failed) makes HA
    # show "unknown"; value_json[q] would keep the last value as if current
    # and log a template warning every cycle. A key the entity lacks is "".
    cls = cls or dev_class(quantity, unit)
    raw = unit == "raw"
    unit = _str(unit) if unit and not raw else ""
    return _entity("sensor", node_id, quantity,
                   title or quantity[:1].upper() + quantity[1:].replace("_", " "), c, head, (
                       ',"stat_t":"~/state","val_tpl":"{{value_json.get(\'', quantity, "',", absent,
                       ')}}","stat_cla":"', scls, '"',
                       ',"exp_aft":%d' % c["expire_after"] if c["expire_after"] > 0 else "",
                       ',"unit_of_meas":' if unit else "", unit,
                       ',"dev_cla":"%s"' % cls if cls else "",
                       ',"sug_dsp_prc":%d' % prec if prec is not None else "",
                       # the ADC's counts: for checking a sensor, not a dashboard
                       ',"ent_cat":"diagnostic"' if diag or raw else "",
                       # the node's address as an attribute of its WiFi
                       ',"json_attr_t":"~/info","json_attr_tpl":"{{ {\'ip\':value_json.ip}|tojson }}"'
                       if quantity == "rssi" and diag else ""))


def switch_config(node_id, c, head=None):
    # -> (topic, parts) for the LED: commands on ~/led/set, state on ~/led/state.
    return _entity("switch", node_id, "led", "LED", c, head,
                   (',"cmd_t":"~/led/set","stat_t":"~/led/state","pl_on":"ON","pl_off":"OFF"',))


def configs(node_id, units, c, led=True, about=None, diag=False):
    # Every (topic, parts) the node announces, one at a time (a generator:
    # only one payload is in RAM). units: {quantity: unit}, e.g. sensors.units();
    # about: {quantity: (device class, display precision)}, sensors.about();
    # diag: the node's diagnostic entities too (_DIAG, and the reset
    # cause). One generator: a nested one's frame was the allocation that
    # failed first in a tight heap.
    head = common(node_id, c)
    for q in sorted(units):  # one order on every boot and platform
        a = about.get(q, ()) if about else ()
        yield sensor_config(node_id, q, units[q], c, *a, head=head)
    if diag:
        for ln in _DIAG.split("\n"):
            key, title, unit, cls, scls, a = ln.split(",")
            yield sensor_config(node_id, key, unit, c, cls, None, title, a, scls, True, head)
        # From the retained ~/info (mqtt.Mqtt._announce): HA has it after its own
        # restart too (the state message carries reset only once per boot).
        yield _entity("sensor", node_id, "reset", "Last reset cause", c, head,
                      (',"stat_t":"~/info","val_tpl":"', _RESET, '","ent_cat":"diagnostic"',
                       ',"json_attr_t":"~/info","json_attr_tpl":"', _UPDATE, '"'))
    if led:
        yield switch_config(node_id, c, head)


def fingerprint(pairs):
    # A 24-bit hash of everything announced (djb2, xor variant): of each
    # topic and its payload, given whole or in parts (the same hash); it
    # stays a small int on the ESP8266, so hashing allocates nothing.
    h = 5381
    for t, parts in pairs:
        for ch in t:
            h = ((h * 33) ^ ord(ch)) & 0xFFFFFF
        h = ((h * 33) ^ 10) & 0xFFFFFF  # a separator: ("ab","c") != ("a","bc")
        for p in flat(parts):
            for ch in p:
                h = ((h * 33) ^ ord(ch)) & 0xFFFFFF
        h = ((h * 33) ^ 10) & 0xFFFFFF
    return h


def packet(topic, payload):
    # One MQTT PUBLISH, QoS 0, retained, as bytes: topic and payload are bytes.
    n = 2 + len(topic) + len(payload)
    head = bytearray(b"\x31")
    while True:  # the remaining length, 7 bits a byte
        b, n = n & 0x7F, n >> 7
        head.append(b | 0x80 if n else b)
        if not n:
            return bytes(head) + len(topic).to_bytes(2, "big") + topic + payload


def write(path, key, node_id, units, c, led, about, old=""):
    # Save the announcement to path: three lines, then the packets.
    # key: what it was built from (startup.announcement checks it at boot);
    # then what mqtt saves to its FP_FILE once it has sent them (the
    # fingerprint, the quantities, "+led"), then how many entities. old:
    # that line as saved after the last announcement ("" for none): a
    # quantity no sensor measures any more, or the LED switch gone, gets an
    # empty retained config, which removes the entity from HA. Written
    # packet by packet (upynode.save: a power cut leaves the old file).
    from upynode import save
    qs = sorted(units)
    fp = fingerprint(configs(node_id, units, c, led, about, True))
    was = old.split()
    gone = [q for q in (was[1].split(",") if len(was) > 1 and was[1] != "+led" else ()) if q not in units]

    def parts():
        n = sum(1 for _ in configs(node_id, units, c, led, about, True))
        yield ("%s\n%d %s%s\n%d\n" % (key, fp, ",".join(qs), " +led" if led else "", n)).encode()
        for t, p in configs(node_id, units, c, led, about, True):
            yield packet(t.encode(), "".join(flat(p)).encode())
        for q in gone:
            yield packet(topic("sensor", node_id, q, c).encode(), b"")
        if "+led" in was and not led:
            yield packet(topic("switch", node_id, "led", c).encode(), b"")
    save(path, parts())
