"""Rotation conversions: Rodrigues, robust matrix→axis-angle, PyTorch3D 6D convention."""

from __future__ import annotations

import math

import pytest
import torch

from napari_smil_mv.body import (
    as_rotation_matrices,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)


def _random_axis_angle(n: int, max_angle: float = math.pi, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1)
    angle = torch.rand(n, 1, generator=g, dtype=torch.float64) * max_angle
    return axis * angle


def test_rodrigues_matches_known_rotation():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(R, expected, atol=1e-7)
    assert torch.allclose(axis_angle_to_matrix(torch.zeros(3)), torch.eye(3), atol=1e-7)


def test_rodrigues_is_orthonormal_and_batched():
    aa = _random_axis_angle(100).reshape(4, 25, 3)
    R = axis_angle_to_matrix(aa)
    assert R.shape == (4, 25, 3, 3)
    eye = torch.eye(3, dtype=torch.float64)
    # The reference's |θ + 1e-8| normalisation leaves an orthonormality error of order 1e-8.
    assert torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-7)
    assert torch.allclose(torch.linalg.det(R), torch.ones(4, 25, dtype=torch.float64), atol=1e-7)


def test_axis_angle_round_trip_including_near_zero_and_pi():
    aa = torch.cat(
        [
            _random_axis_angle(200, max_angle=math.pi - 1e-3),
            torch.tensor([[1e-7, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1e-4, 2e-4]], dtype=torch.float64),
        ]
    )
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    assert torch.allclose(back, aa, atol=1e-7)


def test_matrix_to_axis_angle_at_pi_gives_same_rotation():
    for axis in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, -2.0, 0.5]):
        aa = torch.nn.functional.normalize(torch.tensor(axis, dtype=torch.float64), dim=0) * math.pi
        R = axis_angle_to_matrix(aa)
        back = matrix_to_axis_angle(R)
        assert abs(back.norm().item() - math.pi) < 1e-6
        assert torch.allclose(axis_angle_to_matrix(back), R, atol=1e-7)


def test_6d_is_pytorch3d_rows_convention():
    assert torch.allclose(rotation_6d_to_matrix(torch.tensor([1.0, 0, 0, 0, 1, 0])), torch.eye(3))
    R = axis_angle_to_matrix(_random_axis_angle(50))
    d6 = matrix_to_rotation_6d(R)
    assert torch.allclose(d6[:, :3], R[:, 0, :]) and torch.allclose(d6[:, 3:], R[:, 1, :])
    assert torch.allclose(rotation_6d_to_matrix(d6), R, atol=1e-12)


def test_6d_gram_schmidt_of_unnormalised_input():
    d6 = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0], dtype=torch.float64)
    R = rotation_6d_to_matrix(d6)
    assert torch.allclose(R, torch.eye(3, dtype=torch.float64), atol=1e-12)
    g = torch.Generator().manual_seed(1)
    R = rotation_6d_to_matrix(torch.randn(30, 6, generator=g, dtype=torch.float64))
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand_as(R), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(30, dtype=torch.float64))


def test_as_rotation_matrices_accepts_three_representations():
    R = axis_angle_to_matrix(_random_axis_angle(10))
    aa = matrix_to_axis_angle(R)
    assert torch.allclose(as_rotation_matrices(aa), R, atol=1e-10)
    assert torch.allclose(as_rotation_matrices(matrix_to_rotation_6d(R)), R, atol=1e-10)
    assert as_rotation_matrices(R) is R
    with pytest.raises(ValueError, match="cannot read rotations"):
        as_rotation_matrices(torch.zeros(4, 5))


def test_gradients_are_finite_at_zero_and_pi():
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi], dtype=torch.float64)).requires_grad_(True)
    matrix_to_axis_angle(R).sum().backward()
    assert torch.isfinite(R.grad).all()


def test_gradcheck_conversions():
    aa = _random_axis_angle(5, max_angle=3.0).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    d6 = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))
    R = axis_angle_to_matrix(_random_axis_angle(5, max_angle=3.0)).requires_grad_(True)
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,))
