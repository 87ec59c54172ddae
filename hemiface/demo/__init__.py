"""`hemiface demo`: the whole toolkit end to end on the built-in synthetic default.

Stages (stages.py), each returning a typed record (results.py) and cached under the output
folder so that a rerun reuses what is done and valid (cache.py): data -> train -> convert
-> runtime -> explain -> bench. The runner (runner.py) runs them in order, reports a
failed stage and still runs the stages that do not depend on it, and writes the
walk-through (index.py); cli.py is the command. The exit code says whether all succeeded.
"""

from __future__ import annotations

from hemiface.demo.cli import demo, register
from hemiface.demo.runner import StageResult, run_demo

__all__ = ["StageResult", "demo", "register", "run_demo"]
