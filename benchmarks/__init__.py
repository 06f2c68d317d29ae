"""Performance measurements, each runnable with one command (see README)."""
