# boot.py: runs first on every start. Config -> WiFi -> WebREPL, or setup
# mode; the logic lives in lib/upynode/startup.py.
import gc
import sys

# Collect after every 1 KB allocated, not only when the heap is full.
# Without it the garbage of the boot and of each cycle spread through the
# whole heap before a collection, and the objects kept among it split the
# free space: a cycle then failed to find 176 B with 3.8 KB free in pieces.
# Collected early, garbage is reused from the bottom of the heap and what
# is kept stays packed. make bench (chip need, est.), at 672ea0e without
# -> at fad55e9 with: node from ROMFS 28,710 -> 25,360 B (headroom_kb 4.0
# -> 7.2), full from ROMFS 34,403 -> 30,657 (-1.6 -> 2.1), mqtt_mpy 42,314
# -> 35,605 (-9.3 -> -2.8). The cost: a collection per KB allocated.
gc.threshold(1024)

# Boards with 2 MB of flash or more freeze their own umqtt.simple and
# urequests, and ".frozen" comes before "/lib": put /lib first so that the
# pinned copies this firmware was tested with are the ones that run.
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.append(".frozen")

# A ROMFS image that `upynode deploy` staged (romfs.new) goes into the
# partition first, before anything is imported from it, and one on trial
# (romfs.trial) counts this boot, or is taken back (update.py).
for f in ("romfs.new", "romfs.trial"):
    try:
        open(f).close()
    except OSError:
        continue
    try:
        import update
        if update.boot():
            import machine
            machine.reset()
    except Exception as e:  # the old image, if whole, still runs; WebREPL comes up
        sys.print_exception(e)
    sys.modules.pop("update", None)
    break

try:
    import machine
    if machine.reset_cause() == machine.DEEPSLEEP_RESET:
        # A wake that only continues a sleep longer than the chip's longest
        # goes back to sleep at once, before WiFi (upynode.sleep)
        from upynode import sleep
        sleep.chained()
    # The config as checked when config.json last changed (a changed file
    # is checked first, in a heap of its own, and the node restarts).
    from upynode import startup
    cfg = startup.check()
    if cfg:
        # The loop's code first, into a heap still in one piece: WiFi and
        # WebREPL come after it. The queue, which the loop loads only when
        # a sink fails, is loaded once now and given back: the names in code
        # are interned for good, in a table that grows by doubling into one
        # contiguous block. Grown here, not mid-run in a fragmented heap.
        # (Announcing loads no module: mqtt streams discovery.bin.)
        # A failure here must not stop WiFi: main.py meets it again, says
        # so and resets.
        import upynode
        for m in ("upynode.node", "upynode.led", "upynode.stamp", "upynode.mqtt", "umqtt.simple",
                  "upynode.backlog"):
            try:
                __import__(m)
            except ImportError:  # not deployed (umqtt on an HTTP-only node)
                pass
            except Exception as e:
                sys.print_exception(e)
        upynode.release("backlog")
    startup.run(cfg)
    del cfg  # startup.cfg has it when WiFi is up; setup mode wants the RAM
except Exception as e:  # never stop the board from reaching main.py and the REPL
    import sys
    sys.print_exception(e)
    try:  # keep a way in without USB: WebREPL with the saved password
        import webrepl
        webrepl.start()
    except Exception:
        pass
gc.collect()
