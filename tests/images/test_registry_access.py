"""Real registries: TLS with the certificate checked, and the credentials the engine's
user has (docker login's config), on Debian's docker-registry with a test CA and an
htpasswd file."""

import base64
import io
import json
from collections.abc import Iterator

import docker
import pytest

from services.images import registry_access as access
from services.images.update import UpdateError, plan, pull
from testkit.local_registry import LocalRegistry

USER, WORD = "gateway", "s3cret-word"


@pytest.fixture
def secured(tmp_path, monkeypatch) -> Iterator[LocalRegistry]:
    """A registry over TLS only that wants credentials; this process (the engine's
    client too) has them and trusts its CA, as `docker login` and certs.d give them."""
    (tmp_path / "registry").mkdir()
    registry = LocalRegistry(tmp_path / "registry", tls=True, users={USER: WORD})
    assert registry.ca is not None
    certs = tmp_path / "certs.d" / registry.address
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(registry.ca.read_bytes())
    login = tmp_path / "docker-config"
    login.mkdir()
    auth = base64.b64encode(f"{USER}:{WORD}".encode()).decode()
    (login / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": auth}}}))
    monkeypatch.setenv(access.CERTS_ENV, str(tmp_path / "certs.d"))
    monkeypatch.setenv("DOCKER_CONFIG", str(login))
    monkeypatch.setenv(access.INSECURE_ENV, "")  # loopback too must be TLS here
    yield registry
    registry.stop()


def _client() -> docker.DockerClient:
    return docker.from_env()  # made now: it reads the docker config of the test's setting


def test_a_signed_update_comes_over_tls_with_the_engine_users_credentials(
    secured, tiny_image, tmp_path
) -> None:
    client = _client()
    image, _ = client.images.build(
        fileobj=io.BytesIO(f"FROM {tiny_image}\nRUN echo {tmp_path}>/m\n".encode()),
        rm=True,
    )
    try:
        secured.push(client, image.id, "secured", "multistage")  # signed: metadata over TLS
        client.images.remove(image.id, force=True)
        the_plan = plan(
            client, secured.address, "secured", "multistage", trust=secured.policy(tmp_path / "t")
        )
        assert the_plan.signed and the_plan.config_digest == image.id
        assert pull(client, the_plan, lambda layer, done, total: None) == image.id
    finally:
        client.images.remove(image.id, force=True)


def test_an_unknown_certificate_or_missing_credentials_are_said(
    secured, tmp_path, monkeypatch
) -> None:
    trusting = secured.policy(tmp_path / "t")  # its trust folder made while it can be
    monkeypatch.setenv(access.CERTS_ENV, str(tmp_path / "no-certs"))
    with pytest.raises(UpdateError) as refused:
        plan(_client(), secured.address, "x", "y", trust=trusting)
    assert refused.value.short == "certificate", str(refused.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)

    monkeypatch.setenv(access.CERTS_ENV, str(tmp_path / "certs.d"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    access.forget(secured.address, "")
    with pytest.raises(UpdateError) as refused:
        plan(_client(), secured.address, "x", "y", trust=trusting)
    assert refused.value.short == "unauthorized", str(refused.value)
    assert "docker login" in str(refused.value)


def test_plain_http_is_refused_where_the_registry_is_not_listed_insecure(
    tmp_path, monkeypatch
) -> None:
    (tmp_path / "registry").mkdir()
    plain = LocalRegistry(tmp_path / "registry")
    try:
        trusting = plain.policy(tmp_path / "t")  # its trust folder made while it is allowed
        monkeypatch.setenv(access.INSECURE_ENV, "")
        with pytest.raises(UpdateError) as refused:
            plan(_client(), plain.address, "x", "y", trust=trusting)
        assert refused.value.short == "unreachable", str(refused.value)
        assert f"https://{plain.address}" in str(refused.value)
        monkeypatch.setenv(access.INSECURE_ENV, plain.address)  # listed: plain HTTP taken
        with pytest.raises(UpdateError) as refused:
            plan(_client(), plain.address, "x", "y", trust=trusting)
        assert refused.value.short == "unsigned", str(refused.value)
    finally:
        plain.stop()


def test_a_registry_behind_a_token_service_is_reached_with_a_bearer_token(
    tiny_image, tmp_path, monkeypatch
) -> None:
    """The registry sends clients to its realm; the gateway trades the engine user's
    credentials there for a token per scope, as the engine does for its pull."""
    (tmp_path / "registry").mkdir()
    registry = LocalRegistry(tmp_path / "registry", users={USER: WORD}, tokens=True)
    assert registry.token_server is not None
    login = tmp_path / "docker-config"
    login.mkdir()
    auth = base64.b64encode(f"{USER}:{WORD}".encode()).decode()
    (login / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(login))
    client = _client()
    image, _ = client.images.build(
        fileobj=io.BytesIO(f"FROM {tiny_image}\nRUN echo {tmp_path}>/m\n".encode()), rm=True
    )
    try:
        registry.push(client, image.id, "tokened", "multistage")  # the metadata: by token
        client.images.remove(image.id, force=True)
        issued = registry.token_server.issued
        the_plan = plan(
            client, registry.address, "tokened", "multistage", trust=registry.policy(tmp_path / "t")
        )
        assert the_plan.signed and the_plan.config_digest == image.id
        assert registry.token_server.issued > issued  # the plan's own requests had tokens
        assert pull(client, the_plan, lambda layer, done, total: None) == image.id
    finally:
        registry.stop()
        client.images.remove(image.id, force=True)
