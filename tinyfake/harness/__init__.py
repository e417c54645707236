"""Host side of the device: the serial protocol (`protocol.Device`), the
simulator (`qemu.QemuSim`), flashers (`flash`) and `verify`."""
