"""Text at the boundary: the one rule every front end applies to text it is handed.

The rule: text is valid Unicode, and bytes are valid UTF-8 (a leading BOM is ignored); anything else is
refused with an InputError saying where, never repaired. Command-line arguments that are not valid UTF-8
reach Python as lone surrogates (PEP 383), JSON may spell one as "\\ud800", and stdin may hold any bytes: all of
them meet the same check here, so `avatar emotion`, `tts`, `say`, `batch`, `stream`, the WebSocket and the app
refuse the same input with the same message.
"""

from __future__ import annotations

import re

from avatar.errors import InputError

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_unicode(text: str, what: str = "text") -> str:
    """`text` unchanged when it is a str of valid Unicode; InputError naming the first bad character otherwise."""
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    m = _SURROGATE.search(text)
    if m is not None:
        cp = ord(m.group())
        # surrogateescape maps an undecodable byte b to U+DC00 + b: name the byte, which is what the user typed
        bad = f"byte 0x{cp - 0xDC00:02x}" if 0xDC80 <= cp <= 0xDCFF else f"lone surrogate U+{cp:04X}"
        raise InputError(f"{what} is not valid UTF-8/Unicode ({bad} at character {m.start() + 1})")
    return text


def decode_utf8(raw: bytes, what: str = "the input") -> str:
    """Bytes decoded as strict UTF-8 (a leading BOM dropped); InputError naming the first bad byte's offset."""
    try:
        return bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


def escaped(text: str) -> str:
    """`text` with anything that is not valid Unicode written as a \\uXXXX escape, safe to print or store."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _SURROGATE.search(text) else text


def find_invalid(obj: object, what: str = "text") -> str | None:
    """The message for the first string in `obj` (nested dicts and lists, keys included) that is not valid
    Unicode, or None: for parsed JSON/YAML, whose escapes ("\\ud800") can spell what UTF-8 cannot."""
    if isinstance(obj, str):
        try:
            check_unicode(obj, what)
        except InputError as exc:
            return str(exc)
        return None
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = find_invalid(k, f"the key {escaped(str(k))!r}") if isinstance(k, str) else None
            found = found or find_invalid(v, escaped(str(k)))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            found = find_invalid(item, what)
            if found:
                return found
    return None
