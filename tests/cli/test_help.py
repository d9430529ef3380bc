"""Every command's --help: each option and argument has a help text, no text is eaten by Rich markup (the
" ." a "[default: ...]" inside a help string used to leave), and the defaults shown are the real ones."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from shipyard.cli import app

runner = CliRunner()

# What a help text loses to Rich markup leaves these behind ("Seconds for /ping ." from
# "Seconds for /ping [default: 600]."), or an empty default.
ARTIFACTS = re.compile(r" [.,;:](\s|$)|\(\s*\)|\[\s*\]")


def commands() -> Iterator[tuple[str, object]]:
    """(``"monitor check"``, the click command) for every command, subcommands included."""

    def walk(prefix: str, group: object) -> Iterator[tuple[str, object]]:
        for name, command in sorted(getattr(group, "commands", {}).items()):
            path = f"{prefix} {name}".strip()
            if getattr(command, "commands", None):
                yield from walk(path, command)
            else:
                yield path, command

    yield from walk("", typer.main.get_command(app))


COMMANDS = dict(commands())


def _cases() -> list[str]:
    return list(COMMANDS)


def test_every_command_is_walked() -> None:
    expected = {"deploy", "status", "cleanup", "logs", "inspect", "pack", "invoke", "bench", "build", "verify"}
    assert expected | {"serve", "monitor check", "monitor baseline", "monitor quality", "monitor report"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("name", _cases())
def test_every_option_has_a_help_text_rich_leaves_whole(name: str) -> None:
    command = COMMANDS[name]
    for param in command.params:  # type: ignore[attr-defined]
        text = getattr(param, "help", None)
        label = f"{name} {param.opts[0] if param.opts else param.name}"
        assert text and text.strip(), f"{label} has no help text"
        # Rich reads "[...]" as markup: a help text must come out of it as it went in.
        assert Text.from_markup(text).plain == text, f"{label}: Rich markup would eat part of {text!r}"
        assert "[default" not in text, f"{label}: write the default with show_default=, not in the help text"
    doc = command.help or ""  # type: ignore[attr-defined]
    assert Text.from_markup(doc).plain == doc, f"{name}: Rich markup would eat part of its docstring"


@pytest.mark.parametrize("name", _cases())
def test_rendered_help_has_no_artifacts(name: str) -> None:
    result = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert result.exit_code == 0, result.output
    lines = [line.strip("│ ").rstrip() for line in result.output.splitlines()]
    for line in lines:
        assert not ARTIFACTS.search(line), f"{name} --help: {line!r}"
    command = COMMANDS[name]
    text = " ".join(" ".join(lines).split())
    for param in command.params:  # type: ignore[attr-defined]
        if getattr(param, "hidden", False):
            continue
        first_words = " ".join(str(param.help).split()[:3])
        assert first_words in text, f"{name} --help lost the help of {param.name}: {first_words!r}"


def test_defaults_shown_are_the_library_defaults() -> None:
    from shipyard.cli import deploy as cli_deploy
    from shipyard.cli import image as cli_image
    from shipyard.deploy import options as spec
    from shipyard.image.build import DEFAULT_BASE

    library = spec.DeployOptions(".", "x")
    assert (library.instance_type, library.startup_timeout_s, library.log_retention_days) == (
        cli_deploy.DEFAULT_INSTANCE_TYPE,
        cli_deploy.DEFAULT_STARTUP_TIMEOUT_S,
        cli_deploy.DEFAULT_LOG_RETENTION_DAYS,
    )
    assert cli_deploy.DEFAULT_BASE == cli_image.DEFAULT_BASE == DEFAULT_BASE

    shown = " ".join(runner.invoke(app, ["deploy", "--help"], env={"COLUMNS": "250"}).output.split())
    for default in ("[default: ml.m5.large]", "[default: 600]", "[default: 30]", "[default: local]"):
        assert default in shown
    assert f"[default: {DEFAULT_BASE}]" in shown
    assert "[default: ($SHIPYARD_STATE, else ~/.shipyard/state.json)]" in shown


def test_a_default_is_not_an_option_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """--update keeps every deployed setting not named: the defaults --help shows must not count as given."""
    from shipyard.deploy.api import Deployer

    seen: dict[str, object] = {}

    def update(self: Deployer, name: str, source: str, **options: object) -> object:
        seen.update(options)
        raise KeyboardInterrupt  # stop before anything is deployed (the CLI exits 130)

    monkeypatch.setattr(Deployer, "update", update)
    result = runner.invoke(app, ["deploy", "--update", "x", ".", "--instance-count", "3"])
    assert result.exit_code == 130 or isinstance(result.exception, KeyboardInterrupt)
    assert seen["instance_count"] == 3
    for key in ("target", "instance_type", "startup_timeout_s", "log_retention_days", "base_image"):
        assert key not in seen, key
