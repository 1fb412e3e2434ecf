# The status LED. The on-board LEDs (GPIO2, NodeMCU's GPIO16) are
# active-low, so a Signal with invert=True makes on() mean lit.
import time


class Led:
    def __init__(self, c):
        from machine import Pin, Signal
        self.sig = Signal(Pin(c["pin"], Pin.OUT), invert=c["invert"])
        self.mode = c["mode"]
        self.quantity = c["quantity"]
        self.threshold = c["threshold"]
        self.entity = c["entity_id"]
        self.sig.off()

    def show(self, values):
        # Before sending: the LED tells the reading, however slow the network.
        if self.mode == "threshold":
            v = values.get(self.quantity)
            # No reading this cycle: keep the last state rather than flicker.
            if v is not None:
                self.sig.value(1 if v >= self.threshold else 0)

    def update(self, values, published):
        self.show(values)
        if self.mode == "heartbeat" and published:
            self.sig.on()
            time.sleep_ms(60)
            self.sig.off()
