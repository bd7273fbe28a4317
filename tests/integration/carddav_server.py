"""A real CardDAV server for tests: Radicale in a subprocess, seeded over CardDAV itself."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from smtp_server import free_port

MKCOL_ADDRESSBOOK = """<?xml version="1.0" encoding="utf-8"?>
<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">
  <d:set><d:prop>
    <d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>
    <d:displayname>{name}</d:displayname>
  </d:prop></d:set>
</d:mkcol>"""


@dataclass
class CardDavServer:
    """A running Radicale: its root URL and a client to seed it as a member's phone would."""

    url: str
    log: Path

    def client(self, username: str, password: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(username, password), timeout=10)

    def make_address_book(self, client: httpx.Client, path: str, name: str) -> None:
        reply = client.request("MKCOL", path, content=MKCOL_ADDRESSBOOK.format(name=name))
        assert reply.status_code == 201, reply.text

    def put_card(self, client: httpx.Client, path: str, card: str) -> None:
        body = card.strip().replace("\n", "\r\n") + "\r\n"
        reply = client.put(
            path,
            content=body.encode("utf-8"),
            headers={"Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"},
        )
        assert reply.status_code == 201, reply.text


@contextmanager
def radicale(root: Path, users: dict[str, str]) -> Iterator[CardDavServer]:
    """Start Radicale with plain htpasswd users and a storage folder under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = root / "users"
    htpasswd.write_text("".join(f"{name}:{secret}\n" for name, secret in users.items()))
    port = free_port()
    log = root / "radicale.log"
    command = [
        sys.executable,
        "-m",
        "radicale",
        "--config",
        "",  # no system or user configuration file: only what is said here
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(htpasswd),
        "--auth-htpasswd-encryption",
        "plain",
        "--auth-delay",
        "0",
        "--storage-filesystem-folder",
        str(root / "collections"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process, log)
            yield CardDavServer(url=url, log=log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Radicale exited early:\n{log.read_text()}")
        try:
            httpx.request("OPTIONS", url + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"Radicale did not start:\n{log.read_text()}")
