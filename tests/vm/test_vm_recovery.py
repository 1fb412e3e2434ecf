"""The README's promises for a node with a bug in it, on the virtual board: a
bug never leaves it dead in the wall, a broken boot keeps WebREPL open with
the saved password, and the pinned /lib modules run before frozen ones.

The bug is injected by replacing one firmware module on the board's copy
with a source file that raises, as a bad deploy would leave it: on a board
deployed with .mpy files (a ROMFS image is checked before it is written)."""
import os

from helpers import HOME_AP, node_config


def inject_bug(vb, module, words):
    """lib/upynode/<module> replaced by a module that raises RuntimeError(words)."""
    lib = os.path.join(vb.board, "lib", "upynode")
    os.remove(os.path.join(lib, module + ".mpy"))
    with open(os.path.join(lib, module + ".py"), "w") as f:
        f.write("raise RuntimeError(%r)\n" % words)


def test_a_bug_in_the_loop_prints_its_traceback_and_resets_the_node(make_vboard):
    vb = make_vboard(node_config(1883), rom=False, aps=HOME_AP)
    inject_bug(vb, "node", "injected bug")
    with vb:
        vb.wait_for(r"RuntimeError: injected bug")
        n = len(vb.lines)
        vb.wait_for(r"^main: restarting in 30 s \(Ctrl-C to stay at the REPL\)$")
        vb.wait_for(r"^\[vboard: reset\]$", timeout=45, start=n)  # machine.reset() after 30 s
        vb.wait_for(r'wifi: connected to "home"', start=n)        # and it boots again


def test_a_broken_boot_keeps_webrepl_open_with_the_saved_password(make_vboard):
    vb = make_vboard(node_config(1883), rom=False, aps=HOME_AP)
    vb.write_file("webrepl_cfg.py", "PASS = 'saved1'\n")  # an earlier good boot wrote it
    inject_bug(vb, "startup", "boot bug")
    with vb:
        vb.wait_for(r"RuntimeError: boot bug")
        vb.wait_for(r"^WebREPL server started")
        assert vb.state("webrepl")["password"] == "saved1"
        vb.wait_for(r"^main: restarting in 30 s")  # main.py cannot start the loop either


def test_pinned_lib_modules_run_before_frozen_ones(make_vboard):
    # Boards with 2 MB of flash freeze their own umqtt.simple and urequests,
    # and MicroPython looks in ".frozen" before "/lib": boot.py turns that round.
    vb = make_vboard(node_config(1883), aps=HOME_AP)
    vb.write_file("main.py", "import sys\nprint('PATH', sys.path)\n")
    with vb:
        line = vb.wait_for(r"^PATH ")
    path = eval(line[5:])  # the VM printed a list of strings
    lib = [i for i, p in enumerate(path) if p.endswith("/lib")]
    assert lib and ".frozen" in path and lib[0] < path.index(".frozen"), path


def test_the_watchdog_spares_a_node_stopped_at_the_repl(broker, make_vboard):
    # The ESP8266's watchdog, once the loop started it, cannot be stopped and
    # is not fed at the REPL: Ctrl-C over WebREPL (what `upynode config`
    # does first) would have the node reset under the user within 2 s.
    import time

    from cli.test_cli_webrepl_vm import Client
    from upynode_vboard import runner
    from upynode_vboard.services import free_port
    port = free_port()
    vb = make_vboard(node_config(broker.port), heapsize=runner.GUARD_WEBREPL_HEAPSIZE, aps=HOME_AP,
                     webrepl_port=port)
    with vb:
        vb.wait_for(r"^1\.2: ")  # the loop runs, and its watchdog
        c = Client(port)
        try:
            c.login("s3cret")
            c.frame("\r\x03")
            c.text_until(b">>> ")
            time.sleep(5)  # at the REPL, longer than the watchdog's 1.6-3.2 s
            c.frame("print(6 * 7)\r")
            assert b"42" in c.text_until(b"42\r\n>>> ")
        finally:
            c.close()
        assert "watchdog" not in vb.output() and vb.boots == 1
