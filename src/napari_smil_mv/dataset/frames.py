"""Sequential decoding of the frames a preprocessing run needs, one background thread per camera.

Each video is decoded once, front to back: frames that are not needed are skipped with ``grab()`` (no colour
conversion), large gaps are crossed with a seek whose position is checked. Videos OpenCV cannot open (image
stacks, other containers) are read through the session's :class:`~napari_smil_mv.sessions.LazyVideo`.
The decode-only benchmark uses the same reader, so preprocessing overhead is measured against it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

#: Gaps longer than this are crossed by seeking instead of decoding every frame.
SEEK_GAP = 48
_VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm"}


class FrameReadError(RuntimeError):
    """A requested frame could not be decoded (past the end of the video, or a decoder error)."""


def _iter_cv2(path: Path, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FrameReadError(f"OpenCV cannot open {path}")
    try:
        pos = 0  # index of the next frame the decoder returns
        for f in frames:
            if f - pos > SEEK_GAP:
                cap.set(cv2.CAP_PROP_POS_FRAMES, f)
                if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == f:
                    pos = f
                else:  # inexact seek: start over and decode sequentially
                    cap.release()
                    cap = cv2.VideoCapture(str(path))
                    pos = 0
            ok = True
            while pos < f and ok:
                ok = cap.grab()
                pos += 1
            if not ok:
                yield f, None
                continue
            ok, img = cap.read()
            pos += 1
            yield f, (img if ok else None)
    finally:
        cap.release()


def _iter_lazy(video, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    n = len(video)
    for f in frames:
        if not 0 <= f < n:
            yield f, None
            continue
        try:
            img = np.asarray(video[f])
        except Exception:
            yield f, None
            continue
        if img.ndim == 3 and img.shape[2] == 3:
            img = img[..., ::-1]  # sleap-io gives RGB; we work in OpenCV's BGR
        yield f, np.ascontiguousarray(img)


def iter_frames(video, frames: Sequence[int]) -> Iterator[tuple[int, np.ndarray | None]]:
    """Decode ``frames`` (ascending video frame indices) of one camera, in order.

    Parameters
    ----------
    video
        A :class:`~napari_smil_mv.sessions.LazyVideo` (its ``path`` is decoded directly with OpenCV when possible).
    frames
        Ascending, unique video frame indices.

    Yields
    ------
    tuple
        ``(frame_index, image)`` with ``image`` ``(H, W, 3)`` uint8 BGR (or ``(H, W, 1)`` for a grayscale
        non-OpenCV source), or None when that frame cannot be read.
    """
    frames = [int(f) for f in frames]
    if any(b <= a for a, b in zip(frames, frames[1:], strict=False)):
        raise ValueError("frames must be ascending and unique")
    path = getattr(video, "path", None)
    if path is not None and Path(path).suffix.lower() in _VIDEO_SUFFIXES:
        try:
            yield from _iter_cv2(Path(path), frames)
            return
        except FrameReadError:
            pass
    yield from _iter_lazy(video, frames)


class PrefetchReader:
    """Decode several cameras' frame lists concurrently, each in its own thread with a bounded queue.

    Parameters
    ----------
    sources
        Camera name -> ``(video, frames)``.
    depth
        Items buffered per camera.
    transforms
        Optional camera name -> ``transform(frame_index, image_or_None)``, applied in that camera's thread right
        after decoding (while the frame is still in the CPU cache); its result replaces the image in the
        queue. Preprocessing renders and JPEG-encodes the views there, so only small results cross threads.

    Notes
    -----
    ``next_frame(camera)`` returns that camera's next ``(frame_index, image or result)`` in order. :meth:`close`
    stops the threads. OpenCV releases the GIL while decoding, resampling and encoding, so the cameras run in
    parallel.
    """

    _DONE = object()

    def __init__(
        self,
        sources: dict[str, tuple[object, Sequence[int]]],
        depth: int = 6,
        transforms: dict[str, Callable] | None = None,
    ) -> None:
        self._queues: dict[str, queue.Queue] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for name, (video, frames) in sources.items():
            q: queue.Queue = queue.Queue(maxsize=depth)
            self._queues[name] = q
            fn = (transforms or {}).get(name)
            t = threading.Thread(
                target=self._work, args=(video, list(frames), q, fn), daemon=True, name=f"decode-{name}"
            )
            self._threads.append(t)
            t.start()

    def _put(self, q: queue.Queue, item) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, video, frames, q, transform) -> None:
        try:
            for f, img in iter_frames(video, frames):
                if not self._put(q, (f, transform(f, img) if transform is not None else img)):
                    return
        except Exception as exc:  # reported to the consumer, which decides what it means
            self._put(q, exc)
        self._put(q, self._DONE)

    def next_frame(self, camera: str) -> tuple[int, object]:
        """The next ``(frame_index, image or transform result)`` of ``camera``; raises what the thread raised."""
        item = self._queues[camera].get()
        if item is self._DONE:
            raise FrameReadError(f"camera {camera!r}: no more frames were requested")
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        """Stop the decoder threads."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> PrefetchReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
