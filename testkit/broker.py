"""Debian's mosquitto on a private port (plain, TLS with a generated CA, or with a
password file), and mosquitto_sub as the independent client that checks what arrives."""

import datetime
import getpass
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testkit.operator import free_port

USER, PASSWORD = "gateway", "s3cret-for-tests"


@dataclass
class Broker:
    folder: Path
    tls: bool = False
    password: bool = False
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"  # the address it listens on (TLS: as localhost)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    def options(self) -> dict[str, str]:
        """The bridge's options to reach this broker."""
        opts = {"host": self.host if not self.tls else "localhost", "port": str(self.port)}
        if self.tls:
            opts["tls"] = str(self.ca_file)
        if self.password:
            (self.folder / "password").write_text(PASSWORD + "\n")
            opts |= {"username": USER, "password-file": str(self.folder / "password")}
        return opts

    def client_args(self) -> list[str]:
        args = ["-h", "localhost" if self.tls else self.host, "-p", str(self.port)]
        if self.tls:
            args += ["--cafile", str(self.ca_file)]
        if self.password:
            args += ["-u", USER, "-P", PASSWORD]
        return args

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.folder}/",
            f"log_dest file {self.folder}/broker.log",
            "log_type all",
            "max_queued_messages 0",  # a persistent subscriber's queue is not capped
            f"user {getpass.getuser()}",  # as root it would switch to `mosquitto`
        ]
        if self.password:
            pw = self.folder / "passwd"
            pw.write_text("")
            subprocess.run(["mosquitto_passwd", "-b", str(pw), USER, PASSWORD], check=True)
            pw.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            _certificates(self.folder)
            lines += [
                f"cafile {self.ca_file}",
                f"certfile {self.folder}/server.pem",
                f"keyfile {self.folder}/server.key",
            ]
        config = self.folder / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        config = self.folder / "mosquitto.conf"
        if not config.exists():
            self.write_config()
        mark = len(self.log())
        self.proc = subprocess.Popen(
            ["/usr/sbin/mosquitto", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while "running" not in self.log()[mark:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """As `systemctl stop` does (SIGTERM: it saves its sessions)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log(self) -> str:
        path = self.folder / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_broker(
    folder: Path, tls: bool = False, password: bool = False, host: str = "127.0.0.1"
) -> Iterator[Broker]:
    broker = Broker(folder, tls, password, host=host)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Subscriber:
    """mosquitto_sub on `topics`, QoS 1, a persistent session: every message it gets,
    as (topic, payload) in arrival order."""

    def __init__(self, broker: Broker, *topics: str, name: str = "checker") -> None:
        self.out = broker.folder / f"{name}.out"
        self._read = 0
        self._rows: list[tuple[str, str]] = []
        args = ["mosquitto_sub", *broker.client_args(), "-q", "1", "-c", "-i", name]
        args += ["-F", "%j"]  # one JSON object per message: topic and payload, exactly
        for topic in topics:
            args += ["-t", topic]
        self.proc = subprocess.Popen(args, stdout=self.out.open("wb"), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while f" as {name} " not in broker.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto_sub did not connect:\n{broker.log()}")
            time.sleep(0.05)

    def messages(self) -> list[tuple[str, str]]:
        """Everything so far (read on from where the last call stopped)."""
        with self.out.open("rb") as f:
            f.seek(self._read)
            data = f.read()
        whole = data[: data.rfind(b"\n") + 1]  # a line being written waits for next time
        self._read += len(whole)
        for line in whole.splitlines():
            row = json.loads(line)
            self._rows.append((row["topic"], row.get("payload", "")))
        return list(self._rows)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            # A loaded machine once kept it past 10 s on SIGTERM (it disconnects cleanly
            # first); what it received is already in its file, so nothing is lost.
            self.proc.kill()
            self.proc.wait(10)

    def span(self, topic: str, wanted: list[dict]) -> int | None:
        """Whether every payload of `wanted` arrived on `topic`, in order: they are a
        subsequence of what arrived (QoS 1 may add duplicates; two records can carry the
        same value in the same millisecond, so payloads are not keys). How many arrived
        from the first of them to the last; None while some are missing."""
        arrived = [json.loads(p) for t, p in self.messages() if t == topic]
        at, first = 0, None
        for payload in wanted:
            while at < len(arrived) and arrived[at] != payload:
                at += 1
            if at == len(arrived):
                return None
            first = at if first is None else first
            at += 1
        return at - (first or 0)


def _certificates(folder: Path) -> None:
    """A CA and a server certificate for localhost it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("agile test CA"))
        .issuer_name(name("agile test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
