"""entropi: a full-duplex voice companion on NVIDIA PersonaPlex that can talk for hours."""

__version__ = "0.1.0"
