"""The sample-data registry (upstream URLs at pinned commits, SHA-256 of the project's copies); no network."""

from __future__ import annotations

import re
import shutil

import pytest

from _sample_data import LOCAL_SHARED, resolve_shared
from napari_smil_mv import sample_data_fetch as sdf

PINNED = {
    "external/sleap-anipose/": "talmolab/sleap-anipose/aa6e68f27f2f7a64163c0739c17c8cf58837036f/",
    "external/sleap-multiview/": "talmolab/sleap/9775fc22d4917ba7a9b44ebfad45db790bc5d0c1/",
    "external/sleap-io-format28/": "talmolab/sleap-io.js/a9978f11022fd4293e06c5aa1995353af03a788b/",
    "models/": "FabianPlum/SMILify/b5bf9565073d0580ef5ef353262f7319e654c7d1/",
}


def _local():
    if not (LOCAL_SHARED / "external").is_dir():
        pytest.skip(f"real sample data not available: {LOCAL_SHARED} (the registry is checked against it)")
    return LOCAL_SHARED


def test_every_entry_has_a_pinned_raw_url():
    for name in sdf.REGISTRY:
        url = sdf.url_of(name)
        assert url.startswith("https://raw.githubusercontent.com/"), url
        prefix = next(p for p in PINNED if name.startswith(p))
        assert PINNED[prefix] in url, (name, url)
        assert url.endswith(name.rsplit("/", 1)[-1]), (name, url)
        sha, size = sdf.REGISTRY[name]
        assert re.fullmatch(r"[0-9a-f]{64}", sha) and size > 0
    assert sdf.url_of("external/sleap-anipose/minimal_session/points3d.h5") == (
        "https://raw.githubusercontent.com/talmolab/sleap-anipose/aa6e68f27f2f7a64163c0739c17c8cf58837036f/"
        "tests/data/minimal_session/points3d.h5"
    )
    assert sdf.url_of("external/sleap-multiview/videos/min_session_top.mp4").endswith(
        "/tests/data/videos/min_session_top.mp4"
    )
    assert sdf.url_of("models/SMILy_STICK.pkl").endswith("/3D_model_prep/SMILy_STICK.pkl")
    with pytest.raises(KeyError, match="not in the sample-data registry"):
        sdf.url_of("external/nothing.slp")


def test_registry_matches_the_local_copies_byte_for_byte():
    root = _local()
    assert sdf.verify(root) == {}
    local = {
        p.relative_to(root).as_posix()
        for sub in ("external", "models")
        for p in (root / sub).rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert local == set(sdf.REGISTRY), "registry and ../shared list different files"
    for name, (_sha, size) in sdf.REGISTRY.items():
        assert (root / name).stat().st_size == size, name


def test_select_and_verify_report_problems(tmp_path):
    assert sdf.select(["models"]) == ["models/SMILy_Mouse_static_joints.pkl", "models/SMILy_STICK.pkl"]
    assert len(sdf.select(["external/sleap-anipose"])) == 21
    with pytest.raises(ValueError, match="names no sample-data file"):
        sdf.select(["external/sleap"])  # a prefix must end at a folder boundary
    problems = sdf.verify(tmp_path, ["models"])
    assert problems == {n: "missing" for n in sdf.select(["models"])}
    bad = tmp_path / "models" / "SMILy_STICK.pkl"
    bad.parent.mkdir()
    bad.write_bytes(b"not the model")
    assert sdf.verify(tmp_path, ["models/SMILy_STICK.pkl"])["models/SMILy_STICK.pkl"].startswith("sha256 ")


def test_fetch_keeps_files_that_already_match_without_network(tmp_path, monkeypatch):
    root = _local()
    pytest.importorskip("pooch")
    name = "external/sleap-anipose/minimal_session/calibration.toml"
    (tmp_path / name).parent.mkdir(parents=True)
    shutil.copy(root / name, tmp_path / name)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download a file that was already there")

    monkeypatch.setattr("pooch.retrieve", no_network)
    assert sdf.fetch_sample_data(tmp_path, [name]) == tmp_path
    assert sdf.verify(tmp_path, [name]) == {}


def test_tests_fetch_only_when_opted_in_and_shared_is_absent(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sdf, "fetch_sample_data", lambda: calls.append(1) or tmp_path / "cache")
    absent = tmp_path / "no-shared"
    assert resolve_shared(absent, {}) == absent and calls == []  # default: no network, tests skip
    assert resolve_shared(absent, {sdf.FETCH_ENV: "1"}) == tmp_path / "cache" and calls == [1]
    present = tmp_path / "shared"
    (present / "models").mkdir(parents=True)
    assert resolve_shared(present, {sdf.FETCH_ENV: "1"}) == present and calls == [1]  # local copy wins

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(sdf, "fetch_sample_data", offline)
    with pytest.warns(UserWarning, match="could not fetch the sample data"):
        assert resolve_shared(absent, {sdf.FETCH_ENV: "1"}) == absent
    monkeypatch.setenv(sdf.CACHE_ENV, str(tmp_path / "c"))
    assert sdf.default_cache() == tmp_path / "c"
