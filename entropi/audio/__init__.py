"""L1 pure signal and files: resampling, levels, WAV files, queues, counters, echo
cancellation, test signals.

Nothing here imports sounddevice at module level: WAV-only runs need no PortAudio.
"""
