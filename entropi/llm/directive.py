"""The optional structured memory directive, asked for in a separate small JSON request.

A separate request keeps the spoken prompt reliable: a small model asked for prose *and*
JSON in one answer tends to get both wrong. Servers that support ``response_format``
json_schema (llama.cpp turns it into a grammar; OpenRouter passes it on) return valid JSON;
others may wrap it in prose or code fences, so parsing is forgiving. Only the JSON is
checked here; the memory package validates the fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from entropi.llm.transcript import Utterance, render_transcript

# Length caps keep the grammar-constrained answer inside max_tokens (a small model will
# otherwise fill a string until it is cut off, leaving JSON that cannot be parsed).
_SHORT = {"type": "string", "maxLength": 80}
_STR_LIST = {"type": "array", "items": _SHORT, "maxItems": 4}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "log_memory": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": 240},
        "emotion": {"type": "string", "maxLength": 24},
        "commitments": _STR_LIST,
        "tags": _STR_LIST,
        "importance": {"type": "number", "minimum": 0, "maximum": 1},
        "profile_update": {
            "type": "object",
            "properties": {
                "reflections": _STR_LIST,
                "hobbies": _STR_LIST,
                "artistic_tastes": _STR_LIST,
                "people": {"type": "array", "maxItems": 4, "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 40},
                                   "sentiment": {"type": "number", "minimum": -1, "maximum": 1},
                                   "notes": _STR_LIST},
                    "required": ["name"]}},
            },
        },
    },
    "required": ["log_memory", "summary", "importance"],
}
RESPONSE_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "memory_directive", "strict": True, "schema": SCHEMA}}

_SYSTEM = (
    "You decide what a voice companion should remember from a conversation. Answer with one "
    "JSON object only: log_memory (true if worth keeping), summary (one sentence), emotion "
    "(one word), commitments (promises made), tags (topics), importance (0 to 1), and "
    "profile_update with reflections, hobbies, artistic_tastes and people (name, sentiment "
    "-1 to 1, notes)."
)


def directive_messages(transcript: list[Utterance], memories: str) -> list[dict[str, str]]:
    user = f"Conversation:\n{render_transcript(transcript)}"
    if memories.strip():
        user = f"Known memories: {memories.strip()}\n\n{user}"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def parse_directive(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (bare, fenced or inside prose), else None."""
    text = text[:20_000]  # a runaway answer must not make the scan quadratic for long
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
