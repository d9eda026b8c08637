"""User-facing errors: each carries one clear line and the process exit code.

The CLI prints ``{prefix}: {message}`` on stderr and exits with ``exit_code``; nothing
else is printed (no traceback) because the message already names what, where and the fix.
"""

from __future__ import annotations


class EntropiError(Exception):
    """An error the user can fix; ``str(err)`` is the one-line message."""

    prefix = "error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def line(self) -> str:
        return f"{self.prefix}: {self.message}"


class ConfigError(EntropiError):
    """Bad configuration: exit 2 before anything heavy loads."""

    prefix = "config error"
    exit_code = 2


class UsageError(EntropiError):
    """Bad command-line arguments."""

    prefix = "usage error"
    exit_code = 2


class InputError(EntropiError):
    """A bad input file (WAV, voice preset, transcript, memory file)."""

    prefix = "input error"
    exit_code = 2


class ModelError(EntropiError):
    """Checkpoint or model problem (missing file, wrong shapes, gated repo, device)."""

    prefix = "model error"
    exit_code = 3


class DeviceError(EntropiError):
    """Audio device problem (missing device, unsupported rate)."""

    prefix = "audio device error"
    exit_code = 4


class LLMError(EntropiError):
    """Secondary-LLM problem that cannot be retried (bad key, out of credits)."""

    prefix = "llm error"
    exit_code = 5


class MemoryFileError(EntropiError):
    """A corrupt or unreadable memory journal / profile file; never overwritten."""

    prefix = "memory error"
    exit_code = 6


class DiscordError(EntropiError):
    """The Discord bot cannot start: token missing or rejected, unknown channel, permission."""

    prefix = "discord error"
    exit_code = 2
