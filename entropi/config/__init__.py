"""L1 configuration: the schema (frozen sections), the loader (strict YAML, env references,
one-line errors) and the context budget.

Every section is a frozen pydantic model that rejects unknown keys. ``load_config`` turns
every problem (YAML syntax, unknown key, wrong type, range, unset ``${VAR}``, context
budget) into one :class:`ConfigError` line that names the key path and, where known, the
line of the file, before any model is loaded.
"""

from entropi.config.budget import ContextBudget, check_budget, context_budget
from entropi.config.loader import load_config, masked_dump, parse_config
from entropi.config.schema import (
    DEFAULT_THINKING_LINES,
    MAX_CHARS_PER_TOKEN,
    AsrSection,
    AudioSection,
    ClipRenderSection,
    Config,
    ConfigPath,
    ConversationSection,
    DeviceRef,
    DiscordSection,
    EmbeddedLLM,
    EnvName,
    LoggingSection,
    MemorySection,
    ModelSection,
    OpenRouterOptions,
    PositiveFloat,
    RuntimeSection,
    SamplingSection,
    SecondaryModelSection,
    Section,
    ServerSection,
    ServiceSection,
    VoiceSection,
    WindowSection,
    check_prompt_size,
    check_url,
)

__all__ = [
    "DEFAULT_THINKING_LINES",
    "MAX_CHARS_PER_TOKEN",
    "AsrSection",
    "AudioSection",
    "ClipRenderSection",
    "Config",
    "ConfigPath",
    "ContextBudget",
    "ConversationSection",
    "DeviceRef",
    "DiscordSection",
    "EmbeddedLLM",
    "EnvName",
    "LoggingSection",
    "MemorySection",
    "ModelSection",
    "OpenRouterOptions",
    "PositiveFloat",
    "RuntimeSection",
    "SamplingSection",
    "SecondaryModelSection",
    "Section",
    "ServerSection",
    "ServiceSection",
    "VoiceSection",
    "WindowSection",
    "check_budget",
    "check_prompt_size",
    "check_url",
    "context_budget",
    "load_config",
    "masked_dump",
    "parse_config",
]
