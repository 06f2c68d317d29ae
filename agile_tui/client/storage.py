"""How the gateway's Storage writes durations (policies' intervals and retention), and
what the operator is told while its writes fail."""

from services.storage.policy import DAY_MS, format_duration_ms, parse_duration_ms

__all__ = ["DAY_MS", "format_duration_ms", "parse_duration_ms", "storage_problem"]


def storage_problem(error: str, key_error: str = "") -> str:
    """The line shown while Storage's writes fail with `error`, or its key cannot be used
    (`key_error`: the encrypted streams are not recorded); "" while all is well."""
    if error:
        reason = error.rsplit(": ", 1)[-1]  # "cannot write PATH: REASON"
        return f"{reason}. Recording is paused and goes on where it stopped once space returns."
    if key_error:
        return f"Encrypted streams are not recorded: {key_error}"
    return ""
