"""The LLM's optional memory directive, validated before anything trusts it.

An invalid directive is logged and ignored (heuristics decide instead); an invalid
``profile_update`` is dropped on its own so a good journal part still counts.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from entropi.core.logs import get_logger
from entropi.memory.profile import ProfileUpdate

log = get_logger(__name__)


class MemoryDirective(BaseModel):
    """Every field optional: the LLM fills what it knows; extra keys are ignored."""

    log_memory: bool | None = None
    summary: str | None = Field(None, max_length=2000)
    emotion: str | None = Field(None, min_length=1, max_length=40)
    commitments: list[str] = Field(default_factory=list, max_length=20)
    facts: list[str] = Field(default_factory=list, max_length=20)  # one journal entry each
    tags: list[str] = Field(default_factory=list, max_length=20)
    importance: float | None = Field(None, ge=0, le=1)
    profile_update: ProfileUpdate | None = None


def _problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'directive'}: {err['msg']}"


def validate_directive(raw: Any, window: int) -> MemoryDirective | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        log.warning("memory_directive_invalid", window=window,
                    problem=f"expected an object, got {type(raw).__name__}")
        return None
    body = {k: v for k, v in raw.items() if k != "profile_update"}
    try:
        directive = MemoryDirective.model_validate(body)
    except ValidationError as exc:
        log.warning("memory_directive_invalid", window=window, problem=_problem(exc))
        return None
    update = raw.get("profile_update")
    if update is not None:
        try:
            directive = directive.model_copy(
                update={"profile_update": ProfileUpdate.model_validate(
                    {k: v for k, v in update.items() if k != "talked"}  # the daemon's key
                    if isinstance(update, dict) else update)})
        except ValidationError as exc:
            log.warning("profile_update_invalid", window=window, problem=_problem(exc))
    return directive
