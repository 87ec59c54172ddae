"""How often the runtime's Haar face detector finds a synthetic face, by skin tone.

The live runtime crops the face before the models see it, so a face the detector misses
gets no prediction at all. Haar cascades are known to miss darker skin more often; this
measures it on the synthetic faces (each placed on a 640x480 frame at webcam scale), in
quartiles of skin luminance, so the limitation is a number rather than a surprise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from hemiface.runtime.face import detect_face
from hemiface.synth.faces import render_face

FRAME = (640, 480)
FACE_PIXELS = 400


@dataclass
class ToneBand:
    luminance_low: float
    luminance_high: float
    faces: int
    detected: int

    @property
    def rate(self) -> float:
        return self.detected / self.faces if self.faces else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {**asdict(self), "rate": round(self.rate, 3)}


def skin_luminance(rgb: tuple[int, int, int]) -> float:
    """Rec. 601 luma of an RGB colour, 0-255."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def detection_by_skin_tone(faces: int = 200, seed: int = 123, bands: int = 4) -> list[ToneBand]:
    """Detection rate of `faces` synthetic faces in `bands` equal-count luminance bands."""
    rng = np.random.default_rng(seed)
    width, height = FRAME
    results: list[tuple[float, bool]] = []
    for index in range(faces):
        face = render_face(rng, ("Left", "Right")[index % 2], float(rng.uniform(0.1, 1.0)))
        frame = np.full((height, width, 3), 120, np.uint8)
        x, y = (width - FACE_PIXELS) // 2, (height - FACE_PIXELS) // 2
        frame[y : y + FACE_PIXELS, x : x + FACE_PIXELS] = cv2.resize(
            face.image, (FACE_PIXELS, FACE_PIXELS), interpolation=cv2.INTER_LINEAR
        )
        skin = face.params.skin if face.params else (0, 0, 0)
        results.append((skin_luminance(skin), detect_face(frame) is not None))
    results.sort()
    out: list[ToneBand] = []
    for part in np.array_split(np.arange(len(results)), bands):
        chunk = [results[i] for i in part]
        if chunk:
            out.append(
                ToneBand(chunk[0][0], chunk[-1][0], len(chunk), sum(hit for _, hit in chunk))
            )
    return out
