"""What a board file (`boards/<name>.toml`) may say, as a JSON schema:
`load_board` checks every file against it, so a missing key, a misspelt
one or a value of the wrong type is one line naming the file and the key."""
from __future__ import annotations

from pathlib import Path

from tinyfake.errors import UserError

SIZE = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^\s*\d+\s*[KkMm]?\s*$"}]}
NAME = {"type": "string", "minLength": 1}
REGION = {"type": "object", "required": ["origin", "size"], "additionalProperties": False,
          "properties": {"origin": {"type": "integer", "minimum": 0}, "size": SIZE,
                         "kind": {"enum": ["rom", "ram"]}}}
SCALARS = {"type": "object", "additionalProperties": {"type": ["integer", "boolean", "string"]}}

BOARD_SCHEMA = {
    "type": "object",
    "required": ["name", "family", "cpu", "clock_hz", "regions", "profile"],
    "additionalProperties": False,
    "properties": {
        "name": NAME, "title": {"type": "string"}, "family": NAME, "part": {"type": "string"},
        "cpu": NAME, "fpu": {"type": "string"},
        "clock_hz": {"type": "integer", "minimum": 1},
        "simulator": NAME,
        "console": {"type": "object", "additionalProperties": False,
                    "properties": {"uart": {"type": "string"}, "tx": {"type": "string"},
                                   "rx": {"type": "string"}, "af": {"type": "integer", "minimum": 0},
                                   "baud": {"type": "integer", "minimum": 1},
                                   "port_hint": {"type": "string"}}},
        "clock": SCALARS,  # the family HAL's own settings (firmware/hal/<family>)
        "regions": {"type": "object", "minProperties": 1, "additionalProperties": REGION},
        "banks": {"type": "object", "additionalProperties": REGION},
        "profile": {"type": "object", "additionalProperties": False,
                    "required": ["text", "rodata", "data", "bss", "stack", "stack_size", "arena"],
                    "properties": {**{k: NAME for k in ("text", "rodata", "data", "bss", "stack")},
                                   "stack_size": SIZE,
                                   "arena": {"anyOf": [NAME, {"type": "array", "items": NAME, "minItems": 1}]}}},
        "qemu": {"type": "object", "additionalProperties": False,
                 "properties": {"machine": NAME, "cpu": NAME}},
        "renode": {"type": "object", "additionalProperties": False, "required": ["platform"],
                   "properties": {"platform": NAME, "overlay": NAME}},
        "qspi": SCALARS | {"additionalProperties": {"type": ["integer", "boolean", "string", "array"]}},
        "flash": {"type": "object", "additionalProperties": False,
                  "properties": {"default": {"enum": ["pyocd", "openocd", "st-flash"]},
                                 "pyocd": {"type": "object", "additionalProperties": False,
                                           "properties": {"target": NAME}},
                                 "openocd": {"type": "object", "additionalProperties": False,
                                             "properties": {"config": {"type": "array", "items": NAME}}},
                                 "st-flash": {"type": "object", "additionalProperties": False,
                                              "properties": {"address": {"type": "integer", "minimum": 0}}}}},
    },
}


def check_board(d: dict, path: Path) -> None:
    """Raise one UserError line naming `path`, the key and what is wrong."""
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(BOARD_SCHEMA).iter_errors(d))
    misspelt = [e for e in errors if e.validator == "additionalProperties"]  # says more than "lacks"
    error = jsonschema.exceptions.best_match(misspelt or errors)
    if error is None:
        return
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                    for i, p in enumerate(error.absolute_path))
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        raise UserError(f"{path}: unknown key {'.'.join(filter(None, [where, extra[0]]))!r}"
                        + (f" (known here: {', '.join(known)})" if known else ""))
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        raise UserError(f"{path}: the board description lacks the key "
                        f"{'.'.join(filter(None, [where, missing]))!r}")
    raise UserError(f"{path}: {where or 'the file'}: {error.message}")
