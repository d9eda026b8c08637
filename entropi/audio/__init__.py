"""Audio for the daemon: devices and WAV files, thinking clips, pause detection.

Nothing here imports sounddevice at module level: WAV-only runs need no PortAudio.
"""

from entropi.audio.clips import ClipPlayer, ThinkingClips
from entropi.audio.io import AudioIO, open_audio
from entropi.audio.pause import Cut, PauseDetector
from entropi.audio.stats import AudioStats
from entropi.audio.transport import AudioTransport, active_speakers
from entropi.audio.wav import read_wav, write_wav

__all__ = [
    "AudioIO",
    "AudioStats",
    "AudioTransport",
    "ClipPlayer",
    "Cut",
    "PauseDetector",
    "ThinkingClips",
    "active_speakers",
    "open_audio",
    "read_wav",
    "write_wav",
]
