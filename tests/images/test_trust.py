"""Only signed releases run: each test is an attacker (the registry's owner, the network,
a stolen or revoked key, an old release kept) against a gateway that trusts the build
host's root, on the real engine and Debian's docker-registry."""

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from buildhost.trust import TrustFolder
from services.images import registry as reg
from services.images.offers import DELTA_BUNDLE, DELTA_CONFIG, FROM, delta_tag, index, offers
from services.images.trust import Policy, Refused, verify
from services.images.update import UpdateError, plan, pull, update
from testkit.local_registry import LocalRegistry
from testkit.lying_registry import LyingRegistry
from tests.images.stack import image_gone

SERVICE = "trusted"  # an image of its own: the stack's images are not touched


@dataclass
class Setting:
    client: docker.DockerClient
    registry: LocalRegistry
    gateway: Policy
    state: Path
    running: str  # what the gateway runs (tagged agile/trusted:multistage)
    release: str  # a newer image, signed and in the registry (not on the engine)
    other: str  # an attacker's image, in the registry unsigned (not on the engine)


def _image(client: docker.DockerClient, base: str, mark: str) -> str:
    image, _ = client.images.build(
        fileobj=io.BytesIO(f"FROM {base}\nRUN echo {mark} > /mark\n".encode()), rm=True
    )
    return str(image.id)


@pytest.fixture
def setting(docker_client, tiny_image, tmp_path) -> Iterator[Setting]:
    (tmp_path / "registry").mkdir()
    registry = LocalRegistry(tmp_path / "registry")
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text('{"project": "agiletest-none", "strategy": "multistage"}')
    images = [_image(docker_client, tiny_image, f"{tmp_path.name}-{n}") for n in range(3)]
    running, release, other = images
    try:
        docker_client.images.get(running).tag(f"agile/{SERVICE}", "multistage")
        registry.push(docker_client, release, SERVICE, "multistage")
        registry.push(docker_client, other, SERVICE, "attacker", signed=False)
        for image in (release, other):
            docker_client.images.remove(image, force=True)
        yield Setting(
            docker_client,
            registry,
            registry.policy(tmp_path / "gateway-trust"),
            state,
            running,
            release,
            other,
        )
    finally:
        registry.stop()
        for image in images:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(image, force=True)


def _plan(s: Setting, address: str = "", policy: Policy | None = None):  # type: ignore[no-untyped-def]
    return plan(
        s.client, address or s.registry.address, SERVICE, "multistage", trust=policy or s.gateway
    )


def _refused(s: Setting, short: str, address: str = "", policy: Policy | None = None) -> str:
    with pytest.raises(UpdateError) as refused:
        _plan(s, address, policy)
    assert refused.value.short == short, str(refused.value)
    assert s.client.images.get(f"agile/{SERVICE}:multistage").id == s.running
    return str(refused.value)


def test_a_signed_release_is_planned_with_its_key_release_and_expiry(setting) -> None:
    p = _plan(setting)
    assert p.signed is not None and p.config_digest == setting.release
    assert p.signed.release == 1 and p.signed.keys and not p.up_to_date  # its first
    assert p.pull_reference.endswith("@" + p.signed.manifest_digest)


def test_a_tag_pushed_over_by_the_registry_is_not_followed(setting) -> None:
    """The registry's owner moves the signed tag to another image: the gateway takes the
    signed image by its digest; the other one is never loaded."""
    s = setting
    repo = f"agile/{SERVICE}"
    forged = reg.manifest(s.registry.address, repo, "attacker")
    reg.put_manifest(s.registry.address, repo, "multistage", forged)
    assert reg.manifest(s.registry.address, repo, "multistage") == forged
    the_plan = _plan(s)
    assert the_plan.config_digest == s.release
    assert pull(s.client, the_plan, lambda layer, done, total: None) == s.release
    assert image_gone(s.client, s.other)


def test_another_manifest_served_for_the_signed_digest_is_refused(setting) -> None:
    s = setting
    signed = _plan(s).signed
    assert signed is not None
    forged = reg.manifest_bytes(s.registry.address, f"agile/{SERVICE}", "attacker")
    lying = LyingRegistry(s.registry.address)
    try:
        lying.lies[f"/v2/agile/{SERVICE}/manifests/{signed.manifest_digest}"] = forged
        said = _refused(s, "digest differs", lying.address)
        assert "served another manifest" in said
        with pytest.raises(UpdateError):
            update(s.client, s.state, lying.address, SERVICE, trust=s.gateway)
        assert image_gone(s.client, s.release) and image_gone(s.client, s.other)
    finally:
        lying.close()


def test_a_delta_bundle_no_release_key_signed_is_not_taken(setting) -> None:
    """The registry's owner lists a bundle of its own (one that would make its image
    from the running one) in the release's delta index: the plan does not offer it; a
    signed plan takes only the bundles signed for this release."""
    s = setting
    repo = f"agile/{SERVICE}"
    bundle = b"not the signed release's bundle"
    forged = {
        "schemaVersion": 2,
        "mediaType": reg.OCI_MANIFEST,
        "config": {
            "mediaType": DELTA_CONFIG,
            "digest": reg.put_blob(s.registry.address, repo, b"{}"),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": DELTA_BUNDLE,
                "digest": reg.put_blob(s.registry.address, repo, bundle),
                "size": len(bundle),
                "annotations": {FROM: s.running},
            }
        ],
    }
    reg.put_manifest(s.registry.address, repo, delta_tag(s.release), forged)
    assert offers(index(s.registry.address, repo, s.release))  # the registry lists it
    the_plan = _plan(s)
    assert the_plan.signed and the_plan.delta is None and the_plan.method == "pull"
    # Where nothing is checked (no root, unsigned allowed) the same index is taken:
    unchecked = Policy(None, s.gateway.cache, allow_unsigned=True)
    taken = plan(s.client, s.registry.address, SERVICE, "multistage", trust=unchecked).delta
    assert taken and taken.size == len(bundle)


def test_an_unsigned_image_is_refused_unless_allowed(setting, tmp_path) -> None:
    s = setting
    assert "no signed release of trusted/attacker" in str(_refused_tag(s, "attacker"))
    allowed = Policy(s.gateway.root, s.gateway.cache, allow_unsigned=True)
    p = plan(s.client, s.registry.address, SERVICE, "attacker", trust=allowed)
    assert p.signed is None and p.config_digest == s.other
    nothing = Policy(None, tmp_path / "no-root")
    assert "no trusted root" in _refused(s, "unsigned", policy=nothing)


def _refused_tag(s: Setting, tag: str) -> UpdateError:
    with pytest.raises(UpdateError) as refused:
        plan(s.client, s.registry.address, SERVICE, tag, trust=s.gateway)
    assert refused.value.short == "unsigned"
    return refused.value


def test_an_older_release_replayed_is_refused(setting) -> None:
    """The registry's owner keeps the metadata of an older release and serves it again
    once a newer one was seen: a replay."""
    s = setting
    trust = s.registry.trust
    kept = trust.metadata / "timestamp.json"
    old_timestamp = kept.read_bytes()
    _plan(s)  # the gateway sees this release's metadata
    newer = _image(s.client, s.running, "newer")
    s.registry.push(s.client, newer, SERVICE, "multistage")
    s.client.images.remove(newer, force=True)
    assert _plan(s).config_digest == newer
    kept.write_bytes(old_timestamp)  # the attacker's upload of what it kept
    trust.upload(s.registry.address)
    assert "a replay" in _refused(s, "replay")


def test_an_older_signed_release_than_the_one_running_is_refused(setting, tmp_path) -> None:
    """An update installed release N; a gateway whose metadata was wiped (a fresh cache)
    then finds release N-1 signed: older than what runs."""
    s = setting
    s.gateway.installed(s.running, 10_000)  # as if an update had installed it so
    assert "older than release 10000" in _refused(s, "replay")


def test_expired_metadata_freezes_updates_and_says_since_when(setting) -> None:
    s = setting
    s.registry.trust.snapshot({"timestamp": -1.0})  # signed, but expired a day ago
    s.registry.trust.upload(s.registry.address)
    said = _refused(s, "expired")
    assert "timestamp metadata expired on" in said and "UTC" in said


def test_a_rotated_release_key_is_followed_and_the_revoked_one_refused(setting) -> None:
    s = setting
    trust = s.registry.trust
    before = _plan(s).signed
    new_key = trust.rotate_release()
    trust.upload(s.registry.address)
    after = _plan(s).signed
    assert before and after and after.keys == (new_key[:12],) != before.keys
    # The revoked key (kept by a thief) signs a release: refused.
    thief = TrustFolder(trust.folder)
    shutil.copy(trust.folder / "release.pem.revoked", trust.folder / "release.pem")
    thief.sign_role(SERVICE, {})
    thief.upload(s.registry.address)
    assert "unknown or revoked key" in _refused(s, "bad signature")


def test_a_signed_update_downloads_the_metadata_the_plan_counts(setting) -> None:
    """What checking the signatures downloads, counted exactly at the registry."""
    s = setting
    before = s.registry.served("agile/trust")
    first = _plan(s).signed
    assert first and first.metadata_bytes == s.registry.served("agile/trust") - before
    before = s.registry.served("agile/trust")
    again = _plan(s).signed  # only the timestamp is new to fetch
    assert again and again.metadata_bytes == s.registry.served("agile/trust") - before
    assert again.metadata_bytes < first.metadata_bytes
    # A check of the stack refreshes once: the next service adds its own role only.
    s.registry.push(s.client, s.running, "second", "multistage")
    stack = s.gateway.once()
    before = s.registry.served("agile/trust")
    mine = verify(stack, s.registry.address, SERVICE, "multistage")
    other = verify(stack, s.registry.address, "second", "multistage")
    assert mine and other and 0 < other.metadata_bytes < mine.metadata_bytes
    assert mine.metadata_bytes + other.metadata_bytes == s.registry.served("agile/trust") - before


def test_a_provisioned_root_is_checked_first(tmp_path, setting) -> None:
    from services.images.trust import check_root

    good = setting.registry.root.read_bytes()
    assert "root version 1" in check_root(good)
    bad = json.loads(good)
    bad["signed"]["version"] = 2  # its signature no longer holds
    with pytest.raises(Refused, match="not a root metadata file its own keys signed"):
        check_root(json.dumps(bad).encode())
    with pytest.raises(Refused):
        verify(Policy(tmp_path / "missing.json", tmp_path / "c"), "127.0.0.1:9", SERVICE, "x")


def test_a_gateway_provisioned_anew_trusts_the_new_root_only(setting, tmp_path) -> None:
    """Moved to another build host's releases (its root provisioned over the old one):
    the metadata verified from the old root is no ground any more."""
    s = setting
    (tmp_path / "other").mkdir()
    other = LocalRegistry(tmp_path / "other")
    try:
        other.push(s.client, s.running, SERVICE, "multistage")
        provisioned = tmp_path / "trusted-root.json"
        provisioned.write_bytes(s.registry.root.read_bytes())
        gateway = Policy(provisioned, tmp_path / "gateway")
        assert verify(gateway, s.registry.address, SERVICE, "multistage")
        with pytest.raises(Refused) as refused:  # the other build host's: not trusted
            verify(gateway, other.address, SERVICE, "multistage")
        assert refused.value.short == "bad signature", str(refused.value)
        provisioned.write_bytes(other.root.read_bytes())
        found = verify(gateway, other.address, SERVICE, "multistage")
        assert found and found.image == s.running
    finally:
        other.stop()
