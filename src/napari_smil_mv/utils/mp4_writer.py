"""One h264 ``.mp4`` writer (imageio-ffmpeg, the ffmpeg sleap-io reads with) for synthetic and overlay videos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


class Mp4Writer:
    """Write RGB frames ``(H, W, 3)`` uint8 to an h264 ``.mp4``.

    Parameters
    ----------
    path
        Output file (the caller writes to a temporary name and renames it when complete).
    size
        Frame size ``(W, H)`` in pixels.
    fps
        Frame rate (frames per second) stored in the file.
    output_params
        Extra ffmpeg output options (quality, GOP, pixel format).
    """

    def __init__(
        self, path: Path, size: tuple[int, int], fps: float, output_params: Sequence[str] = ("-crf", "18")
    ) -> None:
        import imageio_ffmpeg

        self.path = Path(path)
        self._gen = imageio_ffmpeg.write_frames(
            str(path),
            size,
            fps=fps,
            codec="libx264",
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=list(output_params),
        )
        self._gen.send(None)

    def write(self, rgb: np.ndarray) -> None:
        """Append one frame ``(H, W, 3)`` uint8."""
        self._gen.send(np.ascontiguousarray(rgb))

    def close(self) -> None:
        """Finish the file."""
        self._gen.close()
