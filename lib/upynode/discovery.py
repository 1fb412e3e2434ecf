# Home Assistant MQTT discovery: one small retained config message per
# entity, so that HA creates the node's sensors and its LED switch itself.
# Payloads are built as strings with HA's abbreviated keys; `~` is the
# node's base topic. Runs under MicroPython and CPython (host tool, tests).

VERSION = "0.3.0"  # dev.sw: the firmware version HA shows on the device page

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


def _head(node_id, name, c):
    # What every entity of the node shares: base topic, ids, availability
    # and the device block (HA groups the entities by dev.ids).
    return ('{"~":%s,"name":"%s","uniq_id":"%s_%s","avty_t":"~/status",'
            '"pl_avail":"online","pl_not_avail":"offline","dev":{"ids":["%s"],'
            '"name":"%s","mf":"upynode","mdl":"ESP8266","sw":"%s"}'
            % (_str(c["base_topic"] + "/" + node_id), name, node_id,
               name, node_id, node_id, VERSION))


def sensor_config(node_id, quantity, unit, c, cls=None, prec=None):
    # -> (topic, payload) for one quantity of the JSON state message. cls,
    # prec: the device class and display precision its driver declares
    # (sensors.about()); no class: the unit's (dev_class).
    t = topic("sensor", node_id, quantity, c)
    tail = ""
    if unit and unit != "raw":
        tail = ',"unit_of_meas":' + _str(unit)
    cls = cls or dev_class(quantity, unit)
    if cls:
        tail += ',"dev_cla":"%s"' % cls
    if prec is not None:
        tail += ',"sug_dsp_prc":%d' % prec
    if c["expire_after"] > 0:
        tail += ',"exp_aft":%d' % c["expire_after"]
    # .get(q, 'None'): a reading without q (its sensor failed) makes HA
    # show "unknown"; value_json[q] would keep the last value as if current
    # and log a template warning every cycle.
    return t, (_head(node_id, quantity, c) +
               ',"stat_t":"~/state","val_tpl":"{{value_json.get(\'%s\',\'None\')}}",'
               '"stat_cla":"measurement"%s}' % (quantity, tail))


def switch_config(node_id, c):
    # -> (topic, payload) for the LED: commands on ~/led/set, state on ~/led/state.
    return (topic("switch", node_id, "led", c),
            _head(node_id, "led", c) +
            ',"cmd_t":"~/led/set","stat_t":"~/led/state","pl_on":"ON","pl_off":"OFF"}')


def configs(node_id, units, c, led=True, about=None):
    # Every (topic, payload) the node announces, one at a time (a generator:
    # only one payload is in RAM). units: {quantity: unit}, e.g. sensors.units();
    # about: {quantity: (device class, display precision)}, sensors.about().
    for q in sorted(units):  # one order on every boot and platform
        a = about.get(q, ()) if about else ()
        yield sensor_config(node_id, q, units[q], c, *a)
    if led:
        yield switch_config(node_id, c)


def fingerprint(pairs):
    # A 24-bit hash of everything announced (djb2, xor variant); it stays a
    # small int on the ESP8266, so hashing allocates nothing.
    h = 5381
    for t, p in pairs:
        for s in (t, p):
            for ch in s:
                h = ((h * 33) ^ ord(ch)) & 0xFFFFFF
            h = ((h * 33) ^ 10) & 0xFFFFFF  # a separator: ("ab","c") != ("a","bc")
    return h
