# Builds the configured sensors, importing only the drivers they name, and
# reads them so that one failing sensor never stops the others.
#
# A driver is two modules: sensor_<name> declares (TYPES, DEFAULTS, PINS,
# quantities(), check(), start()) and is needed at boot only; read_<name>
# holds the Sensor class the loop keeps. Splitting them keeps the
# declarations out of the loop's heap.
from upynode import release


def driver(kind):
    # The one type -> module map: sensor_<type>, or for a family of parts
    # (dht11, dht22) sensor_<type without its model number>, if the module
    # lists the type in TYPES. None: no driver declares it.
    if not isinstance(kind, str) or not kind or not all(ch.isalpha() or ch.isdigit() for ch in kind):
        return None  # a name, not a path
    for name in (kind, kind.rstrip("0123456789")):
        try:
            mod = __import__("upynode.sensor_" + name, None, None, ("TYPES",))
        except ImportError:
            continue
        if kind in mod.TYPES:
            return mod
    return None


def load(entries, log=print):
    out, used = [], []
    for c in entries:
        try:
            d = driver(c["type"])
            used.append(d.__name__.split(".")[-1])
            out.append((c["type"], d.start(c, d.quantities(c))))
        except Exception as e:  # a broken sensor must not stop the node
            log("sensor %s: not started: %s" % (c["type"], err_text(e)))
            out.append((c["type"], None))
    release(*used)  # the declarations: the loop keeps read_<name> only
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
    return [u[:2] for kind, s in sensors if s is not None for u in s.units]


def about(sensors):
    # {quantity: (HA device class, display precision)} as the drivers
    # declare them, for discovery.configs() and the HTTP attributes
    out = {}
    for kind, s in sensors:
        if s is not None:
            for u in s.units:
                out[u[0]] = u[2:]
    return out
