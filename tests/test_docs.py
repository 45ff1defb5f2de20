"""The documentation against the command line: help texts, README commands, option drift.

* every command has help text, and the README mentions it as ``sentinel-fetch <command>``;
* the README opens with the two commands a new user runs, and ``.ci/run`` runs exactly
  the second one (after installing the browser the map test needs); the Chinese README
  opens with the same two;
* every long option the READMEs show after ``sentinel-fetch <command>`` exists for that
  command, so renaming or removing an option cannot leave the documentation behind.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from sentinel_fetch.cli import _COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_ZH = ROOT / "README.zh-CN.md"
CI_RUN = ROOT / ".ci" / "run"

DEMO_COMMAND = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/sentinel-fetch demo"
TEST_COMMAND = 'python3 -m venv .venv && .venv/bin/pip install ".[test]" && .venv/bin/pytest'

# Where a command line ends inside a shell snippet.
_SEPARATORS = {"&&", "||", "|", ";", "#", ">", "2>", ">>", "2>&1", "&"}
_COMMAND_WORD = re.compile(r"^[a-z][a-z-]*$")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _first_code_block(text: str) -> tuple[list[str], list[str]]:
    """The lines before the first fenced block, and the block's lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return lines[:start], lines[start + 1 : end]


def _code_fragments(text: str) -> Iterator[str]:
    """Shell-like text: each line of fenced blocks (continuations joined) and inline code."""
    in_block = False
    pending = ""
    prose: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            if pending:
                yield pending
                pending = ""
            continue
        if in_block:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            yield pending + line
            pending = ""
        else:
            prose.append(line)
    yield from re.findall(r"`([^`\n]+)`", "\n".join(prose))


def _tokens(fragment: str) -> list[str]:
    try:
        return shlex.split(fragment, comments=False, posix=True)
    except ValueError:  # an unbalanced quote in an output sample
        return fragment.split()


def _global_options() -> dict[str, bool]:
    """Long options of the ``sentinel-fetch`` group -> whether they take a value."""
    options: dict[str, bool] = {}
    for param in cli.params:
        if isinstance(param, click.Option):
            for name in [*param.opts, *param.secondary_opts]:
                options[name] = not param.is_flag and not param.count
    return options


def _command_options(name: str) -> set[str]:
    """Every option string the command accepts."""
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    options = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            options.update(param.opts)
            options.update(param.secondary_opts)
    return options


def _documented_invocations(text: str) -> Iterator[tuple[str, list[str], str]]:
    """``(command, long options after it, fragment)`` for each documented invocation."""
    global_options = _global_options()
    for fragment in _code_fragments(text):
        tokens = _tokens(fragment)
        for index, token in enumerate(tokens):
            if token != "sentinel-fetch" and not re.search(r"[/\\]sentinel-fetch$", token):
                continue
            rest = tokens[index + 1 :]
            position = 0
            while position < len(rest) and rest[position].startswith("-"):
                option = rest[position].split("=", 1)[0]
                takes_value = global_options.get(option, False) and "=" not in rest[position]
                position += 2 if takes_value else 1
            if position >= len(rest) or not _COMMAND_WORD.match(rest[position]):
                continue
            command = rest[position]
            options = []
            for word in rest[position + 1 :]:
                if word in _SEPARATORS or word.startswith("#"):
                    break
                if word.startswith("--"):
                    options.append(word.split("=", 1)[0])
            yield command, options, fragment


# --- help texts ------------------------------------------------------------------------


def test_command_table_matches_the_group() -> None:
    assert list(_COMMANDS) == cli.list_commands(click.Context(cli))
    for name, (_module, _attribute, short_help) in _COMMANDS.items():
        assert short_help.strip(), f"{name} has no short help in the command list"


@pytest.mark.parametrize("name", list(_COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", name, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = " ".join(result.stdout.split())
    assert "usage:" in output.lower()
    assert f"sentinel-fetch {name}" in output
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.help, f"{name} has no docstring"
    description = command.help.strip().splitlines()[0]
    assert description.strip(), f"{name} has no description"
    assert " ".join(description.split()) in output


def test_main_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in _COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s+\S", result.stdout, re.M), name


# --- the README ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_COMMANDS))
def test_readme_mentions_every_command(name: str) -> None:
    assert re.search(rf"sentinel-fetch {re.escape(name)}\b", _text(README)), (
        f"README.md does not show 'sentinel-fetch {name}'"
    )


def test_readme_opens_with_the_two_commands() -> None:
    before, block = _first_code_block(_text(README))
    assert block == [DEMO_COMMAND, TEST_COMMAND]
    words = [line for line in before if line.strip()]
    titles = [line for line in words if line.startswith("# ")]
    assert titles == ["# sentinel-fetch"], "the README starts with its title"
    after_title = words[words.index(titles[0]) + 1 :]
    assert len(after_title) == 1, "only a one-sentence description between title and commands"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = [
        line.strip()
        for line in _text(CI_RUN).splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.startswith("set ")
        and not line.startswith("cd ")
        and not line.startswith("export ")
    ]
    # Before it, only the browser the HTML map test needs and the PostgreSQL server the
    # ledger's tests need (each installed when missing).
    assert commands == [".ci/browser", ".ci/postgres", TEST_COMMAND]


def test_chinese_readme_opens_with_the_same_commands() -> None:
    _before, block = _first_code_block(_text(README_ZH))
    assert block == [DEMO_COMMAND, TEST_COMMAND]


def test_readmes_link_to_each_other() -> None:
    english_top = "\n".join(_text(README).splitlines()[:5])
    chinese_top = "\n".join(_text(README_ZH).splitlines()[:5])
    assert "(README.zh-CN.md)" in english_top
    assert "(README.md)" in chinese_top


@pytest.mark.parametrize("path", [README, README_ZH], ids=lambda path: path.name)
def test_documented_options_exist(path: Path) -> None:
    known_commands = set(_COMMANDS)
    invocations = list(_documented_invocations(_text(path)))
    seen = {command for command, _options, _fragment in invocations}
    assert {"search", "download"} <= seen, "the README shows search and download"
    problems = []
    for command, options, fragment in invocations:
        if command not in known_commands:
            problems.append(f"unknown command {command!r} in: {fragment.strip()}")
            continue
        accepted = _command_options(command)
        problems.extend(
            f"'sentinel-fetch {command}' has no option {option}: {fragment.strip()}"
            for option in options
            if option not in accepted
        )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", [README, README_ZH], ids=lambda path: path.name)
def test_options_in_tables_and_prose_exist(path: Path) -> None:
    # Option tables name options without the command in front: each must belong to
    # some command (or to the group itself).
    accepted = set(_global_options())
    for name in _COMMANDS:
        accepted |= _command_options(name)
    prose = re.sub(r"```.*?```", "", _text(path), flags=re.S)
    mentioned = set()
    for span in re.findall(r"`([^`\n]+)`", prose):
        mentioned.update(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", span))
    unknown = sorted(mentioned - accepted)
    assert not unknown, f"{path.name} mentions options no command has: {unknown}"


def test_option_check_catches_drift() -> None:
    text = "```\nsentinel-fetch -v download --from r.json --no-such-option\n```\n"
    found = list(_documented_invocations(text))
    assert found == [("download", ["--from", "--no-such-option"], found[0][2])]
    assert "--no-such-option" not in _command_options("download")
    assert "--from" in _command_options("download")
