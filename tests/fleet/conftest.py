"""A gateway reached as an operator reaches it: through the test's private sshd (as
root, with the generated key), its host key known."""

from pathlib import Path

import pytest

from services.fleet.gateways import Gateway


def known_hosts(sshd: tuple[int, Path], folder: Path) -> Path:
    port, key = sshd
    host_key = (key.parent / "host.pub").read_text().split()[:2]
    path = folder / "known_hosts"
    path.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    return path


@pytest.fixture
def reach(sshd, tmp_path):
    """`reach(name, state_dir, **settings)`: a Gateway entry for a gateway on this
    machine, reached through sshd."""
    port, key = sshd
    hosts = known_hosts(sshd, tmp_path)

    def entry(name: str, state_dir: Path, **settings: object) -> Gateway:
        fields = {"port": port, "identity": key, "known_hosts": hosts, "state_dir": str(state_dir)}
        return Gateway(name, "root@127.0.0.1", **{**fields, **settings})  # type: ignore[arg-type]

    return entry
