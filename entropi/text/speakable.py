"""Turn an LLM answer into plain speakable text, and spot answers that are garbage.

PersonaPlex reads the system prompt as forced text tokens: markdown, emojis, quotes, chatty
preambles ("Sure! Here is the summary:") and stray ``<system>`` tags would all be spoken or
confuse the prompt wrapper, so they are removed here rather than hoped away in the prompt.
"""

from __future__ import annotations

import re
import unicodedata

_TAGS = re.compile(r"</?\s*[A-Za-z_][\w\-]*\s*/?>|<\|[^|>]*\|>")
_CODE_FENCE = re.compile(r"```[^\n]*\n?|~~~[^\n]*\n?")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_BRACKETED = re.compile(r"\[[^\]\n]*\]|\{[^}\n]*\}")  # "[user spoke 2 s]" markers, JSON bits
# A model that echoes the transcript writes speaker labels; turn them into speech.
_USER_LABEL = re.compile(r"\buser\s*:\s*", re.IGNORECASE)
_AGENT_LABEL = re.compile(r"\b(?:agent|assistant)\s*:\s*", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}[^\n]*$", re.MULTILINE)  # headings are labels: drop
_BULLET = re.compile(r"^\s*(?:[-*+\u2022>]|\d{1,2}[.)])\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|`+|~~)")
_HRULE = re.compile(r"^\s*([-*_=])\1{2,}\s*$", re.MULTILINE)
_QUOTES = str.maketrans({c: None for c in "\"\u201c\u201d\u201e\u00ab\u00bb\u2039\u203a"})
_SINGLE_QUOTE_EDGES = re.compile(r"(?<![\w])['\u2018\u2019]|['\u2018\u2019](?![\w])")
# Chatty lead-ins, repeated as long as one matches ("Sure! Here is the new prompt:").
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure thing|sure|okay|ok|certainly|of course|absolutely|alright|great|got it"
    r"|no problem)\s*[.!:,]"
    r"|(?:here(?:'s| is| are)|below is|this is)\b[^.!:\n]{0,60}?"
    r"(?:summary|prompt|version|points|update|rewrite|result)[^.!:\n]{0,20}[:.!]"
    r"|(?:new |updated |rolling )?(?:system prompt|summary|prompt|answer|response)\s*:"
    r")\s*",
    re.IGNORECASE,
)
_OUTRO = re.compile(r"(?:let me know|i hope this|hope this helps|feel free to|is there anything)"
                    r"[^\n]*$",
                    re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_REPEATED_PUNCT = re.compile(r"([.!?,;:])[.!?,;:]+")
_SENTENCE_START = re.compile(r"([.!?]\s+)([a-z])")


def _is_kept_char(ch: str) -> bool:
    """Drop emojis/pictographs (So), private-use, surrogates, and emoji joiners/selectors."""
    if ch in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff":
        return False
    cat = unicodedata.category(ch)
    return cat not in {"So", "Sk", "Co", "Cs", "Cn", "Cf"}


def make_speakable(text: str) -> str:
    """Plain sentences on one line: no markdown, tags, emojis, quotes or preamble."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAGS.sub(" ", text).replace("<system>", " ")
    text = _CODE_FENCE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _BRACKETED.sub(" ", text)
    text = _HRULE.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = "".join(ch for ch in text if _is_kept_char(ch))
    text = text.translate(_QUOTES)
    text = _SINGLE_QUOTE_EDGES.sub("", text)
    for ch in "<>|[]{}":
        text = text.replace(ch, " ")
    # Lines become sentences: a list item without a full stop still ends a thought.
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = " ".join(ln if ln[-1] in ".!?:;," else ln + "." for ln in lines)
    while True:
        stripped = _PREAMBLE.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = _OUTRO.sub("", text)
    text = _USER_LABEL.sub("the user said, ", text)
    text = _AGENT_LABEL.sub("you said, ", text)
    text = _SPACE.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_PUNCT.sub(r"\1", text).strip(" ,;:-")
    text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    if text and text[0].isalpha():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def garbage_reason(text: str) -> str | None:
    """Why a cleaned answer cannot be a summary, or None when it looks usable."""
    words = text.split()
    if len(words) < 3:
        return "too short"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * len(text.replace(" ", "")):
        return "not prose"
    if len(words) >= 12 and len({w.lower().strip(".,!?") for w in words}) < 0.3 * len(words):
        return "repetitive"
    return None


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]
