# Builds the configured sensors, importing only the drivers they name, and
# reads them so that one failing sensor never stops the others.


def module_name(kind):
    # config.DRIVERS, without importing config (it is released after boot)
    return "upynode.sensor_" + ("dht" if kind[:3] == "dht" else kind)


def load(entries, log=print):
    out = []
    for c in entries:
        try:
            mod = __import__(module_name(c["type"]), None, None, ("Sensor",))
            out.append((c["type"], mod.Sensor(c)))
        except Exception as e:  # a broken sensor must not stop the node
            log("sensor %s: not started: %s" % (c["type"], err_text(e)))
            out.append((c["type"], None))
    return out


def err_text(e):
    # "timeout" reads better on a dashboard than "[Errno 110] ETIMEDOUT".
    if isinstance(e, OSError) and e.args:
        return {110: "timeout", 19: "no device", 116: "timeout"}.get(e.args[0], "error %s" % e.args[0])
    return "%s: %s" % (type(e).__name__, e)


def read_all(sensors, log=print):
    # -> ({quantity: value}, {sensor type: error text})
    values, errors = {}, {}
    for i, (kind, s) in enumerate(sensors):
        key = kind if kind not in errors else "%s_%d" % (kind, i)
        if s is None:
            errors[key] = "not started"
            continue
        try:
            for q, v in s.read():
                values[q] = v
        except MemoryError:
            raise
        except Exception as e:
            errors[key] = err_text(e)
            log("sensor %s: %s" % (kind, errors[key]))
    return values, errors


def units(sensors):
    # [(quantity, unit)] in config order (MicroPython's dicts keep no order)
    out = []
    for kind, s in sensors:
        if s is not None:
            out.extend(s.units)
    return out


