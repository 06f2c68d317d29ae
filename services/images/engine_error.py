"""One line for the operator when the Docker engine cannot be reached (the SDK's own
message is a nested exception repr)."""

import os


def engine_unreachable(exc: Exception, url: str | None = None) -> str:
    where = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    text = str(exc)
    if "FileNotFoundError" in text:
        reason = "no engine socket there"
    elif "refused" in text.lower():
        reason = "connection refused"
    elif "PermissionError" in text:
        reason = "permission denied (is this user in the docker group?)"
    else:
        reason = text[:160]
    return f"Docker engine {where}: {reason}"
