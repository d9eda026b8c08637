"""L3 thinking clips: the player, the bundled set, the rendered cache and its line schedule.

Rendering asks :mod:`entropi.engine.takes` for raw forced-text takes; choosing, trimming and
caching them happens here.
"""
