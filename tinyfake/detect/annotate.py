"""Drawing the verdicts: a green box for a real face, red for a fake one,
with the track id and score; videos are written with OpenCV's mp4v codec."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tinyfake.errors import UserError

GREEN, RED = (0, 200, 0), (0, 0, 255)  # BGR
FOURCC, VIDEO_EXT = "mp4v", ".mp4"


def draw(rgb: np.ndarray, faces: list[dict], banner: str | None = None) -> np.ndarray:
    """A BGR copy of the frame with every face's box and score drawn."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thick = max(2, min(img.shape[:2]) // 200)
    font = max(0.4, min(img.shape[:2]) / 700)
    for f in faces:
        x, y, w, h = f["box"]
        color = RED if f["label"] == "fake" else GREEN
        cv2.rectangle(img, (x, y), (x + w, y + h), color, thick)
        text = f"#{f['track']} {f['label']} {f['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y - 4 if y - th - base - 4 >= 0 else y + h + th + 4
        cv2.rectangle(img, (x, ty - th - base), (x + tw + 4, ty + base), color, -1)
        cv2.putText(img, text, (x + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), 1, cv2.LINE_AA)
    if banner:
        cv2.putText(img, banner, (6, 6 + int(22 * font)), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255),
                    2, cv2.LINE_AA)
    return img


class VideoOut:
    """An mp4v video writer that opens on the first frame."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps, self._w = path, max(1.0, fps), None

    def write(self, bgr: np.ndarray) -> None:
        if self._w is None:
            h, w = bgr.shape[:2]
            self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC), self.fps, (w, h))
            if not self._w.isOpened():
                raise UserError(f"cannot write {self.path}: OpenCV has no {FOURCC} video encoder here")
        self._w.write(bgr)

    def close(self) -> None:
        if self._w is not None:
            self._w.release()


def write_image(path: Path, bgr: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, bgr)
    if not ok:
        raise UserError(f"cannot encode {path}")
    buf.tofile(str(path))
