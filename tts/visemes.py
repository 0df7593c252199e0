"""Phonemes to viseme classes: IPA (eSpeak NG, coqui phonemizers) or plain letters onto avatar.types.VISEMES.

The classes are the 15 of the Oculus/Meta OVR LipSync set (sil PP FF TH DD kk CH SS nn RR aa E ih oh ou).
The table follows Meta's "Viseme reference" (one class per group of sounds that look alike on the lips:
bilabials, labiodentals, dentals, alveolar stops, velars, postalveolars, sibilants, nasals/laterals, rhotics,
and five vowel shapes), extended to the rest of the IPA chart by place of articulation for consonants and by
height/rounding for vowels. Diphthongs take the class of their first vowel (the lips are set for it first).
"""

from __future__ import annotations

import unicodedata

from avatar.types import VISEMES

#: Marks that change how a sound is said but not which mouth shape it has: stress, length, syllabicity,
#: tie bars, aspiration, palatalisation, labialisation, velarisation, nasalisation (as combining marks).
_STRIP = set("ˈˌːˑ˞ʰʲʷˠˤ̩̯̥̬̪̺̻̹̜̟̠̃̊̈̽͜͡ʼ'-")

#: Multi-letter sounds checked before single letters (affricates and the like).
_MULTI: dict[str, str] = {
    "tʃ": "CH", "dʒ": "CH", "tɕ": "CH", "dʑ": "CH", "ts": "SS", "dz": "SS", "tʂ": "CH", "dʐ": "CH",
    "pf": "FF", "tθ": "TH", "dð": "TH", "kx": "kk",
}

#: One IPA symbol to its viseme class.
IPA_VISEMES: dict[str, str] = {}


def _add(cls: str, symbols: str) -> None:
    for s in symbols:
        IPA_VISEMES[s] = cls


_add("PP", "pbmɓʙ")  # lips closed
_add("FF", "fvɸβʋɱ")  # lower lip to upper teeth
_add("TH", "θð")  # tongue between the teeth
_add("DD", "tdɗʈɖɾɽʔ")  # alveolar stops and taps: tongue up, jaw near closed
_add("kk", "kgɡqɢxɣχħʕhɦcɟʄ")  # back of the tongue; the lips follow the neighbours
_add("CH", "ʃʒɕʑʂʐçʝ")  # lips pushed forward, teeth together
_add("SS", "sz")  # teeth together, lips spread
_add("nn", "nlɲŋɳɴɫɬɮʎʟɭ")  # tongue-tip and nasal sounds: jaw a little open
_add("RR", "rɹɻʀʁɺɚɝ")  # rhotics and r-coloured vowels: lips slightly rounded
_add("aa", "aɑæɐʌäɶ")  # open vowels
_add("E", "eɛəɜɘœɞ")  # mid front and central vowels
_add("ih", "iɪɨjɥ")  # close front vowels and the palatal glide
_add("oh", "oɔɒɵøɤ")  # mid back rounded vowels
_add("ou", "uʊɯʉywʍ")  # close rounded vowels and the labial-velar glide
IPA_VISEMES["_"] = "sil"
IPA_VISEMES[" "] = "sil"

#: Letters as spelled (models that read characters, not phonemes); English-leaning where letters differ from IPA.
GRAPHEME_VISEMES: dict[str, str] = {
    **{k: v for k, v in IPA_VISEMES.items() if k.isascii()},
    "c": "kk", "q": "kk", "x": "kk", "j": "CH", "y": "ih", "w": "ou", "h": "kk", "r": "RR",
}

_MULTI_GRAPHEMES: dict[str, str] = {"ch": "CH", "sh": "CH", "th": "TH", "ph": "FF", "ng": "nn", "oo": "ou"}

assert set(IPA_VISEMES.values()) <= set(VISEMES)


def _clean(symbol: str) -> str:
    s = unicodedata.normalize("NFD", symbol)
    return "".join(ch for ch in s if ch not in _STRIP and not unicodedata.combining(ch)).lower()


def viseme_for(symbol: str, alphabet: str = "ipa") -> str:
    """The viseme class of one phoneme symbol ('ipa') or letter group ('graphemes'); pauses give 'sil'."""
    s = _clean(symbol)
    if not s or s in {"_", " ", "|", "#"} or not any(ch.isalpha() for ch in s):
        return "sil"  # pauses, word boundaries, punctuation, digits the model spells out elsewhere
    table, multi = (GRAPHEME_VISEMES, _MULTI_GRAPHEMES) if alphabet == "graphemes" else (IPA_VISEMES, _MULTI)
    if s in table:
        return table[s]
    if s[:2] in multi:
        return multi[s[:2]]
    for ch in s:
        if ch in table:
            return table[ch]
    # A letter outside the table (another script's spelling): a neutral half-open mouth.
    return "E"
