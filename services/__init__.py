"""AGILE gateway services: the bus contract, the core services, protocol adapters, the runtime.

Nothing under this package may import textual or rich (tests/test_layering.py).
"""
