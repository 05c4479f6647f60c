"""Mapping between data keypoints (SLEAP nodes) and body-model joints: ``joint_lookup.csv``.

File format (SMILify's): a CSV with columns ``model`` (model joint name) and ``data`` (data node name); one row
per model joint, an empty ``data`` cell means the joint has no data keypoint. Names are matched exactly
(case-sensitive) after stripping surrounding white space.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_smil_mv.utils.atomic import atomic_path

JOINT_LOOKUP_CSV = "joint_lookup.csv"

# Groups of names that mean the same body part (normalised: lower case, no separators, side removed).
SYNONYMS: list[set[str]] = [
    {"nose", "snout", "nosetip"},
    {"head", "skull", "headcenter", "headcentre"},
    {"neck", "cervicalvertebrae", "cervical"},
    {
        "trunk",
        "spine",
        "thoracicvertebrae",
        "tharocicvertebrae",
        "thorax",
        "body",
        "centroid",
        "mid",
        "midbody",
    },
    {"tti", "tailbase", "tailroot", "tailstart", "lumbarvertebrae", "lumbar", "rump"},
    {"tailtip", "tailend"},
    {"ear"},
    {"eartip"},
    {"shoulder", "humerus", "forelimb", "scapula"},
    {"elbow", "ulnaradius", "forearm"},
    {"paw", "forepaw", "frontpaw", "hand", "wrist"},
    {"haunch", "hip", "femur", "thigh"},
    {"knee", "tibia", "shin"},
    {"foot", "hindpaw", "hindfoot", "backpaw", "ankle"},
    {"foottip", "toe", "hindpawtip"},
]
_LEFT = {"l", "left", "lft", "lt"}
_RIGHT = {"r", "right", "rgt", "rt"}


def _tokens(name: str) -> list[str]:
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", name.strip())
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    return [t for t in re.split(r"[^A-Za-z0-9]+", s.lower()) if t]


def normalise_name(name: str) -> tuple[str, str, int | None]:
    """``(base, side, number)`` of a joint name: ``"Ear_L"`` -> ``("ear", "L", None)``, ``"Tail_00"`` -> ``("tail", "", 0)``.

    The side comes from tokens such as ``l``/``left``/``r``/``right``; the number from the last numeric token
    (leading zeros ignored); the base is the remaining tokens joined, then mapped to its synonym group's first name.
    """
    toks = _tokens(name)
    side = ""
    number = None
    base_toks = []
    for t in toks:
        if t in _LEFT and not side:
            side = "L"
        elif t in _RIGHT and not side:
            side = "R"
        elif t.isdigit():
            number = int(t)
        else:
            base_toks.append(t)
    base = "".join(base_toks)
    for group in SYNONYMS:
        if base in group:
            base = sorted(group)[0]
            break
    return base, side, number


@dataclass
class JointMap:
    """Pairs ``(data node, model joint)``: which data keypoint observes which model joint.

    A model joint takes at most one data node; a data node may observe several model joints.
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pairs = [(str(d).strip(), str(m).strip()) for d, m in self.pairs]
        models = [m for _, m in self.pairs]
        dupes = sorted({m for m in models if models.count(m) > 1})
        if dupes:
            raise ValueError(
                f"joint map assigns several data nodes to model joints {dupes}; one node per joint"
            )

    @classmethod
    def from_dict(cls, data_to_model: dict[str, str]) -> JointMap:
        """From ``{data node: model joint}``."""
        return cls(list(data_to_model.items()))

    @property
    def data_to_model(self) -> dict[str, list[str]]:
        """Data node -> model joints it observes."""
        out: dict[str, list[str]] = {}
        for d, m in self.pairs:
            out.setdefault(d, []).append(m)
        return out

    @property
    def model_to_data(self) -> dict[str, str]:
        """Model joint -> data node."""
        return {m: d for d, m in self.pairs}

    def __len__(self) -> int:
        return len(self.pairs)

    def validate(self, data_nodes: Sequence[str], model_joints: Sequence[str]) -> list[str]:
        """Human-readable problems (names not found in the data skeleton or the model); empty when fine."""
        problems = []
        bad_d = sorted({d for d, _ in self.pairs if d not in data_nodes})
        bad_m = sorted({m for _, m in self.pairs if m not in model_joints})
        if bad_d:
            problems.append(f"data nodes {bad_d} are not in the skeleton {list(data_nodes)}")
        if bad_m:
            problems.append(f"model joints {bad_m} are not in the model")
        return problems

    def index_pairs(
        self, data_nodes: Sequence[str], model_joints: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index arrays ``(data_idx (K,), model_idx (K,))`` of the usable pairs, for gathering keypoints.

        Pairs whose names are missing on either side are skipped (see :meth:`validate`).
        """
        d_idx, m_idx = [], []
        dn, mj = list(data_nodes), list(model_joints)
        for d, m in self.pairs:
            if d in dn and m in mj:
                d_idx.append(dn.index(d))
                m_idx.append(mj.index(m))
        return np.asarray(d_idx, dtype=np.int64), np.asarray(m_idx, dtype=np.int64)

    def model_index_map(self, data_nodes: Sequence[str], model_joints: Sequence[str]) -> np.ndarray:
        """``(J,)`` data node index observed at each model joint, -1 where unmapped (SMILify's convention)."""
        out = np.full(len(model_joints), -1, dtype=np.int64)
        d_idx, m_idx = self.index_pairs(data_nodes, model_joints)
        out[m_idx] = d_idx
        return out

    # -- file I/O --------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> JointMap:
        """Read ``joint_lookup.csv`` (columns ``model``, ``data``; empty ``data`` = unmapped).

        Raises
        ------
        FileNotFoundError, ValueError
            Naming the file and the missing column or duplicated joint.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"joint lookup table not found: {path}")
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "model" not in fields or "data" not in fields:
                raise ValueError(f"{path}: needs columns 'model' and 'data', found {fields}")
            pairs = []
            for row in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                if row["model"] and row["data"]:
                    pairs.append((row["data"], row["model"]))
        try:
            return cls(pairs)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def write(
        self, path: str | Path, model_joints: Iterable[str] | None = None, overwrite: bool = False
    ) -> Path:
        """Write ``joint_lookup.csv`` atomically; with ``model_joints`` every joint gets a row (empty = unmapped)."""
        m2d = self.model_to_data
        joints = list(model_joints) if model_joints is not None else [m for _, m in self.pairs]
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["model", "data"])
            for m in joints:
                w.writerow([m, m2d.get(m, "")])
        return Path(path)


def auto_match(data_nodes: Sequence[str], model_joint_names: Sequence[str]) -> JointMap:
    """Suggest a joint map by name: exact, then case/separator-insensitive, then synonyms with matching side.

    Parameters
    ----------
    data_nodes
        Skeleton node names of the data.
    model_joint_names
        Joint names of the body model.

    Returns
    -------
    JointMap
        One-to-one pairs; unmatched nodes are left out. A suggestion to review, not ground truth.
    """
    used_m: set[str] = set()
    pairs: dict[str, str] = {}
    norm_m = {m: normalise_name(m) for m in model_joint_names}
    flat = {m: re.sub(r"[^a-z0-9]", "", m.lower()) for m in model_joint_names}

    def take(d: str, candidates: list[str]) -> None:
        for m in candidates:
            if m not in used_m and d not in pairs:
                pairs[d] = m
                used_m.add(m)
                return

    for d in data_nodes:  # 1. exact
        take(d, [m for m in model_joint_names if m == d])
    for d in data_nodes:  # 2. ignoring case and separators
        if d not in pairs:
            key = re.sub(r"[^a-z0-9]", "", d.lower())
            take(d, [m for m in model_joint_names if flat[m] == key])
    for d in data_nodes:  # 3. synonyms, same side and number
        if d not in pairs:
            nd = normalise_name(d)
            if nd[0]:
                take(d, [m for m in model_joint_names if norm_m[m] == nd])
    return JointMap([(d, pairs[d]) for d in data_nodes if d in pairs])


def check_joint_map(joint_map: JointMap, session, model_joints: Sequence[str], source: str = "") -> None:
    """Raise a ValueError when ``joint_map`` names nodes the session's skeleton lacks or joints the model lacks.

    The one check ``fit``, ``infer`` and ``preprocess`` apply to a joint map (see :meth:`JointMap.validate`).

    Parameters
    ----------
    joint_map
        The map to check.
    session
        A :class:`~napari_smil_mv.sessions.Session` (its name and skeleton nodes are used).
    model_joints
        The body model's joint names.
    source
        Where the map came from (a file path), named in the message.
    """
    problems = joint_map.validate(session.skeleton.nodes, model_joints)
    if problems:
        src = f" {source}" if source else ""
        raise ValueError(
            f"joint map{src} does not fit session {session.name!r} and the model: " + "; ".join(problems)
        )
