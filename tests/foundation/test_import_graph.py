"""The import direction, derived from the source: every `import` and `from ... import` of
every module (lazy ones inside functions included) is an edge between packages, and each
edge must point down the layers

    core <- runtime <- {kerasio, synth} <- {convert, explain, benchmarks, train} <- hemiface

No sideways edges between packages of one layer, nothing below `hemiface/` imports it,
and no TensorFlow, Keras or matplotlib import is reachable from `runtime` (or `core`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> (folder, layer); a package may import only packages of a lower layer.
PACKAGES = {
    "core": ("core", 0),
    "runtime": ("runtime", 1),
    "kerasio": ("kerasio", 2),
    "synth": ("synth", 2),
    "convert": ("convert", 3),
    "explain": ("explain", 3),
    "benchmarks": ("benchmarks", 3),
    "train": ("train", 3),
    "hemiface": ("hemiface", 4),  # the CLI and the demo
}
HEAVY = ("tensorflow", "keras", "tf_keras", "matplotlib")


@dataclass(frozen=True)
class Edge:
    source: str  # package of the importing module
    module: str  # the importing module's path, for the message
    line: int
    target: str  # the imported module's dotted name


def package_of(dotted: str) -> str | None:
    """`hemiface.runtime.x` -> "runtime"; `hemiface.cli` or `hemiface` -> "hemiface"."""
    parts = dotted.split(".")
    if parts[0] != "hemiface":
        return None
    if len(parts) > 1 and parts[1] in PACKAGES and parts[1] != "hemiface":
        return parts[1]
    return "hemiface"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, at any depth, and of every
    `importlib.import_module("...")` with a constant name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from hemiface import x` imports the subpackage x when x is one
            if node.module == "hemiface":
                found += [(node.lineno, f"hemiface.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def all_edges() -> list[Edge]:
    edges = []
    for package, (folder, _) in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, target in imports_of(path):
                edges.append(Edge(package, str(path.relative_to(ROOT)), line, target))
    return edges


def test_every_package_folder_is_known() -> None:
    folders = {folder for folder, _ in PACKAGES.values()}
    mapped = {"core", "runtime", "kerasio", "synth", "convert", "explain", "benchmarks"}
    assert mapped <= folders
    for folder in folders:
        assert (ROOT / folder / "__init__.py").is_file(), folder


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for edge in all_edges():
        target = package_of(edge.target)
        if target is None or target == edge.source:
            continue
        if PACKAGES[target][1] >= PACKAGES[edge.source][1]:
            wrong.append(f"{edge.module}:{edge.line} ({edge.source}) imports {edge.target}")
    assert wrong == [], "imports against core <- runtime <- {kerasio, synth} <- ...:\n" + "\n".join(
        wrong
    )


def reachable_from(start: str, edges: list[Edge]) -> set[str]:
    """Packages reachable from `start` along hemiface imports."""
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        for edge in edges:
            target = package_of(edge.target)
            if edge.source == current and target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize("start", ["runtime", "core"])
def test_no_tensorflow_reachable_from_the_device_packages(start: str) -> None:
    edges = all_edges()
    packages = reachable_from(start, edges)
    assert packages <= {"runtime", "core"}
    heavy = [
        f"{e.module}:{e.line} imports {e.target}"
        for e in edges
        if e.source in packages and e.target.split(".")[0] in HEAVY
    ]
    assert heavy == []


def test_the_graph_sees_lazy_and_dynamic_imports(tmp_path: Path) -> None:
    """The parser finds imports inside functions and importlib calls, so the rules above
    can fail."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "def f():\n"
        "    from hemiface.convert import pipeline\n"
        "    importlib.import_module('tensorflow.lite')\n"
        "from hemiface import cli\n"
    )
    names = [name for _, name in imports_of(sample)]
    assert "hemiface.convert" in names and "tensorflow.lite" in names
    assert "hemiface.cli" in names
    assert package_of("hemiface.cli") == "hemiface"
    assert package_of("hemiface.runtime.manifest") == "runtime"
