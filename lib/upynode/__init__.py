# upynode: the firmware's package. Only release() lives here, so that every
# module can give back the RAM of modules that have done their job.


def release(*names):
    # Forget upynode.<name> for good: both references to it, the one in
    # sys.modules and the package's attribute, or the GC cannot free it.
    import sys
    for name in names:
        sys.modules.pop("upynode." + name, None)
        if name in globals():
            del globals()[name]


def save(path, data):
    # Replace a file the node owns so that a power cut leaves the old one or
    # the new one, never a torn or empty one: write beside it, then rename
    # (atomic on LittleFS; on FAT the old file is removed first, and boot
    # cleans a stray .tmp: see startup.clean()). data: a str, bytes, or an
    # iterable of bytes written as they come (never whole in RAM).
    import os
    tmp = path + ".tmp"
    with open(tmp, "w" if isinstance(data, str) else "wb") as f:
        for p in (data,) if isinstance(data, (str, bytes)) else data:
            f.write(p)
    try:
        os.rename(tmp, path)
    except OSError:
        os.remove(path)
        os.rename(tmp, path)


# The watchdog (machine.WDT), once the loop started it. On the ESP8266 a
# started WDT is fed by feed() alone (time.sleep and socket waits stop
# feeding it) and fires 1.6 to 3.2 s after the last feed: every wait longer
# than about a second is sliced and calls feed() between slices.
wdt = None


def feed():
    if wdt:
        wdt.feed()
