"""Forgiving JSON extraction from an LLM answer (the structured compaction answer).

Servers that support ``response_format`` json_schema (llama.cpp turns it into a grammar;
OpenRouter passes it on) return valid JSON; others may wrap it in prose or code fences.
Only the JSON is found here; :mod:`entropi.compaction.structured` vets the fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

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
