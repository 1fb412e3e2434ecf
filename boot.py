# boot.py: runs first on every start. Config -> WiFi -> WebREPL, or setup
# mode; the logic lives in lib/upynode/startup.py.
import gc

try:
    from upynode import startup
    startup.run()
except Exception as e:  # never stop the board from reaching main.py and the REPL
    import sys
    sys.print_exception(e)
gc.collect()
