"""The checked config a node keeps beside config.json (config.ok).

A node checks config.json with its `config` module only when the file (or
the firmware that checks it) changed, saves the result to config.ok, and
restarts so that its loop never runs in the heap that checking used
(lib/upynode/startup.py: key(), check()). A host that writes config.json
and knows the firmware on the board writes config.ok too, computed the same
way, and the node's next boot needs no check and no extra restart.
"""
import hashlib
import json

from . import firmware_config

CHECKED = "config.ok"  # startup.CHECKED


def key(config_bytes, package_files):
    """startup.key(): config.json's bytes, then, by name, the package's
    config.*, sensor_* and discovery.* files as they are on the board
    ({name: bytes})."""
    h = hashlib.sha256(config_bytes)
    for name in sorted(package_files):
        if name[:7] in ("config.", "sensor_") or name[:10] == "discovery.":
            h.update(name.encode())
            h.update(package_files[name])
    return h.hexdigest()[:24]


def package_files(pkg_dir):
    """{name: bytes} of a built board's lib/upynode folder."""
    import os
    out = {}
    for name in os.listdir(pkg_dir):
        path = os.path.join(pkg_dir, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = f.read()
    return out


def entry(config_bytes, pkg):
    """The text of config.ok for this config.json on a board whose firmware
    package is pkg (its lib/upynode folder, or {name: bytes} of it); raises
    the firmware's ConfigError as the node would."""
    checked = firmware_config().parse(config_bytes)
    files = pkg if isinstance(pkg, dict) else package_files(pkg)
    return key(config_bytes, files) + "\n" + json.dumps(checked)


ANNOUNCEMENT = "discovery.bin"  # startup.ANNOUNCEMENT


def announcement(config_bytes, pkg, chip_hex, old=""):
    """The bytes of discovery.bin as the node's boot would save them for
    this config.json (its checked config and key, as entry() makes them)
    on the chip whose machine.unique_id() is chip_hex; old: the node's
    discovery.fp, if any. None when the config announces nothing (no MQTT,
    discovery off, raw format). Installed with config.ok, it spares the
    node's boot the restart that building it costs."""
    import os
    import tempfile

    firmware_config()
    from upynode import startup

    c = firmware_config().parse(config_bytes)
    m = c["mqtt"]
    if "mqtt" not in c["transports"] or not m["discovery"] or m["format"] != "json":
        return None
    files = pkg if isinstance(pkg, dict) else package_files(pkg)
    node = c["node_id"] or "esp8266_" + chip_hex
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, ANNOUNCEMENT)
        build = files.get(startup.BUILD_ID)
        sw = startup.VERSION + ("+" + build.decode().strip() if build else "")
        startup.save_announcement(path, c, "%s %s %s" % (key(config_bytes, files), node, sw), node, old, sw)
        with open(path, "rb") as f:
            return f.read()


def package_of(device_files):
    """{name: bytes} of lib/upynode from {device path: bytes}."""
    pre = "lib/upynode/"
    return {p[len(pre):]: d for p, d in device_files.items() if p.startswith(pre) and "/" not in p[len(pre):]}
