# What boot.py runs: config -> WiFi -> WebREPL. Never raises: any problem
# ends in setup mode, with the reason on the serial console, because a node
# in a wall has nobody to press reset.
#
# config is imported inside run() and released as soon as the config is
# checked, before WiFi and WebREPL allocate: freed only after them, its
# code left holes between their objects (the loop's first cycle ran out of
# memory with 21 KB free), and kept into setup mode it left no room to
# compile main.py.

# What failed, when the node is in setup mode: it decides what setup mode
# waits for (upynode.setupmode). The value starts the reason's words.
CONFIG = "config"  # config.json missing or invalid: a valid one
WIFI = "wifi"      # the config is good, WiFi is not: WiFi too, every wifi.retry_s
# None: neither (boot.py failed): a fresh boot after a while, too

cfg = None      # the validated config once WiFi is up, else None
failed = None   # CONFIG or WIFI: what put the node in setup mode
reason = None   # why, for the console: "<failed>: <words>"
checked = -1    # setup mode: the config.json boot checked (setupmode._stamp())

DEFAULT_WEBREPL_PASSWORD = "upynode"
WEBREPL_CFG = "webrepl_cfg.py"
CONFIG_JSON = "config.json"  # config.PATH
MAX_BYTES = 4096  # config.MAX_BYTES
# config.json as a boot checked it: a key line, then the config with every
# default filled in. A boot whose key matches loads it and never imports
# config: its code is the largest of the firmware (18 KB of heap on the
# chip) and the names in it stay interned for good (~3 KB). A boot that
# checks a changed file saves it here and restarts into a clean heap.
CHECKED = "config.ok"
ANNOUNCEMENT = "discovery.bin"  # discovery.FILE


def fail(what, words):
    global failed, reason
    failed, reason = what, "%s: %s" % (what, words)


def clean(log=print):
    # A power cut between writing <name>.tmp and renaming it over <name>
    # (upynode.save, `upynode config put`) leaves the .tmp behind, complete
    # or torn: remove it; <name> is the last good copy. One exception: a
    # config.json.tmp with no config.json (on FAT, save() removes the old
    # file before the rename) is the only config there is: it is renamed,
    # and load() checks it as any config (a torn one ends in setup mode).
    import os
    try:
        names = os.listdir()
    except OSError:
        return
    for n in names:
        if n[-4:] != ".tmp":
            continue
        try:
            if n == CONFIG_JSON + ".tmp" and CONFIG_JSON not in names:
                os.rename(n, CONFIG_JSON)
                log("boot: %s restored from %s" % (CONFIG_JSON, n))
            else:
                os.remove(n)
                log("boot: removed %s (an interrupted write)" % n)
        except OSError as e:
            log("boot: could not clean %s: %s" % (n, e))


def _digest(h, path):
    buf = bytearray(128)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf[:n] if n < len(buf) else buf)


def key():
    # What a checked config depends on: config.json and the code that checks
    # it (config and the drivers' declarations, which hold defaults) or
    # builds the announcement from it (discovery), so a firmware update
    # checks the file again. None: no config.json to check,
    # or one too big to read (config.load says why). The host computes the
    # same (upynode_cli.checked) to install a checked config with the file.
    import os
    import hashlib
    import binascii
    import upynode
    pkg = upynode.__path__
    if not isinstance(pkg, str):  # CPython (tests): a list
        pkg = pkg[0]
    try:
        if os.stat(CONFIG_JSON)[6] > MAX_BYTES:
            return None
        h = hashlib.sha256()
        _digest(h, CONFIG_JSON)
        for n in sorted(os.listdir(pkg)):
            if n[:7] in ("config.", "sensor_") or n[:10] == "discovery.":
                h.update(n.encode())
                _digest(h, pkg + "/" + n)
    except OSError:
        return None
    return binascii.hexlify(h.digest()[:12]).decode()


def _keys(_):
    # Never called: its code interns config.DEFAULTS' keys when this module
    # loads, so that the dicts cached() reads share them. json.load keeps a
    # key as a string of its own in the heap unless it is interned already
    # (64 B each in the 64-bit VM, measured); config, which used to intern
    # them, is no longer loaded. tests/unit/test_config.py keeps the list whole.
    return (
        _.api_key, _.api_password, _.awake_max_s, _.backlog, _.base_topic, _.discovery,
        _.discovery_prefix, _.entity_id, _.expire_after, _.fields, _.format, _.homeassistant,
        _.host, _.http, _.humidity, _.ifconfig, _.interval_s, _.invert, _.keepalive, _.led,
        _.light, _.max_kb, _.max_s, _.min_s, _.mode, _.mqtt, _.node_id, _.ntp, _.password,
        _.per_cycle, _.pin, _.port, _.quantity, _.retries, _.retry, _.retry_s, _.sensors, _.sleep,
        _.ssid, _.target, _.temperature, _.threshold, _.timeout_s, _.token, _.transports, _.url,
        _.user, _.webrepl, _.wifi)


def cached(k):
    # The config a boot checked, if it was this key's; else None.
    if not k:
        return None
    import json
    try:
        with open(CHECKED) as f:
            if f.readline().strip() != k:
                return None
            return json.load(f)
    except Exception:  # missing, torn (save() makes that unlikely), not JSON
        return None


def save_checked(k, c):
    import json
    from upynode import save
    save(CHECKED, k + "\n" + json.dumps(c))


def check(log=print):
    # -> the config boot checked (from CHECKED), or None with the reason in
    # `failed` and `reason`. A changed file is checked, saved to CHECKED and
    # the node restarted, so the loop never runs in the heap config used.
    import gc
    try:
        clean(log)
    except Exception as e:  # nothing here may stop the boot
        log("boot: %s" % e)
    k = key()
    c = cached(k)
    if c is not None:
        if announcement(c, k, log):
            restart(log, "the announcement to Home Assistant is saved")
        return c
    from upynode import config, release
    try:
        c = config.load()
    except config.ConfigError as e:
        fail(CONFIG, e)
    except Exception as e:  # e.g. MemoryError on a huge file
        fail(CONFIG, "%s: %s" % (type(e).__name__, e))
    del config
    release("config")
    gc.collect()
    if c is not None and k:
        try:
            save_checked(k, c)
            with open(CHECKED) as f:  # what a restart will find
                ok = f.readline().strip() == k
        except OSError as e:  # a full filesystem: run on, in this heap
            log("config: could not save %s: %s" % (CHECKED, e))
            ok = False
        if ok:
            announcement(c, k, log)
            restart(log, "%s checked" % CONFIG_JSON)
    return c


CAUSE = "reset.why"  # the reset cause from before restart(), for the loop to report


def save_announcement(path, c, mark, node, old="", sw=None):
    # discovery.write() for config c on node `node`: the sensors' quantities
    # as their drivers declare them (no sensor is started). Also run by the
    # host (upynode_cli.checked.announcement) to install the file with
    # config.ok, so that the node's boot needs no restart for it.
    from upynode import discovery, drivers
    units, about = {}, {}
    for e in c["sensors"]:
        d = drivers.driver(e["type"])
        if d:
            for q in d.quantities(e):
                units[q[0]] = q[1]
                about[q[0]] = q[2:]
    m = c["mqtt"]
    if c["sleep"] == "deep" and not m["expire_after"]:
        # HA marks the sensors unavailable only after a missed wake
        m = dict(m, expire_after=2 * c["interval_s"] + c["awake_max_s"])
    discovery.SW = sw or VERSION
    try:
        discovery.write(path, mark, node, units, m, c["led"]["mode"] == "remote", about, old)
    finally:  # the host builds for several boards in one process (tests): no firmware carried over
        discovery.SW = VERSION


def restart(log, what):
    # The node's own restart must not hide why it started (HA's "Last
    # reset cause" would say "software reset" after every config change):
    # the cause is kept for the loop (assemble.cause), the first one if
    # restarts follow each other.
    log("config: %s; restarting to run it in a fresh heap" % what)
    import os
    import machine
    try:
        os.stat(CAUSE)
    except OSError:
        try:
            from upynode import save
            save(CAUSE, "%d" % machine.reset_cause())
        except OSError:
            pass
    machine.reset()


VERSION = "0.3.0"
BUILD_ID = "build.txt"  # in the package: the id `upynode build` gives the firmware


def firmware():
    # What HA shows as the firmware's version: VERSION+<build id>
    import upynode
    pkg = upynode.__path__
    if not isinstance(pkg, str):  # CPython (tests): a list
        pkg = pkg[0]
    try:
        with open(pkg + "/" + BUILD_ID) as f:
            return VERSION + "+" + f.read().strip()
    except OSError:  # a tree not built by `upynode build`
        return VERSION


def announcement(c, k, log=print):
    # The announcement to Home Assistant (discovery.FILE) as built from
    # this config (key k) and chip, built now if it is not: here, in a boot
    # that restarts after, so that neither discovery's code nor its names
    # nor a payload ever take the loop's heap (mqtt streams the file).
    # -> True if it wrote the file. A failure is said and leaves no file:
    # the node then runs and announces nothing, rather than old entities.
    m = c["mqtt"]
    if "mqtt" not in c["transports"] or not m["discovery"] or m["format"] != "json":
        return False
    import os
    sw = firmware()
    mark = "%s %s %s" % (k, node_id(c), sw)  # a new build announces again: HA shows its version
    try:
        with open(ANNOUNCEMENT, "rb") as f:
            if f.readline().strip() == mark.encode():
                return False
    except OSError:
        pass
    try:
        try:
            with open("discovery.fp") as f:  # mqtt.FP_FILE: what was announced last
                old = f.read()
        except OSError:
            old = ""
        save_announcement(ANNOUNCEMENT, c, mark, node_id(c), old, sw)
        return True
    except Exception as e:  # a full filesystem: no announcement, but the node runs
        log("discovery: could not save %s: %s: %s" % (ANNOUNCEMENT, type(e).__name__, e))
        try:
            os.remove(ANNOUNCEMENT)
        except OSError:
            pass
        from upynode import release
        release("discovery", "drivers")
        return False


def node_id(c):
    return c["node_id"] or "esp8266_" + chip_hex()


def chip_hex():
    import machine
    import binascii
    return binascii.hexlify(machine.unique_id()).decode()


def run(c, log=print):
    # c: check()'s config, or None.
    global cfg
    import gc
    chip = chip_hex()
    if c is not None:
        c["node_id"] = node_id(c)
    gc.collect()
    woke = False
    if c is not None:
        from upynode import wifi
        w = c["wifi"]
        deep = c["sleep"] == "deep"
        if deep:
            import machine
            woke = machine.reset_cause() == machine.DEEPSLEEP_RESET
        if woke:
            # A timer wake has awake_max_s for everything: one attempt.
            w = dict(w, retries=1, timeout_s=max(1, min(w["timeout_s"], c["awake_max_s"] // 2)))
        try:
            if wifi.join(w, log, learn=deep):
                cfg = c
            elif woke:
                # Asleep in a wall: no setup mode (its access point would
                # drain the battery); the reading waits on flash.
                log("wifi: could not join \"%s\": the reading is queued" % w["ssid"])
                cfg = c
            else:
                fail(WIFI, "could not join \"%s\"" % w["ssid"])
        except Exception as e:
            fail(WIFI, "%s: %s" % (type(e).__name__, e))
    if reason:
        log("setup mode: " + reason)
        try:
            # setup mode's code now, while the heap is in one piece (main.py
            # runs it after WebREPL has taken its share)
            from upynode import setupmode
            global checked
            checked = setupmode._stamp()
        except Exception as e:
            log("setup: %s" % e)
        try:
            from upynode import wifi
            wifi.start_ap("upynode-" + chip, log)
        except Exception as e:
            log("setup: access point failed: %s" % e)
    if not woke:  # a timer wake serves nobody: no WebREPL (see README, deep sleep)
        start_webrepl(c, log)
    return cfg


def release():
    # Validation and joining WiFi are done: give their RAM back to the loop.
    import upynode
    upynode.release("startup", "config", "wifi")


def webrepl_password(c):
    # The configured password wins; else the one saved by an earlier good
    # boot; else the documented default, so that a new node can be reached.
    pw = c["webrepl"]["password"] if c else ""
    if pw:
        return pw, True
    try:
        with open(WEBREPL_CFG) as f:
            for line in f:
                if line.startswith("PASS"):
                    return line.split("=", 1)[1].strip().strip("'\""), False
    except OSError:
        pass
    return DEFAULT_WEBREPL_PASSWORD, False


def start_webrepl(c, log=print):
    pw, configured = webrepl_password(c)
    try:
        if configured:
            try:
                with open(WEBREPL_CFG) as f:
                    saved = f.read()
            except OSError:
                saved = ""
            line = "PASS = %r\n" % pw
            if saved != line:
                from upynode import save
                save(WEBREPL_CFG, line)  # a cut mid-write must not cost the password
    except Exception as e:  # a full or broken filesystem must not cost WebREPL
        log("webrepl: could not save %s: %s" % (WEBREPL_CFG, e))
    try:
        import webrepl
        webrepl.start(password=pw)
    except Exception as e:
        log("webrepl: not started: %s" % e)
