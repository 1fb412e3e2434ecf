# Reads the configured sensors so that one failing sensor never stops the
# others, and writes the state message.
#
# A driver is two modules: sensor_<name> declares (TYPES, DEFAULTS, PINS,
# quantities(), check(), start()) and is needed at boot only; read_<name>
# holds the Sensor class the loop keeps. Splitting them keeps the
# declarations out of the loop's heap; finding and starting the drivers
# (upynode.drivers, assemble.load) is boot-only too.


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
            t = err_text(e)
            # whole on the console; in the reading at most 100 characters
            # (config.ERR_MAX): its record must fit the queue's record limit
            errors[key] = t[:100]
            log("sensor %s: %s" % (kind, t))
    return values, errors


def num(v):
    # A reading's value as JSON text. MicroPython prints floats with their
    # binary noise (68.4 as 68.40000000000001, a chip's float32 its own);
    # the drivers round to their resolution, at most 4 decimals (1/16 degC).
    if not isinstance(v, float):
        return str(v)
    if v != v or v in (_INF, -_INF):  # no JSON for these
        return "null"
    s = ("%.4f" % v).rstrip("0")
    return s + "0" if s[-1] == "." else s


_INF = float("inf")


def dumps(d):
    # A state message or record as JSON, its floats through num().
    import json
    return "{%s}" % ",".join('"%s":%s' % (k, num(v) if isinstance(v, float) else json.dumps(v)) for k, v in d.items())
