"""Debian's docker-registry on a free local port, with the engine's blob downloads
counted from its log: for the update tests and `./dev bench images`. It comes with a
build host's trust folder of its own: what `push` pushes is signed as a release, and
`policy` is a gateway's that trusts it."""

import re
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buildhost.trust import TrustFolder
    from services.images.trust import Policy
    from testkit.token_server import TokenServer

# Blob downloads by the Docker engine (not the plan's own fetch of the image config).
_ANY_BLOB_GET = re.compile(
    r'http\.request\.method=GET .*http\.request\.uri="/v2/([^"]+)/blobs/[^"]+" '
    r".*http\.response\.status=200 http\.response\.written=(\d+)"
)
_BLOB_GET = re.compile(
    r'http\.request\.method=GET .*http\.request\.uri="/v2/[^"]+/blobs/[^"]+" '
    r'http\.request\.useragent="docker/.*http\.response\.status=200 http\.response\.written=(\d+)'
)


class LocalRegistry:
    def __init__(
        self,
        folder: Path | None = None,
        tls: bool = False,
        users: dict[str, str] | None = None,
        tokens: bool = False,
    ) -> None:
        """`tls`: HTTPS only, with a certificate of a CA of its own (`ca`); `users`:
        basic authentication with these names and passwords (an htpasswd file), or with
        `tokens`, bearer tokens its token service (`token_server`) gives them."""
        folder = folder or Path(tempfile.mkdtemp(prefix="agile-registry-"))
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        http = f"http:\n  addr: {self.address}\n"
        self.ca: Path | None = None
        if tls:
            from testkit.certificates import make_ca

            self.ca, cert, key = make_ca(folder)
            http += f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        auth = ""
        self.token_server: TokenServer | None = None
        if users and tokens:
            from testkit.certificates import signing_key
            from testkit.token_server import TokenServer as Tokens

            signer, bundle = signing_key(folder)
            self.token_server = Tokens(signer, users)
            auth = self.token_server.registry_config(bundle)
        elif users:
            import bcrypt

            (folder / "htpasswd").write_text(
                "".join(
                    f"{name}:{bcrypt.hashpw(word.encode(), bcrypt.gensalt(4)).decode()}\n"
                    for name, word in users.items()
                )
            )
            auth = f"auth:\n  htpasswd:\n    realm: agile\n    path: {folder / 'htpasswd'}\n"
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n{http}{auth}"
        )
        self.log = folder / "registry.log"
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        context = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        while True:
            try:
                urllib.request.urlopen(
                    f"{'https' if tls else 'http'}://{self.address}/v2/", timeout=1, context=context
                )
                return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return  # up, and asking for credentials
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"docker-registry did not start:\n{self.log.read_text()}"
                    ) from None
                time.sleep(0.2)

    def downloaded(self) -> int:
        """Blob bytes the engine has downloaded so far (whole-blob responses)."""
        return sum(int(m[1]) for m in _BLOB_GET.finditer(self.log.read_text()))

    def fetched(self, outside: str = "") -> int:
        """Blob bytes fetched so far by anyone: the engine, or the update service itself
        (a delta bundle); none of the repository `outside` if named."""
        return sum(
            int(m[2])
            for m in _ANY_BLOB_GET.finditer(self.log.read_text())
            if not outside or m[1] != outside
        )

    def served(self, repo: str) -> int:
        """Bytes of every whole answer (manifests and blobs) about `repo` so far."""
        answer = re.compile(
            rf'http\.request\.method=GET .*http\.request\.uri="?/v2/{re.escape(repo)}/[^" ]+"? '
            r".*http\.response\.status=200 http\.response\.written=(\d+)"
        )
        return sum(int(m[1]) for m in answer.finditer(self.log.read_text()))

    def blob_file(self, digest: str) -> Path:
        """Where the registry keeps a blob (to damage it in a test)."""
        hexa = digest.removeprefix("sha256:")
        return self.folder / "data/docker/registry/v2/blobs/sha256" / hexa[:2] / hexa / "data"

    @property
    def trust(self) -> "TrustFolder":
        from buildhost.trust import TrustFolder

        trust = TrustFolder(self.folder / "trust")
        if not (trust.metadata / "root.json").exists():
            trust.init()
            trust.upload(self.address)
        return trust

    @property
    def root(self) -> Path:
        """The root metadata a gateway trusting this registry's releases is provisioned with."""
        return self.trust.metadata / "1.root.json"

    def policy(self, cache: Path, allow_unsigned: bool = False) -> "Policy":
        """A gateway's trust in this registry's releases, its verified metadata in `cache`."""
        from services.images.trust import Policy

        return Policy(self.root, cache, allow_unsigned)

    def provision(self, state_dir: Path) -> None:
        """A gateway's state folder trusting this registry's releases."""
        from services.images.trust import TRUSTED_ROOT

        (state_dir / TRUSTED_ROOT).write_bytes(self.root.read_bytes())

    def push(self, client: Any, image_id: str, service: str, tag: str, signed: bool = True) -> None:
        """Push the image as agile/SERVICE:TAG, signed as the next release unless not."""
        from buildhost.publish import push

        push(client, image_id, f"{self.address}/agile/{service}", tag)
        if signed:
            self.sign(client, image_id, service, tag)

    def sign(self, client: Any, image_id: str, service: str, tag: str) -> int:
        """Sign agile/SERVICE:TAG (in the registry: the image `image_id`) as the next
        release; its number."""
        from buildhost.trust import sign_release
        from services.images.recipes import LABEL

        image = client.images.get(image_id)
        version = image.labels.get(f"{LABEL}.version", "")
        return sign_release(self.trust, self.address, service, tag, image.id, version)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.token_server is not None:
            self.token_server.close()
