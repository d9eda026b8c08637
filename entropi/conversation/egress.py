"""Whether the user's words may go to the secondary LLM (docs/PRIVACY.md)."""

from __future__ import annotations

from urllib.parse import urlparse

from entropi.config import Config
from entropi.text.utterance import Utterance

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def llm_is_remote(cfg: Config) -> bool:
    sm = cfg.secondary_model
    if sm.backend == "embedded":
        return False
    if sm.backend == "openrouter":
        return True
    host = urlparse(sm.base_url or "").hostname or ""
    return host not in _LOCAL_HOSTS


def words_for_llm(cfg: Config, utterances: list[Utterance]) -> list[Utterance]:
    """The user's words as the LLM may see them: to a remote server only with
    ``asr.share_with_remote_llm``; otherwise each user turn is its "[user spoke N s]" marker."""
    if cfg.asr.share_with_remote_llm or not llm_is_remote(cfg):
        return utterances
    return [Utterance("user", "", u.seconds, u.name) if u.speaker == "user" and u.text else u
            for u in utterances]
