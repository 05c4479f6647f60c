"""Triangulation through aniposelib, reprojection errors, and no global JAX/torch side effects."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _sample_data import SHARED
from napari_smil_mv.cameras import load_calibration, reprojection_errors, ring_of_cameras, triangulate

SESSION = SHARED / "external/sleap-anipose/minimal_session"


def rig_with_distortion():
    return ring_of_cameras(
        4,
        distance=3.0,
        dist=[
            (-0.2, 0.05, 0.001, -0.001, 0.01),
            (-0.1, 0, 0, 0, 0),
            (0.05, -0.02, 0, 0.002, 0),
            (-0.25, 0.08, 0, 0, 0),
        ],
        principal_point_offset=(4, -3),
        seed=1,
        units="m",
    )


def test_triangulate_exact_with_distortion_and_missing_views():
    rig = rig_with_distortion()
    X = np.random.default_rng(0).normal(0, 0.3, (6, 5, 3))
    p2 = rig.project(X)  # (C, 6, 5, 2)
    p2[0, 0, 0] = np.nan
    p2[1:, 1, 1] = np.nan  # only one view -> NaN
    p2[:2, 2, 2] = np.nan  # two views -> fine
    out = triangulate(p2, rig)
    assert out.shape == (6, 5, 3)
    ok = ~np.isnan(out[..., 0])
    assert ok.sum() == 29 and np.isnan(out[1, 1]).all()
    assert np.abs(out[ok] - X[ok]).max() < 1e-9  # float64 DLT on exactly undistorted points
    err = reprojection_errors(out, p2, rig)
    assert err.shape == (4, 6, 5) and np.nanmax(err) < 1e-6
    assert np.isnan(err[0, 0, 0]) and np.isnan(err[:, 1, 1]).all()
    three = triangulate(p2, rig, min_cameras=3)
    assert np.isnan(three[2, 2]).all() and np.isnan(three[0, 0]).all() is np.False_
    assert np.abs(three[0, 0] - X[0, 0]).max() < 1e-9


def test_ransac_rejects_an_outlier_view():
    rig = rig_with_distortion()
    X = np.random.default_rng(1).normal(0, 0.3, (4, 3))
    p2 = rig.project(X)
    p2[2, 0] += [60.0, -40.0]  # one corrupted detection
    plain = triangulate(p2, rig)
    robust = triangulate(p2, rig, ransac=True)
    assert np.linalg.norm(plain[0] - X[0]) > 1e-3
    assert np.abs(robust - X).max() < 1e-6


def test_input_checks():
    rig = ring_of_cameras(3)
    with pytest.raises(ValueError, match=r"for 2 cameras but the rig has 3 \(\['cam1', 'cam2', 'cam3'\]\)"):
        triangulate(np.zeros((2, 4, 2)), rig)
    with pytest.raises(ValueError, match=r"shape \(C, \.\.\., 2\)"):
        triangulate(np.zeros((3, 4, 3)), rig)
    with pytest.raises(ValueError, match="do not match"):
        reprojection_errors(np.zeros((5, 3)), np.zeros((3, 4, 2)), rig)
    assert triangulate(np.zeros((3, 0, 2)), rig).shape == (0, 3)


def test_real_session_reprojection():
    pytest.importorskip("sleap_io")
    import sleap_io as sio

    if not (SESSION / "calibration.toml").is_file():
        pytest.skip(f"real data not available: {SESSION}")
    rig = load_calibration(SESSION / "calibration.toml", units="mm").subset(["back", "mid", "top"])
    P = np.stack(
        [sio.load_slp(str(SESSION / n / f"minimal_{n}_proofread.slp")).numpy()[:, 0] for n in rig.names]
    )
    X = triangulate(P, rig)  # (120, 15, 3)
    err = reprojection_errors(X, P, rig)
    med = np.nanmedian(err.reshape(3, -1), axis=1)
    # formats.md 7.1: 7.12 / 2.62 / 3.29 px, overall 3.56 px median
    assert np.allclose(med, [7.12, 2.62, 3.29], atol=0.05) and abs(np.nanmedian(err) - 3.56) < 0.05


def test_no_global_jax_or_torch_side_effects_in_fresh_interpreter():
    pytest.importorskip("jax")
    code = textwrap.dedent("""
        import os
        import sys
        import numpy as np
        import napari_smil_mv.cameras as cams
        heavy = {"aniposelib", "jax", "napari", "PyQt6", "pytorch3d"} & set(sys.modules)
        assert not heavy, f"importing napari_smil_mv.cameras imported {heavy}"
        assert os.environ["ANIPOSE_DISABLE_JAX_X64"] == "1", os.environ["ANIPOSE_DISABLE_JAX_X64"]
        os.environ["ANIPOSE_DISABLE_JAX_X64"] = "0"   # a user who asks aniposelib for global x64
        import jax, torch
        rig = cams.ring_of_cameras(3, dist=(-0.1, 0, 0, 0, 0))
        X = np.random.default_rng(0).normal(0, 0.3, (7, 3))
        p2 = rig.project(X)
        out = cams.triangulate(p2, rig)
        assert np.abs(out - X).max() < 1e-9, np.abs(out - X).max()   # computed in float64
        p2[1, 0] += 50.0
        cams.triangulate(p2, rig, ransac=True)
        assert os.environ["ANIPOSE_DISABLE_JAX_X64"] == "0"
        assert jax.config.jax_enable_x64 is False, jax.config.jax_enable_x64
        assert jax.numpy.ones(2).dtype == jax.numpy.float32
        assert torch.get_default_dtype() == torch.float32
        print("OK")
    """)
    env = {k: v for k, v in os.environ.items() if k != "ANIPOSE_DISABLE_JAX_X64"}
    env["JAX_PLATFORMS"] = "cpu"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stderr[-3000:]


def test_ransac_with_points_seen_by_fewer_than_two_cameras():
    """Points with a single view must come back NaN instead of crashing aniposelib's RANSAC."""
    from napari_smil_mv.cameras import ring_of_cameras, triangulate

    rig = ring_of_cameras(n_cameras=3, distance=3.0)
    pts = np.array([[0.1, 0.0, 0.2], [0.0, 0.3, -0.1], [0.2, -0.2, 0.0]])
    p2d = rig.project(pts)
    p2d[1:, 1] = np.nan  # point 1 is seen by one camera only
    out = triangulate(p2d, rig, ransac=True)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[[0, 2]], pts[[0, 2]], atol=1e-6)
