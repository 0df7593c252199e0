"""Text clean-up and sentence splitting, for any script and any length.

Written here rather than taken from a library: the splitters on offer (nltk punkt, pysbd, spaCy) need
downloaded models or are slow on 100k-character input, and we also need character offsets and a hard
cap on sentence length so a wall of text without punctuation still becomes model-sized pieces.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from avatar.errors import InputError
from avatar.text import check_unicode

#: Input larger than this is refused (about 200 pages); callers should split such input themselves.
MAX_TEXT_CHARS = 1_000_000
#: Sentences longer than this are cut at the last space before it, so every piece fits the encoder.
MAX_SENTENCE_CHARS = 400

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no", "fig", "mt",
    "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
# Sentence ends: Latin . ! ? and ellipsis, CJK and other full stops, followed by closing quotes/brackets.
_END = re.compile(r"([.!?\u2026\u3002\uff01\uff1f\u061f\u0964\u0965]+)([\"'\u201d\u2019\u00bb)\]]*)(\s*)")
_CJK_END = re.compile(r"[\u3002\uff01\uff1f]")
# Control characters, zero-width space, bidi marks, line/paragraph separators and BOM become spaces. The
# zero-width non-joiner and joiner (U+200C, U+200D) stay: they are part of Persian and Indic spelling and of
# emoji sequences (a family, a profession, a flag).
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b\u200e\u200f\u2028\u2029\ufeff]")


@dataclass(frozen=True)
class Sentence:
    """One sentence and where it sits in the original text (character offsets)."""

    text: str
    start: int
    end: int


def normalize(text: str) -> str:
    """NFC-normalise, turn control characters into spaces, keep the text otherwise as written; InputError when
    the text is not valid Unicode (avatar.text.check_unicode: the rule every front end shares)."""
    text = unicodedata.normalize("NFC", check_unicode(text))
    return _CONTROL.sub(" ", text)


def check_text(text: str) -> str:
    """Normalise and refuse text that is empty, whitespace-only or over MAX_TEXT_CHARS."""
    text = normalize(text)
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    if not text.strip():
        raise InputError("text is empty or whitespace only")
    return text


def _is_abbreviation(text: str, dot_pos: int) -> bool:
    start = dot_pos
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot_pos].lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _cap(sentence: Sentence) -> list[Sentence]:
    """Split an over-long sentence at spaces (or hard, for unspaced scripts) into <= MAX_SENTENCE_CHARS."""
    out: list[Sentence] = []
    s, off = sentence.text, sentence.start
    while len(s) > MAX_SENTENCE_CHARS:
        cut = s.rfind(" ", 0, MAX_SENTENCE_CHARS)
        if cut < MAX_SENTENCE_CHARS // 2:
            cut = MAX_SENTENCE_CHARS
        piece = s[:cut].strip()
        if piece:
            lead = len(s[:cut]) - len(s[:cut].lstrip())
            out.append(Sentence(piece, off + lead, off + lead + len(piece)))
        off += cut
        rest = s[cut:]
        off += len(rest) - len(rest.lstrip())
        s = rest.lstrip()
    if s.strip():
        out.append(Sentence(s.strip(), off, off + len(s.strip())))
    return out


def split_sentences(text: str) -> list[Sentence]:
    """Split text into sentences with character offsets; raises InputError on empty or huge text."""
    text = check_text(text)
    pieces: list[Sentence] = []
    begin = 0
    for m in _END.finditer(text):
        punct_start = m.start(1)
        # "Dr. Smith" and "U.S. policy" do not end sentences; "..." followed by a capital does.
        if m.group(1) == "." and _is_abbreviation(text, punct_start):
            continue
        nxt = text[m.end():m.end() + 1]
        if m.group(3) == "" and m.end() < len(text) and not _CJK_END.match(m.group(1)[-1]):
            continue  # "3.14", "e.g.x": punctuation inside a token
        if nxt and nxt.islower():
            continue  # '"Run!" she said', 'Wait... what': the sentence goes on
        end = m.end(2)
        pieces.append(Sentence(text[begin:end], begin, end))
        begin = m.end()
    if begin < len(text):
        pieces.append(Sentence(text[begin:], begin, len(text)))
    out: list[Sentence] = []
    for p in pieces:
        stripped = p.text.strip()
        if not stripped:
            continue
        lead = len(p.text) - len(p.text.lstrip())
        out.extend(_cap(Sentence(stripped, p.start + lead, p.start + lead + len(stripped))))
    return out
