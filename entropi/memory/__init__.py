"""Memory journal (Markdown), persona profile (JSON), retrieval and background writers.

The daemon uses :class:`MemoryService` and :class:`WindowRecord`; the ``entropi memory``
command uses :class:`Journal` and :class:`ProfileStore` directly.
"""

from entropi.memory.entry import JournalEntry
from entropi.memory.journal import Journal
from entropi.memory.profile import PersonaProfile, ProfileStore, ProfileUpdate
from entropi.memory.record import WindowRecord
from entropi.memory.service import MemoryService, approx_tokens

__all__ = ["Journal", "JournalEntry", "MemoryService", "PersonaProfile", "ProfileStore",
           "ProfileUpdate", "WindowRecord", "approx_tokens"]
