"""The floors of src/shipyard import only downward (docs/architecture.md draws them).

Every ``import`` and ``from ... import`` in every module is read with :mod:`ast`, including the ones inside
functions and under ``TYPE_CHECKING`` (a lazy import is still a dependency), and each must point at the same
package or a floor below. The floors, from the bottom:

    core      errors, version, pricing (data), units → config (the server's settings) → settings (the tool's)
    model     codecs → bundle → handler        (in that order: a bundle is written with codecs, ...)
    serving | training                         (in the image: `serve` and `train`; no boto3, no engine, no CLI)
    image  |  cloud                            (side by side: neither imports the other)
    client
    deploy |  bench  |  monitor                (side by side)
    experiments → train → registry             (the run record and MLflow; training runs; model versions)
    hosting → cli  |  shipyard                 (the entry points: the image's ``serve``, the command, the API;
                                               ``shipyard serve`` runs the image's own wiring)

Third-party rules ride along: only ``cloud`` imports boto3/botocore, and
nothing below ``cli`` imports typer or rich. Nothing may import the package itself (``shipyard/__init__``):
it is the public facade, and importing it from inside would make every module depend on every other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Each step up, bottom first: the floor it belongs to and its parts. Parts of one step are independent of each
# other; a floor of several steps (core, model, entry) is ordered inside: each step imports only those below.
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("errors", "version", "pricing")),
    ("core", ("units",)),
    ("core", ("config",)),
    ("core", ("settings",)),
    ("model", ("codecs",)),
    ("model", ("bundle",)),
    ("model", ("handler",)),
    ("serving", ("serving", "training")),
    ("image|cloud", ("image", "cloud")),
    ("client", ("client",)),
    ("deploy|bench|monitor", ("deploy", "bench", "monitor")),
    ("experiments", ("experiments",)),
    ("train", ("train",)),
    ("registry", ("registry",)),
    ("entry", ("hosting",)),
    ("entry", ("cli", "__init__")),
]
FLOOR_NAMES = [name for name, _ in FLOORS]
FLOOR_OF = {part: level for level, (_, parts) in enumerate(FLOORS) for part in parts}
# Third-party packages only some parts may import.
RESTRICTED = {
    "boto3": {"cloud"},
    "botocore": {"cloud"},
    "typer": {"cli"},
    "rich": {"cli"},
}


@dataclass(frozen=True)
class Edge:
    module: str
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def module_name(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imports() -> list[Edge]:
    edges = []
    for path in sorted((SRC / "shipyard").rglob("*.py")):
        module, is_package = module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges += [Edge(module, node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")[: None if is_package else -1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                if target == "shipyard":  # `from shipyard import x`: the part x, or an attribute of the facade
                    edges += [
                        Edge(module, node.lineno, f"shipyard.{alias.name}" if alias.name in FLOOR_OF else target)
                        for alias in node.names
                    ]
                else:
                    edges.append(Edge(module, node.lineno, target))
    return edges


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def test_every_part_of_the_package_has_a_floor() -> None:
    found = {part(module_name(path)[0]) for path in (SRC / "shipyard").rglob("*.py")}
    assert found - FLOOR_OF.keys() == set(), "add the new part to FLOORS here and in docs/architecture.md"
    assert FLOOR_OF.keys() - found == set(), "a part in FLOORS is gone: remove it here and in docs/architecture.md"


def test_imports_point_down() -> None:
    wrong = []
    for edge in imports():
        if not edge.target.startswith("shipyard"):
            continue
        source, target = part(edge.module), part(edge.target)
        if source == target:
            continue
        if target == "__init__":
            wrong.append(f"{edge}: nothing inside imports the facade")
        elif FLOOR_OF[target] >= FLOOR_OF[source]:
            wrong.append(
                f"{edge}: {source} ({FLOOR_NAMES[FLOOR_OF[source]]}) may import only floors below it, "
                f"and {target} is {FLOOR_NAMES[FLOOR_OF[target]]}"
            )
    assert not wrong, "\n".join(wrong)


def test_third_party_packages_stay_where_they_belong() -> None:
    wrong = [
        f"{edge}: only {', '.join(sorted(RESTRICTED[top]))} may import {top}"
        for edge in imports()
        if (top := edge.target.split(".")[0]) in RESTRICTED and part(edge.module) not in RESTRICTED[top]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "line", "expected"),
    [
        ("from shipyard.deploy import api\n", "serving", "may import only floors below"),
        ("import shipyard.cli\n", "deploy", "may import only floors below"),
        ("from shipyard.cloud import s3\n", "image", "may import only floors below"),
        ("from shipyard import __version__\n", "bundle", "nothing inside imports the facade"),
        ("from ..handler import flavors\n", "bundle", "may import only floors below"),
    ],
)
def test_the_walker_sees_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, line: str, expected: str
) -> None:
    """The check itself can fail: a module that imports upward, written into a copy of the tree, is reported."""
    import shutil
    import sys

    copy = tmp_path / "src"
    shutil.copytree(SRC / "shipyard", copy / "shipyard", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    (copy / "shipyard" / line / "zz_upward.py").write_text(f"def later() -> None:\n    {source}")
    monkeypatch.setattr(sys.modules[__name__], "SRC", copy)
    with pytest.raises(AssertionError, match=expected):
        test_imports_point_down()
