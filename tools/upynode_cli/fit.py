"""Whether a configuration fits an ESP8266's heap with lib/ as .mpy files,
as on a board whose MicroPython has no ROMFS partition (stock
ESP8266_GENERIC): their code then loads into the heap, where from ROMFS it
stays in flash.

The figures are the chip bytes `make bench` estimates each program needs at
its worst moment (build/bench.json, "chip_need"; README, Memory), from the
run at a560362 (estimates: they move by about 1 KB from run to run). Rerun
the bench after a change to the firmware's memory and update them here.
"""
CHIP_FREE = 32768  # what an ESP8266 has free after its own boot (README, Memory)

# chip_need, .mpy files: an MQTT node with ADC + MCP9808 + heartbeat LED and
# discovery ("mqtt_mpy"), the node with a DHT22 as well ("node_mpy"), and
# that node sending to the reference receiver too ("full_mpy").
MQTT_NODE = 38055
NODE = 39437
FULL = 43017


def mpy_need(cfg):
    """Chip bytes the checked config cfg needs with lib/ as .mpy files
    (est.). The loop's own modules are most of it, whatever the sensors; a
    second transport costs what the bench's full configuration adds to its
    node. An HTTP-only node was not measured: it shares the loop and is
    estimated as the MQTT node."""
    need = MQTT_NODE
    if len(cfg["transports"]) > 1:
        need += FULL - NODE
    return need


def refusal(cfg):
    """One line saying why cfg does not fit a chip from .mpy files, or None."""
    need = mpy_need(cfg)
    if need <= CHIP_FREE:
        return None
    return ("from .mpy files this configuration needs about %d KB of heap (make bench, est.) where an "
            "ESP8266 has %d KB" % (-(-need // 1024), CHIP_FREE // 1024))
