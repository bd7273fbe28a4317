"""`courtois demo`: migrate and seed the demo database, start the capture SMTP server and
the worker, serve the app with the outbox on top, and stop cleanly on Ctrl-C or SIGTERM.

Both ports are bound before anything is printed, so every URL shown already answers (or
queues until the server takes it), and a taken port is a one-line refusal, not a traceback.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import uvicorn

from courtois.bootstrap import bootstrap, make_transport
from courtois.config import load_settings
from courtois.demo.capture import CaptureServer, CaptureStore
from courtois.demo.folder import DemoFolder
from courtois.demo.home import DemoInfo, demo_router
from courtois.demo.routes import app_routes, flat_routes
from courtois.demo.seed import MEMBER, SeedReport, demo_settings, seed
from courtois.demo.shell import courtois_command
from courtois.demo.worker_loop import WorkerLoop
from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.store.migrate import migrate
from courtois.web.app import create_app
from courtois.web.outbox import OutboxControls, outbox_router

HOST = "127.0.0.1"
WORKER_INTERVAL = 3.0
DEFAULT_FOLDER = Path("courtois-data") / "demo"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """The command line's choices."""

    port: int = 8000
    smtp_port: int = 0
    data_dir: Path = DEFAULT_FOLDER
    fresh: bool = False


def run_demo(options: DemoOptions, say: Callable[[str], None]) -> None:
    """Run until Ctrl-C or SIGTERM; raises InvalidInput (one line for people) on a bad
    start. Signals that arrive before the server runs stop the start instead of the
    process, so what was started is always stopped in order."""
    stopping: list[int] = []

    def remember(number: int, _frame: FrameType | None) -> None:
        stopping.append(number)

    # uvicorn takes these over while it serves, then hands back the signal it got.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, remember)
    # Peer addresses and message envelopes are not for the console.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    policy = load_settings().policy
    folder_path = Path(tempfile.mkdtemp(prefix="courtois-demo-")) if options.fresh else None
    folder = DemoFolder(folder_path or options.data_dir)
    http: socket.socket | None = None
    capture: CaptureServer | None = None
    worker: WorkerLoop | None = None
    ctx: Context | None = None
    try:
        keys = folder.keys()
        http = _bind("--port", options.port)
        store = CaptureStore()
        try:
            capture = CaptureServer(store, HOST, options.smtp_port)
        except OSError as error:
            raise _taken("--smtp-port", options.smtp_port, error) from None
        capture.start()
        base_url = f"http://{HOST}:{http.getsockname()[1]}"
        settings = demo_settings(folder, keys, base_url, capture.url, policy)
        folder.write_config(settings)
        ctx = bootstrap(settings, create_database=True)
        migrate(ctx.engine)
        seeded = seed(ctx, datetime.now(UTC))
        worker = WorkerLoop(ctx, make_transport(settings), WORKER_INTERVAL, say)
        app = create_app(ctx)
        undo = settings.policy.undo_window_minutes
        controls = OutboxControls(
            send_now=worker.skip_undo_window,
            send_now_label=f"Skip the undo window: one worker pass as of {undo} minutes from now",
            worker_note=(
                f"The worker passes every {WORKER_INTERVAL:g} s. An invitation's email waits "
                f"out the member's {undo}-minute undo window after consent."
            ),
        )
        redirect_root = not any(path == "/" for path, _ in flat_routes(app.routes))
        app.include_router(outbox_router(store, controls))
        info = DemoInfo(
            ctx=ctx,
            config_file=folder.config_file,
            smtp_url=capture.url,
            dkim_record_name=f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}",
            dkim_record_value=f"v=DKIM1; k=rsa; p={folder.dkim_public_key()}",
            worker_interval=WORKER_INTERVAL,
            command=courtois_command(),
        )
        app.include_router(demo_router(info, redirect_root))
        worker.start()
        pages = [r.path for r in app_routes(list(app.routes)) if r.linkable]
        _announce(say, base_url, info, seeded, pages, options.fresh)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                # Paths carry recipients' signed tokens, which are not for the console.
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=3,
            )
        )
        if not stopping:
            server.run(sockets=[http])
    finally:
        if http is not None:
            http.close()
        if worker is not None:
            worker.stop()
        if capture is not None:
            capture.stop()
        if ctx is not None:
            ctx.engine.dispose()
        if folder_path is not None:
            shutil.rmtree(folder_path, ignore_errors=True)
    say("courtois demo stopped")


def _bind(option: str, port: int) -> socket.socket:
    """The listening socket, or a refusal naming the option to change."""
    try:
        return socket.create_server((HOST, port))
    except OSError as error:
        raise _taken(option, port, error) from None


def _taken(option: str, port: int, error: OSError) -> InvalidInput:
    return InvalidInput(
        f"cannot listen on {HOST}:{port} ({error.strerror or error}); choose another {option}"
    )


def _announce(
    say: Callable[[str], None],
    base: str,
    info: DemoInfo,
    seeded: SeedReport,
    pages: list[str],
    fresh: bool,
) -> None:
    """The URLs to open and the commands to try; counts and keys, never an address."""
    settings = info.ctx.settings
    imported = (
        f"sample address book imported ({seeded.imported.imported} contacts, "
        f"{len(seeded.imported.duplicates)} duplicates, {len(seeded.imported.flagged)} "
        f"flagged, {len(seeded.imported.rejected)} rejected)"
        if seeded.imported is not None
        else f"{seeded.contacts} contacts in the address book"
    )
    member = "created" if seeded.member_created else "kept"
    undo = settings.policy.undo_window_minutes
    courtois = info.command
    lines = [
        f"courtois demo: platform {settings.platform_name!r}, member {MEMBER.id!r} "
        f"({member}), {imported}",
        "",
        f"  demo home     {base}/demo",
        f"  outbox        {base}/outbox",
        f"  API docs      {base}/docs",
        *(f"  also          {base}{path}" for path in pages),
        f"  capture SMTP  {info.smtp_url}",
        f"  API key       {settings.api_key}",
        f"                curl -H 'Authorization: Bearer {settings.api_key}' {base}/v1/...",
        f"  data          {info.config_file.parent}{' (deleted on exit)' if fresh else ''}",
        "",
        f"Mail waits out the {undo}-minute undo window; the worker passes every "
        f"{WORKER_INTERVAL:g} s. To see it sooner, press 'Skip the undo window' on the outbox, or:",
        f"  export COURTOIS_CONFIG={info.config_word}",
        f"  {courtois} invite --member {MEMBER.id} --email someone@example.org",
        f"  {courtois} worker --once --now \"$(date -u -d '+{undo} minutes' +%Y-%m-%dT%H:%M:%SZ)\"",
        "",
        "Ctrl-C stops the demo.",
    ]
    for line in lines:
        say(line)
