"""Find the PersonaPlex SentencePiece tokenizer the prompt budget is counted with."""

from __future__ import annotations

from entropi.config import Config
from entropi.core.errors import ModelError
from entropi.text.tokenizer import TextTokenizer, train_tiny_tokenizer

HUB_TOKENIZER = "tokenizer_spm_32k_3.model"


def resolve_tokenizer(cfg: Config) -> TextTokenizer:
    """``model.tokenizer`` if set; the tiny demo tokenizer for ``source: tiny`` (same path and
    function as the engine's tiny checkpoint); else the hub file (cached, or downloaded)."""
    m = cfg.model
    if m.tokenizer is not None:
        return TextTokenizer(m.tokenizer)
    if m.source == "tiny":
        path = m.cache_dir / "tiny" / "tokenizer.model"
        if not path.is_file():
            train_tiny_tokenizer(path)
        return TextTokenizer(path)
    from huggingface_hub import hf_hub_download  # slow import; only for hub configs
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    token = m.hf_token.get_secret_value() if m.hf_token else None
    try:
        path = hf_hub_download(m.hf_repo, HUB_TOKENIZER, token=token)
    except LocalEntryNotFoundError:
        raise ModelError(f"model.hf_repo: {HUB_TOKENIZER} of {m.hf_repo} is not cached and the "
                         "hub is unreachable (or HF_HUB_OFFLINE=1); download it once, or set "
                         "model.tokenizer to a local file") from None
    except HfHubHTTPError as exc:
        raise ModelError(f"model.hf_repo: cannot fetch {HUB_TOKENIZER} from {m.hf_repo} "
                         f"({exc.__class__.__name__}); the repo is gated: accept its licence "
                         "and set HF_TOKEN, or set model.tokenizer") from None
    return TextTokenizer(path)
