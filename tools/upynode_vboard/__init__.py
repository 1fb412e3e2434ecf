"""The virtual NodeMCU and the world around it, all on 127.0.0.1.

- fakehw/: the chip's built-in modules (machine, network, dht, esp, onewire,
  ds18x20, webrepl, ntptime) as the firmware sees them; MicroPython and
  CPython both run them. webrepl serves the real protocol from inside the VM
  when the world names a webrepl_port (_webrepl_srv, _webrepl_vm)
- runner: the MicroPython VM (unix port) booting a board folder on the fakes
- vserial: the same VM behind a pty, a serial port for mpremote and deploy
- services: free ports, waiting for a listener, stopping child processes
- brokers, mqttwatch: a real MQTT broker and a subscriber that counts
- receiver_process: the reference receiver as a process
- homeassistant: a real Home Assistant (2024.3.3) for tests/ha, installed under build/
- sim (`upynode-sim`, make sim) and bench (`upynode-bench`, make bench)
"""
import os

FAKES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fakehw")
