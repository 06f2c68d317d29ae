"""A virtual ZigBee coordinator: a zigpy radio library whose air is simulated.

zigpy runs unmodified above it: network formation writes the network settings
to this radio's "NVRAM" (a JSON file), permit-join lets simulated devices join,
zigpy interviews them with real ZDO requests, reads attributes, sends commands
and configures reporting with real ZCL frames, and every answer comes back
through `packet_received` as serialized frames, as from a real stick.

The devices remember the network they joined in a file of their own (the air), not
in the radio: a new stick that takes over the network from a backup finds them still
on it, and a wiped one does not. As on a real network, every frame the coordinator
sends carries its network key's frame counter and a device drops a frame whose counter
is not above the last it took (replay protection): a stick restored without advancing
the counter goes unheard until it passes the old one. The radio keeps its counter as
real stacks do, written to NVRAM only every COUNTER_JUMP frames and resumed from there.
"""

import asyncio
import functools
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import zigpy.application
import zigpy.device
import zigpy.exceptions
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation as f

from services.atomicjson import write_atomic
from services.zigbee.sim.devices import BASIC, LEVEL, ON_OFF, POWER, SimDevice, attr_type
from services.zigbee.sim.ota import OTA, OtaClient

log = logging.getLogger(__name__)

SIM_CONFIG = "agile_virtual"  # key of the zigpy config holding the simulation
COORDINATOR_IEEE = t.EUI64.convert("00:12:4b:00:00:00:a9:11")
COORDINATOR_NWK = t.NWK(0x0000)
REANNOUNCE_S = 5.0
COUNTER_JUMP = 4096  # frames between writes of the counter (EmberZNet's NVM3 does the same)
INDIRECT_HOLD_S = 7.68  # how long a parent keeps a frame for a sleeping child (the spec's)
AWAKE_S = 1.0  # a sleepy device's wake: it polls its parent, reports, and sleeps again
JOIN_AWAKE_S = 30.0  # awake after joining or rebooting, to be interviewed


def _node_descriptor(
    logical_type: zdo_t.LogicalType, mains: bool, listening: bool = True
) -> zdo_t.NodeDescriptor:
    """`listening`: its receiver stays on (a sleepy end device's does not: zigpy, and
    the firmware queue, know it by this)."""
    flags = zdo_t.NodeDescriptor.MACCapabilityFlags
    caps = flags.AllocateAddress
    if mains:
        caps |= flags.MainsPowered | flags.FullFunctionDevice
    if mains or listening:
        caps |= flags.RxOnWhenIdle
    return zdo_t.NodeDescriptor(
        logical_type=logical_type,
        complex_descriptor_available=0,
        user_descriptor_available=0,
        reserved=0,
        aps_flags=0,
        frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
        mac_capability_flags=caps,
        manufacturer_code=0x1234,
        maximum_buffer_size=82,
        maximum_incoming_transfer_size=82,
        server_mask=0,
        maximum_outgoing_transfer_size=82,
        descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
    )


def _typed(cluster_id: int, attr_id: int, value: Any) -> f.TypeValue:
    python_type = attr_type(cluster_id, attr_id)
    data_type = f.DataType.from_python_type(python_type)
    return f.TypeValue(type=data_type.type_id, value=python_type(value))


class VirtualRadio(zigpy.application.ControllerApplication):
    """The coordinator and the simulated air around it."""

    DISPLAY_NAME = "AGILE virtual radio"
    DESCRIPTION = "Simulated coordinator and devices (no hardware)"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        sim = self.config.get(SIM_CONFIG) or {}
        self.nvram_path = Path(sim.get("nvram", "zigbee-nvram.json"))
        self.air_path = Path(sim.get("air", self.nvram_path.with_name("virtual-air.json")))
        self.air: dict[t.EUI64, SimDevice] = {d.ieee: d for d in sim.get("devices", [])}
        self.join_spacing_s = float(sim.get("join_spacing_s", 0.05))
        self.permit_until = 0.0
        self._coordinator_endpoints: dict[int, zdo_t.SimpleDescriptor] = {}
        self._sim_tasks: dict[t.EUI64, asyncio.Task[None]] = {}
        self.ota_clients: dict[t.EUI64, OtaClient] = {}
        self._join_task: asyncio.Task[None] | None = None
        self._tsn = 0
        self.nvram: dict[str, Any] = {}
        self.tx_counter = 0  # the network key's outgoing frame counter
        self.memory: dict[str, dict[str, Any]] = {}  # the devices' own: by IEEE
        # Frames zigpy sent, by (destination IEEE, ZDO/ZCL cluster): what tests and the
        # benchmark count (an interview is Node_Desc_req, Active_EP_req, ...).
        self.sent: Counter[tuple[str, int]] = Counter()
        self.reports_sent: Counter[str] = Counter()  # attribute reports, by device IEEE

    # -- the "hardware": the stick's NVRAM, and what the devices remember --

    def _save_nvram(self) -> None:
        self.nvram["children"] = {
            str(d.ieee): int(d.nwk) for d in self.air.values() if d.joined and d.nwk is not None
        }
        write_atomic(self.nvram_path, json.dumps(self.nvram, indent=1).encode())

    def _save_memory(self) -> None:
        for dev in self.air.values():
            remembered = self.memory.get(dev.ieee_str)
            if remembered is not None:
                remembered["rx_counter"] = dev.rx_counter
                if dev.ota is not None:
                    remembered["ota"] = dev.ota.to_memory()
        write_atomic(self.air_path, json.dumps(self.memory, indent=1).encode())

    def _network_id(self) -> dict[str, str]:
        """What a device that joined knows of the network: its extended PAN id and key."""
        info = self.nvram["network_info"]
        return {"network": info["extended_pan_id"], "key": info["network_key"]["key"]}

    async def connect(self) -> None:
        try:
            self.nvram = json.loads(self.nvram_path.read_text())
        except FileNotFoundError:
            self.nvram = {}
        try:
            self.memory = json.loads(self.air_path.read_text())
        except FileNotFoundError:
            self.memory = {}
        if "network_info" in self.nvram:
            # Resumed from the last write, which was ahead of any frame sent since.
            self.tx_counter = max(
                int(self.nvram.get("counter_written", 0)),
                int(self.nvram["network_info"]["network_key"]["tx_counter"]),
            )
            self._migrate()
        for dev in self.air.values():
            dev.joined = False
            remembered = self.memory.get(dev.ieee_str)
            if remembered is not None:
                dev.nwk, dev.rx_counter = t.NWK(remembered["nwk"]), remembered["rx_counter"]
                if dev.ota is not None and "ota" in remembered:
                    dev.ota.from_memory(remembered["ota"])

    def _migrate(self) -> None:
        """NVRAM written before the devices kept their own memory: its "joined" table."""
        joined = self.nvram.pop("joined", None)
        if joined is not None and not self.memory:
            self.memory = {
                ieee: {**self._network_id(), "nwk": nwk, "rx_counter": 0}
                for ieee, nwk in joined.items()
            }
            self._save_memory()

    async def disconnect(self) -> None:
        for task in [*self._sim_tasks.values(), self._join_task]:
            if task is not None:
                task.cancel()
        self._sim_tasks.clear()
        for client in self.ota_clients.values():
            client.stop()
        if self.memory:
            self._save_memory()

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        if "network_info" not in self.nvram:
            raise zigpy.exceptions.NetworkNotFormed("the virtual radio holds no network")
        info = zigpy.state.NetworkInfo.from_dict(self.nvram["network_info"])
        key = info.network_key
        info = info.replace(network_key=key.replace(tx_counter=self.tx_counter))
        if load_devices:
            children = {
                t.EUI64.convert(ieee): t.NWK(nwk)
                for ieee, nwk in self.nvram.get("children", {}).items()
            }
            routers = {d.ieee for d in self.air.values() if d.router}
            info = info.replace(
                children=[ieee for ieee in children if ieee not in routers],
                nwk_addresses=children,
            )
        self.state.network_info = info
        self.state.node_info = zigpy.state.NodeInfo.from_dict(self.nvram["node_info"])

    async def write_network_info(
        self, *, network_info: zigpy.state.NetworkInfo, node_info: zigpy.state.NodeInfo
    ) -> None:
        # zigpy forms networks with an unknown IEEE ("use the radio's"): give ours, and
        # a proper NWK type, or the backup zigpy stores is unusable at the next start.
        if node_info.ieee == t.EUI64.UNKNOWN:  # type: ignore[attr-defined]  # zigpy sets it after the class
            node_info = node_info.replace(ieee=COORDINATOR_IEEE)
        node_info = node_info.replace(nwk=t.NWK(node_info.nwk))
        self.tx_counter = int(network_info.network_key.tx_counter)
        # The device table a backup brings, as a stick restored from one holds it.
        restored = {str(ieee): int(nwk) for ieee, nwk in network_info.nwk_addresses.items()}
        network_info = network_info.replace(children=[], nwk_addresses={})
        self.nvram = {
            "network_info": network_info.as_dict(),
            "node_info": node_info.as_dict(),
            "counter_written": self.tx_counter + COUNTER_JUMP,
            "children": restored,
        }
        write_atomic(self.nvram_path, json.dumps(self.nvram, indent=1).encode())
        self.state.network_info = network_info
        self.state.node_info = node_info

    async def reset_network_info(self) -> None:
        # The stick forgets; the devices still remember the network they were on.
        self.nvram = {}
        for dev in self.air.values():
            dev.joined = False
        self._save_nvram()

    async def start_network(self) -> None:
        await self.load_network_info()
        await self.register_endpoints()
        ieee, nwk = self.state.node_info.ieee, self.state.node_info.nwk
        coordinator = self.devices[ieee] = zigpy.device.Device(self, ieee, nwk)
        task = coordinator.schedule_initialize()
        if task is not None:
            await task
        network = self._network_id()
        for dev in self.air.values():
            remembered = self.memory.get(dev.ieee_str, {})
            dev.joined = {k: remembered.get(k) for k in network} == network
            if dev.joined:
                self._start_device(dev)
                known = self.devices.get(dev.ieee)
                if known is None or not known.is_initialized:
                    # Killed mid-interview: the device re-announces and zigpy finishes.
                    asyncio.get_running_loop().call_later(0.2, self._announce, dev)

    async def force_remove(self, dev: zigpy.device.Device) -> None:
        sim = self.air.get(dev.ieee)
        if sim is not None:
            self._leave(sim, announce=False)

    async def add_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None:
        self._coordinator_endpoints[descriptor.endpoint] = descriptor

    async def permit_ncp(self, time_s: int = 60) -> None:
        self.permit_until = time.monotonic() + time_s if time_s else 0.0
        if self._join_task is not None:
            self._join_task.cancel()
            self._join_task = None
        if time_s:
            self._join_task = asyncio.ensure_future(self._admit())

    async def permit_with_link_key(
        self, node: t.EUI64, link_key: t.KeyData, time_s: int = 60
    ) -> None:
        await self.permit_ncp(time_s)

    # -- the air: joins, leaves, drop-outs, reports --

    def permit_remaining_s(self) -> float:
        return max(0.0, self.permit_until - time.monotonic())

    async def _admit(self) -> None:
        """While joining is permitted, devices not on the network join one after another."""
        for dev in list(self.air.values()):
            if dev.joined or not dev.present:
                continue
            await asyncio.sleep(self.join_spacing_s)
            if not self.permit_remaining_s():
                return
            self._join(dev)

    def _free_nwk(self, dev: SimDevice) -> t.NWK:
        used = {d.nwk for d in self.air.values() if d.joined}
        candidate = int.from_bytes(dev.ieee.serialize()[:2], "little") % 0xFFF0 or 1
        while t.NWK(candidate) in used or candidate == 0:
            candidate = candidate % 0xFFF0 + 1
        return t.NWK(candidate)

    def _join(self, dev: SimDevice) -> None:
        dev.nwk = self._free_nwk(dev)
        dev.joined = True
        dev.rx_counter = 0  # a new key: any counter is new to it
        dev.reporting.clear()
        self.memory[dev.ieee_str] = {**self._network_id(), "nwk": int(dev.nwk), "rx_counter": 0}
        dev.awake_until = time.monotonic() + JOIN_AWAKE_S
        self._save_memory()
        self._save_nvram()  # the stick knows its children before zigpy hears of them
        log.info("virtual radio: %s (%s) joins as 0x%04x", dev.ieee, dev.model, dev.nwk)
        self.handle_join(dev.nwk, dev.ieee, COORDINATOR_NWK)
        self._start_device(dev)

    def leave(self, ieee: t.EUI64) -> None:
        """The device leaves the network now, as if its leave time had come."""
        self._leave(self.air[ieee])

    def _leave(self, dev: SimDevice, announce: bool = True) -> None:
        dev.joined = False
        task = self._sim_tasks.pop(dev.ieee, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        client = self.ota_clients.pop(dev.ieee, None)
        if client is not None:
            client.stop()
        self.memory.pop(dev.ieee_str, None)
        self._save_memory()
        self._save_nvram()
        if announce and dev.nwk is not None:
            log.info("virtual radio: %s leaves the network", dev.ieee)
            self.handle_leave(dev.nwk, dev.ieee)

    def _announce(self, dev: SimDevice) -> None:
        """ZDO Device_annce, as a device sends when it (re)joins."""
        tsn = self._next_tsn()
        args = t.serialize([dev.nwk, dev.ieee, t.uint8_t(0x80)], (t.NWK, t.EUI64, t.uint8_t))
        self._deliver(dev, 0, 0, zdo_t.ZDOCmd.Device_annce, 0, tsn, bytes([tsn]) + args)

    def _start_device(self, dev: SimDevice) -> None:
        if dev.ieee not in self._sim_tasks:
            self._sim_tasks[dev.ieee] = asyncio.ensure_future(self._live(dev))
        if dev.ota is not None and dev.ieee not in self.ota_clients:
            self.ota_clients[dev.ieee] = OtaClient(
                dev.ota,
                functools.partial(self._ota_request, dev),
                functools.partial(self._rebooted, dev),
                str(dev.ieee),
            )

    def _ota_request(self, dev: SimDevice, command_id: int, payload: bytes) -> None:
        """A client-to-server command of the device's OTA cluster, to the coordinator."""
        if not (dev.joined and dev.present):
            return  # off the air: the request is lost
        tsn = self._next_tsn()
        hdr = self._header(command_id, tsn, general=False, direction=f.Direction.Client_to_Server)
        self._deliver(dev, 1, 1, OTA, dev.endpoints[0].profile, tsn, hdr.serialize() + payload)

    def _rebooted(self, dev: SimDevice) -> None:
        """On new firmware: it remembers it, and announces itself as after a reboot."""
        self._save_memory()
        dev.awake_until = time.monotonic() + JOIN_AWAKE_S
        asyncio.get_running_loop().call_later(0.5, self._announce, dev)

    def asleep(self, dev: SimDevice) -> bool:
        client = self.ota_clients.get(dev.ieee)
        downloading = client is not None and client.busy  # a device stays up for it
        return dev.sleep_s is not None and time.monotonic() >= dev.awake_until and not downloading

    def _wake(self, dev: SimDevice) -> None:
        """A sleepy device wakes: it polls its parent for what it holds, still fresh."""
        now = time.monotonic()
        dev.awake_until = now + AWAKE_S
        held, dev.held = dev.held, []
        # Its check-in: the battery, as sleepy sensors report it on waking (the one sign
        # of life a coordinator sees from a device that was not asked to report).
        for ep in dev.endpoints:
            if POWER in ep.in_clusters:
                self._report(dev, ep.endpoint, POWER, {0x0021})
        for at, packet, counter in held:
            if now - at <= INDIRECT_HOLD_S:
                asyncio.get_running_loop().call_later(
                    dev.latency_s, self._heard, dev, packet, counter
                )

    async def _live(self, dev: SimDevice) -> None:
        """Reports, and the device's scripted faults, for as long as it is joined."""
        started = time.monotonic()
        up_since = announced = started
        while dev.joined:
            period = dev.sleep_s if dev.sleep_s is not None else dev.report_interval_s
            await asyncio.sleep(period * (0.9 + 0.2 * dev.rng.random()))
            now = time.monotonic()
            if dev.sleep_s is not None and dev.present:
                self._wake(dev)
            if dev.leave_after_s is not None and now - started >= dev.leave_after_s:
                self._leave(dev)
                return
            if dev.dropout is not None:
                up, down = dev.dropout
                if dev.present and now - up_since >= up:
                    dev.present = False
                    log.info("virtual radio: %s drops off the air", dev.ieee)
                elif not dev.present and now - up_since >= up + down:
                    dev.present, up_since = True, now
                    log.info("virtual radio: %s is back", dev.ieee)
                    self._announce(dev)
            if not dev.present:
                continue
            known = self.devices.get(dev.ieee)
            if (known is None or not known.is_initialized) and now - announced >= REANNOUNCE_S:
                # The interview failed (a lossy link): announce again, as devices do.
                announced = now
                self._announce(dev)
            dev.step()
            for (ep, cluster_id), attr_ids in list(dev.reporting.items()):
                self._report(dev, ep, cluster_id, attr_ids)

    def _report(self, dev: SimDevice, ep: int, cluster_id: int, attr_ids: set[int]) -> None:
        attrs = dev.attributes(ep, cluster_id) or {}
        records = [
            f.Attribute(attrid=a, value=_typed(cluster_id, a, attrs[a]))
            for a in sorted(attr_ids)
            if a in attrs
        ]
        if not records:
            return
        hdr = self._header(f.GeneralCommand.Report_Attributes, self._next_tsn(), general=True)
        payload = hdr.serialize() + t.List[f.Attribute](records).serialize()
        self.reports_sent[str(dev.ieee)] += 1
        self._deliver(dev, ep, 1, cluster_id, dev.endpoints[0].profile, hdr.tsn, payload)

    def inject(self, ieee: t.EUI64, ep: int, cluster_id: int, payload: bytes) -> None:
        """Send raw bytes as if the device had sent them (a device with a bug)."""
        dev = self.air[ieee]
        self._deliver(dev, ep, 1, cluster_id, dev.endpoints[0].profile, 0, payload)

    # -- frames --

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) % 256
        return self._tsn

    @staticmethod
    def _header(
        command_id: int,
        tsn: int,
        general: bool,
        direction: f.Direction = f.Direction.Server_to_Client,
    ) -> f.ZCLHeader:
        make = f.ZCLHeader.general if general else f.ZCLHeader.cluster
        hdr = make(tsn, command_id, direction=direction)
        hdr.frame_control = hdr.frame_control.replace(disable_default_response=True)  # type: ignore[assignment,arg-type]  # zigpy types Struct.replace's keywords as dicts
        return hdr

    def _deliver(
        self,
        dev: SimDevice | None,
        src_ep: int,
        dst_ep: int,
        cluster_id: int,
        profile: int,
        tsn: int,
        payload: bytes,
    ) -> None:
        nwk = COORDINATOR_NWK if dev is None else dev.nwk
        packet = t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=nwk),
            src_ep=t.uint8_t(src_ep),
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=COORDINATOR_NWK),
            dst_ep=t.uint8_t(dst_ep),
            tsn=t.uint8_t(tsn),
            profile_id=t.uint16_t(profile),
            cluster_id=t.uint16_t(cluster_id),
            data=t.SerializableBytes(payload),
            lqi=None if dev is None or dev.lqi is None else t.uint8_t(dev.lqi),
            rssi=None if dev is None or dev.rssi is None else t.int8s(dev.rssi),
        )
        try:
            self.packet_received(packet)
        except Exception as exc:
            # As a radio library's frame handler does (bellows logs and goes on): a frame
            # zigpy cannot parse is logged and dropped; the link goes on. zigpy raises
            # more than ValueError: a report of an abstract type is a TypeError.
            log.warning(
                "malformed frame from 0x%04x (cluster 0x%04x, %s) skipped: %s",
                nwk,
                cluster_id,
                payload.hex(),
                exc,
            )

    def _next_frame_counter(self) -> int:
        self.tx_counter += 1
        if self.tx_counter >= int(self.nvram.get("counter_written", 0)):
            self.nvram["counter_written"] = self.tx_counter + COUNTER_JUMP
            self._save_nvram()
        return self.tx_counter

    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        dst = packet.dst
        assert dst is not None
        counter = self._next_frame_counter()
        if dst.addr_mode == t.AddrMode.Broadcast:
            if packet.dst_ep == 0 and packet.cluster_id == zdo_t.ZDOCmd.IEEE_addr_req:
                self._answer_address_request(packet.data.serialize())
            return  # permit-join broadcasts: nothing else to do on this air
        if dst.addr_mode == t.AddrMode.NWK and dst.address == COORDINATOR_NWK:
            loop = asyncio.get_running_loop()
            loop.call_soon(self._answer, None, packet)
            return
        dev = self._find(dst)
        if dev is not None:
            self.sent[(str(dev.ieee), packet.cluster_id)] += 1
        if dev is None or not dev.joined or not dev.present:
            raise zigpy.exceptions.DeliveryError(
                f"no route to {dst.address}", status=t.MACStatus.MAC_NO_ACK
            )
        if dev.loss and dev.rng.random() < dev.loss:
            raise zigpy.exceptions.DeliveryError(
                f"{dst.address} did not acknowledge", status=t.MACStatus.MAC_NO_ACK
            )
        if dev.mute:
            return  # acknowledged at the MAC layer, never answered
        if self.asleep(dev):
            dev.held.append((time.monotonic(), packet, counter))  # its parent keeps it
            return
        asyncio.get_running_loop().call_later(dev.latency_s, self._heard, dev, packet, counter)

    def _heard(self, dev: SimDevice, packet: t.ZigbeePacket, counter: int) -> None:
        if counter <= dev.rx_counter:
            log.debug("virtual radio: %s drops a frame of counter %d (replayed)", dev.ieee, counter)
            return
        dev.rx_counter = counter
        self._answer(dev, packet)

    def _answer_address_request(self, data: bytes) -> None:
        """IEEE_addr_req, broadcast by zigpy for a NWK address it does not know."""
        nwk, _ = t.NWK.deserialize(data[1:])
        dev = next((d for d in self.air.values() if d.joined and d.present and d.nwk == nwk), None)
        if dev is not None:
            args = t.serialize(
                [zdo_t.Status.SUCCESS, dev.ieee, dev.nwk], (zdo_t.Status, t.EUI64, t.NWK)
            )
            asyncio.get_running_loop().call_soon(
                self._deliver, dev, 0, 0, zdo_t.ZDOCmd.IEEE_addr_rsp, 0, data[0], data[:1] + args
            )

    def _find(self, dst: t.AddrModeAddress) -> SimDevice | None:
        if isinstance(dst.address, t.EUI64):
            return self.air.get(dst.address)
        return next((d for d in self.air.values() if d.joined and d.nwk == dst.address), None)

    def _answer(self, dev: SimDevice | None, packet: t.ZigbeePacket) -> None:
        if dev is not None and (not dev.joined or not dev.present):
            return
        data = packet.data.serialize()
        if packet.src_ep is None or packet.dst_ep is None:
            log.warning("virtual radio: a frame for %s without endpoints, dropped", packet.dst)
            return
        try:
            if packet.dst_ep == 0:
                reply = self._zdo(dev, packet.cluster_id, data)
                if reply is not None:
                    cluster_id, payload = reply
                    self._deliver(dev, 0, 0, cluster_id, 0, data[0], payload)
                return
            reply_payload = self._zcl(dev, packet, data)
        except (ValueError, KeyError) as exc:
            log.warning("virtual radio: cannot parse a frame for %s: %s", packet.dst, exc)
            return
        if reply_payload is not None:
            self._deliver(
                dev,
                packet.dst_ep,
                packet.src_ep,
                packet.cluster_id,
                packet.profile_id,
                packet.tsn,
                reply_payload,
            )

    # -- ZDO: the interview and binding --

    def _endpoints_of(self, dev: SimDevice | None) -> dict[int, zdo_t.SimpleDescriptor]:
        if dev is None:
            return self._coordinator_endpoints
        return {
            ep.endpoint: zdo_t.SimpleDescriptor(
                endpoint=ep.endpoint,
                profile=ep.profile,
                device_type=ep.device_type,
                device_version=1,
                input_clusters=sorted(ep.in_clusters),
                output_clusters=ep.out_clusters,
            )
            for ep in dev.endpoints
        }

    def _zdo(self, dev: SimDevice | None, cluster_id: int, data: bytes) -> tuple[int, bytes] | None:
        tsn = data[:1]
        nwk = COORDINATOR_NWK if dev is None else dev.nwk
        ok = zdo_t.Status.SUCCESS
        cmd = zdo_t.ZDOCmd
        if cluster_id == cmd.Node_Desc_req:
            if dev is None:
                desc = _node_descriptor(zdo_t.LogicalType.Coordinator, True)
            else:
                kind = zdo_t.LogicalType.Router if dev.router else zdo_t.LogicalType.EndDevice
                desc = _node_descriptor(kind, dev.router, listening=dev.sleep_s is None)
            return cmd.Node_Desc_rsp, tsn + t.serialize(
                [ok, nwk, desc], (zdo_t.Status, t.NWK, zdo_t.NodeDescriptor)
            )
        if cluster_id == cmd.Active_EP_req:
            eps = t.LVList[t.uint8_t, t.uint8_t](sorted(self._endpoints_of(dev)))
            return cmd.Active_EP_rsp, tsn + t.serialize(
                [ok, nwk, eps], (zdo_t.Status, t.NWK, type(eps))
            )
        if cluster_id == cmd.Simple_Desc_req:
            _, rest = t.NWK.deserialize(data[1:])
            endpoint, _ = t.uint8_t.deserialize(rest)
            simple = self._endpoints_of(dev).get(endpoint)
            if simple is None:
                return cmd.Simple_Desc_rsp, tsn + t.serialize(
                    [zdo_t.Status.NOT_ACTIVE, nwk], (zdo_t.Status, t.NWK)
                ) + b"\x00"
            sized = zdo_t.SizePrefixedSimpleDescriptor(**simple.as_dict())
            return cmd.Simple_Desc_rsp, tsn + t.serialize(
                [ok, nwk, sized], (zdo_t.Status, t.NWK, zdo_t.SizePrefixedSimpleDescriptor)
            )
        if cluster_id in (cmd.Bind_req, cmd.Unbind_req, cmd.Mgmt_Permit_Joining_req):
            return cluster_id | 0x8000, tsn + ok.serialize()
        if cluster_id == cmd.Mgmt_Leave_req:
            if dev is not None:
                asyncio.get_running_loop().call_soon(self._leave, dev)
            return cmd.Mgmt_Leave_rsp, tsn + ok.serialize()
        if cluster_id & 0x8000:
            return None  # a response; nothing to answer
        return cluster_id | 0x8000, tsn + zdo_t.Status.NOT_SUPPORTED.serialize()

    # -- ZCL: attributes, reporting, commands --

    def _zcl(self, dev: SimDevice | None, packet: t.ZigbeePacket, data: bytes) -> bytes | None:
        hdr, rest = f.ZCLHeader.deserialize(data)
        if hdr.direction != f.Direction.Client_to_Server:
            return self._to_client_side(dev, packet.cluster_id, hdr, rest)
        cluster_id, ep = packet.cluster_id, packet.dst_ep or 0  # _answer saw one
        if dev is None:
            attrs = (
                {0x0004: "AGILE", 0x0005: "virtual coordinator"} if cluster_id == BASIC else None
            )
        else:
            attrs = dev.attributes(ep, cluster_id)
        if attrs is None:
            return self._default_response(hdr, f.Status.UNSUPPORTED_CLUSTER)
        gc = f.GeneralCommand
        if hdr.frame_control.is_general:
            if hdr.command_id == gc.Read_Attributes:
                ids, _ = t.List[t.uint16_t].deserialize(rest)
                records = [
                    f.ReadAttributeRecord(a, f.Status.SUCCESS, _typed(cluster_id, a, attrs[a]))
                    if a in attrs
                    else f.ReadAttributeRecord(a, f.Status.UNSUPPORTED_ATTRIBUTE)
                    for a in ids
                ]
                out = self._header(gc.Read_Attributes_rsp, hdr.tsn, general=True)
                return out.serialize() + b"".join(r.serialize() for r in records)
            if hdr.command_id in (gc.Write_Attributes, gc.Write_Attributes_Undivided):
                written, _ = t.List[f.Attribute].deserialize(rest)
                failed = [w.attrid for w in written if w.attrid not in attrs]
                for w in written:
                    if w.attrid in attrs:
                        attrs[w.attrid] = w.value.value
                statuses = [
                    f.WriteAttributesStatusRecord(f.Status.UNSUPPORTED_ATTRIBUTE, a) for a in failed
                ] or [f.WriteAttributesStatusRecord(f.Status.SUCCESS)]
                out = self._header(gc.Write_Attributes_rsp, hdr.tsn, general=True)
                return out.serialize() + b"".join(s.serialize() for s in statuses)
            if hdr.command_id == gc.Configure_Reporting and dev is not None:
                configs, _ = t.List[f.AttributeReportingConfig].deserialize(rest)
                wanted = dev.reporting.setdefault((ep, cluster_id), set())
                refused: list[f.ConfigureReportingResponseRecord] = []
                for config in configs:
                    if config.attrid in attrs:
                        wanted.add(config.attrid)
                    else:
                        refused.append(
                            f.ConfigureReportingResponseRecord(
                                status=f.Status.UNSUPPORTED_ATTRIBUTE,
                                direction=f.ReportingDirection.SendReports,
                                attrid=config.attrid,
                            )
                        )
                done = refused or [f.ConfigureReportingResponseRecord(status=f.Status.SUCCESS)]
                out = self._header(gc.Configure_Reporting_rsp, hdr.tsn, general=True)
                return out.serialize() + f.ConfigureReportingResponse(done).serialize()
            return self._default_response(hdr, f.Status.UNSUP_GENERAL_COMMAND)
        if dev is not None and self._command(dev, ep, cluster_id, hdr.command_id, rest):
            return self._default_response(hdr, f.Status.SUCCESS)
        return self._default_response(hdr, f.Status.UNSUP_CLUSTER_COMMAND)

    def _to_client_side(
        self, dev: SimDevice | None, cluster_id: int, hdr: f.ZCLHeader, rest: bytes
    ) -> bytes | None:
        """A frame for a client cluster of the device: its OTA upgrade client's."""
        client = self.ota_clients.get(dev.ieee) if dev is not None else None
        if client is None or cluster_id != OTA:
            return None
        if not hdr.frame_control.is_general:
            client.heard(hdr.command_id, rest)
            return None
        if hdr.command_id != f.GeneralCommand.Read_Attributes:
            return None
        ids, _ = t.List[t.uint16_t].deserialize(rest)
        attrs = client.state.attributes()
        records = [
            f.ReadAttributeRecord(a, f.Status.SUCCESS, _typed(OTA, a, attrs[a]))
            if a in attrs
            else f.ReadAttributeRecord(a, f.Status.UNSUPPORTED_ATTRIBUTE)
            for a in ids
        ]
        out = self._header(
            f.GeneralCommand.Read_Attributes_rsp,
            hdr.tsn,
            general=True,
            direction=f.Direction.Client_to_Server,
        )
        return out.serialize() + b"".join(r.serialize() for r in records)

    def _default_response(self, hdr: f.ZCLHeader, status: f.Status) -> bytes | None:
        if status == f.Status.SUCCESS and hdr.frame_control.disable_default_response:
            return None
        out = self._header(f.GeneralCommand.Default_Response, hdr.tsn, general=True)
        return (
            out.serialize()
            + f.DefaultResponse(command_id=hdr.command_id, status=status).serialize()
        )

    def _command(self, dev: SimDevice, ep: int, cluster_id: int, command: int, args: bytes) -> bool:
        attrs = dev.attributes(ep, cluster_id)
        assert attrs is not None
        if cluster_id == ON_OFF and command in (0x00, 0x01, 0x02):
            attrs[0x0000] = {0x00: 0, 0x01: 1, 0x02: 1 - int(attrs[0x0000])}[command]
        elif cluster_id == LEVEL and command in (0x00, 0x04):
            level, _ = t.uint8_t.deserialize(args)
            attrs[0x0000] = int(level)
            on_off = dev.attributes(ep, ON_OFF)
            if command == 0x04 and on_off is not None:
                on_off[0x0000] = int(level > 0)
                self._report_now(dev, ep, ON_OFF, 0x0000)
        else:
            return False
        self._report_now(dev, ep, cluster_id, 0x0000)
        return True

    def _report_now(self, dev: SimDevice, ep: int, cluster_id: int, attr_id: int) -> None:
        """A changed state is reported at once, as real devices do, if reporting is on."""
        if attr_id in dev.reporting.get((ep, cluster_id), ()):
            asyncio.get_running_loop().call_soon(self._report, dev, ep, cluster_id, {attr_id})
