"""How fast the gateway's link downloads, measured from its own updates (or set), so that
a plan can say how long an update will take and not only how many bytes it fetches."""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from services.atomicjson import write_atomic

FILE = "link-rate.json"  # beside the update journal
MIN_BYTES = 1_000_000  # smaller downloads time the registry's round trips more than the link
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


@dataclass(frozen=True)
class Link:
    """A download takes `overhead_s` (the registry's round trips: manifest, config, the
    layers' requests) plus its bytes at `bit_s`."""

    bit_s: float = 0.0
    overhead_s: float = 0.0
    source: str = ""  # "set" (an option) or "measured"; "" when the rate is unknown

    def seconds(self, nbytes: int) -> float:
        """0 when nothing is to download (then nothing is asked of the registry's blobs)."""
        return self.overhead_s + nbytes * 8 / self.bit_s if self.bit_s and nbytes else 0.0


class LinkRate:
    """The gateway's link, learnt from its downloads: the large ones give the rate, the
    small ones (a delta, a code layer) the time every download costs besides its bytes."""

    def __init__(self, path: Path, set_bit_s: float = 0.0) -> None:
        self.path = path
        self.set_bit_s = set_bit_s

    def _measured(self) -> tuple[float, float]:
        try:
            kept = json.loads(self.path.read_text())
            return float(kept["bit_s"]), float(kept.get("overhead_s", 0.0))
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0, 0.0

    def record(self, nbytes: int, seconds: float) -> None:
        if seconds <= 0:
            return  # nothing was downloaded
        bit_s, overhead = self._measured()
        rate = self.set_bit_s or bit_s
        if nbytes >= MIN_BYTES:
            transfer = seconds - overhead if seconds > 2 * overhead else seconds
            bit_s = _newest(bit_s, nbytes * 8 / transfer)
        else:
            around = seconds - nbytes * 8 / rate if rate else seconds
            overhead = _newest(overhead, max(around, 0.0))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"bit_s": bit_s, "overhead_s": overhead}).encode())

    def link(self) -> Link:
        bit_s, overhead = self._measured()
        if self.set_bit_s:
            return Link(self.set_bit_s, overhead, "set")
        return Link(bit_s, overhead, "measured") if bit_s else Link()


def _newest(before: float, newest: float) -> float:
    return NEWEST * newest + (1 - NEWEST) * before if before else newest


def prediction_text(seconds: float, bit_s: float, source: str) -> str:
    """E.g. "≈ 2 min 05 s at 10 Mbit/s (measured)"."""
    whole = round(seconds)
    wait = f"{whole // 60} min {whole % 60:02d} s" if whole >= 60 else f"{max(whole, 1)} s"
    return f"≈ {wait} at {bit_s / 1e6:.3g} Mbit/s ({source})"
