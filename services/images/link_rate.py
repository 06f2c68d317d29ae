"""How fast the gateway's link downloads, measured from its own updates (or set), so that
a plan can say how long an update will take and not only how many bytes it fetches."""

import json
import time
from pathlib import Path

from services.atomicjson import write_atomic

FILE = "link-rate.json"  # beside the update journal
MIN_BYTES = 1_000_000  # smaller downloads time the registry's round trips, not the link
NEWEST = 0.5  # the weight of the newest measurement: a gateway's link changes


class DownloadClock:
    """Times a download from its start to the moment its last layer (or bundle) is
    complete: a pull goes on to unpack, which is the disk's time, not the link's."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._complete: dict[str, float] = {}

    def progress(self, layer: str, done: int, total: int) -> None:
        if total and done >= total:
            self._complete.setdefault(layer, time.monotonic())

    @property
    def seconds(self) -> float:
        return max(self._complete.values(), default=self.started) - self.started


class LinkRate:
    def __init__(self, path: Path, set_bit_s: float = 0.0) -> None:
        self.path = path
        self.set_bit_s = set_bit_s

    def measured_bit_s(self) -> float:
        try:
            return float(json.loads(self.path.read_text())["bit_s"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def record(self, nbytes: int, seconds: float) -> None:
        if nbytes < MIN_BYTES or seconds <= 0:
            return
        newest = nbytes * 8 / seconds
        before = self.measured_bit_s()
        rate = NEWEST * newest + (1 - NEWEST) * before if before else newest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"bit_s": rate}).encode())

    def bit_s(self) -> tuple[float, str]:
        """The rate to predict with, and where it comes from ("set", "measured"; 0 and ""
        when neither is known yet)."""
        if self.set_bit_s:
            return self.set_bit_s, "set"
        measured = self.measured_bit_s()
        return (measured, "measured") if measured else (0.0, "")


def predicted_seconds(nbytes: int, bit_s: float) -> float:
    return nbytes * 8 / bit_s if bit_s else 0.0


def prediction_text(seconds: float, bit_s: float, source: str) -> str:
    """E.g. "≈ 2 min 05 s at 10 Mbit/s (measured)"."""
    whole = round(seconds)
    wait = f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{max(whole, 1)} s"
    return f"≈ {wait} at {bit_s / 1e6:.3g} Mbit/s ({source})"
