"""Boards, linker scripts and the arm-none-eabi-gcc build (real toolchain)."""
import struct

import pytest
from fixtures.firmware_helpers import build_fixture

from tinyfake.errors import UserError
from tinyfake.firmware import list_boards, load_board
from tinyfake.firmware.boards import parse_size
from tinyfake.firmware.linker import sim_regions
from tinyfake.report.elf import Elf


def test_boards_are_data():
    assert {"stm32h743", "mps2-an500"} <= set(list_boards())
    b = load_board("stm32h743")
    assert b.clock_hz == 480_000_000
    assert (b.regions["FLASH"].origin, b.regions["FLASH"].size) == (0x08000000, 2 << 20)
    assert (b.regions["DTCM"].origin, b.regions["DTCM"].size) == (0x20000000, 128 << 10)
    assert (b.regions["AXI_SRAM"].origin, b.regions["AXI_SRAM"].size) == (0x24000000, 512 << 10)
    assert {"SRAM1", "SRAM2", "SRAM3", "SRAM4", "ITCM"} <= set(b.regions)
    assert b.console["uart"] == "USART3" and b.flash["default"] == "pyocd"
    assert b.sim_board().name == "mps2-an500"


def test_unknown_board_is_one_clear_line():
    with pytest.raises(UserError, match="unknown board 'nope'.*stm32h743"):
        load_board("nope")


def _board_variant(tmp_path, monkeypatch, name, edit):
    """boards/<name>.toml edited by `edit` as boards/myboard.toml, in a
    boards dir (with every other board: the simulator's) tests can change."""
    from tinyfake.firmware import boards
    text = (boards.BOARDS_DIR / f"{name}.toml").read_text()
    edited = edit(text).replace(f'name = "{name}"', 'name = "myboard"')
    assert edited != text.replace(f'name = "{name}"', 'name = "myboard"')
    (tmp_path / "myboard.toml").write_text(edited)
    for other in (boards.BOARDS_DIR).glob("*.toml"):   # the simulator board
        (tmp_path / other.name).write_text(other.read_text())
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('cpu = "cortex-m7"', 'cpu = "cortex-m7'), "not a readable TOML board description"),
    (lambda t: t.replace('cpu = "cortex-m7"\n', ""), "lacks the key 'cpu'"),
    (lambda t: t.replace('name = "stm32h743"', 'name = "other"'), "differs from the file name 'myboard'"),
    # The schema (tinyfake.firmware.board_schema): misspelt keys and wrong types, named.
    (lambda t: t.replace("simulator =", "simulater ="), "unknown key 'simulater' \\(known here: .*simulator"),
    (lambda t: t.replace("baud = 115200", 'baud = "fast"'), "console.baud: 'fast' is not of type 'integer'"),
    (lambda t: t.replace('size = "128K"\nkind = "ram"', 'sise = "128K"\nkind = "ram"', 1),
     "unknown key 'regions.DTCM.sise'"),
    (lambda t: t.replace('default = "pyocd"', 'default = "jlink"'), "flash.default: 'jlink' is not one of"),
    (lambda t: t.replace('stack_size = "16K"', 'stack_size = "lots"'), "profile.stack_size: 'lots'"),
])
def test_a_broken_board_file_is_one_line_naming_it(tmp_path, monkeypatch, edit, message):
    _board_variant(tmp_path, monkeypatch, "stm32h743", edit)
    with pytest.raises(UserError, match=message) as err:
        load_board("myboard")
    assert "myboard.toml" in str(err.value) and "\n" not in str(err.value)


def test_parse_size():
    assert parse_size("2M") == 2 << 20 and parse_size("128K") == 131072 and parse_size(4096) == 4096
    with pytest.raises(ValueError):
        parse_size("lots")


def test_simulator_map_keeps_region_sizes():
    b = load_board("stm32h743")
    sim = sim_regions(b)
    an500 = load_board("mps2-an500")
    for name, r in b.regions.items():
        assert sim[name].size == r.size
        bank = an500.banks["code" if r.kind == "rom" else "ram"]
        assert bank.origin <= sim[name].origin and sim[name].origin + r.size <= bank.origin + bank.size
    ram = sorted((r.origin, r.origin + r.size) for r in sim.values() if r.kind == "ram")
    assert all(a[1] <= b[0] for a, b in zip(ram, ram[1:]))  # no overlaps


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("fw"))


def test_build_writes_board_and_simulator_images(build):
    for p in (build.elf, build.bin, build.hex, build.sim_elf):
        assert p.exists() and p.stat().st_size > 0
    # The BIN starts with the vector table: initial SP = top of the stack in
    # DTCM, reset handler in flash (Thumb bit set).
    sp, reset = struct.unpack_from("<II", build.bin.read_bytes())
    syms = Elf(build.elf).symbols()
    assert sp == syms["__stack_top"] and 0x20000000 < sp <= 0x20020000
    assert 0x08000000 <= reset < 0x08200000 and reset & 1
    assert build.hex.read_text().startswith(":")
    # The simulator ELF has the same code at AN500 addresses.
    sim_syms = Elf(build.sim_elf).symbols()
    assert sim_syms["tf_mark_begin"] < 0x00400000 and 0x20000000 <= sim_syms["__stack_top"] < 0x20400000
    assert sim_syms["tf_mark_begin"] != sim_syms["tf_mark_end"]


def test_region_usage_follows_the_profile(build):
    usage = build.board_image.usage
    assert build.arena_region == "DTCM"
    assert usage["DTCM"].parts["arena"] >= 768
    assert usage["DTCM"].parts["stack"] == 16 * 1024
    assert usage["FLASH"].parts["code"] > 0 and usage["FLASH"].parts["rodata"] > 0
    assert usage["AXI_SRAM"].used == 0
    # Same RAM per region in simulation: overflows fail the same way.
    sim = build.sim_image.usage
    assert sim["DTCM"].parts == usage["DTCM"].parts


def test_model_too_big_for_flash_fails_at_link_time(tmp_path):
    with pytest.raises(UserError) as exc:  # 3 MB of weights for a 2 MB flash
        build_fixture(tmp_path, defines={"MODEL_WEIGHT_BYTES": 3 << 20})
    msg = str(exc.value)
    assert "region FLASH" in msg and "overflowed by" in msg and "\n" not in msg
    over = int(msg.split("overflowed by ")[1].split()[0])
    assert 1 << 20 < over < (3 << 20)


def test_arena_falls_back_to_axi_sram_then_fails(tmp_path):
    # 300 KB arena: not in DTCM (128 KB), fits AXI SRAM (512 KB).
    b = build_fixture(tmp_path / "a", defines={"MODEL_ARENA_BYTES": 300 << 10})
    assert b.arena_region == "AXI_SRAM" and b.board_image.usage["AXI_SRAM"].parts["arena"] >= 300 << 10
    with pytest.raises(UserError, match=r"region AXI_SRAM \(512 KiB\) overflowed by \d+ bytes"):
        build_fixture(tmp_path / "b", defines={"MODEL_ARENA_BYTES": 600 << 10})


@pytest.mark.parametrize("name", ["stm32h723", "stm32h7a3", "stm32h747i-disco",
                                  "stm32h750b-dk", "stm32f746g-disco"])
def test_each_board_links_with_its_own_budgets(tmp_path, name):
    # Budgets from the board file: an arena too big for the first arena
    # region falls back to the next; too big for the last, or weights too
    # big for the rodata region, fail at link time naming the region.
    board = load_board(name)
    first, last = (board.regions[r] for r in (board.profile.arena[0], board.profile.arena[-1]))
    b = build_fixture(tmp_path / "a", name, defines={"MODEL_ARENA_BYTES": first.size + (4 << 10)})
    assert b.arena_region == last.name and b.board_image.usage[last.name].parts["arena"] > first.size
    assert b.sim_image.usage[last.name].parts == b.board_image.usage[last.name].parts
    assert b.board_image.regions[last.name].origin == last.origin  # the real addresses
    with pytest.raises(UserError, match=rf"region {last.name} \(\d+ [KM]iB\) overflowed by \d+ bytes"):
        build_fixture(tmp_path / "b", name, defines={"MODEL_ARENA_BYTES": last.size + (4 << 10)})
    rodata = board.regions[board.profile.rodata]
    with pytest.raises(UserError, match=rf"region {rodata.name} .*overflowed by \d+ bytes"):
        build_fixture(tmp_path / "c", name, defines={"MODEL_WEIGHT_BYTES": rodata.size + (64 << 10)})


@pytest.mark.parametrize("edit, message", [
    # clock_hz that its PLL1 settings do not give
    (lambda t: t.replace("clock_hz = 520_000_000", "clock_hz = 550_000_000"),
     "clock_hz differs from what its PLL1 settings give"),
    # a PLL that gives the claimed clock, above what the part runs (no boost)
    (lambda t: t.replace("clock_hz = 520_000_000", "clock_hz = 550_000_000")
               .replace("pll1_n = 260", "pll1_n = 275"),
     "clock_hz is above what this part runs"),
    (lambda t: t.replace('uart = "USART3"', 'uart = "USART2"'), "console uart must be USART1 or USART3"),
    (lambda t: t.replace('supply = "ldo"', 'supply = "lod"'), "supply must be ldo or smps"),
])
def test_a_clock_or_console_the_hal_cannot_give_fails_to_compile(tmp_path, monkeypatch, edit, message):
    _board_variant(tmp_path, monkeypatch, "stm32h723", edit)
    with pytest.raises(UserError, match="firmware does not compile: .*" + message) as err:
        build_fixture(tmp_path / "b", "myboard")
    assert "\n" not in str(err.value)


def test_a_bad_console_pin_is_one_line(tmp_path, monkeypatch):
    _board_variant(tmp_path, monkeypatch, "stm32h723", lambda t: t.replace('tx = "PD8"', 'tx = "D8"'))
    with pytest.raises(UserError, match=r"myboard.toml \[console\]: tx = 'D8' is not a pin"):
        build_fixture(tmp_path / "b", "myboard")


def test_qspi_board_keeps_code_inside_and_constants_in_qspi(tmp_path, monkeypatch):
    # STM32H750B-DK: code in the 128 KB internal flash, .rodata (weights,
    # their CRC) in the QSPI flash, one BIN per flash (not one across the
    # 2 GB between them), and a boot path that reads nothing from QSPI
    # before the HAL has mapped it.
    from tinyfake.firmware import build as fw_build
    board = load_board("stm32h750b-dk")
    flash, qspi = board.regions["FLASH"], board.regions["QSPI"]
    b = build_fixture(tmp_path / "a", board.name)
    syms = Elf(b.elf).symbols()
    assert syms["__tf_rodata_start"] == qspi.origin and syms["__tf_rodata_end"] > qspi.origin
    assert flash.origin <= syms["hal_early_init"] < flash.origin + flash.size
    usage = b.board_image.usage
    assert usage["QSPI"].parts["rodata"] > 0 and "rodata" not in usage["FLASH"].parts
    # the flash the device reports (STAT) counts both flashes (to alignment)
    assert abs(syms["__tf_flash_used"] - usage["FLASH"].used - usage["QSPI"].used) < 16
    qspi_bin = tmp_path / "a" / "fw" / "stm32h750b-dk-QSPI.bin"
    assert qspi_bin in b.outputs and b.bin.stat().st_size == usage["FLASH"].used
    assert usage["QSPI"].used <= qspi_bin.stat().st_size < usage["QSPI"].used + 16
    assert fw_build.boot_reads(b.elf, qspi) == []
    # the check sees what a later function reads there, through its calls too
    assert fw_build.boot_reads(b.elf, qspi, "flash_crc_computed")
    assert any(r.startswith("crc32_update") for r in fw_build.boot_reads(b.elf, qspi, "flash_crc_computed"))
    # a boot path that reads QSPI is refused at build time
    real = fw_build.boot_reads
    monkeypatch.setattr(fw_build, "boot_reads", lambda elf, region: real(elf, region, "main"))
    with pytest.raises(UserError, match="boot code reads region QSPI before the HAL has mapped") as err:
        build_fixture(tmp_path / "b", board.name)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('size = "128M"', 'size = "100M"'), r"size = 104857600 is not a power of two"),
    (lambda t: t.replace('"PF10:9"', '"PF10"'), r"pin 'PF10' is not a pin with its alternate function"),
    (lambda t: t.replace('size = "128M"', 'size = "8G"'), r"bad size '8G'"),
])
def test_a_bad_qspi_table_is_one_line(tmp_path, monkeypatch, edit, message):
    _board_variant(tmp_path, monkeypatch, "stm32h750b-dk", edit)
    with pytest.raises(UserError, match=r"myboard.toml \[qspi\]: " + message) as err:
        build_fixture(tmp_path / "b", "myboard")
    assert "\n" not in str(err.value)


def test_compile_error_is_one_line(tmp_path):
    with pytest.raises(UserError, match="firmware does not compile: .*extra.c"):
        build_fixture(tmp_path, extra_c="int broken(void) { return nope; }\n")


def test_boards_command(capsys):
    from tinyfake.cli import main
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "stm32h743" in out and "DTCM 128 KiB" in out and "480 MHz" in out
    assert "flash 128 KiB FLASH + 3 MiB QSPI" in out and "code FLASH, weights QSPI" in out  # stm32h750b-dk


def test_boards_command_json(capsys):
    import json

    from tinyfake.cli import main
    from tinyfake.firmware.boards import list_boards
    assert main(["boards", "--json"]) == 0
    boards = {b["name"]: b for b in json.loads(capsys.readouterr().out)}
    assert list(boards) == list_boards()
    h7 = boards["stm32h743"]
    assert h7["regions"]["DTCM"]["size"] == 128 * 1024 and h7["clock_hz"] == 480_000_000
    assert h7["path"].endswith("stm32h743.toml") and h7["flash"]["default"] == "pyocd"


def test_no_board_files_is_an_error_not_an_empty_list(tmp_path, monkeypatch, capsys):
    """An installation without its boards/ says so (it used to list nothing, exit 0)."""
    from tinyfake.cli import main
    from tinyfake.firmware import boards
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["boards"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no board descriptions" in err and "\n" not in err
