"""The link rate an update predicts its time with: measured from the gateway's own
downloads, or set."""

from pathlib import Path

from services.images.link_rate import (
    MIN_BYTES,
    DownloadClock,
    LinkRate,
    predicted_seconds,
    prediction_text,
)


def test_the_rate_follows_the_downloads_and_outlives_the_process(tmp_path: Path) -> None:
    rate = LinkRate(tmp_path / "link-rate.json")
    assert rate.bit_s() == (0.0, "")  # nothing measured: no prediction
    rate.record(10_000_000, 8.0)  # 10 Mbit/s
    assert rate.bit_s() == (10e6, "measured")
    rate.record(10_000_000, 4.0)  # the link got faster: 20 Mbit/s, half weight
    assert LinkRate(tmp_path / "link-rate.json").bit_s() == (15e6, "measured")


def test_small_or_instant_downloads_say_nothing_of_the_link(tmp_path: Path) -> None:
    rate = LinkRate(tmp_path / "link-rate.json")
    rate.record(MIN_BYTES - 1, 0.001)  # a delta of a kilobyte times round trips
    rate.record(50_000_000, 0.0)  # already here
    assert rate.bit_s() == (0.0, "")


def test_a_set_rate_wins_over_the_measured_one(tmp_path: Path) -> None:
    rate = LinkRate(tmp_path / "link-rate.json", set_bit_s=2e6)
    rate.record(10_000_000, 8.0)
    assert rate.bit_s() == (2e6, "set")
    assert predicted_seconds(25_000_000, 2e6) == 100.0
    assert prediction_text(100.0, 2e6, "set") == "≈ 1 min 40 s at 2 Mbit/s (set)"
    assert prediction_text(0.2, 50e6, "measured") == "≈ 1 s at 50 Mbit/s (measured)"


def test_the_clock_stops_when_the_last_layer_is_complete_not_when_unpacked() -> None:
    clock = DownloadClock()
    clock.progress("a", 10, 100)
    assert clock.seconds == 0.0  # nothing complete yet
    clock.progress("a", 100, 100)
    done = clock.seconds
    clock.progress("a", 100, 100)  # said again while unpacking: not a later end
    assert clock.seconds == done >= 0.0
