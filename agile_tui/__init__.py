"""agile-tui: the operator's terminal application for an AGILE gateway."""
