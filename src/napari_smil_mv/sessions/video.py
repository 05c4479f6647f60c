"""Lazy, read-only access to one camera's video, with blank frames when the file is missing.

Nothing is decoded when a :class:`LazyVideo` is created. The file is opened (header only) the first time its
``shape`` or a frame is asked for, and only the requested frames are decoded, so loading a session stays fast.
When the video file is missing or cannot be opened, every frame is a black image of the calibration size, so that
keypoints can still be shown and checked; a :class:`VideoMissingWarning` names the file once (when the accessor is
created for a missing file, on first access for a file that cannot be decoded).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def video_frame_rate(path: str | Path) -> float | None:
    """Frame rate (Hz) stated in a video file's header (OpenCV, no frame decoded); None when the file is missing,
    unreadable or states no rate."""
    if not Path(path).is_file():
        return None
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        rate = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return rate if np.isfinite(rate) and 0.0 < rate < 1e5 else None


class VideoMissingWarning(UserWarning):
    """A session's video file could not be found or opened; blank frames are shown instead."""


class VideoPathWarning(UserWarning):
    """A session's video is read from the absolute path stored in its labels file, outside the session folder
    (no file of that name lies next to the labels file): a copied session may be reading the original's video."""


class SequentialReader:
    """Frame reader over one kept-open ``cv2.VideoCapture`` that seeks only on jumps; thread-safe.

    Decoding the next frame of an open capture costs a few ms, a seek (``CAP_PROP_POS_FRAMES``) tens to hundreds
    of ms (back to the previous keyframe, then decode forward). sleap-io's opencv backend seeks whenever the
    capture is not exactly at the requested frame (for instance frame 0 after its grayscale probe), so stepping
    through a video and the first frames of a session paid a seek each. This reader reads forward for the next
    frame and for short forward jumps (``max_skip`` frames, grabbed without conversion) and seeks otherwise.

    Parameters
    ----------
    path
        Video file opened with OpenCV.
    channels
        Channels ``C`` of the frames returned: 1 (grayscale, the first channel, as sleap-io does) or 3 (RGB).
    max_skip
        Longest forward jump read through instead of seeking.
    """

    def __init__(self, path: str | Path, channels: int, max_skip: int = 8) -> None:
        self.path = Path(path)
        self.channels = int(channels)
        self.max_skip = int(max_skip)
        self._cap = None
        self._next = 0  # index of the frame the next read() returns
        self._lock = threading.Lock()
        self.n_seeks = 0  # seeks so far (for tests and benchmarks)
        self._probed: np.ndarray | None = None  # frame 0 decoded by probe(), handed out by the next read(0)

    def probe(self) -> tuple[int, int, int, int] | None:
        """Open the capture and decode frame 0 once: ``(T, H, W, C)`` as sleap-io reports it, or None.

        ``T`` is OpenCV's frame count, ``C`` is 1 when the first and last colour channels of frame 0 are equal
        (sleap-io's grayscale test) and 3 otherwise; ``channels`` is set to ``C``. Frame 0 is kept for the next
        ``read(0)``, so opening a video and showing its first frame decode it once (sleap-io's own probe reads
        it twice, with a seek in between).
        """
        import cv2

        with self._lock:
            if self._cap is None:
                self._cap = cv2.VideoCapture(str(self.path))
                self._next = 0
            cap = self._cap
            if not cap.isOpened() or self._next != 0:
                return None
            ok, img = cap.read()
            if not ok or img is None or img.ndim != 3:
                self._next = -1
                return None
            self._next = 1
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            gray = bool(np.array_equal(img[..., 0], img[..., -1]))
            self.channels = 1 if gray else 3
            self._probed = self._convert(img)
            return (n, int(img.shape[0]), int(img.shape[1]), self.channels)

    def _convert(self, img: np.ndarray) -> np.ndarray:
        import cv2

        if self.channels == 1:
            return np.ascontiguousarray(img[..., 2:3])  # red, as sleap-io (grayscale: channels equal)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place, no extra copy

    def read(self, index: int) -> np.ndarray | None:
        """Frame ``index`` as ``(H, W, C)`` uint8 RGB (or grayscale), or None when OpenCV cannot read it."""
        import cv2

        index = int(index)
        with self._lock:
            if index == 0 and self._probed is not None:
                img, self._probed = self._probed, None
                return img
            self._probed = None
            if self._cap is None:
                self._cap = cv2.VideoCapture(str(self.path))
                self._next = 0
                if not self._cap.isOpened():
                    self._cap = None
                    return None
            cap = self._cap
            if not 0 <= index - self._next <= self.max_skip:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self.n_seeks += 1
                self._next = index
            while self._next < index:
                if not cap.grab():
                    self._next = -1  # position unknown: seek next time
                    return None
                self._next += 1
            ok, img = cap.read()
            if not ok or img is None:
                self._next = -1
                return None
            self._next = index + 1
        return self._convert(img)

    def close(self) -> None:
        """Release the capture (reopened on the next read)."""
        with self._lock:
            self._probed = None
            if self._cap is not None:
                self._cap.release()
                self._cap = None


class LazyVideo:
    """Array-like view of a video: ``shape (T, H, W, C)``, ``uint8``, frames decoded on demand.

    Parameters
    ----------
    path
        Video file (any format sleap-io can read: mp4, avi, h5 image stacks, ...). May be None or point to a
        file that does not exist; then the video is *missing* and returns blank frames.
    n_frames
        Frame count to use when the file is missing (for example the largest labelled frame index + 1, or the
        count stored in the ``.slp`` file). Ignored once the file is opened: the file's own count wins.
    size
        Image size ``(W, H)`` in pixels from the calibration; the size of the blank frames of a missing video.
    channels
        Channel count ``C`` of the blank frames (1 for grayscale, 3 for colour) when the file is missing.
    name
        Camera name, used in warnings.
    stored_path
        The path written in the labels file, if different from ``path`` (reported when the video is missing).
    searched
        Where the file was looked for, added to the missing-file message.

    Notes
    -----
    ``video[t]`` returns the frame at *video* frame index ``t`` as ``(H, W, C)`` uint8; ``video[t0:t1]`` returns
    ``(T, H, W, C)``; tuple indices (``video[t, y0:y1, x0:x1]``) are applied to the decoded frame, which is what
    napari's image layer asks for. The channel axis is always present (``C == 1`` for grayscale), following
    sleap-io.
    """

    def __init__(
        self,
        path: str | Path | None,
        n_frames: int,
        size: tuple[int, int],
        channels: int = 1,
        name: str = "",
        stored_path: str | None = None,
        searched: str = "",
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.name = name
        self.stored_path = (
            stored_path if stored_path is not None else (str(path) if path is not None else None)
        )
        self._fallback_shape = (int(n_frames), int(size[1]), int(size[0]), int(channels))
        self._video = None  # sleap_io.Video once opened
        self._reader: SequentialReader | None = None  # own OpenCV reader when sleap-io uses OpenCV
        self._opened = False
        self._open_lock = threading.Lock()
        self._missing_reason: str | None = None
        if self.path is None or not self.path.is_file():
            self._missing_reason = f"video file not found: {self.stored_path}" + (
                f" ({searched})" if searched else ""
            )
            self._opened = True  # nothing to open; say so now, once
            self._warn(stacklevel=3)

    # -- state -------------------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        """True when the video file exists and (if already opened) could be read."""
        return self._missing_reason is None

    @property
    def missing_reason(self) -> str | None:
        """Why the video shows blank frames (None when it does not)."""
        return self._missing_reason

    def _open(self) -> None:
        if self._opened:
            return
        with self._open_lock:  # one opener at a time (see open_videos); the others then see the result
            if self._opened:
                return
            self._open_file()
            self._opened = True

    def _open_file(self) -> None:
        import sleap_io as sio

        reader = None
        try:
            video = sio.load_video(str(self.path))
            if getattr(video.backend, "plugin", None) == "opencv":  # our one probe instead of sleap-io's
                reader = SequentialReader(self.path, 3)
                probed = reader.probe()
                if probed is not None and probed[0] > 0:
                    video.backend._cached_shape = probed  # what sleap-io's probe would have found
                    video.backend.grayscale = probed[3] == 1
                else:
                    reader.close()
                    reader = None
            shape = tuple(int(s) for s in video.shape)
        except Exception as exc:  # any decoder error: treat like a missing file, but say why
            self._missing_reason = f"video file {self.path} could not be opened ({type(exc).__name__}: {exc})"
            self._warn(stacklevel=5)
            return
        if len(shape) != 4 or shape[0] == 0:
            self._missing_reason = f"video file {self.path} has no readable frames (shape {shape})"
            self._warn(stacklevel=5)
            return
        self._video = video
        self._shape = shape
        if reader is not None:
            self._reader = reader
        elif getattr(video.backend, "plugin", None) == "opencv" and shape[3] in (1, 3):
            self._reader = SequentialReader(self.path, shape[3])

    def _warn(self, stacklevel: int = 4) -> None:
        h, w = self._fallback_shape[1:3]
        cam = f"camera {self.name!r}: " if self.name else ""
        warnings.warn(
            f"{cam}{self._missing_reason}; showing blank {w}x{h} frames instead. Keypoints are unaffected. "
            "Put the video next to the labels file or in a sibling 'videos/' folder to see the images.",
            VideoMissingWarning,
            stacklevel=stacklevel,
        )

    @property
    def fps(self) -> float | None:
        """Frame rate (Hz) from the video file's header, or None when the file is missing or states none.

        Read once with OpenCV (header only, no frame decoded).
        """
        if not hasattr(self, "_fps"):
            self._fps: float | None = video_frame_rate(self.path) if self.path is not None else None
        return self._fps

    # -- array interface ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, C)``: frame count, height, width, channels (opens the file header on first use)."""
        self._open()
        return self._shape if self._video is not None else self._fallback_shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def frame(self, index: int) -> np.ndarray:
        """Decode one frame.

        Parameters
        ----------
        index
            Video frame index, ``0 <= index < T`` (negative values count from the end).

        Returns
        -------
        numpy.ndarray
            ``(H, W, C)`` uint8; zeros when the video is missing.
        """
        n = self.shape[0]
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} is out of range for camera {self.name!r} video with {n} frames")
        if self._video is None:
            return np.zeros(self._fallback_shape[1:], dtype=np.uint8)
        img = self._reader.read(i) if self._reader is not None else None
        if img is None:  # no OpenCV reader, or it failed on this frame: sleap-io's own path
            img = np.asarray(self._video[i])
        if img.ndim == 2:
            img = img[..., None]
        return img

    def __getitem__(self, key) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            if not key:
                raise IndexError("empty index")
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            out = self.frame(int(key))
            return out[rest] if rest else out
        if isinstance(key, slice):
            indices = range(*key.indices(self.shape[0]))
        else:
            indices = [int(i) for i in np.asarray(key).reshape(-1)]
        if len(indices) == 0:
            stack = np.zeros((0, *self.shape[1:]), dtype=np.uint8)
        else:
            stack = np.stack([self.frame(i) for i in indices])
        return stack[(slice(None), *rest)] if rest else stack

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        raise TypeError(
            f"refusing to decode the whole video of camera {self.name!r} into memory; index frames instead "
            "(video[t])"
        )

    def close(self) -> None:
        """Release the decoder (it is reopened on the next access)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._video is not None:
            try:
                self._video.close()
            finally:
                self._video = None
                self._opened = False

    def __repr__(self) -> str:
        state = "missing" if self._missing_reason else ("open" if self._video is not None else "not opened")
        return f"LazyVideo(camera={self.name!r}, path={str(self.path)!r}, {state})"


def open_videos(videos: Iterable[LazyVideo | None]) -> None:
    """Open the headers of several videos at once, in threads (the decoders release the GIL).

    Opening a video (sleap-io reads its header and probes one frame) takes tens of ms; a session opens one per
    camera. Missing videos and ones already opened are skipped; errors become the usual
    :class:`VideoMissingWarning`. Returns when every video is open.
    """
    todo = [v for v in videos if v is not None and not v._opened]
    if len(todo) < 2:
        for v in todo:
            v._open()
        return
    with ThreadPoolExecutor(max_workers=min(4, len(todo)), thread_name_prefix="smil-video-open") as pool:
        list(pool.map(lambda v: v._open(), todo))
