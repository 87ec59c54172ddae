"""The format that runs fastest on this machine: timed here on first use, then cached.

The manifest records each artifact's latency on the machine that converted the set, which
says little about the device that runs it: on the x86 workstations measured here float32
was as fast as full int8 or faster, while on a Raspberry Pi's Arm cores int8 is expected
to be several times faster. So, when no format is asked for, the runtime times every
verified format of the selected models here (a warm-up and a few invokes on a blank
input) and keeps the medians in the user's cache folder, keyed by this machine (its
architecture, CPU model and CPU flags) and by the sha256 of the set's manifest. A
different CPU (the same disk image under an emulator, say) or a changed model set is a
different key and is timed again; the interpreter backend and thread count are recorded
inside the entry and timed separately.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hemiface.runtime.backends import Backend, default_num_threads
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.fused import choose_fused
from hemiface.runtime.manifest import (
    FORMATS,
    FusedEntry,
    Manifest,
    ModelEntry,
    atomic_write_bytes,
    manifest_path,
    read_verified_model,
)

CACHE_ENV = "HEMIFACE_CACHE_DIR"  # overrides the cache folder (tests, read-only homes)
CACHE_SUBDIR = "format-choice"
# 2: each timing is {"ms": median} or {"error": why}; files of schema 1 (a number or an
# "error: ..." string) are not read, so their sets are timed again.
CACHE_SCHEMA = 2
WARMUP_INVOKES = 1
MIN_INVOKES = 3
MAX_INVOKES = 15
TIME_BUDGET_S = 0.3  # per artifact, after the warm-up; MIN_INVOKES are always made
# Formats whose timings differ by less than this share are tied: the more exact one runs.
NOISE_MARGIN = 0.05

# A timer gets the artifact's manifest entry and its allocated interpreter, and returns
# one latency figure in milliseconds.
Timer = Callable[[ModelEntry | FusedEntry, Any], float]


@dataclass(frozen=True)
class Timing:
    """One artifact timed on this machine: its median milliseconds, or why this machine's
    interpreter cannot run it (exactly one of the two is set)."""

    ms: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, float | str]:
        return {"ms": self.ms} if self.ms is not None else {"error": self.error or ""}

    @staticmethod
    def from_json(value: Any) -> Timing | None:
        """The timing a cache file holds, or None when the value is not one."""
        if not isinstance(value, dict) or len(value) != 1:
            return None
        ms, error = value.get("ms"), value.get("error")
        if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0:
            return Timing(ms=float(ms))
        if isinstance(error, str):
            return Timing(error=error)
        return None


@dataclass(frozen=True)
class MachineKey:
    """What makes two machines' timings comparable: architecture, CPU model and flags."""

    machine: str  # platform.machine(), e.g. "x86_64", "aarch64", "armv7l"
    cpu: str  # e.g. "AMD EPYC 9B14" or "0x41 0xd08 / Raspberry Pi 4 Model B Rev 1.4"
    flags: str  # the CPU flags (x86 "flags", Arm "Features"), sorted

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def machine_key(cpuinfo: Path = Path("/proc/cpuinfo")) -> MachineKey:
    """This machine's key, from /proc/cpuinfo (elsewhere: the platform module)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in fields:  # the first processor speaks for all
            fields[key] = value.strip()
    arm_core = " ".join(v for v in (fields.get("CPU implementer"), fields.get("CPU part")) if v)
    parts = [fields.get("model name", ""), arm_core, fields.get("Hardware", "")]
    parts.append(fields.get("Model", ""))
    cpu = " / ".join(p for p in parts if p) or platform.processor() or platform.machine()
    flags = fields.get("flags") or fields.get("Features") or ""
    return MachineKey(platform.machine(), cpu, " ".join(sorted(set(flags.split()))))


def cache_root() -> Path:
    """$HEMIFACE_CACHE_DIR, else $XDG_CACHE_HOME/hemiface, else ~/.cache/hemiface."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hemiface"


def manifest_sha256(folder: Path) -> str:
    path = manifest_path(folder)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc})") from None


def cache_file(root: Path, machine: MachineKey, manifest_digest: str) -> Path:
    return root / CACHE_SUBDIR / f"{machine.digest()[:16]}-{manifest_digest[:16]}.json"


def time_interpreter(entry: ModelEntry | FusedEntry, interpreter: Any) -> float:
    """Median milliseconds of single invokes on a blank input, after a warm-up.

    At least MIN_INVOKES and at most MAX_INVOKES, stopping once TIME_BUDGET_S is spent, so
    a slow device (or an emulator) is not held up for long.
    """
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
    for _ in range(WARMUP_INVOKES):
        interpreter.invoke()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < MIN_INVOKES or (len(samples) < MAX_INVOKES and spent < TIME_BUDGET_S):
        start = time.perf_counter()
        interpreter.invoke()
        elapsed = time.perf_counter() - start
        spent += elapsed
        samples.append(elapsed * 1000.0)
    return statistics.median(samples)


def candidate_formats(manifest: Manifest, names: Sequence[str]) -> tuple[list[str], bool]:
    """(formats every model has that passed verification, True) or, for a manifest with no
    verification figures at all, (every format every model has, False)."""
    available = [f for f in FORMATS if all(f in manifest.formats_of(n) for n in names)]
    if not available:
        raise ManifestError(f"no format is available for every model of {', '.join(names)}")
    checks = {f: [manifest.entry(n, f).verification for n in names] for f in available}
    verified = [f for f in available if all(v is not None and v.passed for v in checks[f])]
    if verified:
        return verified, True
    if any(v is not None for values in checks.values() for v in values):
        raise ManifestError("no format passed verification for every model; pick one with --format")
    return available, False


@dataclass
class FormatChoice:
    """The format chosen for this machine, the figures behind it, and where they are kept."""

    format: str
    reason: str
    candidates: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)  # format -> sum over models
    failed: dict[str, str] = field(default_factory=dict)  # format -> why it could not run
    timed_here: bool = False  # measured by this call (False: read from the cache)
    cache_file: str | None = None
    setting: str = ""  # backend and threads the timings hold for
    machine: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_cache(path: Path, machine: MachineKey, digest: str) -> dict[str, Any]:
    """The cached entry, or a fresh one when there is none or it belongs elsewhere."""
    fresh: dict[str, Any] = {
        "schema": CACHE_SCHEMA,
        "machine": asdict(machine),
        "manifest_sha256": digest,
        "settings": {},
    }
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fresh
    if (
        not isinstance(data, dict)
        or data.get("schema") != CACHE_SCHEMA
        or data.get("machine") != asdict(machine)
        or data.get("manifest_sha256") != digest
        or not _valid_settings(data.get("settings"))
    ):
        return fresh  # a damaged or colliding file is timed again and replaced
    return data


def _valid_settings(settings: Any) -> bool:
    """{setting: {"ms": {unit: {format: {"ms": ms} or {"error": why}}}, "timed_at": str}}."""
    if not isinstance(settings, dict):
        return False
    for record in settings.values():
        if not isinstance(record, dict) or not isinstance(record.get("ms"), dict):
            return False
        for per_format in record["ms"].values():
            if not isinstance(per_format, dict):
                return False
            if not all(Timing.from_json(value) for value in per_format.values()):
                return False
    return True


def _time_artifact(
    content: bytes, entry: ModelEntry | FusedEntry, backend: Backend, threads: int, timer: Timer
) -> Timing:
    """Median ms, or the error when this machine's interpreter cannot run the artifact."""
    try:
        interpreter = backend.make_interpreter(content, threads)
        return Timing(ms=round(float(timer(entry, interpreter)), 4))
    except (ValueError, RuntimeError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Timing(error=first_line)


def _units(
    manifest: Manifest, names: Sequence[str], fmt: str, fuse: bool
) -> dict[str, ModelEntry | FusedEntry]:
    """The artifacts one prediction of `names` in `fmt` runs, by cache key."""
    fused = choose_fused(manifest, names, fmt) if fuse else []
    covered = {m for f in fused for m in f.models}
    units: dict[str, ModelEntry | FusedEntry] = {f"fused:{f.name}": f for f in fused}
    units.update({n: manifest.entry(n, fmt) for n in names if n not in covered})
    return units


def most_exact_of_the_fastest(timings: dict[str, float]) -> str:
    """The most exact format (FORMATS' order: float32 first) among those within
    `NOISE_MARGIN` of the fastest: a difference that small is the machine's noise, not the
    format's speed, and should not cost exactness."""
    fastest = min(timings.values())
    close = [f for f, ms in timings.items() if ms <= fastest * (1.0 + NOISE_MARGIN)]
    return min(close, key=FORMATS.index)


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def choose_on_device(
    folder: Path,
    manifest: Manifest,
    names: Sequence[str],
    backend: Backend,
    num_threads: int | None = None,
    *,
    timer: Timer | None = None,
    root: Path | None = None,
    machine: MachineKey | None = None,
    retime: bool = False,
    fuse: bool = True,
) -> FormatChoice:
    """The fastest verified format for `names` on this machine, timed once and cached.

    With `fuse`, a format's time is that of the interpreters the set will run in it: each
    passed fused artifact once (keyed "fused:" and its name in the cache), the other
    models' own artifacts. `retime` ignores the cache. An unwritable cache folder is not an
    error: the choice is made and the reason says it was not kept.
    """
    folder = Path(folder)
    candidates, verified = candidate_formats(manifest, names)
    kind = "verified" if verified else "available (the manifest has no verification figures)"
    key = machine or machine_key()
    threads = num_threads or default_num_threads()
    setting = f"{backend.label}, {threads} thread(s)"
    if len(candidates) == 1:
        return FormatChoice(
            candidates[0],
            f"the only {kind} format",
            candidates,
            setting=setting,
            machine=asdict(key),
        )
    digest = manifest_sha256(folder)
    path = cache_file(root or cache_root(), key, digest)
    data = _read_cache(path, key, digest)
    if retime:
        data["settings"].pop(setting, None)
    record = data["settings"].setdefault(setting, {"ms": {}})
    measured: dict[str, dict[str, Any]] = record.setdefault("ms", {})
    units = {fmt: _units(manifest, names, fmt, fuse) for fmt in candidates}
    missing = [
        (unit, fmt)
        for fmt, per_format in units.items()
        for unit in per_format
        if fmt not in measured.get(unit, {})
    ]
    # Every file is checksummed before any of them reaches an interpreter.
    contents = {(u, f): read_verified_model(folder, units[f][u]) for u, f in missing}
    for (unit, fmt), content in contents.items():
        entry = units[fmt][unit]
        result = _time_artifact(content, entry, backend, threads, timer or time_interpreter)
        measured.setdefault(unit, {})[fmt] = result.to_json()
    contents.clear()
    kept = ""
    if missing:
        record["timed_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(data, indent=2, sort_keys=True) + "\n"
            atomic_write_bytes(path, text.encode("utf-8"))
        except OSError as exc:
            kept = f"; not cached: {path.parent}: {exc.strerror or exc}"
    timings: dict[str, float] = {}
    failed: dict[str, str] = {}
    for fmt in candidates:
        results = {unit: Timing.from_json(measured[unit][fmt]) for unit in units[fmt]}
        errors = [f"{unit}: error: {r.error}" for unit, r in results.items() if r and r.error]
        if errors:
            failed[fmt] = "; ".join(errors)
        else:
            timings[fmt] = round(sum(r.ms or 0.0 for r in results.values() if r), 3)
    if not timings:
        raise ManifestError(
            f"{folder}: no {kind} format can run here ({'; '.join(failed.values())})"
        )
    best = most_exact_of_the_fastest(timings)
    others = ", ".join(f"{f} {_ms(ms)} ms" for f, ms in sorted(timings.items(), key=lambda x: x[1]))
    when = "timed here now" if missing else f"timed here {record.get('timed_at', '')}, cached"
    reason = (
        f"fastest {kind} on this machine for {len(names)} model(s): {others} ({when}{kept})"
        if len(timings) > 1
        else f"the only {kind} format that runs here ({others}; {when}{kept})"
    )
    return FormatChoice(
        format=best,
        reason=reason,
        candidates=candidates,
        timings_ms=timings,
        failed=failed,
        timed_here=bool(missing),
        cache_file=str(path),
        setting=setting,
        machine=asdict(key),
    )


def describe_choice(
    folder: Path,
    only: Sequence[str] | None = None,
    backend: str | None = None,
    num_threads: int | None = None,
    retime: bool = False,
) -> tuple[FormatChoice, tuple[str, str]]:
    """What `predict`/`run` would pick for the set in `folder` here, and the manifest's pick.

    Returns (this machine's choice, (format, reason) by the converting machine's latencies).
    """
    from hemiface.core.quiet import quiet_fds
    from hemiface.runtime.backends import resolve_backend
    from hemiface.runtime.manifest import load_manifest
    from hemiface.runtime.modelset import choose_format

    manifest = load_manifest(folder, check_files=False)
    names = manifest.names()
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ManifestError(f"{folder}: no model named {', '.join(unknown)}")
        names = [n for n in names if n in only]
    if not names:
        raise ManifestError(f"{folder}: the manifest lists no models")
    chosen = resolve_backend(backend)
    with quiet_fds(2):
        choice = choose_on_device(folder, manifest, names, chosen, num_threads, retime=retime)
    try:
        by_manifest = choose_format(manifest, names)
    except ManifestError as exc:
        by_manifest = ("none", str(exc))
    return choice, by_manifest
