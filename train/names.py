"""File names of the training report (TF-free: import it anywhere). The reference
models' names, titles and files live in `hemiface.core.domain`."""

from __future__ import annotations

REPORT_JSON = "training_report.json"
REPORT_MD = "training_report.md"
