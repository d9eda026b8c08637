"""What was said in one window, as utterances for the compactor and the journal.

PersonaPlex's text stream carries only the agent's words; there is no ASR for the user.
The user's turns are recorded as markers with their length ("[user spoke 3.1 s]"), found
by the same energy threshold the pause detector uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.constants import FRAME_SECONDS
from entropi.llm import Utterance
from entropi.memory.crypto import Cipher
from entropi.memory.transcript_file import TranscriptFile

# A user turn shorter than this is a cough or a click, not speech.
MIN_USER_TURN_SECONDS = 0.3


class WindowTranscript:
    def __init__(self) -> None:
        self._items: list[Utterance] = []
        self._agent: list[str] = []
        self._user_frames = 0
        self._user_quiet = 0
        self._names: list[str] = []  # speakers heard in the open user turn

    def add(self, text: str | None, *, user_pcm: np.ndarray, t: float,
            threshold_dbfs: float, speakers: Sequence[str] = ()) -> None:
        """One frame: the agent's text piece, the user's audio, and (where the transport
        knows them) the names of who spoke in this frame."""
        if text:
            self._agent.append(text)
        for name in speakers:
            if name not in self._names:
                self._names.append(name)
        if rms_dbfs(user_pcm) > threshold_dbfs:  # same rule as the PauseDetector
            if self._user_frames == 0:
                self._flush_agent()
            self._user_frames += 1
            self._user_quiet = 0
        elif self._user_frames:
            self._user_quiet += 1
            if self._user_quiet * FRAME_SECONDS >= 0.4:  # a breath, not the end of a turn
                self._flush_user()

    def _flush_agent(self) -> None:
        text = "".join(self._agent).strip()
        if text:
            self._items.append(Utterance(speaker="agent", text=text))
        self._agent = []

    def _flush_user(self) -> None:
        seconds = self._user_frames * FRAME_SECONDS
        if seconds >= MIN_USER_TURN_SECONDS:
            self._items.append(Utterance(speaker="user", text="", seconds=round(seconds, 1),
                                         name=self._speaker_name()))
        self._user_frames = 0
        self._user_quiet = 0
        self._names = []

    def _speaker_name(self) -> str | None:
        return ", ".join(self._names) or None

    def utterances(self) -> list[Utterance]:
        """A snapshot including the turns still open (used mid-window for speculation)."""
        items = list(self._items)
        text = "".join(self._agent).strip()
        if text:
            items.append(Utterance(speaker="agent", text=text))
        seconds = self._user_frames * FRAME_SECONDS
        if seconds >= MIN_USER_TURN_SECONDS:
            items.append(Utterance(speaker="user", text="", seconds=round(seconds, 1),
                                   name=self._speaker_name()))
        return items

    def text(self) -> str:
        return render(self.utterances())


def render(utterances: list[Utterance]) -> str:
    return "\n".join(u.render() for u in utterances)


def append_window(path: Path, window: int, started: datetime, ended: datetime,
                  utterances: list[Utterance], prompt: str, cipher: Cipher | None = None) -> None:
    """Append one window to the session transcript file (blocking: call it in a thread);
    encrypted like the journal when ``cipher`` is given."""
    body = render(utterances) or "(nothing said)"
    text = (f"## window {window}  {started:%Y-%m-%d %H:%M:%S} – {ended:%H:%M:%S}\n{body}\n"
            f"next prompt: {prompt}\n\n")
    TranscriptFile(path, cipher).append(text)
