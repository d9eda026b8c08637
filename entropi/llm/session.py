"""``open_llm``: the one way the daemon, CLI and benchmarks get a ready ChatClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from entropi.config import SecondaryModelSection
from entropi.core.logs import get_logger
from entropi.llm.client import ChatClient
from entropi.llm.embedded import EmbeddedServer

log = get_logger(__name__)


@asynccontextmanager
async def open_llm(section: SecondaryModelSection,
                   parallel: int = 2) -> AsyncIterator[ChatClient]:
    """Yield a client; for ``backend: embedded`` start llama.cpp first and stop it after."""
    server = None
    if section.backend == "embedded":
        server = EmbeddedServer(section.embedded, parallel=parallel)
        await server.start()
    try:
        client = ChatClient(section, base_url=server.base_url if server else None)
        try:
            log.info("llm_open", backend=section.backend, model=section.model,
                     url=client.base_url)
            yield client
        finally:
            await client.aclose()
    finally:
        if server is not None:
            await server.stop()
