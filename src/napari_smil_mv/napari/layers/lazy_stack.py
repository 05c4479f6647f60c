"""Base class of the lazy image stacks napari's Image layer slices (session videos, dataset views).

napari asks an Image layer's data for one index of the first axis at a time (plus thumbnails and refreshes).
Subclasses decode exactly that image in :meth:`LazyImageStack.image`; this class turns napari's indexing into
those calls and refuses to decode everything at once (``np.asarray``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LazyImageStack:
    """Array-like ``shape = (N, ...)`` whose images are produced on demand by :meth:`image`.

    Subclasses set ``shape`` and ``dtype`` and implement :meth:`image` and :meth:`describe`.
    """

    #: Most images one index expression may decode (a larger request is refused with a clear error).
    max_images_per_request = 16
    shape: tuple[int, ...]
    dtype: np.dtype

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` (``shape[1:]``), decoded or cached."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the stack shows, for error messages (e.g. ``"the video of camera 'back'"``)."""
        return type(self).__name__

    def describe_all(self) -> str:
        """All of the stack, for the message refusing to decode everything."""
        return f"every image of {self.describe()}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def _index(self, i: int) -> int:
        n = len(self)
        i = int(i) + (n if int(i) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"image {i} out of range 0..{n - 1} of {self.describe()}")
        return i

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if key is Ellipsis:
            key, rest = slice(None), (Ellipsis, *rest)
        if isinstance(key, (int, np.integer)):
            out = self.image(int(key))
            return out[rest] if rest else out
        if isinstance(key, slice):
            idx = list(range(*key.indices(len(self))))
        else:
            idx = [int(i) for i in np.asarray(key).reshape(-1)]
        if len(idx) == 1:  # napari's slice of one image: a view of the cached image, no copy
            out = self.image(idx[0])[None]
            return out[(slice(None), *rest)] if rest else out
        if len(idx) > self.max_images_per_request:
            raise ValueError(
                f"refusing to decode {len(idx)} images of {self.describe()} at once; index fewer images"
            )
        stack = np.stack([self.image(i) for i in idx]) if idx else np.zeros((0, *self.shape[1:]), self.dtype)
        return stack[(slice(None), *rest)] if rest else stack

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        raise TypeError(f"refusing to decode {self.describe_all()}; index single images instead")
