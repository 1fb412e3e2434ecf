# main.py: runs after boot.py: the sensor loop, or setup mode when boot.py
# found no usable config or WiFi.
try:
    from upynode import startup
    if startup.cfg:
        cfg = startup.cfg
        startup.release()
        del startup
        import gc
        gc.collect()
        from upynode import node
        node.run(cfg)
    else:
        import sys
        import upynode
        upynode.release("node", "mqtt", "led", "stamp", "sock", "sensors")  # loaded by boot.py
        sys.modules.pop("umqtt.simple", None)
        from upynode import setupmode
        setupmode.run()
except Exception as e:
    # A bug must not leave the node dead in the wall: report, give a person
    # at the REPL or WebREPL time to press Ctrl-C, then start over.
    import sys
    import time
    import machine
    sys.print_exception(e)
    print("main: restarting in 30 s (Ctrl-C to stay at the REPL)")
    time.sleep(30)
    machine.reset()
