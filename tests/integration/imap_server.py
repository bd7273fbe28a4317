"""A real IMAP server for tests: Dovecot in the foreground with its own configuration.

Dovecot (Debian's `dovecot-imapd`) is what most mail hosts run, and it can prove what a
client asked for: `rawlog_dir` keeps every command of every session after login, and the
logout line counts the headers and bodies fetched. Install it with
`apt-get install dovecot-imapd`; the tests fail, never skip, without it.

Dovecot refuses to give mail access to root and its mail processes run as `nobody`, which
cannot enter pytest's private temporary folders: the configuration and the log live under
the test's `tmp_path`; the users, the Maildir, sockets and raw logs in a folder of their own,
removed afterwards.
"""

from __future__ import annotations

import datetime
import imaplib
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
# "<seconds>.<micro> <tag> <command>", as rawlog_dir writes each line a client sent.
RAWLOG_LINE = re.compile(r"^(?:\d+\.\d+ )?\S+ (.+)$")
INSTALL_HINT = (
    "Dovecot is needed for the IMAP tests: apt-get install dovecot-imapd (.ci/run installs it)"
)


@dataclass(frozen=True)
class Mark:
    sessions: set[Path]
    logouts: int


@dataclass
class ImapServer:
    """A running Dovecot: where it listens and what it recorded."""

    host: str
    port: int
    tls_port: int | None
    certificate: Path | None
    log: Path
    rawlog: Path

    def client(self, username: str, password: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            if self.certificate is not None:
                imap.starttls(self.trusting_context())
            secret = f"\0{username}\0{password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: secret)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def trusting_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's own certificate, and only it."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def mark(self) -> Mark:
        """Where the records stand now, to read only what a later session adds. A session
        that ended just before (a fixture's) may not have logged its end yet: wait for it,
        or the next session's wait would be answered by that line."""
        sessions = set(self.rawlog.glob("*.in"))
        deadline = time.monotonic() + 5
        while len(self.logouts()) < len(sessions) and time.monotonic() < deadline:
            time.sleep(0.02)
        return Mark(sessions=sessions, logouts=len(self.logouts()))

    def commands_since(self, mark: Mark) -> list[str]:
        """What the one session since `mark` sent after login, once it has ended."""
        self.wait_for_logouts(mark.logouts + 1)
        lines: list[str] = []
        for path in sorted(set(self.rawlog.glob("*.in")) - mark.sessions):
            for line in path.read_text("utf-8", "replace").splitlines():
                found = RAWLOG_LINE.match(line)
                if found:
                    lines.append(found.group(1))
        return lines

    def logouts(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Logged out" in line]

    def wait_for_logouts(self, count: int) -> list[str]:
        """The server logs a session's counters once it has ended: wait for them."""
        deadline = time.monotonic() + 10
        while len(self.logouts()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"Dovecot logged no end of session:\n{self.log.read_text()}")
            time.sleep(0.02)
        return self.logouts()


@contextmanager
def dovecot(
    config_dir: Path,
    users: dict[str, str],
    *,
    sent_mailbox: str | None = None,
    tls: bool = False,
    host: str = "127.0.0.1",
    capabilities: str | None = None,
) -> Iterator[ImapServer]:
    """Run Dovecot on free ports; `sent_mailbox` is created and marked \\Sent (RFC 6154).

    With `tls`, the server has a certificate of its own, offers STARTTLS and implicit TLS,
    and refuses passwords on a connection that is not encrypted. `capabilities` replaces
    what the server announces after login, to play an older server.
    """
    if not os.path.exists(DOVECOT):
        raise RuntimeError(INSTALL_HINT)
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="courtois-imap-"))
    try:
        root.chmod(0o755)
        for folder in ("mail", "rawlog"):
            (root / folder).mkdir()
            os.chown(root / folder, nobody.pw_uid, nobody.pw_gid)
        # Read by Dovecot's auth process, which runs as its own user.
        users_file = root / "users"
        users_file.write_text(
            "".join(
                f"{name}:{{PLAIN}}{secret}:{nobody.pw_uid}:{nobody.pw_gid}::"
                f"{root / 'mail' / name}::\n"
                for name, secret in users.items()
            )
        )
        port = free_port()
        tls_port = free_port() if tls else None
        certificate = _certificate(config_dir, host) if tls else None
        log = config_dir / "dovecot.log"
        config = config_dir / "dovecot.conf"
        config.write_text(
            _config(root, users_file, log, host, port, tls_port, certificate, sent_mailbox)
            + (f"imap_capability = {capabilities}\n" if capabilities else "")
        )
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_greeting(host, port, process, log)
            yield ImapServer(
                host=host,
                port=port,
                tls_port=tls_port,
                certificate=certificate,
                log=log,
                rawlog=root / "rawlog",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _config(
    root: Path,
    users_file: Path,
    log: Path,
    host: str,
    port: int,
    tls_port: int | None,
    certificate: Path | None,
    sent_mailbox: str | None,
) -> str:
    sent = (
        f'  mailbox "{sent_mailbox}" {{\n    special_use = \\Sent\n    auto = create\n  }}\n'
        if sent_mailbox
        else ""
    )
    if certificate is not None:
        tls_settings = (
            f"ssl = required\nssl_cert = <{certificate}\n"
            f"ssl_key = <{certificate.with_suffix('.key')}\ndisable_plaintext_auth = yes\n"
        )
    else:
        tls_settings = "ssl = no\ndisable_plaintext_auth = no\n"
    return f"""# A throwaway Dovecot for courtois's tests.
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
protocols = imap
listen = {host}
{tls_settings}auth_mechanisms = plain
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
rawlog_dir = {root}/rawlog
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users_file}
}}
userdb {{
  driver = passwd-file
  args = {users_file}
}}
namespace inbox {{
  inbox = yes
  separator = /
{sent}}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port or 0}
  }}
}}
"""


def _certificate(folder: Path, host: str) -> Path:
    """A self-signed certificate for `host` (an IP address), written beside its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "imap.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _wait_for_greeting(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Dovecot exited early:\n{log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection((host, port), timeout=1) as probe:
                if probe.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"Dovecot did not start:\n{log.read_text() if log.exists() else ''}")
