"""Report stage: flash/RAM per region from the ELF, latency, accuracy;
writes `report.json` and `report.md` into the run directory."""
