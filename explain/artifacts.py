"""The artifacts of a model set, ready for perturbation explanations (TF-free).

`open_format` reads one format of a set: every model's artifact, or a passed fused
artifact in place of the models it serves (their shared trunk once per image), each file
checksummed before its bytes reach an interpreter, and returns an `ArtifactPool` that
scores batches of images on every core. `transform` rewrites the bytes before loading:
the sanity check passes a weight shuffle (explain/shuffle.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hemiface.runtime.backends import default_num_threads, resolve_backend
from hemiface.runtime.batched import ArtifactPool, ArtifactSource
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.fused import choose_fused
from hemiface.runtime.manifest import (
    FORMATS,
    Manifest,
    ModelEntry,
    Preprocessing,
    load_manifest,
    read_verified_model,
)

# Images an interpreter takes per invoke: larger batches ran no faster per image here and
# cost memory on a Pi.
DEFAULT_BATCH = 8


@dataclass
class SetFormat:
    """One format of a model set, opened for scoring."""

    folder: Path
    format: str
    entries: list[ModelEntry]  # the models, in the set's order
    spec: Preprocessing
    pool: ArtifactPool
    fused_files: list[str]  # fused artifacts used (each answers for several models)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def close(self) -> None:
        self.pool.close()


def usable_formats(manifest: Manifest, names: Sequence[str]) -> list[str]:
    """Formats with an artifact of every model whose verification did not fail, in the
    order of FORMATS (float32 first, the reference of the drift figures)."""
    usable = []
    for fmt in FORMATS:
        entries = [e for e in manifest.models if e.format == fmt and e.name in names]
        if len(entries) != len(names):
            continue
        if all(e.verification is None or e.verification.passed for e in entries):
            usable.append(fmt)
    return usable


def open_format(
    folder: Path,
    fmt: str,
    names: Sequence[str],
    *,
    workers: int | None = None,
    batch: int = DEFAULT_BATCH,
    fuse: bool = True,
    backend: str | None = None,
    transform: Callable[[bytes], bytes] | None = None,
) -> SetFormat:
    """Open format `fmt` of the models `names` of the set in `folder` on `workers` threads
    (default: the physical cores, at most 4), one single-thread interpreter each."""
    folder = Path(folder)
    manifest = load_manifest(folder, check_files=False)
    missing = [n for n in names if fmt not in manifest.formats_of(n)]
    if missing:
        raise ManifestError(f"{folder}: no {fmt} artifact of {', '.join(missing)}")
    entries = [manifest.entry(n, fmt) for n in names]
    change = transform or (lambda content: content)
    fused = choose_fused(manifest, names, fmt) if fuse else []
    covered = {m for f in fused for m in f.models}
    sources = [
        ArtifactSource(
            f.file,
            change(read_verified_model(folder, f)),
            [o.index for o in f.outputs],
            [o.model for o in f.outputs],
        )
        for f in fused
    ]
    sources += [
        ArtifactSource(e.file, change(read_verified_model(folder, e)), [0], [e.name])
        for e in entries
        if e.name not in covered
    ]
    specs = {(p.width, p.height, p.resize, p.scale, p.offset, p.color_order) for p in
             [e.preprocessing for e in entries]}  # fmt: skip
    if len(specs) != 1:
        raise ManifestError(
            f"{folder}: the models' preprocessing differs; explain them one at a time (--only)"
        )
    pool = ArtifactPool(
        sources, resolve_backend(backend), names, workers or default_num_threads(), batch
    )
    return SetFormat(folder, fmt, entries, entries[0].preprocessing, pool, [f.file for f in fused])
