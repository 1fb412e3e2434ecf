# Boot only: the one type -> module map, and starting the configured
# sensors. config asks driver() for each entry's declarations;
# assemble.load_sensors() asks start(). Both release this module and the
# declarations afterwards.
from upynode import release


def driver(kind):
    # The one type -> module map: sensor_<type>, or for a family of parts
    # (dht11, dht22) sensor_<type without its model number>, if the module
    # lists the type in TYPES. None: no driver declares it.
    if not isinstance(kind, str) or not kind or not all(ch.isalpha() or ch.isdigit() for ch in kind):
        return None  # a name, not a path
    family = kind.rstrip("0123456789")
    for name in (kind, family) if family != kind else (kind,):
        try:
            mod = __import__("upynode.sensor_" + name, None, None, ("TYPES",))
        except ImportError as e:
            if "sensor_" + name not in str(e):
                raise  # the driver is there but cannot load: say why, not "unknown"
            continue
        if kind in mod.TYPES:
            return mod
    return None


def start(entries, log=print):
    out, used = [], []
    for c in entries:
        try:
            d = driver(c["type"])
            used.append(d.__name__.split(".")[-1])
            out.append((c["type"], d.start(c, d.quantities(c))))
        except Exception as e:  # a broken sensor must not stop the node
            from upynode.sensors import err_text
            log("sensor %s: not started: %s" % (c["type"], err_text(e)))
            out.append((c["type"], None))
    release(*used)  # the declarations: the loop keeps read_<name> only
    return out
