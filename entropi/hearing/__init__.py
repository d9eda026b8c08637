"""Hearing the user: voice activity, speech recognition of user turns, echo cancellation.

PersonaPlex's text stream holds only the agent's words. This package gives the rest of
entropi the user's side: which frames hold user speech (``vad``), what the user said
(``asr`` + ``turns``, transcribed in a worker thread, never on the frame loop) and a
microphone signal without the agent's own voice in it (``echo``).
"""

from entropi.hearing.asr import UserTranscriber, open_transcriber
from entropi.hearing.turns import TurnTranscriber

__all__ = ["TurnTranscriber", "UserTranscriber", "open_transcriber"]
