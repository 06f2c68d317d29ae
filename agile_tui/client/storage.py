"""How the gateway's Storage writes durations (policies' intervals and retention)."""

from services.storage.policy import DAY_MS, format_duration_ms, parse_duration_ms

__all__ = ["DAY_MS", "format_duration_ms", "parse_duration_ms"]
