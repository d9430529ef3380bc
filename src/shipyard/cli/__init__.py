"""The ``shipyard`` command. The only layer that prints and exits."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from shipyard.errors import ShipyardError
from shipyard.version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="shipyard",
    help="From a notebook model to a SageMaker-contract inference endpoint.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Package, serve, invoke."""


def _register() -> None:
    from shipyard.cli import (
        bench,
        budget,
        bundle,
        deploy,
        export,
        expose,
        image,
        invoke,
        models,
        monitor,
        runs,
        serve,
        status,
        train,
        transform,
    )

    for module in (bundle, invoke, serve, bench, monitor, deploy, expose, status, budget, export, image, train, runs,
                   models, transform):  # fmt: skip
        module.register(app)


_register()


def main() -> None:
    try:
        # without standalone mode click returns the code of a `typer.Exit(code)` instead of exiting with it
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except ShipyardError as exc:
        # escaped: a message naming `shipyard[aws]` or `[default: …]` is text, not rich markup to be eaten
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # usage errors: click's, or those of the copy of click recent typers vendor
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
