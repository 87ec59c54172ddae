"""The format chosen on the device: timed here once, cached per machine and manifest."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hemiface.runtime import device_choice
from hemiface.runtime.backends import resolve_backend
from hemiface.runtime.device_choice import MachineKey, choose_on_device, machine_key
from hemiface.runtime.errors import ManifestError
from hemiface.runtime.manifest import MANIFEST_NAME, load_manifest, save_manifest
from hemiface.runtime.modelset import load_model_set

NAMES = ["mobilenetv2_base_model", "mobilenetv2_finetuned_model", "cnn_stroke_model"]
PI4 = MachineKey("aarch64", "0x41 0xd08 / BCM2835", "asimd cpuid crc32 evtstrm fp")
X86 = MachineKey("x86_64", "AMD EPYC", "avx2 fma sse4_2")

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx2 fma avx512_vnni

processor\t: 1
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx2 fma avx512_vnni
"""
PI_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


class CountingTimer:
    """Stands in for the stopwatch: fixed milliseconds per format, and a call count."""

    def __init__(self, ms: dict[str, float]) -> None:
        self.ms = ms
        self.calls: list[tuple[str, str]] = []

    def __call__(self, entry, interpreter) -> float:  # noqa: ANN001
        assert interpreter.get_input_details()  # a real, allocated interpreter
        self.calls.append((entry.name, entry.format))
        if isinstance(self.ms[entry.format], Exception):
            raise self.ms[entry.format]
        return self.ms[entry.format]


def _choose(folder: Path, root: Path, machine: MachineKey, timer: CountingTimer, **kw):  # noqa: ANN202
    manifest = load_manifest(folder, check_files=False)
    backend = resolve_backend()
    return choose_on_device(
        folder, manifest, NAMES, backend, 1, timer=timer, root=root, machine=machine, **kw
    )


def test_machine_key_reads_model_and_flags(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text(X86_CPUINFO)
    pi = tmp_path / "pi"
    pi.write_text(PI_CPUINFO)
    a, b = machine_key(x86), machine_key(pi)
    assert a.cpu == "AMD EPYC 9B14" and a.flags == "avx2 avx512_vnni fma fpu sse2"
    assert b.cpu == "0x41 0xd08 / BCM2835 / Raspberry Pi 4 Model B Rev 1.4"
    assert b.flags == "asimd cpuid crc32 evtstrm fp"
    x86.write_text(X86_CPUINFO.replace(" avx512_vnni", ""))  # the same model, fewer flags
    assert machine_key(x86).digest() != a.digest()


def test_timed_once_then_cached_per_machine_and_manifest(model_set_dir: Path, tmp_path: Path):
    timer = CountingTimer({"float32": 5.0, "int8": 2.0})
    first = _choose(model_set_dir, tmp_path, PI4, timer)
    assert first.format == "int8" and first.timed_here
    assert sorted(timer.calls) == sorted((n, f) for n in NAMES for f in ("float32", "int8"))
    assert first.timings_ms == {"float32": 15.0, "int8": 6.0}
    assert "fastest verified on this machine" in first.reason and "timed here now" in first.reason
    cache = Path(first.cache_file)
    manifest_digest = device_choice.manifest_sha256(model_set_dir)
    assert cache.name == f"{PI4.digest()[:16]}-{manifest_digest[:16]}.json"
    stored = json.loads(cache.read_text())
    assert stored["machine"]["cpu"] == PI4.cpu and stored["manifest_sha256"] == manifest_digest

    again = _choose(model_set_dir, tmp_path, PI4, timer)
    assert len(timer.calls) == 6  # nothing timed again
    assert again.format == "int8" and not again.timed_here and "cached" in again.reason
    assert again.timings_ms == first.timings_ms


def test_another_cpu_is_timed_again_and_may_choose_otherwise(model_set_dir: Path, tmp_path):
    pi_timer = CountingTimer({"float32": 46.0, "int8": 17.0})
    x86_timer = CountingTimer({"float32": 6.8, "int8": 10.6})
    on_pi = _choose(model_set_dir, tmp_path, PI4, pi_timer)
    on_x86 = _choose(model_set_dir, tmp_path, X86, x86_timer)
    assert len(x86_timer.calls) == 6  # the Pi's figures were not reused
    assert (on_pi.format, on_x86.format) == ("int8", "float32")
    assert on_pi.cache_file != on_x86.cache_file
    # each machine still reads its own entry
    assert _choose(model_set_dir, tmp_path, PI4, CountingTimer({})).format == "int8"


def test_changed_manifest_is_timed_again(model_set_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "set"
    shutil.copytree(model_set_dir, copy)
    timer = CountingTimer({"float32": 5.0, "int8": 2.0})
    before = _choose(copy, tmp_path / "cache", PI4, timer)
    manifest = load_manifest(copy)
    for entry in manifest.models:
        entry.threshold = 0.55
    save_manifest(manifest, copy)
    after = _choose(copy, tmp_path / "cache", PI4, timer)
    assert len(timer.calls) == 12 and after.timed_here
    assert before.cache_file != after.cache_file


def test_threads_and_retime_are_timed_again(model_set_dir: Path, tmp_path: Path) -> None:
    timer = CountingTimer({"float32": 5.0, "int8": 2.0})
    _choose(model_set_dir, tmp_path, PI4, timer)
    manifest = load_manifest(model_set_dir, check_files=False)
    two = choose_on_device(
        model_set_dir, manifest, NAMES, resolve_backend(), 2, timer=timer, root=tmp_path,
        machine=PI4,
    )  # fmt: skip
    assert len(timer.calls) == 12 and two.setting.endswith("2 thread(s)")
    timer.ms = {"float32": 1.0, "int8": 2.0}
    redone = _choose(model_set_dir, tmp_path, PI4, timer, retime=True)
    assert len(timer.calls) == 18 and redone.format == "float32"


def test_format_that_cannot_run_here_is_left_out(model_set_dir: Path, tmp_path: Path) -> None:
    timer = CountingTimer({"float32": 5.0, "int8": ValueError("Didn't find op for builtin")})
    choice = _choose(model_set_dir, tmp_path, PI4, timer)
    assert choice.format == "float32" and "int8" in choice.failed
    assert "Didn't find op" in choice.failed["int8"]
    assert "the only verified format that runs here" in choice.reason
    everything_fails = CountingTimer({"float32": RuntimeError("x"), "int8": ValueError("y")})
    with pytest.raises(ManifestError, match="no verified format can run here"):
        _choose(model_set_dir, tmp_path, X86, everything_fails)


def test_only_verified_formats_are_candidates(model_set_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "set"
    shutil.copytree(model_set_dir, copy)
    manifest = load_manifest(copy)
    for entry in manifest.models:
        if entry.format == "int8":
            entry.verification.passed = False
    save_manifest(manifest, copy)
    timer = CountingTimer({"float32": 5.0, "int8": 1.0})
    choice = _choose(copy, tmp_path / "cache", PI4, timer)
    assert choice.format == "float32" and timer.calls == []
    assert choice.reason == "the only verified format"


def test_unwritable_or_damaged_cache_still_chooses(model_set_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    timer = CountingTimer({"float32": 5.0, "int8": 2.0})
    choice = _choose(model_set_dir, blocker, PI4, timer)
    assert choice.format == "int8" and "not cached" in choice.reason
    good = _choose(model_set_dir, tmp_path / "cache", PI4, timer)
    Path(good.cache_file).write_text('{"schema": 1, "settings": [1, 2]}')
    calls = len(timer.calls)
    again = _choose(model_set_dir, tmp_path / "cache", PI4, timer)
    assert again.timed_here and len(timer.calls) == calls + 6


def test_format_option_wins_and_times_nothing(
    model_set_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(entry, interpreter):  # noqa: ANN001, ANN202
        raise AssertionError("timed although --format was given")

    monkeypatch.setattr(device_choice, "time_interpreter", refuse)
    monkeypatch.setenv(device_choice.CACHE_ENV, str(tmp_path / "cache"))
    model_set = load_model_set(model_set_dir, fmt="float32")
    assert model_set.format == "float32" and model_set.format_reason == "asked for"
    assert not (tmp_path / "cache").exists()


def test_default_load_times_on_this_machine_into_the_cache(
    model_set_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(device_choice.CACHE_ENV, str(tmp_path / "cache"))
    timer = CountingTimer({"float32": 3.0, "int8": 8.0})
    monkeypatch.setattr(device_choice, "time_interpreter", timer)
    assert load_model_set(model_set_dir).format == "float32"
    assert len(list((tmp_path / "cache" / device_choice.CACHE_SUBDIR).glob("*.json"))) == 1
    model_set = load_model_set(model_set_dir)
    assert len(timer.calls) == 6 and "cached" in model_set.format_reason


def test_real_timer_gives_a_positive_median(model_set_dir: Path) -> None:
    manifest = load_manifest(model_set_dir, check_files=False)
    entry = manifest.entry("cnn_stroke_model", "int8")
    content = (model_set_dir / entry.file).read_bytes()
    interpreter = resolve_backend().make_interpreter(content, 1)
    assert device_choice.time_interpreter(entry, interpreter) > 0.0


def test_info_shows_the_choice_and_why(model_set_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, device_choice.CACHE_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-m", "hemiface", "info", "--models", str(model_set_dir)]
    first = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    choice = json.loads(first.stdout)["format_choice"]
    assert choice["format"] in ("float32", "int8") and choice["timed_here"]
    assert set(choice["timings_ms"]) == {"float32", "int8"}
    assert choice["manifest_choice"]["format"] == "int8"  # the converter's figures
    table = subprocess.run(command, capture_output=True, text=True, env=env)
    assert table.returncode == 0, table.stderr
    assert "format choice for" in table.stdout and "cached" in table.stdout
    assert re.search(rf"chosen\s+│\s+{choice['format']}\s", table.stdout)
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "nothing")], capture_output=True, text=True, env=env
    )
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1
    assert MANIFEST_NAME in missing.stderr


def test_fused_artifacts_are_timed_as_they_run(fused_set, tmp_path: Path) -> None:
    """With fusion the siblings' shared artifact is timed once, in place of their own files."""
    _, folder = fused_set
    manifest = load_manifest(folder, check_files=False)
    fused_models = {m for f in manifest.fused if f.passed for m in f.models}
    assert len(fused_models) == 2
    timer = CountingTimer({"float32": 4.0, "int8": 3.0})
    choice = _choose(folder, tmp_path / "fused", X86, timer)
    timed = {name for name, _ in timer.calls}
    assert any(f.name in timed for f in manifest.fused)
    assert not fused_models & timed  # the siblings' own artifacts were not timed
    # one fused artifact plus the CNN: two units a format
    assert choice.format == "int8" and choice.timings_ms == {"float32": 8.0, "int8": 6.0}

    separate = CountingTimer({"float32": 4.0, "int8": 3.0})
    choice = _choose(folder, tmp_path / "separate", X86, separate, fuse=False)
    assert {name for name, _ in separate.calls} == set(NAMES)
    assert choice.timings_ms == {"float32": 12.0, "int8": 9.0}


def test_a_failure_is_cached_as_one_and_old_caches_are_timed_again(
    model_set_dir: Path, tmp_path: Path
) -> None:
    timer = CountingTimer({"float32": 5.0, "int8": ValueError("Didn't find op for builtin")})
    first = _choose(model_set_dir, tmp_path, PI4, timer)
    stored = json.loads(Path(first.cache_file).read_text())
    assert stored["schema"] == device_choice.CACHE_SCHEMA == 2
    (record,) = stored["settings"].values()
    per_unit = list(record["ms"].values())
    assert all(unit["float32"] == {"ms": 5.0} for unit in per_unit)
    assert all(unit["int8"] == {"error": "Didn't find op for builtin"} for unit in per_unit)
    again = _choose(model_set_dir, tmp_path, PI4, timer)
    assert len(timer.calls) == 6 and not again.timed_here
    assert again.failed == first.failed and again.timings_ms == {"float32": 15.0}
    # A cache written before timings were typed (a number or an "error: ..." string each)
    # is not misread: the set is timed again and the file replaced.
    stored["schema"] = 1
    for unit in record["ms"].values():
        unit["float32"], unit["int8"] = 1.0, "error: old"
    Path(first.cache_file).write_text(json.dumps(stored))
    redone = _choose(model_set_dir, tmp_path, PI4, timer)
    assert redone.timed_here and len(timer.calls) == 12
    assert json.loads(Path(first.cache_file).read_text())["schema"] == 2


def test_a_tie_within_the_noise_goes_to_the_more_exact_format() -> None:
    from hemiface.runtime.device_choice import most_exact_of_the_fastest

    # float16 faster by 0.6 %: inside the noise, so float32 runs.
    assert most_exact_of_the_fastest({"float16": 15.56, "float32": 15.65}) == "float32"
    # int8 clearly faster (twice as fast): it wins.
    assert most_exact_of_the_fastest({"float32": 23.6, "int8": 11.0}) == "int8"
    # int8 ahead by 3 %, float16 within the margin too: the most exact of the close ones.
    timings = {"float32": 30.0, "float16": 20.5, "dynamic": 40.0, "int8": 20.0}
    assert most_exact_of_the_fastest(timings) == "float16"
