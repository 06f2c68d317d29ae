"""Records of an encrypted stream are never written in clear: the device manager's replay
buffer and the bridge's spool carry them in memory only, while its other streams go
through both on disk as before; the replay still serves them, and the broker gets them."""

import json
import sqlite3
from pathlib import Path

from dbus_fast import Variant

from services.bridge.service import BridgeService
from services.devicemanager.service import create as create_dm
from services.dummy.service import create as create_dummy
from services.protocolmanager.service import create as create_pm
from services.storage.service import StorageService
from testkit.broker import Subscriber, running_broker
from tests.helpers import THERMOMETER, device, dm, eventually, storage

THERMO = THERMOMETER.device_id


def rows(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


def on_disk(folder: Path, name: str) -> bytes:
    """The database and its write-ahead log, as bytes: whatever was ever written."""
    return b"".join(p.read_bytes() for p in folder.glob(name + "*") if p.is_file())


async def test_an_encrypted_streams_records_stay_in_memory(services, client, tmp_path) -> None:
    await services.start(create_pm(services.config()))
    await services.start(create_dummy(services.config(**{"record-interval": "0.02"})))
    await services.start(create_dm(services.config()))
    await dm(client, "Register", "(ssss)s", THERMOMETER.to_wire(), "")
    await services.start(
        StorageService(services.config(**{"flush-interval": "0.1", "resubscribe-interval": "0.2"}))
    )
    await storage(
        client, "SetPolicy", "ssa{sv}", THERMO, "temperature", {"encrypt": Variant("b", True)}
    )
    await storage(client, "SetPolicy", "ssa{sv}", THERMO, "humidity", {})

    async def private() -> bool:
        (conf,) = await device(client, THERMO, "Configuration")
        return json.loads(conf)["private"] == ["temperature"]

    await eventually(private)
    with running_broker(tmp_path / "broker") as broker:
        sub = Subscriber(broker, "agile/#")
        try:
            options = {"gateway-id": "gw1", "refresh-interval": "0.2"} | broker.options()
            await services.start(BridgeService(services.config(**options)))

            async def both_published() -> bool:
                got = {t.rsplit("/", 1)[-1] for t, _ in sub.messages()}
                return {"temperature", "humidity"} <= got

            await eventually(both_published)
        finally:
            sub.stop()

    async def written() -> bool:  # the plain stream's, at the next flush (not yet, loaded)
        (stats,) = await storage(client, "Stats")
        return stats["records_written"].value > 0

    await eventually(written)
    (replayed,) = await device(client, THERMO, "Replay", "st", "temperature", 0)
    assert replayed  # from memory

    state = services.state_dir
    replay = state / "devicemanager" / "replay.db"
    where = "FROM records WHERE component = '{}'"
    assert rows(replay, f"SELECT count(*) {where.format('temperature')}") == 0
    assert rows(replay, f"SELECT count(*) {where.format('humidity')}") > 0  # the control
    spool = on_disk(state / "mqtt", "spool.db")
    assert f"{THERMO}/humidity".encode() in spool
    assert f"{THERMO}/temperature".encode() not in spool
    values = {json.loads(p)["value"] for t, p in sub.messages() if t.endswith("/temperature")}
    disk = on_disk(state / "devicemanager", "replay.db")
    assert values and not any(str(v).encode() in disk for v in values)
