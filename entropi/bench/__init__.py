"""Benchmarks behind ``entropi bench NAME``.

Each module here exposes ``HELP: str``, ``add_arguments(parser)`` and
``run(args) -> dict`` (a flat JSON-able dict of results). Heavy imports go inside ``run``.
"""
