"""Updating a service of the container stack from a registry, with automatic rollback.

0. Trust: the release is checked against the signed metadata first (services.images.
   trust); a signed image is then taken by its manifest's digest, never by its tag,
   and every way to get it must end with the signed image id.
1. Plan: the registry's manifest (compressed layer sizes) and image config (the layers'
   diff ids) against the layer chains already on the gateway give the exact bytes the
   pull will download: a layer is skipped only when its whole chain below is present
   and the engine knows its blob (not so for a layer that came by `docker load`).
2. Pull with per-layer progress, tag the running image `agile/SERVICE:previous` (kept
   for a manual rollback), point `agile/SERVICE:STRATEGY` at the new image and replace
   the service's containers by copies on it (configuration, volumes, labels kept); the
   old containers are stopped and kept aside.
3. Wait for health within a bounded window; on failure, point the tag back at the
   previous image, start the old containers again, and say so.
"""

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from services.catalog import IMAGES
from services.compose import stack_settings
from services.errors import AgileError
from services.images import registry as reg
from services.images.basis_cache import BASIS, BasisCache
from services.images.delta import DeltaError
from services.images.journal import FILE, REPLACED, Entry, Journal
from services.images.known_blobs import known_blobs
from services.images.layers import chain_ids, local_chains
from services.images.link_rate import DownloadClock
from services.images.offers import DIFF_IDS, VERSION, Offer, index, offers
from services.images.recipes import LABEL
from services.images.trust import Policy, Refused, Release, verify


def compose_services(image: str) -> list[str]:
    """The compose services an image runs (core: the protocol and device managers); one
    of its own name for the bus and an image the catalog does not know."""
    known = IMAGES.get(image)
    return [s.name for s in known.services] if known and known.services else [image]


class UpdateError(AgileError, RuntimeError):
    """The update cannot go on; the running stack is as it was. The message says why;
    `short` says it in a few words (for a table cell)."""

    def __init__(self, message: str, short: str = "error", refused: bool = False) -> None:
        super().__init__(message)
        self.short = short
        self.refused = refused  # by the trust policy: the release must not run here


@dataclass
class Plan:
    service: str
    reference: str  # registry/agile/service:strategy
    config_digest: str
    pull_bytes: int  # compressed bytes a pull fetches (layers + config)
    layers_missing: int
    layers_total: int
    up_to_date: bool
    version: str = ""  # the registry image's version label
    delta: Offer | None = None  # a bundle from an image here, if one is published
    # What fetching only the layers not here downloads (services.images.layer_fetch):
    # less than a pull when the engine has layers it cannot match to their blobs.
    fetch_bytes: int | None = None
    signed: Release | None = None  # the verified release (None: unsigned, and allowed)

    @property
    def pull_reference(self) -> str:
        """What the engine pulls: a signed image by its manifest's digest, never by tag."""
        if self.signed is None:
            return self.reference
        return f"{self.reference.rsplit(':', 1)[0]}@{self.signed.manifest_digest}"

    def ways(self) -> list[tuple[str, int]]:
        """The ways to get the image and the bytes each downloads, fewest first, up to
        the pull (the engine's own: the one that is always there)."""
        ways = [("pull", self.pull_bytes)]
        if self.fetch_bytes is not None and self.fetch_bytes < self.pull_bytes:
            ways.append(("layers", self.fetch_bytes))
        if self.delta:
            ways.append(("delta", self.delta.size))
        ways.sort(key=lambda way: way[1])  # stable: the pull first at a tie
        return ways[: ways.index(("pull", self.pull_bytes)) + 1]

    @property
    def method(self) -> str:
        return self.ways()[0][0]

    @property
    def download_bytes(self) -> int:
        """What the update will download: the bundle, the missing layers, or the pull."""
        return self.ways()[0][1]


def _offer(found: list[Offer], have: set[str], running: str) -> Offer | None:
    """The smallest bundle from an image here (the running one first)."""
    usable = [o for o in found if o.from_id in have]
    return min(usable, key=lambda o: (o.from_id != running, o.size), default=None)


def plan(
    client: docker.DockerClient,
    registry: str,
    service: str,
    strategy: str,
    project: str = "",
    *,
    trust: Policy,
) -> Plan:
    """What updating the service would take; up to date only if what its containers in
    the stack `project` run is the registry's image (a rebuild that moved the tag
    has not changed what runs). The release is checked against `trust` first: a signed
    one is taken by its manifest's digest (the tag is not read), an unsigned one only
    where the policy allows it; Refused (an UpdateError) otherwise."""
    repo = f"agile/{service}"
    running = _running_image(client, service, strategy, project)
    try:
        signed = verify(trust, registry, service, strategy)
        if signed is None:
            manifest = reg.manifest(registry, repo, strategy)
        else:
            runs = trust.release_of(running)
            if signed.release < runs and signed.image != running:
                raise Refused(
                    f"release {signed.release} is older than release "
                    f"{runs}, which runs (a replay); an admin's "
                    "rollback goes back to the previous image",
                    "replay",
                )
            manifest = json.loads(
                reg.manifest_bytes(
                    registry, repo, signed.manifest_digest, size=signed.manifest_size
                )
            )
            if manifest.get("config", {}).get("digest") != signed.image:
                raise Refused(
                    f"{registry}/{repo}@{signed.manifest_digest[:19]} is not the signed "
                    f"image {signed.image[:19]}",
                    "digest differs",
                )
        if manifest.get("mediaType") != reg.MANIFEST_V2:
            raise UpdateError(f"{registry}/{repo}:{strategy} is not a Docker v2 image manifest")
        config_digest = manifest["config"]["digest"]
        try:
            found = index(registry, repo, config_digest)
        except reg.RegistryError:
            found = None  # no delta then; the pull may still work
        notes = (found or {}).get("annotations") or {}
        if DIFF_IDS in notes:
            diff_ids, version = notes[DIFF_IDS].split(","), notes.get(VERSION, "")
        else:
            config = json.loads(reg.blob(registry, repo, config_digest))
            diff_ids = config["rootfs"]["diff_ids"]
            version = ((config.get("config") or {}).get("Labels") or {}).get(f"{LABEL}.version", "")
    except reg.RegistryError as exc:
        raise UpdateError(str(exc), exc.short) from None
    except Refused as exc:
        raise UpdateError(str(exc), exc.short, refused=True) from None
    sizes = [layer["size"] for layer in manifest["layers"]]
    digests = [layer["digest"] for layer in manifest["layers"]]
    have, ids = local_chains(client)
    chains = chain_ids(diff_ids)
    recorded = known_blobs(client, ids)

    def skipped(i: int) -> bool:
        # The engine downloads from the first layer it does not both have and know the
        # blob of (loaded layers it has, yet downloads again: services.images.known_blobs).
        return chains[i] in have and (recorded is None or recorded(digests[i]) == diff_ids[i])

    first_missing = next((i for i in range(len(chains)) if not skipped(i)), len(chains))
    first_absent = next((i for i, chain in enumerate(chains) if chain not in have), len(chains))
    try:
        present = client.images.get(config_digest).id == config_digest
    except docker.errors.ImageNotFound:
        present = False
    config_bytes = 0 if present else manifest["config"]["size"]
    usable = offers(found)
    if signed is not None:  # only bundles signed for this release, as signed
        usable = [o for o in usable if signed.deltas.get(o.from_id) == (o.digest, o.size)]
    return Plan(
        service,
        f"{registry}/{repo}:{strategy}",
        config_digest,
        sum(sizes[first_missing:]) + config_bytes,
        len(chains) - first_missing,
        len(chains),
        up_to_date=running == config_digest,
        version=signed.version if signed else version,
        delta=None if present else _offer(usable, ids, running),
        fetch_bytes=sum(sizes[first_absent:]) + config_bytes,
        signed=signed,
    )


def running_version(
    client: docker.DockerClient, service: str, strategy: str, project: str = ""
) -> str:
    """The version label of the image the service runs (its short id without one)."""
    running = _running_image(client, service, strategy, project)
    if not running:
        return ""
    image = client.images.get(running)
    return image.labels.get(f"{LABEL}.version") or image.short_id.removeprefix("sha256:")


def _running_image(
    client: docker.DockerClient, service: str, strategy: str, project: str = ""
) -> str:
    """The image the service's containers in the stack `project` run; where none is
    there (no stack: a build host), the one its tag names."""
    if project:
        containers = service_containers(client, project, service)
        # Not one the switch set aside; the first by name where core's two differ (an
        # update cut off between them, which recover finishes).
        kept = sorted(
            (c for c in containers if not c.name.endswith(REPLACED)), key=lambda c: c.name
        )
        if kept:
            return str(kept[0].attrs["Image"])
    try:
        return str(client.images.get(f"agile/{service}:{strategy}").id)
    except docker.errors.ImageNotFound:
        return ""


def fetch(
    client: docker.DockerClient,
    registry: str,
    the_plan: Plan,
    say: Callable[[str], None],
    progress: Callable[[str, int, int], None],
    trying: Callable[[str, int], None] = lambda way, nbytes: None,
    basis: BasisCache | None = None,
) -> tuple[str, str]:
    """The planned image here by the first of the plan's ways that makes it, fewest bytes
    first (`trying` is told each way and its bytes as it starts); the pull comes last
    and raises UpdateError if it fails. (image id, the way it came). A delta takes its
    basis from `basis` where that has it; a delta or a fetch of layers keeps there what
    it made."""
    ways = {
        "delta": lambda: by_delta(client, registry, the_plan, say, progress, basis),
        "layers": lambda: by_layers(client, registry, the_plan, say, progress, basis),
        "pull": lambda: pull(client, the_plan, progress),
    }
    for way, nbytes in the_plan.ways():
        trying(way, nbytes)
        if new := ways[way]():
            return new, way
    raise AssertionError("the pull is always the last way, and raises when it fails")


def pull(
    client: docker.DockerClient, the_plan: Plan, progress: Callable[[str, int, int], None]
) -> str:
    """Pull with per-layer progress (layer id, bytes so far, layer total); the image id.
    A connection cut halfway is resumed by the engine itself (a range request for the
    rest); a pull that fails altogether starts its unfinished layers over next time."""
    reference = the_plan.pull_reference
    repository, tag = reference.rsplit("@" if the_plan.signed else ":", 1)
    totals: dict[str, int] = {}
    try:
        for event in client.api.pull(repository, tag, stream=True, decode=True):
            if "error" in event:
                raise UpdateError(f"pull of {reference} failed: {event['error']}")
            layer, status = event.get("id", ""), event.get("status")
            detail = event.get("progressDetail") or {}
            if status == "Downloading" and "total" in detail:
                totals[layer] = int(detail["total"])
                progress(layer, int(detail.get("current", 0)), totals[layer])
            elif status == "Download complete" and layer in totals:
                progress(layer, totals[layer], totals[layer])
    except docker.errors.APIError as exc:
        raise UpdateError(f"pull of {reference} failed: {exc.explanation}") from None
    pulled = client.images.get(reference)
    if pulled.id != the_plan.config_digest:  # by tag: pushed over since the plan
        raise UpdateError(
            f"{reference} is no longer the image planned ({the_plan.config_digest[:19]})"
        )
    if the_plan.signed:  # named as a pull by tag names it (prune removes such names)
        pulled.tag(*the_plan.reference.rsplit(":", 1))
    return str(pulled.id)


def by_layers(
    client: docker.DockerClient,
    registry: str,
    the_plan: Plan,
    say: Callable[[str], None],
    progress: Callable[[str, int, int], None],
    basis: BasisCache | None = None,
) -> str:
    """The new image from the blobs of only the layers not here; "" if that failed in
    any way (said; then nothing was loaded, and a pull is next)."""
    from services.images.image_load import LoadError
    from services.images.layer_fetch import FetchError, fetch_layers

    try:
        return fetch_layers(
            client,
            registry,
            the_plan.reference,
            the_plan.config_digest,
            progress,
            (the_plan.signed.manifest_digest, the_plan.signed.manifest_size)
            if the_plan.signed
            else None,
            basis,
        )
    except (reg.RegistryError, FetchError, LoadError, OSError, ValueError, KeyError) as exc:
        say(f"{the_plan.service}: fetching the missing layers failed ({exc}); pulling instead")
        return ""


def by_delta(
    client: docker.DockerClient,
    registry: str,
    the_plan: Plan,
    say: Callable[[str], None],
    progress: Callable[[str, int, int], None],
    basis: BasisCache | None = None,
) -> str:
    """The new image made from the published bundle and an image here; "" if that
    failed in any way (said; then nothing was loaded, and a pull is next)."""
    from services.images.export import ExportError
    from services.images.image_delta import apply_bundle

    offer = the_plan.delta
    assert offer is not None
    repo = f"agile/{the_plan.service}"
    try:
        progress("delta", 0, offer.size)
        bundle = reg.blob(registry, repo, offer.digest)
        progress("delta", offer.size, offer.size)
        return apply_bundle(
            client,
            bundle,
            offer.from_id,
            the_plan.config_digest,
            the_plan.reference,
            check=lambda: progress("delta", offer.size, offer.size),
            cache=basis,
        )
    except (reg.RegistryError, DeltaError, ExportError, OSError, docker.errors.APIError) as exc:
        say(f"{the_plan.service}: the delta did not apply ({exc}); pulling instead")
        return ""


# Container settings an image gives: a copy keeps the container's own and takes the rest
# from the new image (watchtower's rule), or the new version would run with the old
# image's environment, command or health check.
_FROM_IMAGE = ("Cmd", "Entrypoint", "Healthcheck", "User", "WorkingDir", "StopSignal")


def _settings(old: dict[str, Any], image: dict[str, Any], new_image: str) -> dict[str, Any]:
    """The create body of a copy of a container (`old`: its inspect) on `new_image`."""
    config = dict(old["Config"])
    given = image.get("Config") or {}
    for key in _FROM_IMAGE:
        if config.get(key) == given.get(key):
            config.pop(key, None)
    config["Env"] = [e for e in config.get("Env") or [] if e not in (given.get("Env") or [])]
    image_labels = given.get("Labels") or {}
    config["Labels"] = {
        k: v for k, v in (config.get("Labels") or {}).items() if image_labels.get(k) != v
    }
    for key in ("Hostname", "Volumes", "ExposedPorts"):
        config.pop(key, None)
    config["Image"] = new_image
    config["HostConfig"] = old["HostConfig"]
    networks = old["NetworkSettings"].get("Networks") or {}
    if old["HostConfig"].get("NetworkMode") not in ("none", "host") and networks:
        config["NetworkingConfig"] = {
            "EndpointsConfig": {
                name: {"Aliases": net.get("Aliases")} for name, net in networks.items()
            }
        }
    return config


@dataclass
class Switch:
    """Containers replaced by copies on another image; the old ones are stopped and kept
    (renamed) until the switch is kept or undone."""

    old: list[Any]
    new: list[Any]

    def keep(self) -> None:
        for container in self.old:
            container.remove(force=True)

    def undo(self) -> None:
        for container in self.new:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for container in self.old:
            name = container.attrs["Name"]  # as inspected before the switch
            container.reload()
            if container.attrs["Name"] != name:
                container.rename(name.lstrip("/"))
            container.start()  # a no-op for one the switch had not reached


def switch(client: docker.DockerClient, project: str, service: str, image: str) -> Switch:
    """Replace the service's containers by copies on `image`, with their configuration,
    volumes, labels and names (what docker-compose's recreate does, without compose, so
    that the update service needs only the engine). UpdateError if it cannot; then the
    old containers run again."""
    old = [c for c in service_containers(client, project, service) if c.status == "running"]
    if not old:
        raise UpdateError(f"{service}: no running container in the stack {project}")
    done = Switch(old, [])
    new_image = client.images.get(image)
    try:
        for container in old:
            name = container.attrs["Name"].lstrip("/")
            body = _settings(container.attrs, client.images.get(container.image.id).attrs, image)
            container.stop(timeout=10)
            container.rename(f"{name}-{container.short_id}{REPLACED}")
            created = client.api.post(
                client.api._url("/containers/create"), params={"name": name}, json=body
            )
            new = client.containers.get(client.api._result(created, json=True)["Id"])
            done.new.append(new)
            new.start()
    except docker.errors.APIError as exc:
        done.undo()
        raise UpdateError(
            f"{service}: the engine could not start it on {new_image.short_id}: {exc.explanation}"
        ) from None
    return done


def service_containers(client: docker.DockerClient, project: str, service: str) -> list[Any]:
    """The containers of the service (its compose services) in the compose project."""
    found = []
    for name in compose_services(service):
        found += client.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={project}",
                    f"com.docker.compose.service={name}",
                ]
            },
        )
    return found


def wait_healthy(
    client: docker.DockerClient, containers: list[Any], window_s: float, strict: bool = True
) -> str:
    """'' once every container is healthy, else what went wrong. `strict`: a container
    that exits or turns unhealthy fails at once (not when the whole stack is starting
    again, its services waiting for the bus).

    A running container whose own health check passes when run here counts as healthy
    at once: the engine runs it first a whole interval (10 s) after the start, and
    Debian's Docker 20.10 has no start interval; the gate would wait that long for
    nothing. The engine's own verdict still decides what is unhealthy."""
    deadline = time.monotonic() + window_s
    last = "no container"
    restarts = {c.id: c.attrs.get("RestartCount", 0) for c in containers}  # before: not ours
    while time.monotonic() < deadline:
        states, healthy = [], 0
        for container in containers:
            container.reload()
            state = container.attrs["State"]
            if container.attrs.get("RestartCount", 0) > restarts[container.id]:
                state = {**state, "Restarting": True}  # it crashed meanwhile
            elif state.get("Health", {}).get("Status") == "healthy" or _checked(container):
                healthy += 1
            states.append(state)
        if states and healthy == len(states):
            return ""
        for s in states if strict else ():
            if s.get("Restarting") or s.get("Status") == "exited":
                return f"the new version exits (exit code {s.get('ExitCode')})"
            if s.get("Health", {}).get("Status") == "unhealthy":
                return "the new version is unhealthy"
        last = ", ".join(s.get("Health", {}).get("Status", s.get("Status", "?")) for s in states)
        time.sleep(1)
    return f"not healthy within {window_s:g} s ({last})"


def _checked(container: Any) -> bool:
    """Whether the container runs and its image's health check passes, run now."""
    test = (container.attrs["Config"].get("Healthcheck") or {}).get("Test") or []
    if container.attrs["State"].get("Status") != "running" or len(test) < 2:
        return False
    command = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    try:
        return bool(container.exec_run(command).exit_code == 0)
    except docker.errors.APIError:  # it stopped meanwhile
        return False


def update(
    client: docker.DockerClient,
    state_dir: Path,
    registry: str,
    service: str,
    say: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] = lambda layer, done, total: None,
    window_s: float = 60.0,
    check: Callable[[], None] = lambda: None,
    commit: Callable[[], None] = lambda: None,
    journal: Journal | None = None,
    measured: Callable[[int, float], None] = lambda nbytes, seconds: None,
    *,
    trust: Policy,
    basis: BasisCache | None = None,
) -> bool:
    """Update one service; True if the new version runs, False if it was rolled back.
    `check` is called while pulling and `commit` once before the switch: raising there
    cancels the update with nothing changed. From the switch to the end the `journal`
    (default: in the state folder) says where the update is, for `recover`. `measured`
    is told the bytes downloaded and the seconds they took. `basis` (default: beside the
    journal) keeps what a delta makes for the next."""
    journal = journal or Journal(state_dir / FILE)
    settings = stack_settings(state_dir)
    strategy = settings["strategy"]
    the_plan = plan(client, registry, service, strategy, settings["project"], trust=trust)
    say(
        f"{service}: {the_plan.signed.describe()}"
        if the_plan.signed
        else f"{service}: UNSIGNED image, run only because updater:allow-unsigned is on"
    )
    if the_plan.up_to_date:
        say(f"{service}: up to date")
        return True
    say(
        f"{service}: {the_plan.download_bytes:,} bytes to download by {the_plan.method} "
        f"(a pull: {the_plan.pull_bytes:,} bytes, {the_plan.layers_missing} of "
        f"{the_plan.layers_total} layers)"
    )
    previous = _running_image(client, service, strategy, settings["project"])

    clock, planned = DownloadClock(), 0

    def trying(way: str, nbytes: int) -> None:
        nonlocal clock, planned
        clock, planned = DownloadClock(), nbytes

    def pulled(layer: str, done: int, total: int) -> None:
        check()
        clock.progress(layer, done, total)
        progress(layer, done, total)

    basis = basis or BasisCache(journal.path.parent / BASIS)  # the updater's own volume
    new, _ = fetch(client, registry, the_plan, say, pulled, trying, basis)
    measured(planned, clock.seconds)
    commit()
    ok = install(client, settings, service, previous, new, say, window_s, journal)
    if ok and the_plan.signed:
        trust.installed(new, the_plan.signed.release)
    return ok


def install(
    client: docker.DockerClient,
    settings: dict[str, Any],
    service: str,
    previous: str,
    new: str,
    say: Callable[[str], None],
    window_s: float,
    journal: Journal,
) -> bool:
    """Switch the service from `previous` to the image `new` (here): True if it runs
    healthy, False if it was rolled back. The journal says where it is, for `recover`."""
    strategy = settings["strategy"]
    entry = Entry(service, settings["project"], strategy, previous, new)
    journal.write(entry)
    if previous:
        client.images.get(previous).tag(f"agile/{service}", "previous")
    client.images.get(new).tag(f"agile/{service}", strategy)
    switched: Switch | None = None
    try:
        switched = switch(client, settings["project"], service, f"agile/{service}:{strategy}")
    except UpdateError as exc:
        problem = str(exc)
    else:
        problem = wait_healthy(client, switched.new, window_s)
    if not problem:
        assert switched is not None
        entry.committed = True
        journal.write(entry)
        switched.keep()
        journal.clear()
        say(f"{service}: updated to {new[7:19]} and healthy")
        return True
    say(f"{service}: {problem}; rolling back to {previous[7:19]}")
    if not previous:
        journal.clear()
        raise UpdateError(f"{service}: {problem}, and there is no previous image to go back to")
    client.images.get(previous).tag(f"agile/{service}", strategy)
    if switched is not None:
        switched.undo()
    journal.clear()
    again = wait_healthy(client, switched.old if switched else [], window_s)
    say(f"{service}: rolled back" + (f", but {again}" if again else "; the previous version runs"))
    return False


def install_local(
    client: docker.DockerClient,
    state_dir: Path,
    service: str,
    say: Callable[[str], None] = print,
    window_s: float = 60.0,
    journal: Journal | None = None,
) -> bool:
    """Switch the service to the image built on this gateway (what agile/SERVICE:STRATEGY
    names after a build here), with the same health gate and rollback as an update; the
    caller has checked that the trust policy allows local builds (they are unsigned)."""
    settings = stack_settings(state_dir)
    previous = _running_image(client, service, settings["strategy"], settings["project"])
    try:
        new = str(client.images.get(f"agile/{service}:{settings['strategy']}").id)
    except docker.errors.ImageNotFound:
        raise UpdateError(f"{service}: no image built here (agile/{service})") from None
    if new == previous:
        say(f"{service}: already runs the image built here ({new[7:19]})")
        return True
    say(f"{service}: switching to the image built here, {new[7:19]} (UNSIGNED, a local build)")
    return install(
        client,
        settings,
        service,
        previous,
        new,
        say,
        window_s,
        journal or Journal(state_dir / FILE),
    )


def recover(
    client: docker.DockerClient,
    journal: Journal,
    say: Callable[[str], None] = print,
    window_s: float = 60.0,
) -> bool | None:
    """Finish an update the journal says was cut off: None if none was, else whether the
    service now runs healthy. Before the health gate the service goes back to the
    previous image (containers on the new one removed; the old ones, which the switch
    stopped and renamed aside, renamed back and started); after it the new version stays
    (what is left of the old containers removed). Either way every container of the
    service ends on one image, never a mix (core's two services on two versions); and
    recovery cut off in turn just runs again: each step looks at what the engine has,
    not at how far the update got."""
    try:
        entry = journal.read()
    except ValueError as exc:  # never written half (atomic): a disk that lies
        say(f"{exc}; removed: there is nothing to go by")
        journal.clear()
        return None
    if entry is None:
        return None
    say(
        f"{entry.service}: an update was cut off "
        + (
            "after its health gate; the new version stays"
            if entry.committed
            else "before its health gate; going back to the previous version"
        )
    )
    tag = entry.new if entry.committed else entry.previous
    if tag:
        client.images.get(tag).tag(f"agile/{entry.service}", entry.strategy)
    found = service_containers(client, entry.project, entry.service)
    # The old containers by what they are not: they may run an image other than the
    # tag the update found (one built since they started).
    kept = [c for c in found if (c.attrs["Image"] == entry.new) == entry.committed]
    for container in found:
        if container not in kept:
            container.remove(force=True)
    for container in kept:
        name = container.name
        if name.endswith(REPLACED):  # NAME-SHORTID-replaced: its name back
            container.rename(name[: name.rindex("-", 0, -len(REPLACED))])
        if container.status != "running":
            container.start()
    journal.clear()
    problem = wait_healthy(client, kept, window_s, strict=False)
    say(f"{entry.service}: " + (problem or "one version runs, healthy"))
    return not problem


def rollback(
    client: docker.DockerClient,
    state_dir: Path,
    service: str,
    window_s: float = 60.0,
    journal: Journal | None = None,
) -> str:
    """Go back to agile/SERVICE:previous by hand; '' if it runs healthy, else what is wrong."""
    journal = journal or Journal(state_dir / FILE)
    settings = stack_settings(state_dir)
    strategy = settings["strategy"]
    try:
        previous = client.images.get(f"agile/{service}:previous")
    except docker.errors.ImageNotFound:
        raise UpdateError(f"{service}: no previous image (agile/{service}:previous)") from None
    current = _running_image(client, service, strategy, settings["project"])
    entry = Entry(service, settings["project"], strategy, current, previous.id)
    journal.write(entry)
    previous.tag(f"agile/{service}", strategy)
    if current:
        client.images.get(current).tag(f"agile/{service}", "previous")
    switched = switch(client, settings["project"], service, f"agile/{service}:{strategy}")
    entry.committed = True  # a rollback by hand has no health gate to pass
    journal.write(entry)
    switched.keep()
    journal.clear()
    return wait_healthy(client, switched.new, window_s)


def prune(client: docker.DockerClient) -> int:
    """Remove what updates leave behind: the registry references of pulled images (the
    agile/SERVICE tags keep what runs and what a rollback needs) and service images
    nothing tags any more. Build stages stay: they are the next build's cache. Bytes freed."""
    for image in client.images.list():
        for tag in image.tags:
            if "/agile/" in tag and not tag.startswith("agile/"):
                client.images.remove(tag)  # an untag while agile/... names the image
    pruned = client.images.prune(filters={"dangling": True, "label": f"{LABEL}.version"})
    return int(pruned.get("SpaceReclaimed") or 0)
