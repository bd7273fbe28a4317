"""What operators watch: /healthz (database and SMTP), /metrics (read from the database,
so every process agrees), and errors that never leak an address to a client or a log."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from api_support import add_member, free_port, preview_and_invite, running_api, served
from frozen_proxy import frozen_proxy
from smtp_server import FaultyHandler, Script, scripted_server, smtp_server
from sqlalchemy import Engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from support import RULE_CODES

from conftest import POSTGRES_URL, T0
from courtois.config import Settings
from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.store.engine import CONNECT_TIMEOUT_SECONDS, make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import decisions
from courtois.web.app import create_app
from courtois.web.health import DATABASE_TIMEOUT_SECONDS
from courtois.web.metrics import DecisionTally


def test_healthy_when_the_database_and_smtp_answer(ctx: Context) -> None:
    with smtp_server(FaultyHandler()) as smtp_url, running_api(ctx, smtp_url=smtp_url) as api:
        response = api.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["checks"]["database"]["ok"] is True
    assert (health["checks"]["smtp"]["ok"], health["checks"]["smtp"]["detail"]) == (True, "greets")


def test_unavailable_when_smtp_does_not_answer(ctx: Context) -> None:
    with running_api(ctx, smtp_url=f"smtp://user:pw@127.0.0.1:{free_port()}") as api:
        response = api.get("/healthz")
    assert response.status_code == 503
    health = response.json()
    assert health["status"] == "unavailable"
    assert health["checks"]["database"]["ok"] is True
    assert health["checks"]["smtp"]["ok"] is False
    assert "127.0.0.1" not in response.text
    assert "pw" not in response.text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_unavailable_when_smtp_greets_but_the_worker_could_not_use_it(ctx: Context) -> None:
    """The check opens the session as the worker does: a relay without STARTTLS where the
    URL's credentials require it, or one refusing those credentials, greets and is still
    down; the answer names the step, never the user, the password or the host."""
    with smtp_server(FaultyHandler()) as plain:
        host = plain.removeprefix("smtp://")
        with running_api(ctx, smtp_url=f"smtp://courtois:s3cret@{host}") as api:
            no_starttls = api.get("/healthz")
    with smtp_server(FaultyHandler(), auth=("courtois", "s3cret")) as url:
        host = url.removeprefix("smtp://")
        with running_api(ctx, smtp_url=f"smtp://courtois:wrong@{host}?starttls=off") as api:
            refused = api.get("/healthz")
        with running_api(ctx, smtp_url=f"smtp://courtois:s3cret@{host}?starttls=off") as api:
            accepted = api.get("/healthz")
    assert no_starttls.status_code == 503
    assert no_starttls.json()["checks"]["smtp"]["ok"] is False
    assert no_starttls.json()["checks"]["smtp"]["detail"].startswith("starttls failed")
    assert refused.status_code == 503
    assert refused.json()["checks"]["smtp"]["detail"] == "auth failed (SMTPAuthenticationError 535)"
    for response in (no_starttls, refused):
        for secret in ("courtois", "s3cret", "wrong", "127.0.0.1"):
            assert secret not in response.text
    assert accepted.status_code == 200
    assert accepted.json()["checks"]["smtp"] == {
        "ok": True,
        "detail": "greets",
        "took_ms": accepted.json()["checks"]["smtp"]["took_ms"],
    }


def test_a_slow_smtp_server_is_given_one_deadline_in_all(ctx: Context) -> None:
    """Greeting after 2 s and QUIT answered after 2 more: each wait is within the 3 s, the
    whole is not, and the answer comes at the deadline, not after both waits."""
    script = Script(delays={"GREETING": 2.0, "QUIT": 2.0})
    with scripted_server(script) as url, running_api(ctx, smtp_url=url) as api:
        started = time.monotonic()
        response = api.get("/healthz")
        took = time.monotonic() - started
        time.sleep(1.5)  # the server's session ends before the server does
    assert response.status_code == 503
    assert response.json()["checks"]["smtp"]["detail"] == "no answer within 3 s"
    assert 2.5 < took < 3.8


def test_unavailable_when_the_database_is_behind_or_gone(tmp_path: Path) -> None:
    settings = Settings(secret_key="test-secret-key-0123456789", api_key="k" * 20)
    never_migrated = Context(make_engine(f"sqlite:///{tmp_path / 'new.db'}"), settings)
    gone = Context(
        make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"), settings
    )
    for ctx, expected in ((never_migrated, "run `courtois migrate`"), (gone, "unreachable")):
        with served(create_app(ctx)) as base_url:
            response = httpx.get(f"{base_url}/healthz", timeout=30)
        assert response.status_code == 503
        assert expected in response.json()["checks"]["database"]["detail"]
        ctx.engine.dispose()


def test_unavailable_within_seconds_when_the_database_stops_answering(
    postgres_admin: Engine,
) -> None:
    """PostgreSQL behind a proxy that freezes (sockets open, nothing passes): /healthz
    answers 503 within its bound instead of never, and so does every probe while the
    database stays frozen, each waiting for the one check under way; once bytes pass again
    it is healthy again."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    upstream = make_url(POSTGRES_URL)
    try:
        with frozen_proxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
            url = upstream.set(
                host="127.0.0.1", port=proxy.port, query={"options": f"-csearch_path={schema}"}
            )
            engine = make_engine(url.render_as_string(hide_password=False))
            migrate(engine)
            settings = Settings(secret_key="test-secret-key-0123456789", api_key="k" * 20)
            try:
                with served(create_app(Context(engine, settings))) as base_url:
                    assert httpx.get(f"{base_url}/healthz", timeout=30).status_code == 200
                    proxy.freeze()
                    for _probe in range(3):
                        started = time.monotonic()
                        response = httpx.get(f"{base_url}/healthz", timeout=30)
                        took = time.monotonic() - started
                        assert response.status_code == 503
                        assert took < DATABASE_TIMEOUT_SECONDS + 2, took
                        database = response.json()["checks"]["database"]
                        assert database == {
                            "ok": False,
                            "detail": f"no answer within {DATABASE_TIMEOUT_SECONDS:g} s",
                            "took_ms": database["took_ms"],
                        }
                    proxy.thaw()
                    assert _eventually_healthy(base_url)
            finally:
                engine.dispose()
    finally:
        with postgres_admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _eventually_healthy(base_url: str, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if httpx.get(f"{base_url}/healthz", timeout=30).status_code == 200:
            return True
        time.sleep(0.2)
    return False


def test_a_new_postgresql_connection_gives_up_when_the_server_says_nothing(
    postgres_admin: Engine,
) -> None:
    """A server that accepts the connection and answers nothing: opening a connection fails
    after the engine's connect timeout instead of waiting forever."""
    upstream = make_url(POSTGRES_URL)
    with frozen_proxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        proxy.freeze()
        url = upstream.set(host="127.0.0.1", port=proxy.port)
        engine = make_engine(url.render_as_string(hide_password=False))
        outcome: list[BaseException | None] = []

        def connect() -> None:
            try:
                engine.connect().close()
                outcome.append(None)
            except Exception as error:
                outcome.append(error)

        # On a thread, so that a connection that never gives up fails the test, not hangs it.
        trying = threading.Thread(target=connect, daemon=True)
        started = time.monotonic()
        trying.start()
        trying.join(CONNECT_TIMEOUT_SECONDS + 5)
        took = time.monotonic() - started
        assert outcome, "still connecting"
        assert isinstance(outcome[0], OperationalError)
        engine.dispose()
    assert CONNECT_TIMEOUT_SECONDS - 1 <= took < CONNECT_TIMEOUT_SECONDS + 3, took


def decision_lines(text: str) -> dict[str, float]:
    """courtois_decisions_total samples, keyed by their labels."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"courtois_decisions_total\{(.*)\} (\S+)$", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def test_metrics_count_every_rule_and_every_process_agrees(ctx: Context) -> None:
    with running_api(ctx) as api:
        add_member(api)
        preview_and_invite(api, ["bo@example.org", "cy@example.org"])
        first = decision_lines(api.get("/metrics").text)
        for rule in RULE_CODES:
            outcome = "defer" if rule == "undo-window-elapsed" else "allow"
            assert first[f'outcome="{outcome}",rule="{rule}",stage="queue"'] == 2.0
        # The same recipients again: already invited, denied.
        preview_and_invite(api, ["bo@example.org", "cy@example.org", "dee@example.org"])
        with served(create_app(api.ctx, api.clock)) as other_process:
            elsewhere = httpx.get(f"{other_process}/metrics").text
        here = api.get("/metrics").text
        assert decision_lines(here) == decision_lines(elsewhere)
        counted = decision_lines(here)
        assert counted['outcome="deny",rule="not-already-invited",stage="queue"'] == 2.0
        assert counted['outcome="allow",rule="consent-covers",stage="queue"'] == 5.0
        assert 'courtois_decision_outcomes_total{outcome="deny",stage="queue"} 2.0' in here
        assert 'courtois_queue_depth{queue="scheduled"} 3.0' in here
        assert 'courtois_queue_depth{queue="due"} 0.0' in here
        api.clock.advance(minutes=11)
        later = api.get("/metrics").text
    assert 'courtois_queue_depth{queue="due"} 3.0' in later
    assert 'courtois_messages{kind="invitation",state="scheduled"} 3.0' in later
    # Webhooks are off here: events wait for them, but there is no queue to watch.
    assert 'queue="webhooks"' not in later


def test_the_webhook_queue_is_measured_when_webhooks_are_on(ctx: Context) -> None:
    with running_api(
        ctx, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    ) as api:
        unsubscribe(api.ctx, api.ctx.digest_email("bo@example.org"), api.clock.now)
        text = api.get("/metrics").text
    assert 'courtois_queue_depth{queue="webhooks"} 1.0' in text


def test_the_tally_counts_rows_that_commit_after_a_later_id(ctx: Context) -> None:
    """PostgreSQL hands out ids before commit: id 2 may appear after id 3 was counted."""

    def row(row_id: int) -> dict[str, object]:
        return {
            "id": row_id,
            "member_id": "ana",
            "recipient_digest": "d" * 64,
            "kind": "invitation",
            "stage": "queue",
            "outcome": "allow",
            "verdicts": [["consent-covers", "allow", "ok"]],
            "decided_at": T0,
        }

    tally = DecisionTally()
    with ctx.engine.begin() as connection:
        connection.execute(insert(decisions), [row(1), row(3)])
    with ctx.engine.connect() as connection:
        tally.refresh(connection)
    assert tally.verdicts[("queue", "consent-covers", "allow")] == 2
    assert set(tally.gaps) == {2}
    with ctx.engine.begin() as connection:
        connection.execute(insert(decisions), [row(2), row(4)])
    with ctx.engine.connect() as connection:
        tally.refresh(connection)
        tally.refresh(connection)  # nothing new: nothing counted twice
    assert tally.verdicts[("queue", "consent-covers", "allow")] == 4
    assert tally.gaps == {}


def test_an_unexpected_error_is_a_500_problem_and_one_line_without_the_address(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(ctx)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("INSERT failed for bo@example.org")

    with served(app) as base_url:
        response = httpx.get(f"{base_url}/boom")
    assert response.status_code == 500
    assert response.json()["type"] == "/problems/internal-error"
    assert "example.org" not in response.text
    ours = [r for r in caplog.records if r.name == "courtois.web"]
    assert len(ours) == 1
    assert "RuntimeError" in ours[0].getMessage()
    assert all("example.org" not in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


def test_unknown_paths_and_methods_are_problems_too(ctx: Context) -> None:
    with running_api(ctx) as api:
        missing = api.get("/v2/nothing")
        wrong = api.http.put("/v1/members")
    assert (missing.status_code, missing.json()["type"]) == (404, "/problems/not-found")
    assert (wrong.status_code, wrong.json()["type"]) == (405, "/problems/method-not-allowed")


def test_the_clock_is_the_apps(ctx: Context) -> None:
    with running_api(ctx, now=T0 + timedelta(days=3)) as api:
        add_member(api)
        answer = preview_and_invite(api, ["bo@example.org"])
    assert answer["invitations"][0]["scheduled_at"] == "2026-03-05T09:10:00Z"


def test_metrics_ask_for_the_scrape_token_when_one_is_set(ctx: Context) -> None:
    token = "scrape-token-0123456789"
    with running_api(ctx, metrics_token=token) as api:
        # The API key is not the scrape token: a client holding one does not get the other.
        refused = [
            api.get("/metrics"),
            httpx.get(f"{api.base_url}/metrics"),
            httpx.get(f"{api.base_url}/metrics", headers={"Authorization": f"Basic {token}"}),
            httpx.get(f"{api.base_url}/metrics", headers={"Authorization": f"Bearer {token}x"}),
        ]
        allowed = httpx.get(f"{api.base_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    for response in refused:
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert "courtois_" not in response.text
    assert allowed.status_code == 200
    assert "courtois_queue_depth" in allowed.text


def test_metrics_answer_anyone_when_no_token_is_set(ctx: Context) -> None:
    with running_api(ctx) as api:
        response = httpx.get(f"{api.base_url}/metrics")
    assert response.status_code == 200
    assert "courtois_queue_depth" in response.text


def test_a_browser_lost_on_the_site_gets_a_page_in_its_language(ctx: Context) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "fr"}
    with running_api(ctx) as api:
        page = httpx.get(f"{api.base_url}/no/such/page", headers=browser)
        machine = httpx.get(f"{api.base_url}/no/such/page")
        api_path = api.http.get("/v1/no/such/route", headers=browser)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    assert (machine.status_code, machine.json()["type"]) == (404, "/problems/not-found")
    assert (api_path.status_code, api_path.json()["type"]) == (404, "/problems/not-found")
