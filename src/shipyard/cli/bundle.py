"""``shipyard pack`` and ``shipyard inspect``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

out = Console()


def register(app: typer.Typer) -> None:
    app.command("pack")(pack)
    app.command("inspect")(inspect)


def pack(
    bundle: Path = typer.Argument(..., help="Bundle directory."),
    output: Path = typer.Option(Path("model.tar.gz"), "--output", "-o", help="Archive to write."),
) -> None:
    """Write BUNDLE as model.tar.gz, laid out as SageMaker extracts it into /opt/ml/model."""
    from shipyard.bundle.archive import pack as write

    path = write(bundle, output)
    out.print(f"wrote [bold]{path}[/] ({_size(path.stat().st_size)})")


def inspect(
    bundle: Path = typer.Argument(..., help="Bundle directory or model.tar.gz."),
    output: Output = OUTPUT_OPTION,
    as_json: bool = typer.Option(False, "--json", help="The same as --output json.", hidden=True),
) -> None:
    """Show what a bundle holds: flavor, schema, size, requirements, handler functions."""
    from shipyard.bundle.archive import is_archive, open_any, read_bundle

    if is_archive(bundle):  # read from its stream, every member checked: nothing is extracted
        info = describe(read_bundle(bundle))
    else:
        with open_any(bundle) as opened:
            info = describe(opened)
    info["source"] = str(bundle)
    info["archive_bytes"] = bundle.stat().st_size if bundle.is_file() else None
    if as_json or output is Output.json:
        print_json("inspect", info)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    for key in (
        "name",
        "version",
        "flavor",
        "batchable",
        "input",
        "output",
        "handler_functions",
        "files",
        "size_bytes",
        "python",
        "created",
    ):
        if key in info and info[key] not in (None, [], {}):
            value = info[key]
            if key == "size_bytes":
                value = _size(value)
            table.add_row(key, Text(", ".join(value) if isinstance(value, list) else str(value)))
    table.add_row("requirements", Text("\n".join(info["requirements"]) or "(none)"))
    out.print(table)


def describe(bundle: Any) -> dict[str, Any]:
    """What ``inspect`` shows of a :class:`~shipyard.bundle.Bundle` or an
    :class:`~shipyard.bundle.archive.ArchivedBundle` (the two answer the same questions)."""
    manifest = bundle.manifest
    info: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "flavor": manifest.flavor,
        "batchable": manifest.batchable,
        "input": manifest.input.describe(),
        "output": _output(manifest.output),
        "files": bundle.file_count(),
        "size_bytes": bundle.size_bytes(),
        "requirements": bundle.requirements(),
        "python": manifest.runtime.get("python"),
        "created": manifest.created,
        "handler_functions": None,  # the functions of code/inference.py, when the bundle has one
    }
    handler = bundle.handler_source()
    if handler is not None:
        import ast

        from shipyard.errors import BundleError

        script, source = handler
        try:
            tree = ast.parse(source, filename=script)
        except (SyntaxError, ValueError) as exc:  # the server could not import it either: say so, no traceback
            raise BundleError(f"{script} is not valid Python: {exc}") from None
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        wanted = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")
        info["handler_functions"] = [name for name in wanted if name in names]
    return info


def _output(output: dict[str, Any]) -> str | None:
    if not output:
        return None
    dims = " × ".join("N" if d == -1 else str(d) for d in output.get("shape", [-1]))
    return f"{output.get('dtype', '?')}[{dims}]"


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
