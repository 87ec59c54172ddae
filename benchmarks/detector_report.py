"""report.md's "Face detectors side by side": the detectors section as Markdown tables."""

from __future__ import annotations

from typing import Any

from hemiface.benchmarks.detector_records import (
    DetectorLoops,
    DetectorsSection,
    FaceFinds,
    SearchSteps,
    SkinToneBand,
)
from hemiface.benchmarks.report import table

SEARCH = "blazeface"  # the default search's name in the section
SHORT = "blazeface-short"


def _found(found: dict[str, int], rate: dict[str, float], names: list[str]) -> list[str]:
    return [f"{found[n]} ({rate[n]:.0%})" if n in found else "–" for n in names]


def tone_label(band: SkinToneBand) -> str:
    return f"{band.luminance_low:.0f}-{band.luminance_high:.0f}"


def size_label(low: int, high: int) -> str:
    return f"{low}-{high}"


def size_table(finds: FaceFinds, names: list[str]) -> list[str]:
    """Faces found by each detector, by band of face-box height."""
    return table(
        ["face-box height (px)", "faces", *names],
        [[size_label(b.height_low, b.height_high), str(b.faces), *_found(b.found, b.rate, names)]
         for b in finds.size_bands],
    )  # fmt: skip


def skin_tone_table(finds: FaceFinds, names: list[str]) -> list[str]:
    """Faces found by each detector, by skin-luminance quartile."""
    return table(
        ["skin luminance (0-255)", "faces", *names],
        [[tone_label(b), str(b.faces), *_found(b.found, b.rate, names)]
         for b in finds.skin_tone_bands],
    )  # fmt: skip


def cells_table(finds: FaceFinds, names: list[str]) -> list[str]:
    """Faces found by each detector in each (size band, skin quartile) cell."""
    return table(
        ["face-box height (px)", "skin luminance", "faces", *names],
        [[size_label(finds.size_bands[c.size_band].height_low,
                     finds.size_bands[c.size_band].height_high),
          tone_label(finds.skin_tone_bands[c.skin_band]), str(c.faces),
          *_found(c.found, c.rate, names)]
         for c in finds.cells],
    )  # fmt: skip


def _finds_tables(finds: FaceFinds, names: list[str]) -> list[str]:
    width, height = finds.frame_size
    out = [
        f"{finds.faces} synthetic faces on {width}x{height} face-free scenes (seed "
        f"{finds.seed}), one a frame at a random place, the size bands taken in turn. A face "
        "is found when the centre of the box `detect` returns lies inside the true face box "
        "(the head outline). blazeface-short and blazeface-full: one model alone on the whole "
        "frame; blazeface: the default search (runtime/face_search.py).",
        "",
        "By face-box height in the frame:",
        "",
    ]
    out += size_table(finds, names)
    out += ["By skin-luminance quartile (equal-count over the set), darkest first:", ""]
    out += skin_tone_table(finds, names)
    out += ["By both:", ""]
    out += cells_table(finds, names)
    total = ", ".join(f"{n} {finds.found[n]} ({finds.rate[n]:.1%})" for n in names)
    return out + [f"All {finds.faces} faces: {total}.", ""]


def _times(section: DetectorsSection, names: list[str], machine: dict[str, Any]) -> list[str]:
    timing, free = section.timing or {}, section.face_free_timing or {}

    def cell(name: str, source: dict[str, Any]) -> str:
        t = source.get(name)
        return f"{t.median_ms:.2f} (p90 {t.p90_ms:.2f}, {t.calls} calls)" if t else "–"

    ratio = section.time_ratio_blazeface_to_haar
    flags = ", ".join(machine.get("cpu_flags") or []) or "unknown"
    return [
        f"Time of one `detect` call per frame, ms, {section.threads} thread, the detectors "
        f"taking turns on the same frames (CPU flags: {flags}):",
        "",
        *table(
            ["detector", "frames with a face: median", "face-free scenes: median"],
            [[n, cell(n, timing), cell(n, free)] for n in names],
        ),
        *([f"On frames with a face, BlazeFace (the search) / Haar = {ratio:.2f}.", ""]
          if ratio is not None else []),
    ]  # fmt: skip


def search_lines(search: SearchSteps) -> list[str]:
    """Which step of the default search found a face, and its time by how far it went."""

    def steps(counts: dict[str, int]) -> str:
        return ", ".join(f"{step} {count}" for step, count in counts.items())

    def ms(timing: Any) -> str:
        return (
            f"{timing.median_ms:.2f} ms (p90 {timing.p90_ms:.2f}, {timing.calls} calls)"
            if (timing)
            else "– (no such frames)"
        )

    faces = sum(search.face_steps.values())
    free = sum(search.face_free_steps.values())
    return [
        f"The default search, step by step ({' -> '.join(search.steps)}; `near` runs only "
        f"in the live loop). The step that found a face on the {faces} face frames: "
        f"{steps(search.face_steps)}; on the {free} face-free scenes: "
        f"{steps(search.face_free_steps)}. The tiles step ran on {search.tiles_ran} of "
        f"{search.frames} frames. Time of a call: {ms(search.short_ms)} on face frames the "
        f"short step settled, {ms(search.later_ms)} on face frames that needed later "
        f"steps, {ms(search.face_free_ms)} on face-free scenes.",
        "",
    ]


def live_lines(live: DetectorLoops) -> list[str]:
    out = [
        f"Live loop on that video, detection on every frame, {live.models} models "
        f"({live.format}, {live.threads} interpreter threads, OpenCV's default threads; "
        f"mean of {live.rounds} runs each, taking turns):",
        "",
        *table(
            ["detector", "FPS", "face ms/frame", "models ms/frame", "frames predicted"],
            [[n, f"{d.fps:.1f}", f"{d.face_ms:.2f}", f"{d.models_ms:.2f}",
              f"{d.predicted}/{d.frames}"] for n, d in live.detectors.items()],
        ),
    ]  # fmt: skip
    loops = live.detectors
    if SEARCH in loops and SHORT in loops and loops[SHORT].face_ms > 0:
        ratio = loops[SEARCH].face_ms / loops[SHORT].face_ms
        out += [
            f"Face stage of the default search against the short-range model alone: "
            f"{loops[SEARCH].face_ms:.2f} against {loops[SHORT].face_ms:.2f} ms "
            f"({ratio:.2f}x).",
            "",
        ]
    return out


def detectors_tables(section: DetectorsSection, machine: dict[str, Any]) -> list[str]:
    out = ["## Face detectors side by side", ""]
    if section.status != "ok":
        return out + [f"Skipped: {section.reason or ''}", ""]
    names = section.detectors
    if section.finds is not None:
        out += _finds_tables(section.finds, names)
    false_hits = section.false_detections or {}
    out += [
        f"False detections on {section.face_free_frames} face-free synthetic scenes (seed "
        f"{section.face_free_seed}): " + ", ".join(f"{n} {false_hits.get(n)}" for n in names)
        + ".",
        "",
    ]  # fmt: skip
    out += _times(section, names, machine)
    if section.search is not None:
        out += search_lines(section.search)
    if section.demo_video is not None:
        video = section.demo_video
        found = ", ".join(f"{n} found the face in {video.found[n]}" for n in names)
        out += [
            f"The demo's camera stand-in video ({video.frames} frames, seed {video.seed}): {found}."
        ]
    if section.astronaut:
        found = ", ".join(
            f"{n} {'found' if v.found else 'missed'} the face"
            + (f" (roll {v.roll_deg} deg)" if v.roll_deg is not None else "")
            for n, v in section.astronaut.items()
        )
        out += [f"scikit-image's astronaut photograph: {found}."]
    out.append("")
    if section.live_loop is not None:
        out += live_lines(section.live_loop)
    return out
