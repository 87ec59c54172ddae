"""Run mypy on hemiface as it installs: `hemiface.runtime` from runtime/, and so on.

    python tools/typecheck.py [MYPY ARGS...]

The packages live in top-level folders that pyproject's [tool.setuptools.package-dir]
maps into the `hemiface` namespace, and an editable install resolves them with an import
hook that mypy cannot follow. So this builds the installed layout as a tree of symbolic
links in a temporary folder and runs mypy there, with the repository's [tool.mypy]
settings. Messages name files as `hemiface/runtime/manifest.py` (= runtime/manifest.py).
Exits with mypy's status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # mypy installs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def link_tree(target: Path) -> None:
    """`target/hemiface/...`: the files of every package at its installed module path."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_dir: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dir.items():
        where = target.joinpath(*package.split("."))
        where.mkdir(parents=True, exist_ok=True)
        for source in sorted((ROOT / folder).iterdir()):
            link = where / source.name
            module = source.suffix == ".py" or source.name == "py.typed"
            subpackage = source.is_dir() and (source / "__init__.py").is_file()
            if (module or subpackage) and not link.exists():
                link.symlink_to(source)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="hemiface-typecheck-") as tmp:
        tree = Path(tmp)
        link_tree(tree)
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *argv,
        ]
        env = {**os.environ, "MYPYPATH": str(tree)}
        return subprocess.run(command, cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
