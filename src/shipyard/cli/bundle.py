"""``shipyard pack``, ``shipyard inspect`` and ``shipyard compile``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shipyard.cli.output import OUTPUT_OPTION, Output, print_json

out = Console()


def register(app: typer.Typer) -> None:
    app.command("pack")(pack)
    app.command("inspect")(inspect)
    app.command("compile")(compile_)


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
    if info.get("compiled"):
        for key, value in _compiled_rows(info["compiled"]):
            table.add_row(key, Text(value))
    out.print(table)


def compile_(
    bundle: Path = typer.Argument(..., help="Bundle directory (saved by shipyard.save), compiled in place."),
    mode: str = typer.Option(
        "onnx",
        "--mode",
        help="onnx: fail when it cannot convert or answers differ; auto: keep the native form then, with the reason.",
    ),
    drop_original: bool = typer.Option(False, "--drop-original", help="Delete the native artifact once compiled."),
    rows: int | None = typer.Option(
        None, "--rows", min=0, help="Generated rows the two forms are compared on [1000; 64 texts for text models]."
    ),
    tolerance: float | None = typer.Option(
        None, "--tolerance", min=0, help="Largest score difference allowed, times max(1, |native|)."
    ),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Compile BUNDLE to ONNX in place: served with onnxruntime once both forms answer alike (docs/bundle.md)."""
    from shipyard.handler.compile import check_mode, compile_bundle

    check_mode(mode)
    with Console(stderr=True).status(f"compiling {bundle}", spinner="dots"):
        manifest = compile_bundle(bundle, mode=mode, drop_original=drop_original, check_rows=rows, tolerance=tolerance)
    compiled = manifest.compiled
    check = compiled.get("check") or None
    document = {
        "bundle": str(bundle),
        "mode": mode,
        "flavor": manifest.flavor,
        "status": compiled.get("status", "native"),
        "reason": compiled.get("reason", ""),
        "converter": compiled.get("converter"),
        "check": check,
        "sizes": compiled.get("sizes") or None,
        "original_kept": bool(compiled.get("source_artifact")),
    }
    if output is Output.json:
        print_json("compile", document)
        return
    if document["status"] == "onnx":
        out.print(f"[bold]{manifest.name}[/] is served as [bold]onnx[/] ({escape(str(document['converter']))})")
    else:
        out.print(f"[bold]{manifest.name}[/] stays [bold]{manifest.flavor}[/]: {escape(str(document['reason']))}")
    for key, value in _compiled_rows(describe_compiled(manifest.compiled)):
        out.print(f"  {key}: {escape(value)}", highlight=False)


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
    if manifest.compiled:
        info["compiled"] = describe_compiled(manifest.compiled)
    return info


def describe_compiled(compiled: dict[str, Any]) -> dict[str, Any]:
    """Both forms of a compiled bundle (or why it stayed native) and the check, from its ``[compiled]`` table:
    sizes were recorded at save time, so an archive read from its stream answers the same."""
    check = compiled.get("check", {})
    sizes = compiled.get("sizes", {})
    forms: dict[str, Any] = {
        "native": {
            "flavor": compiled.get("source_flavor"),
            "artifact": compiled.get("source_artifact") or None,
            "bytes": sizes.get("source_bytes"),
            "requirements": list(compiled.get("source_requirements", [])),
        }
    }
    if compiled.get("onnx_files"):
        forms["onnx"] = {
            "artifact": compiled["onnx_files"][0],
            "bytes": sizes.get("onnx_bytes"),
            "requirements": list(compiled.get("onnx_requirements", [])),
            "converter": compiled.get("converter"),
            "opset": compiled.get("opset"),
        }
    return {
        "served": "onnx" if compiled.get("status") == "onnx" else "native",
        "reason": compiled.get("reason", ""),
        "forms": forms,
        "check": {
            "rows": check.get("rows"),
            "methods": list(check.get("methods", [])),
            "labels_equal": check.get("labels_equal"),
            "tolerance": check.get("tolerance"),
            "max_abs_error": check.get("max_abs_error"),
            "first_difference": check.get("first_difference", ""),
        },
    }


def _compiled_rows(compiled: dict[str, Any]) -> list[tuple[str, str]]:
    """``inspect``'s lines for the compiled block: the form served, each form, the check (stated vs reached)."""
    rows = [("served", compiled["served"] + (f" ({compiled['reason']})" if compiled["reason"] else ""))]
    for name, form in compiled["forms"].items():
        size = _size(form["bytes"]) if isinstance(form["bytes"], int) else "size unknown"
        artifact = form["artifact"] or "dropped (drop_original)"
        rows.append((f"{name} form", f"{artifact}, {size}, {len(form['requirements'])} requirements"))
    check = compiled["check"]
    if check["rows"] is not None:
        labels = "labels equal" if check["labels_equal"] else "labels differ"
        reached, stated = check["max_abs_error"], check["tolerance"]
        line = f"{check['rows']:,} rows ({', '.join(check['methods'])}): {labels}"
        if isinstance(reached, int | float):
            line += f", max |Δ| {reached:.3g}"
        if isinstance(stated, int | float):
            line += f" (tolerance {stated:g} × max(1, |native|))"
        if check["first_difference"]:
            line += f"; first difference: {check['first_difference']}"
        rows.append(("check", line))
    return rows


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
