"""Rules of the house that a test can check: who may import what, who may print, examples run."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import sentinel_fetch

PACKAGE = Path(sentinel_fetch.__file__).parent
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="sentinel_fetch.")
    if not info.name.endswith("__main__")
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(PACKAGE.parent).with_suffix("").parts
                base = ".".join(package[: len(package) - node.level])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def _files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (PACKAGE / folder).rglob("*.py"))


def test_the_emulator_never_imports_client_code() -> None:
    """The emulator follows the specification, not our client: no shared code."""
    for path in _files("emulator"):
        for name in _imports(path):
            if name.startswith("sentinel_fetch"):
                assert name.startswith("sentinel_fetch.emulator"), f"{path.name} imports {name}"


def test_the_library_never_imports_renderers_or_the_cli() -> None:
    library = [
        path
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.parts
        and "emulator" not in path.parts
        and path != PACKAGE / "__main__.py"  # `python -m sentinel_fetch` is the CLI
    ]
    assert len(library) > 15
    for path in library:
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in ("click", "rich", "tqdm"), f"{path.name} imports {name}"
            is_cli = name == "sentinel_fetch.cli" or name.startswith("sentinel_fetch.cli.")
            assert not is_cli, f"{path.name} imports {name}"


#: What the command line may import of the library, and why: the CLI parses, makes one
#: Client call, and renders. ``text`` makes server text safe on a terminal; ``redact``
#: masks secrets in log handlers and the ``config`` listing; the package root gives
#: ``__version__``.
CLI_MAY_IMPORT = {
    "sentinel_fetch",
    "sentinel_fetch.client",
    "sentinel_fetch.settings",
    "sentinel_fetch.config",
    "sentinel_fetch.progress",
    "sentinel_fetch.errors",
    "sentinel_fetch.text",
    "sentinel_fetch.redact",
}
#: The commands that run the emulator itself.
EMULATOR_COMMANDS = {"demo_cmd.py", "emulator_cmd.py"}


def test_the_cli_goes_through_the_client() -> None:
    """Job logic lives in the library: the CLI reaches it only through the Client."""
    files = _files("cli")
    assert len(files) > 8
    for path in files:
        for name in _imports(path):
            if name.split(".")[0] != "sentinel_fetch" or name.startswith("sentinel_fetch.cli."):
                continue
            if name.startswith("sentinel_fetch.emulator") and path.name in EMULATOR_COMMANDS:
                continue
            assert name in CLI_MAY_IMPORT, f"cli/{path.name} imports {name}"


def test_the_library_never_prints() -> None:
    allowed = {PACKAGE / "emulator" / "__main__.py"}  # the standalone emulator's own console
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.parts or path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ]
        assert not calls, f"{path.name} prints at lines {calls}"


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} failing example(s) in {module_name}"


def test_help_starts_fast_because_heavy_modules_load_lazily() -> None:
    import subprocess
    import sys

    heavy = ("requests", "shapely", "lark", "rich", "blake3", "numpy")
    code = (
        f"import sys, sentinel_fetch.cli\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"loaded at start-up: {result.stdout.strip()}"


def test_public_functions_are_never_shadowed_by_subpackages() -> None:
    """``sentinel_fetch.download`` stays the function after any subpackage is imported."""
    for name in MODULES:
        importlib.import_module(name)
    for name in sentinel_fetch.__all__:
        value = getattr(sentinel_fetch, name)
        assert not isinstance(value, type(sentinel_fetch)), f"sentinel_fetch.{name} is a module"
    assert callable(sentinel_fetch.download) and callable(sentinel_fetch.search)
