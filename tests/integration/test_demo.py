"""`courtois demo` as a user runs it: a real process on real sockets, driven over HTTP.

An invitation made through the host API, or with the ordinary commands on the demo's
database, reaches the demo's capture server through the worker and the real SMTP transport;
the outbox shows it signed, with its one-click unsubscribe; SIGTERM ends it with exit code 0.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import dkim
import httpx
from cryptography.hazmat.primitives import serialization
from member_pages_support import follow_sign_in_link
from smtp_server import free_port

COURTOIS = str(Path(sys.executable).parent / "courtois")
SAMPLE_ADDRESSES = ("bo.svensson@example.org", "chloe.martin@example.net", "ana.lima@example.com")


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any COURTOIS_* setting, then the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    env.update(extra)
    return env


class Demo:
    """A running `courtois demo` and what it printed once stopped."""

    def __init__(self, folder: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self.process = subprocess.Popen(
            [COURTOIS, "demo", "--port", str(self.port), "--data-dir", str(folder), *extra],
            env=env or environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = self.stderr = ""

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()
            try:
                if httpx.get(f"{self.base}/outbox", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the demo did not answer in time")

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the process took to end."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.stdout, self.stderr = self.process.communicate(timeout=10)
        return self.process.returncode, time.monotonic() - started

    def api(self, path: str, body: object, key: str) -> httpx.Response:
        """A host API call with the demo's key."""
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=30)

    def config(self) -> dict[str, object]:
        return tomllib.loads((self.folder / "courtois.toml").read_text(encoding="utf-8"))


@contextmanager
def started(folder: Path) -> Iterator[Demo]:
    """A demo that answers; killed on the way out if a test left it running."""
    demo = Demo(folder)
    try:
        demo.wait_ready()
        yield demo
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.communicate()


def cli(demo: Demo, *args: str) -> subprocess.CompletedProcess[str]:
    """The ordinary command, pointed at the demo's database by its configuration file."""
    env = environment(COURTOIS_CONFIG=str(demo.folder / "courtois.toml"))
    return subprocess.run(
        [COURTOIS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def invite(demo: Demo, address: str, key: str, note: str = "") -> dict[str, Any]:
    """Preview, then consent to exactly what was shown, through the host API."""
    wanted = {"emails": [address], "note": note}
    shown = demo.api("/v1/members/demo/invitations/preview", wanted, key)
    assert shown.status_code == 200, shown.text
    consent = {"text_shown": shown.json()["consent_text"], "ip": "127.0.0.1"}
    body = {**wanted, "preview_hash": shown.json()["preview_hash"], "consent": consent}
    invited = demo.api("/v1/members/demo/invitations", body, key)
    assert invited.status_code == 201, invited.text
    answer: dict[str, Any] = invited.json()
    return answer


def dkim_verifies(raw: bytes, folder: Path) -> bool:
    """dkimpy's verdict, with the demo's key published where a receiver would look."""
    key = serialization.load_pem_private_key((folder / "dkim-demo.pem").read_bytes(), None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"demo._domainkey.agora.example.org." else b""

    return bool(dkim.verify(raw, dnsfunc=dns))


def test_an_invitation_goes_through_the_worker_to_the_outbox_and_sigterm_ends_it(
    tmp_path: Path,
) -> None:
    with started(tmp_path / "demo") as demo:
        check_invitation_reaches_outbox(demo)


def check_invitation_reaches_outbox(demo: Demo) -> None:
    home = httpx.get(f"{demo.base}/demo")
    assert home.status_code == 200
    assert "Bo Svensson" in home.text  # the sample address book went in through the import
    assert 'href="/docs"' in home.text
    assert 'href="/outbox"' in home.text
    # The member pages' link asks which account first; its button, pressed, signs in.
    link = re.search(r'<a href="([^"]+/member/sign-in/[^"]+)">Sign in as', home.text)
    assert link is not None
    with httpx.Client() as browser:
        assert follow_sign_in_link(browser, unescape(link.group(1))).status_code == 303
        assert "Ana Lima" in browser.get(f"{demo.base}/member/").text
    empty = httpx.get(f"{demo.base}/outbox")
    assert "No email captured yet" in empty.text
    assert "default-src 'none'" in empty.headers["content-security-policy"]

    key = str(demo.config()["api_key"])
    invited = invite(demo, SAMPLE_ADDRESSES[0], key, note="<b>Come</b> climbing")
    assert invited["invitations"][0]["status"] == "scheduled"

    # Another site's form may not press the button.
    forged = httpx.post(f"{demo.base}/outbox/send-now", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert "No email captured yet" in httpx.get(f"{demo.base}/outbox").text  # undo window

    pressed = httpx.post(f"{demo.base}/outbox/send-now", headers={"Origin": demo.base})
    assert pressed.status_code == 303
    listing = httpx.get(f"{demo.base}/outbox").text
    assert "sent 1" in listing
    assert "Ana Lima invites you to join Agora" in listing
    assert 'href="/outbox/1"' in listing

    page = httpx.get(f"{demo.base}/outbox/1").text
    assert "Ana Lima via Agora &lt;invitations@agora.example.org&gt;" in page
    for header in ("DKIM-Signature", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID"):
        assert f'<th scope="row" class="name">{header}</th>' in page
    assert "&lt;b&gt;Come&lt;/b&gt; climbing" in page  # the member's note, escaped
    assert "<b>Come</b>" not in page
    assert '<iframe src="/outbox/1/html"' in page

    # The recipient's mail client: one click, and no later invitation reaches them.
    one_click = re.search(r'<form method="post" action="([^"]+)"', page)
    assert one_click is not None
    assert one_click.group(1).startswith(f"{demo.base}/u/")
    stopped = httpx.post(one_click.group(1), data={"List-Unsubscribe": "One-Click"})
    assert stopped.status_code == 200
    again = invite(demo, SAMPLE_ADDRESSES[0], key, note="<b>Come</b> climbing")
    assert again["invitations"][0]["decision"]["allowed"] is False

    html_part = httpx.get(f"{demo.base}/outbox/1/html")
    assert "sandbox" in html_part.headers["content-security-policy"]
    assert "Ana Lima" in html_part.text
    raw = httpx.get(f"{demo.base}/outbox/1/raw").content
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim_verifies(raw, demo.folder)
    assert httpx.get(f"{demo.base}/outbox/2").status_code == 404

    secret_key = str(demo.config()["secret_key"])
    code, took = demo.terminate()
    assert code == 0, demo.stderr
    assert took < 5
    assert key in demo.stdout
    assert secret_key not in demo.stdout + demo.stderr
    for address in SAMPLE_ADDRESSES:
        assert address not in demo.stdout + demo.stderr
    assert demo.stdout.rstrip().endswith("courtois demo stopped")


def test_a_second_start_keeps_its_keys_member_and_contacts_and_the_commands_reach_it(
    tmp_path: Path,
) -> None:
    with started(tmp_path / "demo") as first:
        keys = first.config()
        assert first.terminate()[0] == 0
    assert "member 'demo' (created)" in first.stdout
    assert "sample address book imported (6 contacts" in first.stdout

    with started(tmp_path / "demo") as again:
        assert again.config()["secret_key"] == keys["secret_key"]
        assert again.config()["api_key"] == keys["api_key"]
        invite(again, SAMPLE_ADDRESSES[1], str(keys["api_key"]))
        # The commands the demo prints, on its database and its capture server.
        later = (datetime.now(UTC) + timedelta(minutes=11)).isoformat()
        passed = cli(again, "worker", "--once", "--now", later, "--json")
        assert json.loads(passed.stdout)["sent"] == 1, passed.stderr
        listing = httpx.get(f"{again.base}/outbox").text
        verified = cli(again, "audit", "verify", "--json")
        assert again.terminate()[0] == 0
    assert "member 'demo' (kept), 6 contacts in the address book" in again.stdout
    assert SAMPLE_ADDRESSES[1] in listing
    assert json.loads(verified.stdout)["ok"] is True


def test_the_commands_it_shows_run_as_shown_when_courtois_is_not_on_path(
    tmp_path: Path,
) -> None:
    """After `make demo` courtois is in .venv/bin, on nobody's PATH: the commands the demo
    prints and those its home page shows name it by its path, and run, as shown, in a
    shell with that PATH."""
    venv = Path(COURTOIS).parent.resolve()
    kept = [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv
    ]
    shell = environment(PATH=os.pathsep.join(kept))
    demo = Demo(tmp_path / "demo", env=shell)
    try:
        demo.wait_ready()
        home = unescape(httpx.get(f"{demo.base}/demo").text)
        assert demo.terminate()[0] == 0
    finally:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.communicate()
    named = shlex.quote(COURTOIS)
    printed = demo.stdout.splitlines()
    start = next(i for i, line in enumerate(printed) if "export COURTOIS_CONFIG=" in line)
    from_console = [line.strip() for line in printed[start : start + 2]]
    assert from_console[1].startswith(f"{named} invite --member demo ")
    shown = re.search(r"<pre[^>]*>(export COURTOIS_CONFIG=.*?)</pre>", home, re.DOTALL)
    assert shown is not None
    from_page = [line for line in shown.group(1).splitlines() if " worker " not in line]
    assert [line.split(" ")[0] for line in from_page[1:]] == [named, named]
    for script in (from_console, from_page):
        done = subprocess.run(
            ["sh", "-c", "\n".join(script)],
            env=shell,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (script, done.stderr)


def test_a_taken_port_is_refused_in_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [COURTOIS, "demo", "--port", str(port), "--fresh"],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1
    assert "--port" in done.stderr
    assert not (tmp_path / "courtois-data").exists()
