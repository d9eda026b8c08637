"""L2 talking to an LLM: the OpenAI-compatible client (local servers, OpenRouter), the embedded
llama.cpp server, the session that opens either, and token counts.
"""

from entropi.llm.client import ChatClient, ChatError, ChatReply
from entropi.llm.session import open_llm

__all__ = ["ChatClient", "ChatError", "ChatReply", "open_llm"]
