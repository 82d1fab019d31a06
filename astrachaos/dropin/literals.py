"""CQL literals as the driver writes them into a simple statement, back to Python values."""

from __future__ import annotations

import re
import uuid
from typing import Any

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INTEGER = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")


class LiteralError(ValueError):
    """The text is not a literal this reader understands (a bind marker, a function call)."""


def parse_literal(text: str) -> Any:
    """The Python value of one CQL literal (string, number, boolean, null, uuid, blob)."""
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered == "null":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _INTEGER.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if _UUID.match(text):
        return uuid.UUID(text)
    if lowered.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError as error:
            raise LiteralError(f"bad blob {text[:40]!r}") from error
    if text.startswith(("[", "{", "(")):
        return text  # a collection or tuple, kept as written: never part of a key
    raise LiteralError(f"not a literal: {text[:40]!r}")
