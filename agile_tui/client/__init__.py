"""The TUI's non-UI layer: gateway bus client, native runtime and Docker engine access.

Nothing here imports textual or rich (tests/test_layering.py), so it can be
tested, benchmarked and reused without a terminal.
"""
