"""Kyutai STT (``asr.backend: kyutai``): the user's words streamed from the engine's own Mimi.

The model half (loading, stepping on the engine's 32-codebook encode) is
:mod:`entropi.engine.stt`. Turn adapter here: the engine thread appends each frame's text piece
to a timeline; when a user turn finishes, the ASR worker's ``transcribe`` waits (bounded) until
the model has stepped ``delay`` frames past the turn's end and takes the words emitted since
the last turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from entropi.config import AsrSection, ModelSection
from entropi.core.constants import FRAME_RATE
from entropi.core.logs import get_logger
from entropi.engine.stt import STT_1B_MB

if TYPE_CHECKING:
    from entropi.engine.stt import KyutaiStream

log = get_logger(__name__)


class KyutaiTranscriber:
    """``UserTranscriber`` over the stream: a finished turn's words are the text emitted up to
    ``delay`` frames after its end (the PCM given is not needed: the engine already heard it)."""

    def __init__(self, stream: KyutaiStream, wait_s: float) -> None:
        self.stream = stream
        self.wait_s = wait_s

    def transcribe(self, pcm16k: np.ndarray) -> str:
        return self.stream.timeline.take(self.stream.delay, self.wait_s)

    def describe(self) -> str:
        return f"kyutai {self.stream.name} (delay {self.stream.delay} frames)"


def open_kyutai(asr: AsrSection, model: ModelSection) -> KyutaiTranscriber:
    """Load the STT LM (blocking); any failure is one ModelError line."""
    from entropi.engine.stt import load_stt

    stream, device = load_stt(asr, model)
    log.info("asr_ready", backend="kyutai", model=stream.name, device=device,
             delay_frames=stream.delay)
    # The engine pauses during a window's handover: wait for the delay's frames only as long
    # as a live stream takes to make them; what is not out by then joins the next turn.
    return KyutaiTranscriber(stream, stream.delay / FRAME_RATE + 0.3)


def summary(asr: AsrSection) -> dict[str, object]:
    """check-config's row: what would load, where, and its memory (shares the engine's Mimi)."""
    from entropi.engine.stt import resolve_device

    device = resolve_device(asr.device)
    model = "tiny random STT" if asr.kyutai_source == "tiny" else asr.kyutai_repo
    return {"backend": "kyutai", "model": model, "device": device,
            "compute_type": "bfloat16" if device == "cuda" else "float32",
            "memory_mb": 20 if asr.kyutai_source == "tiny" else memory_estimate_mb(asr)}


def memory_estimate_mb(asr: AsrSection) -> int:
    return STT_1B_MB if "1b" in asr.kyutai_repo else 2 * STT_1B_MB + 800
