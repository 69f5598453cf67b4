"""Text on its way out of icrm — to a file, a terminal, an HTTP answer or a log — made
safe whatever it holds.

- `dumps`: JSON that always encodes as UTF-8. A lone surrogate (``\\ud800``, which a
  JSON escape in a server's answer or an input row decodes to) cannot be written as
  UTF-8, so the few values that hold one are written ASCII-escaped instead: the same
  value reads back, and no row is lost to an encoding error.
- `redact`: a provider key, whole or a long enough piece of it, replaced by
  ``[REDACTED]`` (servers echo keys in their error messages).
- `printable`: control characters (ESC, OSC, BEL, carriage return, C1 controls) and
  bidirectional overrides shown escaped (``\\x1b``), so data shown in a terminal cannot
  drive it — move the cursor, set the clipboard (OSC 52), ring, or reorder the line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["dumps", "finite", "redact", "printable", "REDACTED", "MIN_SECRET_ECHO"]

REDACTED = "[REDACTED]"
# A piece of a key this long or longer is redacted wherever it appears.
MIN_SECRET_ECHO = 16
_WINDOW = 8  # any piece of MIN_SECRET_ECHO chars holds one aligned window of this size
# C0 controls but tab and newline, DEL, C1 controls, bidirectional embeddings, overrides
# and isolates, and the line / paragraph separators.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\r": "\\r", "\x1b": "\\x1b", "\x07": "\\x07"}


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False, nan: bool = True) -> str:
    """`json.dumps` that always encodes as UTF-8 (see the module docstring).

    Args:
        value: JSON-ready data (``default=str`` for anything else).
        indent, sort_keys: as `json.dumps`.
        nan: False = non-finite floats become null (strict JSON, for browsers).

    >>> dumps({"t": "caf\\u00e9 \\ud800"})
    '{"t": "caf\\\\u00e9 \\\\ud800"}'
    >>> dumps({"t": "café"})
    '{"t": "café"}'
    """
    if not nan:
        value = finite(value)
    text = json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, indent=indent, sort_keys=sort_keys, default=str)
    return text


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float (in lists and dicts too) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret — and every piece of one at least `MIN_SECRET_ECHO`
    characters long — replaced by ``[REDACTED]``.

    >>> redact("bad key sk-abcdefghijklmnopqrstuvwx0123 given", ["sk-abcdefghijklmnopqrstuvwx0123"])
    'bad key [REDACTED] given'
    >>> redact("Incorrect API key: sk-abcdefghijklmn****0123", ["sk-abcdefghijklmnopqrstuvwx0123"])
    'Incorrect API key: [REDACTED]****0123'
    """
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        text = text.replace(secret, REDACTED)
        if len(secret) <= MIN_SECRET_ECHO:
            continue
        windows = [i for i in range(0, len(secret) - _WINDOW + 1, _WINDOW) if secret[i:i + _WINDOW] in text]
        if windows:
            text = _redact_pieces(text, secret, windows)
    return text


def _redact_pieces(text: str, secret: str, windows: list[int]) -> str:
    spans: list[tuple[int, int]] = []
    for offset in windows:
        piece = secret[offset:offset + _WINDOW]
        at = text.find(piece)
        while at >= 0:
            start, end, left, right = at, at + _WINDOW, offset, offset + _WINDOW
            while start > 0 and left > 0 and text[start - 1] == secret[left - 1]:
                start, left = start - 1, left - 1
            while end < len(text) and right < len(secret) and text[end] == secret[right]:
                end, right = end + 1, right + 1
            if end - start >= MIN_SECRET_ECHO:
                spans.append((start, end))
            at = text.find(piece, at + 1)
    if not spans:
        return text
    out, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlapping pieces of one echo
            if end > last:
                last = end
            continue
        out += [text[last:start], REDACTED]
        last = end
    return "".join(out) + text[last:]


def printable(text: str) -> str:
    """`text` with terminal controls shown escaped; newlines and tabs kept.

    >>> printable("ok\\x1b]52;c;ZXZpbA==\\x07 \\u202eevil")
    'ok\\\\x1b]52;c;ZXZpbA==\\\\x07 \\\\u202eevil'
    """
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
