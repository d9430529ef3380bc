"""``shipyard serve BUNDLE``: the container's server, on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.config import ServerConfig


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    bundle: Path = typer.Argument(..., help="Bundle directory or model.tar.gz."),
    port: int = typer.Option(8080, "--port", "-p", help="Port (SAGEMAKER_BIND_TO_PORT in the container)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (the container binds 0.0.0.0)."),
    workers: int | None = typer.Option(None, "--workers", "-w", help="Worker processes [default: one per core]."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per invocation before 504."),
    max_batch_size: int | None = typer.Option(None, "--max-batch-size", help="Rows per model call."),
    max_batch_delay_ms: float | None = typer.Option(
        None, "--max-batch-delay-ms", help="Extra wait for a batch to fill (0: greedy)."
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="One JSON line per request."),
) -> None:
    """Serve a bundle with the SageMaker contract (GET /ping, POST /invocations) until Ctrl-C."""
    from shipyard.bundle.archive import open_any
    from shipyard.serving.entry import serve as run

    with open_any(bundle) as opened:
        config = ServerConfig.from_env(
            model_dir=str(opened.path),
            port=port,
            host=host,
            workers=workers,
            timeout_s=timeout,
            max_batch_size=max_batch_size,
            max_batch_delay_ms=max_batch_delay_ms,
            access_log=access_log,
        )
        code = run(config)
    raise typer.Exit(code)
