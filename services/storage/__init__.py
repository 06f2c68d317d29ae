"""Time-series storage: TinyDB segments with retention, encryption at rest and crash safety."""
