"""The serial protocol's framing, host side and device side (host gcc)."""
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tinyfake.harness.protocol import DeviceInfo, frame, parse_fields, unframe

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_frame_roundtrip():
    line = frame("7 LOAD 0 00ff7f80")
    assert line.endswith(b"\n") and line.count(b"*") == 1
    assert unframe(line) == "7 LOAD 0 00ff7f80"
    assert unframe(line.rstrip(b"\n") + b"\r\n") == "7 LOAD 0 00ff7f80"


@pytest.mark.parametrize("damage", [
    lambda b: b[:3] + b"x" + b[4:],          # corrupted byte
    lambda b: b[:5] + b[6:],                 # dropped byte
    lambda b: b[:5] + b[5:6] + b[5:],        # duplicated byte
    lambda b: b[:-4],                        # truncated CRC
    lambda b: b.replace(b"*", b""),          # no CRC at all
    lambda b: b[:-9] + b[-9:].upper(),       # CRC in upper case: not what either end writes
    lambda b: b[:2] + b"\x00" + b[2:],        # a NUL
])
def test_damaged_lines_are_rejected(damage):
    assert unframe(damage(frame("12 RUN 1234abcd"))) is None


def test_parse_fields_and_device_info():
    text = ("OK proto=1 fw=0.1.0 board=stm32h743 platform=mps2-an500 clock=480000000 model=m "
            "hash=0123456789abcdef in=64x64x3 in_bytes=12288 out_bytes=1 in_scale=3b808081 in_zp=-128 "
            "out_scale=3d800000 out_zp=5 arena=1000 weights=2000 macs=3000 ops=9 flash=4000 ram=5000 "
            "stack=16384 line_max=1200 bench_max=100 reset=watchdog flash_crc=0badf00d flash_ok=1")
    info = DeviceInfo.parse(parse_fields(text))
    assert info.input_shape == (64, 64, 3) and info.output_zero_point == 5
    assert info.input_scale == pytest.approx(1 / 255) and info.output_scale == 0.0625
    assert info.clock_hz == 480_000_000 and info.bench_max == 100
    assert info.reset_reason == "watchdog" and info.flash_ok


def test_device_crc32_equals_zlib(tmp_path):
    """firmware/app/crc32.c (compiled for the host) == zlib.crc32."""
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "crc32.h"\n'
                    "int main(void){static unsigned char b[1<<16]; size_t n=fread(b,1,sizeof b,stdin);"
                    'printf("%08lx", (unsigned long)crc32_update(0,b,n)); return 0;}\n')
    exe = tmp_path / "crc"
    app = REPO_ROOT / "firmware" / "app"
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", f"-I{app}", str(main), str(app / "crc32.c"),
                    "-o", str(exe)], check=True)
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 1000, 12288):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        out = subprocess.run([str(exe)], input=data, capture_output=True, check=True).stdout
        assert int(out, 16) == zlib.crc32(data)
