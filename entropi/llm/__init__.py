"""Secondary LLM: OpenAI-compatible client, embedded llama.cpp backend, context compaction.

The daemon uses::

    async with open_llm(cfg.secondary_model) as client:
        compactor = Compactor(client, cfg, count_tokens=tokenizer.count)
        task = compactor.start(transcript, memories, previous_prompt)
        result = await compactor.finish(task, transcript)
"""

from entropi.llm.client import ChatClient, ChatError, ChatReply
from entropi.llm.compactor import CompactionResult, Compactor
from entropi.llm.session import open_llm
from entropi.llm.transcript import Utterance, load_transcript, parse_transcript

__all__ = [
    "ChatClient", "ChatError", "ChatReply", "CompactionResult", "Compactor", "Utterance",
    "load_transcript", "open_llm", "parse_transcript",
]
