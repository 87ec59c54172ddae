"""What a bench run measures: `--only` tokens split into models, formats, engines and
sections (the four of SECTIONS by default; the STUDIES only when named)."""

from __future__ import annotations

from dataclasses import dataclass

from hemiface.benchmarks import latency as lat
from hemiface.core.errors import HemifaceError
from hemiface.runtime.manifest import FORMATS, Manifest

SECTIONS = ("latency", "set", "agreement", "pipeline")
# Studies that run only when named: they take minutes (int8_io converts the models twice).
STUDIES = ("detectors", "int8_io")
ENGINE_ALIASES = {
    "keras": list(lat.KERAS_ENGINES),
    "predict": ["keras_predict"],
    "keras_predict": ["keras_predict"],
    "call": ["keras_call"],
    "keras_call": ["keras_call"],
    "tflite": ["tflite"],
}


@dataclass
class Selection:
    models: list[str]
    formats: list[str]
    engines: list[str]
    sections: list[str]


def parse_only(only: list[str], manifest: Manifest) -> Selection:
    """Split --only tokens into models, formats, engines and sections; each kind not
    named means all of that kind. Models may be named by name or title."""
    titles: dict[str, str] = {}
    for entry in manifest.models:
        titles.setdefault(entry.title.lower(), entry.name)
        titles.setdefault(entry.name.lower(), entry.name)
    models: list[str] = []
    formats: list[str] = []
    engines: list[str] = []
    sections: list[str] = []
    for raw in (t for item in only for t in item.split(",")):
        token = raw.strip().lower().replace("-", "_")
        if not token:
            continue
        if token in titles:
            models.append(titles[token])
        elif token in FORMATS:
            formats.append(token)
        elif token in ENGINE_ALIASES:
            engines += ENGINE_ALIASES[token]
        elif token in SECTIONS or token in STUDIES:
            sections.append(token)
        else:
            kinds = set(titles) | set(FORMATS) | set(ENGINE_ALIASES) | set(SECTIONS)
            choices = sorted(kinds | {s.replace("_", "-") for s in STUDIES})
            raise HemifaceError(
                f"--only {raw!r}: not a model, format, engine or section; "
                f"choose from {', '.join(choices)}"
            )
    present_formats = [f for f in FORMATS if any(e.format == f for e in manifest.models)]
    return Selection(
        models=list(dict.fromkeys(models)) or manifest.names(),
        formats=list(dict.fromkeys(formats)) or present_formats,
        engines=list(dict.fromkeys(engines)) or list(lat.ENGINES),
        sections=[s for s in (*SECTIONS, *STUDIES) if s in sections] or list(SECTIONS),
    )
