"""Array-like view of a session video for napari's Image layer: decodes only the frames napari asks for."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from napari_smil_mv.napari.layers.lazy_stack import LazyImageStack
from napari_smil_mv.sessions import LazyVideo


class VideoArray(LazyImageStack):
    """Array-like view of a :class:`LazyVideo` for napari's Image layer; decodes only the frames asked for.

    Parameters
    ----------
    video
        The camera's lazy video, ``(T, H, W, C)`` uint8.
    frames
        Video frame indices to expose (default all); napari index ``i`` shows video frame ``frames[i]``.
        Frames beyond the end of the video are black.
    cache_size
        Number of decoded frames kept (napari slices the same frame more than once: thumbnail, refresh).

    Notes
    -----
    ``shape`` is ``(len(frames), H, W)`` for grayscale and ``(len(frames), H, W, 3)`` for colour (``rgb``).
    ``np.asarray(VideoArray)`` raises instead of decoding the whole video.
    """

    def __init__(self, video: LazyVideo, frames: range | None = None, cache_size: int = 4) -> None:
        self.video = video
        n, h, w, c = video.shape
        self.frames = frames if frames is not None else range(n)
        self._n_video = n
        self.rgb = c in (3, 4)
        self._channels = c
        self.shape = (len(self.frames), h, w, c) if self.rgb else (len(self.frames), h, w)
        self.dtype = np.dtype(np.uint8)
        self._cache: dict[int, np.ndarray] = {}
        self._cache_size = int(cache_size)
        self.n_decoded = 0  # frames decoded so far (for tests and benchmarks)
        self._lock = threading.Lock()  # one decoder per video: prefetch threads and napari take turns

    def describe(self) -> str:
        return f"the video of camera {self.video.name!r}"

    def describe_all(self) -> str:
        return f"the whole video of camera {self.video.name!r}"

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` of the selection: ``(H, W)`` or ``(H, W, 3)`` uint8."""
        vf = self.frames[self._index(i)]
        with self._lock:
            return self._decode(vf)

    frame = image

    def _decode(self, vf: int) -> np.ndarray:
        img = self._cache.get(vf)
        if img is None:
            if 0 <= vf < self._n_video:
                img = self.video.frame(vf)
                self.n_decoded += 1
            else:
                img = np.zeros(self.video.shape[1:], dtype=np.uint8)
            img = img if self.rgb else img[..., 0]
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[vf] = img
        return img

    def prefetch(self, i: int = 0) -> None:
        """Decode image ``i`` into the cache (safe to call from a background thread)."""
        if 0 <= int(i) < len(self.frames):
            self.frame(int(i))

    def __repr__(self) -> str:
        return f"VideoArray(camera={self.video.name!r}, shape={self.shape}, rgb={self.rgb})"


_PREFETCH = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smil-video-prefetch")


def first_shown_indices(n: int) -> tuple[int, ...]:
    """Images napari slices when a video of ``n`` images becomes the first layer of a viewer: 0, then the centre.

    A new layer is sliced at index 0 when created; adding the first layer to a viewer moves the sliders to the
    centre step, ``int((n - 1) / 2)`` (napari's ``Dims._go_to_center_step``).
    """
    centre = int((n - 1) / 2) if n > 0 else 0
    return (0,) if centre == 0 else (0, centre)


def _prefetch_many(video: VideoArray, indices: Sequence[int]) -> None:
    for i in indices:
        video.prefetch(i)


def prefetch_first_frames(layer_data: Iterable[tuple], index: int | Sequence[int] | None = None) -> None:
    """Start decoding the first shown images of every :class:`VideoArray` in ``layer_data`` in background threads.

    Parameters
    ----------
    layer_data
        ``(data, kwargs, layer_type)`` tuples; only :class:`VideoArray` data is touched.
    index
        Image index or indices to decode, in order, per video (default :func:`first_shown_indices`).

    Notes
    -----
    The decoders release the GIL, so the frames are decoded while napari creates the layers; napari's own
    request then waits for (or finds) the cached frame. Returns at once. One task per video, so one video's
    frames are read in order by one thread (reading the next frame needs no seek).
    """
    for data, _, _ in layer_data:
        if isinstance(data, VideoArray):
            if index is None:
                indices: Sequence[int] = first_shown_indices(len(data))
            elif isinstance(index, (int, np.integer)):
                indices = (int(index),)
            else:
                indices = tuple(int(i) for i in index)
            _PREFETCH.submit(_prefetch_many, data, indices)
