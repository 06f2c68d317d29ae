"""The link an update predicts its time with: learnt from the gateway's own downloads
(large ones give the rate, small ones the time each download costs besides its bytes),
or its rate set."""

from pathlib import Path

import pytest

from services.images.link_rate import (
    MIN_BYTES,
    DownloadClock,
    Link,
    LinkRate,
    prediction_text,
)


def test_the_rate_follows_the_downloads_and_outlives_the_process(tmp_path: Path) -> None:
    rate = LinkRate(tmp_path / "link-rate.json")
    assert rate.link() == Link()  # nothing measured: no prediction
    assert rate.link().seconds(10_000_000) == 0.0
    rate.record(10_000_000, 8.0)  # 10 Mbit/s
    assert rate.link() == Link(10e6, 0.0, "measured")
    rate.record(10_000_000, 4.0)  # the link got faster: 20 Mbit/s, half weight
    assert LinkRate(tmp_path / "link-rate.json").link() == Link(15e6, 0.0, "measured")


def test_small_downloads_teach_the_time_each_download_costs_besides_its_bytes(
    tmp_path: Path,
) -> None:
    rate = LinkRate(tmp_path / "link-rate.json")
    rate.record(10_000_000, 8.0)  # 10 Mbit/s
    rate.record(1_000, 0.2008)  # a delta: 0.8 ms of bytes, 0.2 s of round trips
    link = rate.link()
    assert link.overhead_s == pytest.approx(0.2)
    assert link.seconds(MIN_BYTES - 1) == pytest.approx(0.2 + 0.8, rel=1e-3)
    assert link.seconds(0) == 0.0  # an image already here: nothing is asked for
    rate.record(10_000_000, 8.2)  # the rate from a large one, its overhead taken off
    assert rate.link().bit_s == pytest.approx(10e6)
    rate.record(50_000_000, 0.0)  # already here: says nothing
    assert rate.link().bit_s == pytest.approx(10e6)


def test_a_set_rate_wins_over_the_measured_one(tmp_path: Path) -> None:
    rate = LinkRate(tmp_path / "link-rate.json", set_bit_s=2e6)
    rate.record(10_000_000, 8.0)
    assert rate.link() == Link(2e6, 0.0, "set")
    assert rate.link().seconds(25_000_000) == 100.0
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
