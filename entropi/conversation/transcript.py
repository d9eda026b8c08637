"""What was said in one window, as utterances for the compactor and the journal.

PersonaPlex's text stream carries only the agent's words. The user's turns are found by the
voice-activity decision the pause detector uses; with a recogniser (``asr``) each finished
turn's audio goes to a worker thread and the turn becomes ``user: words`` once transcribed,
else it stays a marker with its length ("[user spoke 3.1 s]").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from entropi.audio.levels import rms_dbfs
from entropi.core.constants import FRAME_SECONDS
from entropi.hearing.turns import PendingTurn, TurnTranscriber
from entropi.text.utterance import Utterance, render_transcript

# A user turn shorter than this is a cough or a click, not speech.
MIN_USER_TURN_SECONDS = 0.3
# Audio kept from before a turn's first speech frame: the VAD decides a frame or two late
# (entropi.hearing.vad) and word onsets are soft, so the recogniser gets 320 ms of lead-in.
PRE_ROLL_FRAMES = 4
# A user turn longer than this is sent to the recogniser in pieces (whisper's window is 30 s).
MAX_TURN_FRAMES = round(25.0 / FRAME_SECONDS)


class WindowTranscript:
    def __init__(self, asr: TurnTranscriber | None = None,
                 carried: Sequence[PendingTurn] = (),
                 on_turn: Callable[[Utterance], None] | None = None) -> None:
        """``carried``: turns of the previous window still being transcribed at its end; their
        words open this window. ``on_turn``: called with each finished user turn once its
        words are in (from the recogniser's thread when there is one)."""
        self._asr = asr
        self._on_turn = on_turn
        self._items: list[Utterance | PendingTurn] = list(carried)
        self._agent: list[str] = []
        self._user_frames = 0
        self._user_quiet = 0
        self._names: list[str] = []  # speakers heard in the open user turn
        self._audio: list[np.ndarray] = []  # the open turn's frames (only with a recogniser)
        self._pre: deque[np.ndarray] = deque(maxlen=PRE_ROLL_FRAMES)

    def add(self, text: str | None, *, user_pcm: np.ndarray, t: float,
            threshold_dbfs: float = -40.0, speakers: Sequence[str] = (),
            user_active: bool | None = None) -> None:
        """One frame: the agent's text piece, the user's audio, and (where the transport
        knows them) the names of who spoke in this frame. ``user_active``: the pause
        detector's voice-activity decision (None: the energy rule at ``threshold_dbfs``)."""
        if text:
            self._agent.append(text)
        for name in speakers:
            if name not in self._names:
                self._names.append(name)
        if user_active is None:
            user_active = rms_dbfs(user_pcm) > threshold_dbfs
        if user_active:
            if self._user_frames == 0:
                self._flush_agent()
                if self._asr is not None:
                    self._audio = list(self._pre)
            self._user_frames += 1
            self._user_quiet = 0
        elif self._user_frames:
            self._user_quiet += 1
        if self._asr is not None:
            if self._user_frames:
                self._audio.append(user_pcm)
            else:
                self._pre.append(user_pcm)
        # 0.4 s quiet: the end of a turn, not a breath; a very long turn goes in pieces.
        if self._user_quiet * FRAME_SECONDS >= 0.4 or len(self._audio) >= MAX_TURN_FRAMES:
            self._flush_user()

    def _flush_agent(self) -> None:
        text = "".join(self._agent).strip()
        if text:
            self._items.append(Utterance(speaker="agent", text=text))
        self._agent = []

    def _flush_user(self) -> None:
        seconds = self._user_frames * FRAME_SECONDS
        if seconds >= MIN_USER_TURN_SECONDS:
            future = None
            if self._asr is not None:
                future = self._asr.submit(np.concatenate(self._audio))
            turn = PendingTurn(round(seconds, 1), self._speaker_name(), future)
            self._items.append(turn)
            if self._on_turn is not None:
                on_turn = self._on_turn
                if future is None:
                    on_turn(turn.utterance())
                else:
                    future.add_done_callback(lambda _: on_turn(turn.utterance()))
        self._user_frames = 0
        self._user_quiet = 0
        self._names = []
        self._audio = []
        self._pre.clear()

    def close(self) -> list[PendingTurn]:
        """Window end: the open user turn is finished (and sent to the recogniser); returns
        the turns whose words have not arrived yet (for ``settle``)."""
        self._flush_agent()
        if self._user_frames:
            self._flush_user()
        return self.pending()

    @property
    def words_in(self) -> bool:
        """No user turn is open or still being transcribed: a snapshot now has every word."""
        return self._user_frames == 0 and not self.pending()

    def pending(self) -> list[PendingTurn]:
        return [i for i in self._items if isinstance(i, PendingTurn) and not i.ready]

    def _speaker_name(self) -> str | None:
        return ", ".join(self._names) or None

    def utterances(self) -> list[Utterance]:
        """A snapshot including the turns still open (used mid-window for speculation); a turn
        still being transcribed is a marker."""
        items = [i.utterance() if isinstance(i, PendingTurn) else i for i in self._items]
        text = "".join(self._agent).strip()
        if text:
            items.append(Utterance(speaker="agent", text=text))
        seconds = self._user_frames * FRAME_SECONDS
        if seconds >= MIN_USER_TURN_SECONDS:
            items.append(Utterance(speaker="user", text="", seconds=round(seconds, 1),
                                   name=self._speaker_name()))
        return items

    def text(self) -> str:
        return render_transcript(self.utterances())
