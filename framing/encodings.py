"""Bytes -> clean text, the way scraped files come: BOMs, UTF-8, BOM-less UTF-16, cp1252.

Shared by every reader (articles, manifests, labelled sets); readers.py re-exports
decode_bytes and clean_text, where callers have always found them.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# zero-width, soft hyphen, and the bidi marks, embeddings, overrides and isolates that can reorder a line
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f"
                                    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # Cc but \t \n; lone surrogates


def decode_bytes(data: bytes) -> str | None:
    """Decode text the way scraped files come: BOM, UTF-8, BOM-less UTF-16, then cp1252.

    Returns None for binary data. Control and zero-width characters are removed,
    line endings normalised to \\n.
    """
    text = _decode(data)
    if text is None or _looks_binary(text):
        text = _bomless_utf16_script(data)
        if text is None or _looks_binary(text):
            return None
    return clean_text(text)


def _decode(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    utf16 = _bomless_utf16(data)
    if utf16:
        return utf16
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 maps them so nothing is lost.
        return data.decode("cp1252", errors="replace").replace("\ufffd", "")


def _bomless_utf16(data: bytes) -> str | None:
    encoding = _utf16_latin_encoding(data[:4096])
    if encoding is None:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _utf16_latin_encoding(sample: bytes) -> str | None:
    """UTF-16 without a BOM shows as NUL in every other byte for Latin-script text."""
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, encoding in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros.count(0) > 0.4 * len(zeros) and (even if zeros is odd else odd).count(0) < 0.1 * len(zeros):
            return encoding
    return None


def _bomless_utf16_script(data: bytes) -> str | None:
    encoding = _utf16_script_encoding(data[:4096], len(data))
    if encoding is None:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _utf16_script_encoding(sample: bytes, size: int) -> str | None:
    """BOM-less UTF-16 in one non-Latin script (Arabic, Hebrew, Cyrillic...): every other byte is
    that script's block or NUL (spaces, digits, punctuation), and the other bytes are rarely NUL."""
    if len(sample) < 4 or size % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for high, low, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        block = max(set(high) - {0}, key=high.count, default=0)
        if high.count(block) + high.count(0) > 0.9 * len(high) and low.count(0) < 0.1 * len(low):
            return encoding
    return None


def sniff_encoding(head: bytes, size: int) -> str | None:
    """The encoding decode_bytes would choose, from a file's first bytes; None for binary data.

    "utf-8" stands for UTF-8 with the cp1252 fallback, decided line by line by the caller.
    """
    encoding = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    encoding = {"utf-8-sig": "utf-8"}.get(encoding or "", encoding) or _utf16_latin_encoding(head[:4096]) or "utf-8"
    if not _looks_binary(head.decode(encoding, errors="ignore")):  # the head may end inside a character
        return encoding
    return _utf16_script_encoding(head[:4096], size)


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    return controls > 0.05 * len(sample)


def clean_text(text: str) -> str:
    """Normalise line endings; drop control and zero-width characters but keep the words."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    return _CONTROLS.sub("", text)  # a regex, not a per-character join: linear and no list of characters
