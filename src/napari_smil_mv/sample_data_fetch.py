"""Fetch the real sample data the tests use (``../shared``) from the upstream repositories, checked by SHA-256.

The project's tests read public recordings and body models from ``../shared`` (next to the repository). A fresh
clone has no such folder, and the tests that need it skip. :func:`fetch_sample_data` downloads the same files,
byte for byte, from the repositories that published them, at pinned commits, into a cache laid out like
``../shared`` and checks every file against the SHA-256 in :data:`REGISTRY` (computed from the copies the project
tests with). Nothing is downloaded unless asked: the tests fetch only with ``SMILMV_FETCH_SAMPLE_DATA=1``.

Sources (all public GitHub repositories; files are test fixtures, never shipped in a wheel):

* ``external/sleap-anipose``: talmolab/sleap-anipose at ``aa6e68f2``, ``tests/data/minimal_session`` (GPL-3.0
  LICENSE file; real mouse, 4 cameras, 120 frames).
* ``external/sleap-multiview``: talmolab/sleap at ``9775fc22``, ``tests/data/cameras/minimal_session`` and
  ``tests/data/videos`` (Clear BSD; 8 cameras, 2 mice).
* ``external/sleap-io-format28``: talmolab/sleap-io.js at ``a9978f11``, ``tests/data/slp`` (BSD-3-Clause).
* ``models``: FabianPlum/SMILify at ``b5bf9565``, ``3D_model_prep`` (MIT LICENSE; SMIL stick insect and mouse).

The golden reference poses (``../shared/golden``) were produced for this project and are not published upstream:
tests that need them still skip on a fresh clone.

Requires ``pooch`` (``pip install pooch``). No Qt/napari imports.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

#: Environment variable that lets the tests download the sample data when ``../shared`` is absent.
FETCH_ENV = "SMILMV_FETCH_SAMPLE_DATA"
#: Environment variable naming the cache folder (default: the user cache, ``pooch.os_cache("napari-smil-mv")``).
CACHE_ENV = "SMILMV_SAMPLE_DATA_DIR"

_RAW = "https://raw.githubusercontent.com"
#: ``(prefix under the shared folder, base URL of the same folder upstream at the pinned commit)``.
SOURCES: tuple[tuple[str, str], ...] = (
    (
        "external/sleap-anipose/minimal_session/",
        f"{_RAW}/talmolab/sleap-anipose/aa6e68f27f2f7a64163c0739c17c8cf58837036f/tests/data/minimal_session/",
    ),
    ("external/sleap-anipose/", f"{_RAW}/talmolab/sleap-anipose/aa6e68f27f2f7a64163c0739c17c8cf58837036f/"),
    (
        "external/sleap-multiview/cameras/",
        f"{_RAW}/talmolab/sleap/9775fc22d4917ba7a9b44ebfad45db790bc5d0c1/tests/data/cameras/",
    ),
    (
        "external/sleap-multiview/videos/",
        f"{_RAW}/talmolab/sleap/9775fc22d4917ba7a9b44ebfad45db790bc5d0c1/tests/data/videos/",
    ),
    ("external/sleap-multiview/", f"{_RAW}/talmolab/sleap/9775fc22d4917ba7a9b44ebfad45db790bc5d0c1/"),
    (
        "external/sleap-io-format28/LICENSE",
        f"{_RAW}/talmolab/sleap-io.js/a9978f11022fd4293e06c5aa1995353af03a788b/LICENSE",
    ),
    (
        "external/sleap-io-format28/",
        f"{_RAW}/talmolab/sleap-io.js/a9978f11022fd4293e06c5aa1995353af03a788b/tests/data/slp/",
    ),
    ("models/", f"{_RAW}/FabianPlum/SMILify/b5bf9565073d0580ef5ef353262f7319e654c7d1/3D_model_prep/"),
)

#: Every fetchable file: path under the shared folder -> (SHA-256, size in bytes), from the project's copies.
REGISTRY: dict[str, tuple[str, int]] = {
    "external/sleap-anipose/LICENSE": (
        "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986",
        35149,
    ),
    "external/sleap-anipose/minimal_session/back/calibration_images/minimal_session-back-calibration.mp4": (
        "d9c8acc5f15b24d91b2adde2d79421829fa2ab33d7150aab02b32d81174b3d36",
        251291,
    ),
    "external/sleap-anipose/minimal_session/back/minimal_back.mp4": (
        "192b0e139114606905b145c66093f7b90738513ae3d8dc4e1db615b70ee9b63b",
        1198540,
    ),
    "external/sleap-anipose/minimal_session/back/minimal_back_proofread.analysis.h5": (
        "477f408ff21579f80dacde0fae4951adcba572ba96abe93ee7ba61b6b5a1d239",
        39469,
    ),
    "external/sleap-anipose/minimal_session/back/minimal_back_proofread.slp": (
        "6929937df7982888736ab61085f3fa9cc260e6dbaf81a5b464d00633e36d5268",
        76872,
    ),
    "external/sleap-anipose/minimal_session/board.toml": (
        "66b7ccf1d6c26a38f9e6c5026ec5ba4aaf701e9916310142a2c05630d442c9a3",
        100,
    ),
    "external/sleap-anipose/minimal_session/board_checker.toml": (
        "307cc88fd43f3e4fdbe02748c0cdeeeae4782a2526822b5cee14896696191ddb",
        46,
    ),
    "external/sleap-anipose/minimal_session/calibration.metadata.h5": (
        "6718b5b468057933d99f4c0a86247a1a849ba1dee761576be772d6e6ce65deb5",
        180329,
    ),
    "external/sleap-anipose/minimal_session/calibration.toml": (
        "fc17150704ae153793795fb50fbbfd581f465d665c46fc3473d961299a07c3b7",
        1442,
    ),
    "external/sleap-anipose/minimal_session/mid/calibration_images/minimal_session-mid-calibration.mp4": (
        "d1863f49cb3f1d99b22e84fa7cd17f9154714b6be0da42c6aa82816bc5b4845c",
        259318,
    ),
    "external/sleap-anipose/minimal_session/mid/minimal_mid.mp4": (
        "3b23235db6f4194609b6c46f24b838b215a4639c272cc678891923e641d1bf7f",
        1100877,
    ),
    "external/sleap-anipose/minimal_session/mid/minimal_mid_proofread.analysis.h5": (
        "d91f3bacf3395f80ab9763e372dc344242ccccd9f2993063153bca65860be180",
        43692,
    ),
    "external/sleap-anipose/minimal_session/mid/minimal_mid_proofread.slp": (
        "76c4935cf9f02f294764cb3d03a78057619b7dcf720f6363a8d83116fe3d3021",
        76872,
    ),
    "external/sleap-anipose/minimal_session/points3d.h5": (
        "da75f265a3e24f53cba8dc4e2c12b24737fb070e1c90bc1917faa3bf7c2a65d0",
        47939,
    ),
    "external/sleap-anipose/minimal_session/side/minimal_side.mp4": (
        "55f74506444dda49d374e0a87deb3f6cc49b6ac8fbc4cbd4d9ad2f1fe2c1218c",
        1115247,
    ),
    "external/sleap-anipose/minimal_session/side/minimal_side_proofread.analysis.h5": (
        "a33a39de1778e236e47e0466492092cd0a4477e6621b5c1ed3e4ceaad642230c",
        41463,
    ),
    "external/sleap-anipose/minimal_session/side/minimal_side_proofread.slp": (
        "21ac244a6a0d34c423a968bfc49bb57c5a385c50c95f1b6427d854176c8e1731",
        76872,
    ),
    "external/sleap-anipose/minimal_session/top/calibration_images/minimal_session-top-calibration.mp4": (
        "5981e229c717b3593415782883f2af9e9878c9635d1480e4b28f0717d5b4432e",
        274536,
    ),
    "external/sleap-anipose/minimal_session/top/minimal_top.mp4": (
        "4bc2efd6e312afb90933241ab8700a5434497a63a5945aa2970d627a1cc289a7",
        1262321,
    ),
    "external/sleap-anipose/minimal_session/top/minimal_top_proofread.analysis.h5": (
        "395249b1a1b44eca6fd61e3251a089dabf5651b49bca1b4645aa3e51c13940ae",
        43886,
    ),
    "external/sleap-anipose/minimal_session/top/minimal_top_proofread.slp": (
        "967639f84ea4d86d8f3f29b5bf73acb4d3e70887bf48777b5715314aae1a7902",
        76864,
    ),
    "external/sleap-io-format28/LICENSE": (
        "4bc0bae325da0cd8598595d27dd072fd275c063463bde27a43978b2a117fb1fd",
        1517,
    ),
    "external/sleap-io-format28/py_written_28_multiview3d.slp": (
        "18b3a7bafe2e999bdc5281d92fe8f3dee4b366bc32e39ecd3d4bc2581300732f",
        34770,
    ),
    "external/sleap-multiview/LICENSE": (
        "9f77de495105e143ed603f4d707816d98f61c7e9d4f892d9ddb4a413f9af46b0",
        1748,
    ),
    "external/sleap-multiview/cameras/minimal_session/calibration.toml": (
        "dcd1171bbe4f0e2f108e48f74ca939dac99c47bc455ecf809255434641d63762",
        2885,
    ),
    "external/sleap-multiview/cameras/minimal_session/min_session.slp": (
        "5bfd13fa4f46e288e0a0efffe0ead06919928bf8395549cc57996149041bb53e",
        44606,
    ),
    "external/sleap-multiview/cameras/minimal_session/min_session_frame_groups.slp": (
        "109ea67d7c1b0b67cf6fbf488a7fadaabd2fd0238579f9f7d89231786669aadb",
        61536,
    ),
    "external/sleap-multiview/cameras/minimal_session/min_session_user_labeled.slp": (
        "5f7f55f117583334b2ca10be0829922cdab0bdbfc029ff23b59636d7e180d68f",
        60444,
    ),
    "external/sleap-multiview/videos/min_session_back.mp4": (
        "bc27dc51d4b949b685bfa9999ea7068d457c70a43365643fcb6a32e0958e8422",
        89551,
    ),
    "external/sleap-multiview/videos/min_session_backL.mp4": (
        "3fb23382033d6ef2326353f4c3a5c0d369f3b949032a756d5e47a8f55af1b27d",
        97636,
    ),
    "external/sleap-multiview/videos/min_session_mid.mp4": (
        "5b34aadeb75753a2c5548b9cf2dfb4dee3990217819b8094888162da7c70a01a",
        90804,
    ),
    "external/sleap-multiview/videos/min_session_midL.mp4": (
        "18ad5131d46c019fa8fa44db404c4781c74101c7f6b83baf7229a55323980294",
        103491,
    ),
    "external/sleap-multiview/videos/min_session_side.mp4": (
        "cbb6a3310c6b7dc20357101fc758df4b7090c615a27ec7d1ed6f5f1e2989358a",
        85233,
    ),
    "external/sleap-multiview/videos/min_session_sideL.mp4": (
        "3c51ae287990ceeaee2fe7bb2f342a8c4e1187f1bbe2f5ddb543589fe5184e8e",
        87975,
    ),
    "external/sleap-multiview/videos/min_session_top.mp4": (
        "f0a7edf44aacdc4262525b1beefd3ac38e17f05b3003a61bae8ff2d1fc005c18",
        97038,
    ),
    "external/sleap-multiview/videos/min_session_topL.mp4": (
        "13981c3a61fcc60993531ef53948a5b71ea57c932447b60ad2fc2f37f3f2a504",
        105046,
    ),
    "models/SMILy_Mouse_static_joints.pkl": (
        "54d8628a8953b40e415fa2d7c4861dd79e0d2a71a41d8ffb13a595df664de7ff",
        4085212,
    ),
    "models/SMILy_STICK.pkl": ("9d06bc79b3211f56e482fa1f530b75a46ce63b785d1bcd67687b3b6120911296", 1852140),
}


def url_of(name: str) -> str:
    """Upstream URL (raw file at the pinned commit) of a registry entry such as ``models/SMILy_STICK.pkl``."""
    if name not in REGISTRY:
        raise KeyError(f"{name!r} is not in the sample-data registry; known: {sorted(REGISTRY)[:3]}...")
    for prefix, base in SOURCES:
        if name == prefix:
            return base
        if prefix.endswith("/") and name.startswith(prefix):
            return base + name[len(prefix) :]
    raise KeyError(f"no upstream source for {name!r}")  # pragma: no cover - every entry has a prefix


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_cache() -> Path:
    """Cache folder laid out like ``../shared``: ``$SMILMV_SAMPLE_DATA_DIR`` or the user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    try:
        import pooch
    except ImportError:
        return Path.home() / ".cache" / "napari-smil-mv" / "shared"
    return Path(pooch.os_cache("napari-smil-mv")) / "shared"


def fetch_sample_data(
    dest: str | os.PathLike | None = None, names: Iterable[str] | None = None, progress: bool = False
) -> Path:
    """Download the sample data (or the named part of it) into ``dest`` and check every file's SHA-256.

    Parameters
    ----------
    dest
        Folder laid out like ``../shared`` (None: :func:`default_cache`). Files already there with the right
        checksum are not downloaded again.
    names
        Registry entries or prefixes (``"external/sleap-anipose"``, ``"models"``); None: everything (about 10 MB).
    progress
        Show a download progress bar (needs ``tqdm``).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ImportError
        When pooch is not installed (the message says how to install it).
    ValueError
        When a prefix matches no entry, or a downloaded file's checksum differs (pooch names the file).
    """
    try:
        import pooch
    except ImportError:
        raise ImportError(
            "fetching the sample data needs pooch: pip install pooch (or pip install -e '.[testing]')"
        ) from None
    root = Path(dest) if dest is not None else default_cache()
    wanted = select(names)
    for name in wanted:
        sha, _size = REGISTRY[name]
        target = root / name
        if target.is_file() and sha256_of(target) == sha:
            continue
        pooch.retrieve(
            url_of(name),
            known_hash=f"sha256:{sha}",
            fname=target.name,
            path=target.parent,
            progressbar=progress,
        )
    return root


def select(names: Iterable[str] | None) -> list[str]:
    """Registry entries named by ``names`` (entries or folder prefixes); None: all, sorted."""
    if names is None:
        return sorted(REGISTRY)
    out: list[str] = []
    for n in names:
        key = str(n).strip("/")
        hits = [k for k in sorted(REGISTRY) if k == key or k.startswith(key + "/")]
        if not hits:
            raise ValueError(
                f"{n!r} names no sample-data file; use e.g. 'models' or 'external/sleap-anipose'"
            )
        out.extend(h for h in hits if h not in out)
    return out


def verify(root: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, str]:
    """Check files under ``root`` against the registry without any network.

    Returns
    -------
    dict
        ``{name: problem}`` for every file that is missing (``"missing"``) or differs (``"sha256 ..."``);
        empty when all match.
    """
    root = Path(root)
    problems: dict[str, str] = {}
    for name in select(names):
        path = root / name
        if not path.is_file():
            problems[name] = "missing"
            continue
        got = sha256_of(path)
        if got != REGISTRY[name][0]:
            problems[name] = f"sha256 {got[:12]}... != {REGISTRY[name][0][:12]}..."
    return problems
