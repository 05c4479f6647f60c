"""Chunked, resumable writing of the multi-view HDF5 file.

The run writes ``<output>.partial`` and appends one line per committed chunk to ``<output>.partial.journal``
(JSON lines: first the input fingerprint, then per chunk the keys of the samples it settled, the number of
samples written and a snapshot of the statistics). A stopped run (cancel, Ctrl-C, crash) leaves both files; the
next run with the same inputs and options truncates the partial file to the journal's count and continues. On
success the partial file is renamed to the output and the journal removed.
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from napari_smil_mv.dataset.schema import AUXILIARY, IMAGES, KEYPOINTS, METADATA, PARAMETERS
from napari_smil_mv.utils.atomic import DiskFullError, check_can_write, check_free_space

N_DIST = 14  # distortion coefficients stored per view (OpenCV's longest model), zero-padded
#: Free space kept beyond every write (HDF5 metadata, the journal): HDF5 may crash the process when the disk
#: fills during a write, so the writer stops with :class:`DiskFullError` before that, leaving a resumable run.
HEADROOM_BYTES = 8 << 20
_NUMERIC = (np.float32, np.float64, np.int32, np.int64, np.bool_)  # the other per-sample dtype: UTF-8 text


@dataclass(frozen=True)
class Layout:
    """Array sizes of a dataset: view slots ``V``, model joints ``J``, shape coefficients ``K``."""

    max_views: int
    n_joints: int
    n_betas: int

    def datasets(self) -> dict[str, tuple[tuple[int, ...], object]]:
        """Dataset path -> (per-sample shape, dtype), images excluded."""
        v, j, k = self.max_views, self.n_joints, self.n_betas
        s = h5py.string_dtype("utf-8")
        return {
            f"{IMAGES}/view_mask": ((v,), np.bool_),
            f"{KEYPOINTS}/keypoints_2d": ((v, j, 2), np.float32),
            f"{KEYPOINTS}/keypoint_visibility": ((v, j), np.float32),
            f"{KEYPOINTS}/view_valid": ((v,), np.bool_),
            f"{KEYPOINTS}/camera_indices": ((v,), np.int32),
            f"{KEYPOINTS}/camera_intrinsics": ((v, 3, 3), np.float32),
            f"{KEYPOINTS}/camera_extrinsics_R": ((v, 3, 3), np.float32),
            f"{KEYPOINTS}/camera_extrinsics_t": ((v, 3), np.float32),
            f"{KEYPOINTS}/image_sizes": ((v, 2), np.int32),
            f"{KEYPOINTS}/keypoints_3d": ((j, 3), np.float32),
            f"{KEYPOINTS}/keypoints_3d_valid": ((j,), np.bool_),
            f"{KEYPOINTS}/crop_box": ((v, 4), np.float32),
            f"{KEYPOINTS}/original_intrinsics": ((v, 3, 3), np.float64),
            f"{KEYPOINTS}/distortion_coefficients": ((v, N_DIST), np.float64),
            f"{KEYPOINTS}/fisheye": ((v,), np.bool_),
            f"{KEYPOINTS}/original_image_sizes": ((v, 2), np.int32),
            f"{PARAMETERS}/global_rot": ((3,), np.float32),
            f"{PARAMETERS}/joint_rot": ((j, 3), np.float32),
            f"{PARAMETERS}/betas": ((k,), np.float32),
            f"{PARAMETERS}/trans": ((3,), np.float32),
            f"{AUXILIARY}/session_name": ((), s),
            f"{AUXILIARY}/frame_idx": ((), np.int64),
            f"{AUXILIARY}/num_views": ((), np.int64),
            f"{AUXILIARY}/has_ground_truth_betas": ((), np.bool_),
            f"{AUXILIARY}/has_3d_data": ((), np.bool_),
            f"{AUXILIARY}/camera_names": ((), s),
            f"{AUXILIARY}/animal": ((), s),
        }

    def empty_record(self) -> dict[str, np.ndarray]:
        """Zeros for every per-sample array (``camera_indices`` -1, identity rotations) plus empty JPEGs."""
        rec = {}
        for name, (shape, dtype) in self.datasets().items():
            if dtype in _NUMERIC:
                rec[name] = np.zeros(shape, dtype=dtype)
            else:
                rec[name] = ""
        rec[f"{KEYPOINTS}/camera_indices"][:] = -1
        rec[f"{KEYPOINTS}/camera_extrinsics_R"][:] = np.eye(3, dtype=np.float32)
        rec["jpeg"] = [b""] * self.max_views
        return rec


def _write_vlen(ds, start: int, blobs: list[bytes]) -> None:
    """Write byte strings into a vlen uint8 dataset (rows were just added by a resize, so they are empty).

    h5py turns a batch of equally long arrays into a 2D array and refuses it, so such batches are written row by
    row; empty rows are left as they are.
    """
    lengths = {len(b) for b in blobs}
    if lengths == {0}:
        return
    arr = np.empty(len(blobs), dtype=object)
    for i, b in enumerate(blobs):
        arr[i] = np.frombuffer(b, dtype=np.uint8)
    if len(lengths) > 1:
        ds[start : start + len(blobs)] = arr
    else:
        for i, a in enumerate(arr):
            ds[start + i] = a


class DatasetWriter:
    """Write samples into ``<output>.partial`` in chunks; resume or finish it (see the module docstring).

    Parameters
    ----------
    output
        Final dataset path.
    layout
        Array sizes.
    fingerprint
        Hash of inputs and options; a partial file made with another fingerprint is not resumed.
    overwrite
        Allow replacing an existing ``output`` at the end.
    restart
        Discard an existing partial file instead of resuming it.
    chunk_rows
        HDF5 chunk length along the sample axis.
    """

    def __init__(
        self,
        output: str | Path,
        layout: Layout,
        fingerprint: str,
        overwrite: bool = False,
        restart: bool = False,
        chunk_rows: int = 64,
    ) -> None:
        self.output = check_can_write(output, overwrite=overwrite)
        self.overwrite = overwrite
        self.partial = self.output.with_name(self.output.name + ".partial")
        self.journal = self.output.with_name(self.output.name + ".partial.journal")
        self.layout = layout
        self.fingerprint = fingerprint
        self.chunk_rows = int(chunk_rows)
        self.n_written = 0
        self.done_keys: set[str] = set()
        self.stats_snapshot: dict = {}
        self.resumed = False
        self.broken = False  # a write failed: commit nothing more (the journal keeps the run resumable)
        self._pending: list[tuple[str, str, dict | None]] = []  # (key, status, record)
        self._h5: h5py.File | None = None
        if restart:
            self._discard()
        self._open()

    # ------------------------------------------------------------------------------------------ opening
    def _discard(self) -> None:
        for p in (self.partial, self.journal):
            if p.exists():
                p.unlink()

    def _read_journal(self) -> tuple[str | None, list[dict]]:
        head, entries = None, []
        with open(self.journal, encoding="utf-8") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    break  # a line cut by a crash: everything before it is valid
                if "fingerprint" in obj and head is None:
                    head = obj["fingerprint"]
                else:
                    entries.append(obj)
        return head, entries

    def _open(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._check_space(0, "to start or resume")
        if self.partial.exists() and self.journal.exists():
            head, entries = self._read_journal()
            if head != self.fingerprint:
                raise ValueError(
                    f"{self.partial} is an unfinished run made with other inputs or options; run again with the "
                    "same ones to resume it, or pass restart=True (--restart) to discard it"
                )
            try:
                self._h5 = h5py.File(self.partial, "r+")
                n = entries[-1]["n"] if entries else 0
                for name in self._all_dataset_names():
                    self._h5[name].resize(n, axis=0)
            except Exception as exc:  # our own temp file is damaged: start again
                warnings.warn(f"{self.partial} could not be resumed ({exc}); starting over", stacklevel=3)
                if self._h5 is not None:
                    self._h5.close()
                    self._h5 = None
                self._discard()
            else:
                self.n_written = n
                self.done_keys = {k for e in entries for k in e["keys"]}
                self.stats_snapshot = dict(entries[-1]["stats"]) if entries else {}
                self.resumed = True
                return
        self._discard()
        self._create()

    def _all_dataset_names(self) -> list[str]:
        return list(self.layout.datasets()) + [
            f"{IMAGES}/image_jpeg_view_{v}" for v in range(self.layout.max_views)
        ]

    def _create(self) -> None:
        self._h5 = h5py.File(self.partial, "w")
        for g in (IMAGES, KEYPOINTS, PARAMETERS, AUXILIARY, METADATA):
            self._h5.create_group(g)
        r = self.chunk_rows
        for name, (shape, dtype) in self.layout.datasets().items():
            self._h5.create_dataset(
                name,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(r, *shape),
                **({"compression": "gzip", "compression_opts": 1} if dtype in _NUMERIC else {}),
            )
        vlen = h5py.vlen_dtype(np.uint8)
        for v in range(self.layout.max_views):
            self._h5.create_dataset(
                f"{IMAGES}/image_jpeg_view_{v}", shape=(0,), maxshape=(None,), dtype=vlen, chunks=(r,)
            )
        self._h5.flush()
        with open(self.journal, "w", encoding="utf-8") as f:
            f.write(json.dumps({"fingerprint": self.fingerprint}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------------------------------------ writing
    def _check_space(self, n_bytes: int, what: str) -> None:
        """DiskFullError (naming the partial file and how to resume) unless ``2 n_bytes`` + headroom are free."""
        try:
            check_free_space(self.partial, 2 * n_bytes + HEADROOM_BYTES, f"{self.partial} ({what})")
        except DiskFullError as exc:
            if not self.partial.exists():
                raise
            raise DiskFullError(
                f"{exc}; the unfinished run stays in {self.partial.name} ({self.n_written} samples) and the "
                "same command resumes it"
            ) from None

    @property
    def n_pending(self) -> int:
        return len(self._pending)

    def add(self, key: str, record: dict) -> None:
        """Queue one sample (a dict from :meth:`Layout.empty_record`, filled in)."""
        self._pending.append((key, "written", record))

    def skip(self, key: str, reason: str) -> None:
        """Record that a planned sample was dropped (so a resumed run does not try it again)."""
        self._pending.append((key, reason, None))

    def commit(self, stats: dict) -> None:
        """Write the queued samples in one go, flush, then journal them with a statistics snapshot."""
        if not self._pending:
            return
        if self.broken:
            raise RuntimeError(f"{self.partial}: an earlier write failed; nothing more is written")
        records = [rec for _, status, rec in self._pending if rec is not None]
        n0, k = self.n_written, len(records)
        h5 = self._h5
        per_record = sum(int(np.prod(shape)) * 8 + 64 for shape, _ in self.layout.datasets().values())
        self._check_space(
            sum(len(b) for rec in records for b in rec["jpeg"]) + k * per_record, f"{k} more samples"
        )
        try:
            if k:
                for name in self.layout.datasets():
                    data = [rec[name] for rec in records]
                    ds = h5[name]
                    ds.resize(n0 + k, axis=0)
                    ds[n0 : n0 + k] = np.asarray(data, dtype=object if ds.dtype.kind == "O" else ds.dtype)
                for v in range(self.layout.max_views):
                    ds = h5[f"{IMAGES}/image_jpeg_view_{v}"]
                    ds.resize(n0 + k, axis=0)
                    _write_vlen(ds, n0, [rec["jpeg"][v] for rec in records])
            h5.flush()
        except Exception as exc:  # the journal still ends at n0: a resume truncates the partial file there
            self.broken = True
            message = (
                f"writing samples {n0}..{n0 + k - 1} into {self.partial} failed ({' '.join(str(exc).split())}); "
                "the same command resumes after the samples written before"
            )
            full = getattr(exc, "errno", None) == errno.ENOSPC
            raise (DiskFullError(message) if full else OSError(message)) from exc
        self.n_written = n0 + k
        keys = [key for key, _, _ in self._pending]
        with open(self.journal, "a", encoding="utf-8") as f:
            f.write(json.dumps({"n": self.n_written, "keys": keys, "stats": stats}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.done_keys.update(keys)
        self._pending.clear()

    # ------------------------------------------------------------------------------------------ ending
    def finalize(self, attrs: dict, used_views: int) -> Path:
        """Commit nothing new; set the ``metadata`` attributes, trim unused view slots, rename into place.

        Parameters
        ----------
        attrs
            ``metadata`` attributes (lists/dicts are stored as JSON strings).
        used_views
            Largest number of views in any written sample (extra slots are removed).
        """
        if self._pending:
            raise RuntimeError("commit() the pending samples before finalize()")
        self._check_space(len(json.dumps(attrs, default=str)), "to finish")
        h5 = self._h5
        v_final = max(1, int(used_views))
        if v_final < self.layout.max_views:
            for name in self.layout.datasets():
                if name.startswith((f"{KEYPOINTS}/", f"{IMAGES}/")) and "keypoints_3d" not in name:
                    h5[name].resize(v_final, axis=1)
            for v in range(v_final, self.layout.max_views):
                del h5[f"{IMAGES}/image_jpeg_view_{v}"]
        meta = h5[METADATA].attrs
        for key, value in attrs.items():
            if isinstance(value, (list, dict, tuple)):
                value = json.dumps(value)
            elif value is None:
                value = "none"
            meta[key] = value
        h5.close()
        self._h5 = None
        check_can_write(self.output, overwrite=self.overwrite)
        os.replace(self.partial, self.output)
        self.journal.unlink(missing_ok=True)
        return self.output

    def close(self) -> None:
        """Leave the partial file and journal for a later resume (pending samples are dropped unjournaled)."""
        self._pending.clear()
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
