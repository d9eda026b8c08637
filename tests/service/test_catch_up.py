"""The user is heard over the thinking clip, and every recognised turn lands in exactly one
window's transcript, whatever the recogniser's and the handover's timings.

The real controller and session (tiny model, WAV input in fast mode, the bundled clips, a
local OpenAI-protocol LLM, the transcript file) hear a "user" who speaks in tone bursts, one
frequency per burst; the recogniser really listens (it names the tones it finds in the turn's
audio, plus a unique turn id) and takes as long as the test says.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from entropi.audio.wav import write_wav
from entropi.clips.player import ThinkingClips
from entropi.config import Config, load_config
from entropi.conversation.controller import State, WindowStats
from entropi.conversation.session import Session
from entropi.core.constants import FRAME_SECONDS, FRAME_SIZE, SAMPLE_RATE
from entropi.engine import EngineWorker
from entropi.hearing.turns import TurnTranscriber
from entropi.llm.session import open_llm
from entropi.memory.transcript_file import TranscriptFile
from entropi.transports.factory import open_transport
from tests.service.conftest import DaemonRun, FakeLLM

pytestmark = pytest.mark.slow

SPEECH_RATE = 16000
TONES = [300 + 40 * i for i in range(16)]  # Hz: one per burst, so every burst is traceable


def _speech(seed: int = 3) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """~30 s of tone bursts (0.5–0.9 s) between silences (0.7–1.5 s): the pcm, and each
    burst's (first frame, end frame, tone)."""
    rng = np.random.default_rng(seed)
    pcm, bursts, frame = [np.zeros(FRAME_SIZE * 4, np.float32)], [], 4
    for tone in TONES:
        n = int(rng.integers(6, 12))
        t = np.arange(n * FRAME_SIZE) / SAMPLE_RATE
        pcm.append((0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32))
        bursts.append((frame, frame + n, tone))
        gap = int(rng.integers(9, 19))
        pcm.append(np.zeros(gap * FRAME_SIZE, np.float32))
        frame += n + gap
    return np.concatenate(pcm), bursts


class ToneRecogniser:
    """A ``UserTranscriber``: "turnK toneF …" for the tones in the turn, after ``delays[K]``."""

    def __init__(self, delays: list[float]) -> None:
        self.delays = itertools.cycle(delays)
        self.ids = itertools.count()
        self.said: list[str] = []
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: np.ndarray) -> str:
        with self._lock:
            k, delay = next(self.ids), next(self.delays)
        time.sleep(delay)
        spectrum = np.abs(np.fft.rfft(pcm16k))
        freqs = np.fft.rfftfreq(pcm16k.size, 1 / SPEECH_RATE)
        found = [f for f in TONES
                 if spectrum[np.abs(freqs - f) <= 4].max(initial=0) > 0.2 * spectrum.max()]
        words = f"turn{k} " + " ".join(f"tone{f}" for f in found)
        self.said.append(words)
        return words

    def describe(self) -> str:
        return "tone recogniser"


@pytest.fixture(scope="module")
def llms() -> Iterator[dict[str, FakeLLM]]:
    servers = {"answer": FakeLLM(), "hang": FakeLLM("hang")}
    yield servers
    for s in servers.values():
        s.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory, llms) -> Iterator[tuple[Config, EngineWorker, Path]]:
    """One engine for every run here (the controller reads window.catch_up, not the engine)."""
    root = tmp_path_factory.mktemp("catch-up")
    pcm, _ = _speech()
    write_wav(root / "speech.wav", pcm)
    run = DaemonRun(root, tmp_path_factory.mktemp("cache"))
    cfg = load_config(run.config(**{
        "audio.input_wav": str(root / "speech.wav"), "window.vad": "energy",
        "window.min_seconds": 1.0, "window.max_seconds": 2.5, "window.pause_seconds": 0.5,
        "window.grace_seconds": 0.5, "window.catch_up": "on",
        "secondary_model.backend": "openai", "secondary_model.base_url": llms["answer"].url,
        "secondary_model.stream": False, "asr.backend": "none", "asr.wait_seconds": 0.3}))
    worker = EngineWorker(cfg)
    asyncio.run(worker.start())
    yield cfg, worker, root
    asyncio.run(worker.close())


Change = tuple[State, int, WindowStats]


def _converse(cfg: Config, worker: EngineWorker, recogniser: ToneRecogniser,
              ) -> tuple[Session, list[Change]]:
    """One conversation over the whole input; each state change with the frame it came at
    (and the window's stats, final once the run is over)."""
    changes: list[Change] = []

    async def main() -> Session:
        asr = TurnTranscriber(recogniser, turn_timeout_s=30)
        clips = ThinkingClips.load(cfg.voice)
        deadline = cfg.secondary_model.deadline_seconds or clips.longest_seconds + 1.0
        async with open_llm(cfg.secondary_model) as client:
            audio = open_transport(cfg)
            await audio.start()
            session = Session(cfg, worker, client, clips, deadline, audio, asr=asr,
                              max_windows=None, on_window=lambda w, state: changes.append(
                                  (state, session.controller.totals.frames, w)))
            await session.run(lambda c: c.run())
        # The words of the window still open at the end: its turns, once all are recognised.
        asr._pool.shutdown(wait=True)
        return session

    return asyncio.run(main()), changes


def _windows_said(session: Session) -> list[str]:
    """Each written window's transcript block, then the one still open at the end."""
    blocks = TranscriptFile(session.cfg.conversation.transcript_file).blocks()
    tail, _ = session.controller.transcript.seal()
    return [*blocks, "\n".join(u.render() for u in tail)]


def _thinking_spans(changes: list[Change]) -> list[tuple[int, int, WindowStats]]:
    """Input frames played over a clip, [first, end), from the frame after the cut to the one
    live output resumes after; with the window that ended at the cut."""
    spans, cut = [], None
    for state, frames, w in changes:
        if state is State.THINKING:
            cut = frames + 1, w
        elif cut is not None:
            spans.append((cut[0], frames + 1, cut[1]))
            cut = None
    return spans


TIMINGS = {
    # recogniser delays per turn (cycled), LLM, catch-up
    "instant": ([0.0], "answer", "on"),
    # Some turns are recognised inside asr.wait_seconds, some during the rest of the
    # handover, some after the next window opened, one past a whole window.
    "slow-asr": ([0.05, 0.4, 1.1, 0.2, 3.0], "answer", "on"),
    # The LLM never answers: every handover runs to its deadline (fallback prompt).
    "slow-handover": ([0.2, 0.9, 0.0], "hang", "off"),
}


@pytest.mark.parametrize("timing", TIMINGS)
def test_every_recognised_turn_lands_in_exactly_one_window(setup, llms, timing) -> None:
    cfg, worker, root = setup
    delays, llm, catch_up = TIMINGS[timing]
    out = root / timing
    cfg = cfg.model_copy(update={
        "window": cfg.window.model_copy(update={"catch_up": catch_up}),
        "secondary_model": cfg.secondary_model.model_copy(
            update={"base_url": llms[llm].url, "deadline_seconds": 1.2}),
        "conversation": cfg.conversation.model_copy(
            update={"transcript_file": out / "transcript.txt"}),
        "memory": cfg.memory.model_copy(update={"journal_dir": out / "journal",
                                                "profile_path": out / "profile.json"})})
    recogniser = ToneRecogniser(delays)
    session, changes = _converse(cfg, worker, recogniser)
    windows = _windows_said(session)
    assert len(windows) >= 5, windows

    # None lost, none twice: every turn the recogniser named is in exactly one window.
    ids = Counter(re.findall(r"\bturn\d+\b", "\n".join(windows)))
    said = [w.split()[0] for w in recogniser.said]
    assert len(said) >= len(TONES) and ids == Counter(said), (ids, said)

    # Every burst is heard, also those said entirely over a thinking clip.
    _, bursts = _speech()
    text = "\n".join(windows)
    assert [tone for _, _, tone in bursts if f"tone{tone}" not in text] == []
    spans = _thinking_spans(changes)
    over_clip = [tone for start, end, tone in bursts
                 if any(a <= start and end <= b for a, b, _ in spans)]
    assert over_clip, (spans, bursts)  # the input has talk over the clips to hear

    # Catch-up steps every frame heard over the clip into the model (bounded by
    # max_catch_up_seconds); off keeps today's behaviour: the model resumes as primed.
    limit = round(cfg.window.max_catch_up_seconds / FRAME_SECONDS)
    for a, b, w in spans:
        if catch_up == "off":
            assert w.catch_up_frames == 0
        elif b - a <= limit:
            assert w.catch_up_frames == b - a, (a, b, w)
        else:
            assert limit <= w.catch_up_frames <= limit + 1, (a, b, w)


def test_bench_loop_compares_catch_up_off_and_on(daemon, closed_port) -> None:
    """``bench loop --catch-up-compare``: the same input twice; only the "on" run steps the
    talk heard over the clips into the model."""
    import argparse

    from entropi.bench import loop as bench_loop

    config = daemon.config(**{
        "secondary_model.backend": "openai", "memory.enabled": False,
        "secondary_model.base_url": f"http://127.0.0.1:{closed_port}/v1",
        "secondary_model.deadline_seconds": 0.5, "window.vad": "energy",
        "window.min_seconds": 1.0, "window.max_seconds": 2.0, "window.grace_seconds": 0.5})
    result = bench_loop.run(argparse.Namespace(config=str(config), windows=2,
                                               catch_up_compare=True))
    off, on = result["catch_up_off"], result["catch_up_on"]
    assert (off["catch_up"], on["catch_up"]) == ("off", "on")
    assert off["windows"] == on["windows"] == 2
    assert off["catch_up_frames"] == 0 < on["catch_up_frames"]
    assert on["catch_up_ms_p50"] > 0 and off["catch_up_ms_p50"] is None
    assert result["overhead_ms_p99_on_minus_off"] == round(
        on["overhead_ms_p99"] - off["overhead_ms_p99"], 4)
