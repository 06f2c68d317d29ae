"""`agile-gateway trust`: the build host's keys and metadata, a gateway's provisioning."""

import json
import stat
from pathlib import Path

from services.images.trust import TRUSTED_ROOT
from tests.helpers import agile_gateway


def test_keys_are_made_private_and_a_gateway_is_provisioned_with_the_root(tmp_path) -> None:
    trust = tmp_path / "trust"
    made = agile_gateway(
        "trust", "init", "--trust", str(trust), "--root-keys", "3", "--threshold", "2"
    )
    assert made.returncode == 0, made.stderr
    assert "keep them offline" in made.stdout
    for path in [trust, trust / "root-keys", *trust.glob("*.pem"), *trust.glob("root-keys/*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path}: {oct(mode)}"
    assert len(list((trust / "root-keys").glob("*.pem"))) == 3
    again = agile_gateway("trust", "init", "--trust", str(trust))
    assert again.returncode == 1 and "already holds a trust root" in again.stderr

    shown = agile_gateway("trust", "show", "--trust", str(trust))
    assert shown.returncode == 0, shown.stderr
    assert "root       version 1" in shown.stdout and "(threshold 2)" in shown.stdout

    state = tmp_path / "state"
    state.mkdir()
    root = trust / "metadata" / "1.root.json"
    provisioned = agile_gateway("trust", "provision", str(root), "--state-dir", str(state))
    assert provisioned.returncode == 0, provisioned.stderr
    assert "root keys 2 of 3" in provisioned.stdout
    assert (state / TRUSTED_ROOT).read_bytes() == root.read_bytes()


def test_a_root_its_own_keys_did_not_sign_is_not_provisioned(tmp_path) -> None:
    trust = tmp_path / "trust"
    assert agile_gateway("trust", "init", "--trust", str(trust)).returncode == 0
    tampered = json.loads((trust / "metadata" / "1.root.json").read_text())
    tampered["signed"]["expires"] = "2099-01-01T00:00:00Z"  # a longer life, unsigned
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(tampered))
    state = tmp_path / "state"
    state.mkdir()
    refused = agile_gateway("trust", "provision", str(forged), "--state-dir", str(state))
    assert refused.returncode == 1
    assert "not a root metadata file its own keys signed" in refused.stderr
    assert not (state / TRUSTED_ROOT).exists()


def test_publishing_without_a_trust_folder_says_how_to_make_one(tmp_path: Path) -> None:
    out = agile_gateway(
        "images", "publish", "storage", "--registry", "127.0.0.1:9", "--trust", str(tmp_path)
    )
    assert out.returncode == 1 and "agile-gateway trust init" in out.stderr
