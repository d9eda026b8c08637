"""What was said in a window, as the compactor sees it.

PersonaPlex's text stream carries only the agent's words; the user's turns come from the
recogniser (``entropi.hearing``) as ``user:`` lines with words, or as markers
(``Utterance("user", "", 3.1)``, shown as ``[user spoke 3.1 s]``) where they were not
transcribed (``asr.backend: none``, a failure, or words kept from a remote LLM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from entropi.core.errors import InputError

Speaker = Literal["agent", "user"]

_PREFIX = re.compile(r"^\s*(user|agent|assistant)\s*:\s*(.*)$", re.IGNORECASE)
_MARKER = re.compile(r"^\s*\[user spoke\s+([0-9]+(?:\.[0-9]+)?)\s*s\]\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Utterance:
    speaker: Speaker
    text: str
    seconds: float | None = None  # for user turns heard but not transcribed
    # Who spoke, where the transport knows (Discord display names); None: "the user".
    name: str | None = None

    def render(self) -> str:
        who = f"user ({self.name})" if self.speaker == "user" and self.name else self.speaker
        if self.speaker == "user" and not self.text:
            return f"[{who} spoke {self.seconds or 0:.1f} s]"
        return f"{who}: {self.text}"


def parse_transcript(text: str, source: str = "<transcript>") -> list[Utterance]:
    """One utterance per line, optionally ``user:``/``agent:`` prefixed (unprefixed lines are
    the agent's: that is all PersonaPlex's text stream holds); ``[user spoke N s]`` markers."""
    out: list[Utterance] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        marker = _MARKER.match(line)
        if marker:
            out.append(Utterance("user", "", float(marker.group(1))))
            continue
        m = _PREFIX.match(line)
        if m:
            speaker: Speaker = "user" if m.group(1).lower() == "user" else "agent"
            body = m.group(2).strip()
            if body:
                out.append(Utterance(speaker, body))
        else:
            out.append(Utterance("agent", line.strip()))
    if not out:
        raise InputError(f"{source}: the transcript is empty; write one utterance per line, "
                         "optionally prefixed with 'user:' or 'agent:'")
    return out


def load_transcript(path: str | Path) -> list[Utterance]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such transcript file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the transcript ({exc}); give a UTF-8 text "
                         "file") from None
    return parse_transcript(text, source=str(path))


def render_transcript(utterances: list[Utterance]) -> str:
    return "\n".join(u.render() for u in utterances)
