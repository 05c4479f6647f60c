"""Ground-truth shape coefficients per session: ``shape_betas.csv`` (columns ``label``, ``PC1``, ``PC2``, ...).

Labels are matched to session names **exactly** (after stripping white space). SMILify also accepted a
substring match either way, which silently gives session ``a1`` the betas of ``a10``; we do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE_BETAS_CSV = "shape_betas.csv"


@dataclass
class ShapeBetas:
    """Table of betas: ``labels (S,)`` and ``betas (S, K)`` float64 (K = number of ``PC`` columns)."""

    labels: list[str]
    betas: np.ndarray
    columns: list[str]

    def __post_init__(self) -> None:
        self.labels = [str(s).strip() for s in self.labels]
        self.betas = np.asarray(self.betas, dtype=np.float64).reshape(len(self.labels), -1)
        dupes = sorted({s for s in self.labels if self.labels.count(s) > 1})
        if dupes:
            raise ValueError(f"shape betas: labels {dupes} appear more than once; each session needs one row")

    def get(self, label: str, n_betas: int | None = None) -> np.ndarray | None:
        """Betas of ``label`` (exact match), zero-padded or truncated to ``n_betas``; None when absent."""
        label = str(label).strip()
        if label not in self.labels:
            return None
        b = self.betas[self.labels.index(label)].copy()
        if n_betas is not None:
            b = np.pad(b, (0, max(0, n_betas - len(b))))[:n_betas]
        return b

    @classmethod
    def read(cls, path: str | Path) -> ShapeBetas:
        """Read ``shape_betas.csv``.

        Raises
        ------
        FileNotFoundError, ValueError
            Naming the file and the missing ``label`` or ``PC<k>`` columns or a non-numeric cell.
        """
        import pandas as pd

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"shape betas table not found: {path}")
        df = pd.read_csv(path, dtype={"label": str})
        df.columns = [str(c).strip() for c in df.columns]
        if "label" not in df.columns:
            raise ValueError(f"{path}: needs a 'label' column (session name), found {list(df.columns)}")
        pcs = sorted((c for c in df.columns if re.fullmatch(r"PC\d+", c)), key=lambda c: int(c[2:]))
        if not pcs:
            raise ValueError(f"{path}: needs columns PC1, PC2, ... with the betas, found {list(df.columns)}")
        try:
            betas = df[pcs].to_numpy(dtype=np.float64)
        except ValueError as exc:
            raise ValueError(f"{path}: non-numeric value in the PC columns ({exc})") from None
        try:
            return cls(df["label"].fillna("").tolist(), betas, pcs)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
