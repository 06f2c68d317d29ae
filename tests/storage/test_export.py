"""`agile-gateway storage export` as a real command on a store's files."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.contract import RecordObject
from services.storage.crypto import Sealer
from services.storage.export import parse_time_ms
from services.storage.store import Store

T0 = 1_700_000_000_000
ROOT = Path(__file__).resolve().parents[2]


def export(state: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "services.runtime.cli",
            "storage",
            "export",
            "--state-dir",
            str(state),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    key = os.urandom(32)
    (tmp_path / "storage").mkdir()
    key_file = tmp_path / "storage" / "key"
    key_file.write_text(key.hex())
    key_file.chmod(0o600)
    store = Store(tmp_path / "storage", Sealer(key))
    store.set_encrypt("dev1", "temperature", True)
    for i in range(100):
        store.append(
            RecordObject("dev1", "temperature", f"{20 + i / 100:.2f}", "°C", "float", T0 + i * 1000)
        )
    store.flush()
    return tmp_path


def test_export_csv_of_a_time_range(state: Path):
    result = export(
        state, "dev1", "temperature", "--since", str(T0 + 10_000), "--until", str(T0 + 19_000)
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["epoch_ms"]) for r in rows] == list(range(T0 + 10_000, T0 + 20_000, 1000))
    assert rows[0]["value"] == "20.10" and rows[0]["unit"] == "°C"
    assert "10 records exported" in result.stderr


def test_export_json_to_a_file(state: Path, tmp_path: Path):
    out = tmp_path / "out.json"
    result = export(state, "dev1", "temperature", "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 100 and rows[-1]["value"] == "20.99"


def test_export_says_what_is_wrong(state: Path):
    missing = export(state, "dev1", "pressure")
    assert missing.returncode == 1 and "stored: dev1 temperature" in missing.stderr
    bad_time = export(state, "dev1", "temperature", "--since", "yesterday-ish")
    assert bad_time.returncode == 2 and "not a time" in bad_time.stderr
    (state / "storage" / "key").write_text(os.urandom(32).hex())
    wrong_key = export(state, "dev1", "temperature")
    assert wrong_key.returncode == 1 and "authentication failed" in wrong_key.stderr
    assert wrong_key.stdout == ""


def test_times_are_epoch_ms_iso_or_a_duration_ago():
    now = T0
    assert parse_time_ms(str(T0 - 5), now) == T0 - 5
    assert parse_time_ms("1h", now) == T0 - 3_600_000
    assert parse_time_ms("2026-11-29T08:00:00+00:00", now) == 1_795_939_200_000
