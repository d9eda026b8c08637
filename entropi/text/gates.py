"""Gates on every LLM output before it touches a prompt, the ledger, the journal or the profile.

A small model writes junk that a schema happily accepts: a summary that tells the persona it
is the user, a "person" called "I'm happy to help you.", a hobby repeated eight times, a note
in a loop, an instruction to ignore the persona. Each gate returns the *reason* a text is
rejected (or None); the caller falls back to the extractive path for that part and counts it.
The same gates drive ``entropi memory doctor`` over existing files.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter

from entropi.text.speakable import garbage_reason

_WORD = re.compile(r"[a-z0-9']+")
_STOP_WORDS = """a an the and or but so to of in on at for with about from by as is are
was were be been am i you he she it we they me him her us them my your his its our their this
that these those what which who when where how not no yes do does did have has had will would
can could should just very really okay oh well like there here then than too also i'm you're
it's i'll you'll we'll said says say going get got"""
_STOP = frozenset(_STOP_WORDS.split())

_ROLE_CONFUSION = re.compile(
    r"\byou are (?:the |a |an )?(?:user|human|customer|assistant|ai|language model|chatbot)\b"
    r"|\bi am (?:the |an? )?(?:user|assistant|ai|language model)\b"
    r"|\byou are now\b|\bfrom now on,? you\b|\byour (?:new )?name is\b|\byou are no longer\b"
    r"|\b(?:act|pretend|behave) (?:as|to be|like)\b|\byour (?:new )?role is\b"
    r"|\bas an ai\b",
    re.IGNORECASE)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget) (?:all |any |the )?(?:previous|prior|above|earlier|your)"
    r" (?:instructions|rules|prompts?|messages)\b"
    r"|\bnew (?:persona|personality|instructions|identity)\b|\bsystem prompt\b"
    r"|\bjailbreak\b|\bdeveloper mode\b",
    re.IGNORECASE)
# First words of chat phrases that a confused model returns as a "name".
_NAME_STOP = """i i'm im you your we he she they it is am are was happy help
hello hi hey thanks thank sorry please sure okay yes no the a an my our this that user
assistant persona someone somebody nobody friend person people mom mum dad"""
_NOT_NAME_WORDS = frozenset(_NAME_STOP.split())
_NAME_TOKEN = re.compile(r"^[A-Z\u00c0-\u00de][a-z\u00df-\u00ff'\-]*\.?$")


def repetition_reason(text: str) -> str | None:
    """A looping answer: a phrase said three times, or too few distinct words."""
    words = [w for w in _WORD.findall(text.lower())]
    if len(words) >= 6 and len(set(words)) < 0.45 * len(words):
        return "repetition"
    grams = Counter(tuple(words[i:i + 3]) for i in range(len(words) - 2))
    if grams and grams.most_common(1)[0][1] >= 3:
        return "repetition"
    chunks = [c.strip().lower() for c in re.split(r"[,;.!?…]+", text) if c.strip()]
    if len(chunks) >= 3 and Counter(chunks).most_common(1)[0][1] >= 3:
        return "repetition"
    if any(a == b and len(a) > 2 for a, b in itertools.pairwise(chunks)):
        return "repetition"  # "santé, santé", a sentence said twice in a row
    return None


def role_reason(text: str, persona_name: str = "") -> str | None:
    """Text that would tell the persona it is the user, rename it, or change its role."""
    if _INJECTION.search(text):
        return "prompt injection"
    if _ROLE_CONFUSION.search(text):
        return "role confusion"
    if persona_name:
        m = re.search(r"\byou are ([A-Z][a-z]+)\b", text)
        if m and m.group(1) != persona_name:
            return "role confusion"
    return None


def truncated_reason(text: str) -> str | None:
    text = text.rstrip()
    if text.endswith(("…", "...")):
        return "truncated"
    if text and text[-1] not in ".!?":
        return "truncated"
    if re.search(r"\b(?:and|or|but|the|a|to|of|with|is)\.$", text, re.IGNORECASE):
        return "truncated"
    return None


def speakable_reason(text: str) -> str | None:
    """Non-speakable: markup, code, URLs, control characters or mostly non-letters."""
    if re.search(r"https?://|[{}<>`\\|#*]|[\x00-\x08\x0b-\x1f]", text):
        return "not speakable"
    if len(text.split()) >= 3:
        why = garbage_reason(text)
        if why == "not prose":
            return "not speakable"
    return None


def text_reason(text: str, persona_name: str = "", *, sentence: bool = True) -> str | None:
    """All gates for a free text (summary, fact, note): the first reason, else None."""
    text = " ".join(text.split())
    if not text:
        return "empty"
    cut = truncated_reason(text)
    if not sentence and cut and text[-1:] not in "….":
        cut = None  # a list item ("jazz") needs no full stop
    for why in (role_reason(text, persona_name), repetition_reason(text),
                speakable_reason(text), cut):
        if why:
            return why
    return None


def name_reason(name: str) -> str | None:
    """A person's name: 1–3 capitalised words, no sentence, no chat phrase."""
    name = " ".join(name.split())
    tokens = name.split()
    if not 1 <= len(tokens) <= 3 or len(name) > 40:
        return "not a name"
    if any(not _NAME_TOKEN.match(t) for t in tokens):
        return "not a name"
    if tokens[0].lower().rstrip(".") in _NOT_NAME_WORDS:
        return "not a name"
    return None


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def grounded_reason(text: str, source: str, min_share: float = 0.6) -> str | None:
    """Nothing invented: most content words, and every capitalised name, of ``text`` must be
    in ``source`` (the window's transcript)."""
    src = source.lower()
    src_words = set(_WORD.findall(src))
    names = {w.lower() for w in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b", text)}
    if any(n not in src_words and n not in _STOP for n in names):
        return "not in the window"
    words = content_words(text)
    if words and len(words & src_words) < min_share * len(words):
        return "not in the window"
    return None
