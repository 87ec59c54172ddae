from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hemiface.report import Document, Figure, FileList, Heading, Paragraph, Table, write_document
from hemiface.synth.video import label_accuracy, write_face_video


def test_document_renders_markdown_and_self_contained_html(tmp_path: Path) -> None:
    png = tmp_path / "fig.png"
    cv2.imwrite(str(png), np.zeros((4, 4, 3), np.uint8))
    doc = Document("t")
    doc.add(
        Heading("Section"),
        Paragraph("a < b"),
        Table(["x", "y"], [["1", "a|b"]]),
        Figure(png, "caption"),
        FileList([("here", png), ("gone", tmp_path / "missing.txt")]),
    )
    md, html = write_document(doc, tmp_path)
    text = md.read_text()
    assert "## Section" in text and "| 1 | a\\|b |" in text
    assert "![caption](fig.png)" in text
    assert "`missing.txt` (missing)" in text
    page = html.read_text()
    assert "data:image/png;base64," in page  # figure inline: the page works on its own
    assert "a &lt; b" in page


def test_face_video_has_known_labels_and_decodes(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    labels = write_face_video(path, seconds=1.0, fps=10.0)
    assert labels == ["Left"] * 5 + ["Right"] * 5
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 10
    assert frames[0].shape == (480, 640, 3)
    # The second half is the mirrored person: the face region differs from the first half.
    assert np.abs(frames[0].astype(int) - frames[9].astype(int)).mean() > 1.0


def test_label_accuracy_ignores_frames_without_prediction() -> None:
    assert label_accuracy(["Left", "Left", "Right"], ["Left", None, "Left"]) == 0.5
    assert label_accuracy(["Left"], [None]) is None
