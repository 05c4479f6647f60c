"""A small numpy/OpenCV mesh painter for previews and synthetic videos (no PyTorch3D, no Qt).

Triangles are projected with the camera's own (distorting) projection, culled (behind the near plane, facing
away from the camera, outside the image), Lambert-shaded per face, sorted far to near and filled with
``cv2.fillConvexPoly`` at sub-pixel precision (painter's algorithm). Anti-aliasing renders the mesh at twice
the resolution into an RGBA layer, averages it down and composites it over the background.

Images are ``(H, W, 3)`` uint8 **RGB** (napari order; convert to BGR before ``cv2.imwrite``). Pixel
coordinates are ``(x, y)`` with pixel centres at integer coordinates, as everywhere in this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

_SHIFT = 4  # fixed-point bits for cv2 drawing (1/16 px)
_SCALE = float(1 << _SHIFT)

DEFAULT_MESH_COLOR = (178, 92, 44)
#: Direction *towards* the light in camera coordinates (x right, y down, z forward): above, left and behind
#: the camera.
DEFAULT_LIGHT_DIR = (-0.35, -0.6, -0.7)


def _camera_geometry(vertices: np.ndarray, camera: Any) -> tuple[np.ndarray, np.ndarray]:
    verts = np.asarray(vertices, dtype=np.float64)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {verts.shape}.")
    cam = camera.world_to_camera(verts)
    px = camera.project(verts)
    return cam, px


def _visible_faces(
    cam: np.ndarray,
    px: np.ndarray,
    faces: np.ndarray,
    size: tuple[int, int],
    near: float,
    cull_backfaces: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the drawable faces, far to near, and the unit camera-space normals of all faces."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}.")
    if faces.size and (faces.min() < 0 or faces.max() >= len(cam)):
        raise ValueError(f"faces index vertices outside 0..{len(cam) - 1}.")
    tri = cam[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = normal / np.where(norm > 0, norm, 1.0)
    keep = np.all(tri[:, :, 2] > near, axis=1)
    if cull_backfaces:
        keep &= np.einsum("ij,ij->i", normal, tri[:, 0]) < 0.0  # the normal points towards the camera
    p = px[faces]  # (F, 3, 2)
    keep &= np.all(np.isfinite(p), axis=(1, 2))
    w, h = size
    with np.errstate(invalid="ignore"):
        keep &= ~(
            (p[:, :, 0].max(1) < -1)
            | (p[:, :, 0].min(1) > w)
            | (p[:, :, 1].max(1) < -1)
            | (p[:, :, 1].min(1) > h)
        )
    idx = np.flatnonzero(keep)
    depth = tri[idx, :, 2].mean(1)
    return idx[np.argsort(-depth, kind="stable")], normal


def _check_image(image: np.ndarray | None, size: tuple[int, int], what: str = "image") -> np.ndarray:
    w, h = size
    if image is None:
        return np.zeros((h, w, 3), np.uint8)
    img = np.asarray(image)
    if img.shape != (h, w, 3) or img.dtype != np.uint8:
        raise ValueError(
            f"{what} must be a ({h}, {w}, 3) uint8 array matching the camera size {size}, "
            f"got {img.shape} {img.dtype}."
        )
    return img.copy()


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Any,
    image: np.ndarray | None = None,
    color: Sequence[float] | np.ndarray = DEFAULT_MESH_COLOR,
    light_dir: Sequence[float] = DEFAULT_LIGHT_DIR,
    ambient: float = 0.3,
    wireframe: bool = False,
    wire_color: Sequence[int] = (40, 30, 20),
    antialias: bool = True,
    near: float = 1e-3,
    cull_backfaces: bool = True,
) -> np.ndarray:
    """Render a shaded triangle mesh into one camera's image.

    Parameters
    ----------
    vertices
        ``(V, 3)`` world coordinates (calibration units).
    faces
        ``(F, 3)`` vertex indices; counter-clockwise seen from outside (outward normals), as in SMIL files.
    camera
        A :class:`napari_smil_mv.cameras.Camera` (or anything with ``size``, ``project``,
        ``world_to_camera``).
    image
        Background ``(H, W, 3)`` uint8 RGB of the camera size, or None for black. Not modified.
    color
        Mesh RGB ``(3,)`` in 0..255, or per-face colours ``(F, 3)``.
    light_dir
        Direction towards the light in camera coordinates (x right, y down, z forward).
    ambient
        Ambient share of the brightness, 0..1; the rest is Lambertian ``max(0, n . l)``.
    wireframe
        Also draw the triangle edges in ``wire_color``.
    antialias
        Render at 2x resolution and average down (smooth silhouettes, ~2x slower fill).
    near
        Faces with any vertex at camera depth ``<= near`` are not drawn.
    cull_backfaces
        Skip faces whose normal points away from the camera (correct for closed, outward-oriented surfaces).

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    size = tuple(int(v) for v in camera.size)
    out = _check_image(image, size)
    faces = np.asarray(faces)
    cam, px = _camera_geometry(vertices, camera)
    order, normal = _visible_faces(cam, px, faces, size, near, cull_backfaces)
    if order.size == 0:
        return out
    col = np.asarray(color, dtype=np.float64)
    if col.shape not in ((3,), (len(faces), 3)):
        raise ValueError(f"color must be RGB (3,) or per-face (F, 3) = ({len(faces)}, 3), got {col.shape}.")
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    shade = ambient + (1.0 - ambient) * np.clip(normal[order] @ light, 0.0, None)
    rgb = (col[order] if col.ndim == 2 else col[None]) * shade[:, None]
    rgba = np.concatenate([np.clip(rgb, 0, 255), np.full((len(order), 1), 255.0)], 1)
    colours = [tuple(c) for c in np.rint(rgba).astype(int).tolist()]
    ss = 2 if antialias else 1
    w, h = size
    # Work only inside the bounding box of the drawn faces (the mesh often covers a small part of the image).
    drawn = px[faces[order]].reshape(-1, 2)
    x0, y0 = (max(0, int(np.floor(drawn[:, k].min())) - 2) for k in (0, 1))
    x1 = min(w, int(np.ceil(drawn[:, 0].max())) + 3)
    y1 = min(h, int(np.ceil(drawn[:, 1].max())) + 3)
    if x1 <= x0 or y1 <= y0:
        return out
    pts = np.rint(((px[faces[order]] - (x0, y0) + 0.5) * ss - 0.5) * _SCALE).astype(np.int32)  # (n, 3, 2)
    layer = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss, 4), np.uint8)
    wire = tuple(int(c) for c in wire_color) + (255,)
    fill = cv2.fillConvexPoly
    if wireframe:
        for tri, c in zip(pts, colours, strict=True):
            fill(layer, tri, c, cv2.LINE_8, _SHIFT)
            cv2.polylines(layer, [tri], True, wire, 1, cv2.LINE_8, _SHIFT)
    else:
        for tri, c in zip(pts, colours, strict=True):
            fill(layer, tri, c, cv2.LINE_8, _SHIFT)
    if ss > 1:
        layer = cv2.resize(layer, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    alpha = layer[:, :, 3:4].astype(np.float32) * (1.0 / 255.0)
    # The layer is premultiplied (uncovered pixels are 0), so compositing is bg * (1 - a) + layer.
    region = out[y0:y1, x0:x1]
    blended = region.astype(np.float32) * (1.0 - alpha) + layer[:, :, :3].astype(np.float32)
    region[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


def render_face_ids(
    vertices: np.ndarray, faces: np.ndarray, camera: Any, near: float = 1e-3, cull_backfaces: bool = True
) -> np.ndarray:
    """Index of the front-most face at every pixel (painter's order as :func:`render_mesh`, no anti-aliasing).

    Returns
    -------
    np.ndarray
        ``(H, W)`` int32, -1 where no face covers the pixel.
    """
    size = tuple(int(v) for v in camera.size)
    faces = np.asarray(faces)
    cam, px = _camera_geometry(vertices, camera)
    order, _ = _visible_faces(cam, px, faces, size, near, cull_backfaces)
    ids = np.full((size[1], size[0]), -1, np.int32)
    pts = np.rint(px[faces[order]] * _SCALE).astype(np.int32)
    for tri, i in zip(pts, order.tolist(), strict=True):
        cv2.fillConvexPoly(ids, tri, (i,), cv2.LINE_8, _SHIFT)
    return ids


def render_depth(vertices: np.ndarray, faces: np.ndarray, camera: Any, near: float = 1e-3) -> np.ndarray:
    """Camera depth of the front-most surface per pixel (mean depth of the covering face).

    Returns
    -------
    np.ndarray
        ``(H, W)`` float64 in world units along the optical axis; ``inf`` where no face covers the pixel.
    """
    ids = render_face_ids(vertices, faces, camera, near)
    cam = camera.world_to_camera(np.asarray(vertices, dtype=np.float64))
    face_depth = np.append(cam[np.asarray(faces)][:, :, 2].mean(1), np.inf)
    return face_depth[ids]  # ids == -1 picks the appended inf


def point_visibility(
    points: np.ndarray,
    camera: Any,
    depth: np.ndarray | None = None,
    tolerance: float | np.ndarray = 0.0,
    near: float = 1e-3,
) -> np.ndarray:
    """Which 3D points a camera sees: in front of it, inside the image and (optionally) not occluded.

    Parameters
    ----------
    points
        ``(N, 3)`` world points.
    camera
        The camera.
    depth
        ``(H, W)`` front-surface depth from :func:`render_depth`, or None to skip the occlusion test.
    tolerance
        How far (world units, scalar or ``(N,)``) a point may lie behind the surface at its pixel and
        still count as visible; use the local body radius for joints, which lie inside the surface.

    Returns
    -------
    np.ndarray
        ``(N,)`` bool.
    """
    pts = np.asarray(points, dtype=np.float64)
    z = camera.world_to_camera(pts)[:, 2]
    px = camera.project(pts)
    w, h = camera.size
    col = np.rint(px[:, 0])
    row = np.rint(px[:, 1])
    with np.errstate(invalid="ignore"):
        ok = (z > near) & (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)
    if depth is not None and ok.any():
        tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), z.shape)
        surface = depth[row[ok].astype(int), col[ok].astype(int)]
        ok[ok] = z[ok] <= surface + tol[ok]
    return ok


def draw_keypoints(
    image: np.ndarray,
    points2d: np.ndarray,
    color: Sequence[int] | np.ndarray = (255, 60, 60),
    labels: Sequence[str] | None = None,
    edges: Sequence[tuple[int, int]] | None = None,
    visible: np.ndarray | None = None,
    radius: float = 3.0,
    edge_color: Sequence[int] = (250, 250, 250),
    font_scale: float = 0.35,
) -> np.ndarray:
    """Draw 2D keypoints (and a skeleton) on a copy of ``image``.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB; not modified.
    points2d
        ``(N, 2)`` pixel ``(x, y)``; NaN rows are skipped.
    color
        RGB for every point ``(3,)`` or per point ``(N, 3)``.
    labels
        Optional ``N`` strings written next to the points.
    edges
        Optional ``(i, j)`` index pairs drawn as lines (skeleton) under the points.
    visible
        Optional ``(N,)`` bool: False points are drawn as rings (occluded) and edges touching them dimmed.

    Returns
    -------
    np.ndarray
        The annotated ``(H, W, 3)`` uint8 copy.
    """
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {img.shape}.")
    pts = np.asarray(points2d, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points2d must have shape (N, 2), got {pts.shape}.")
    n = len(pts)
    cols = np.broadcast_to(np.asarray(color, dtype=int), (n, 3))
    vis = np.ones(n, bool) if visible is None else np.asarray(visible, bool).reshape(n)
    finite = np.all(np.isfinite(pts), axis=1) & np.all(np.abs(np.nan_to_num(pts)) < 1e6, axis=1)
    fixed = np.zeros((n, 2), np.int32)
    fixed[finite] = np.rint(pts[finite] * _SCALE).astype(np.int32)
    ec = tuple(int(c) for c in edge_color)
    dim = tuple(int(0.55 * c) for c in edge_color)
    for i, j in edges or ():
        if finite[i] and finite[j]:
            c = ec if (vis[i] and vis[j]) else dim
            cv2.line(img, tuple(fixed[i].tolist()), tuple(fixed[j].tolist()), c, 1, cv2.LINE_AA, _SHIFT)
    r = int(round(radius * _SCALE))
    for k in np.flatnonzero(finite):
        c = tuple(int(v) for v in cols[k])
        centre = tuple(fixed[k].tolist())
        if vis[k]:
            cv2.circle(img, centre, r, c, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(img, centre, r, (20, 20, 20), 1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(img, centre, r, c, 1, cv2.LINE_AA, _SHIFT)
        if labels is not None:
            org = (int(pts[k, 0] + radius + 2), int(pts[k, 1] - radius - 2))
            cv2.putText(
                img, str(labels[k]), org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 2, cv2.LINE_AA
            )
            cv2.putText(img, str(labels[k]), org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, c, 1, cv2.LINE_AA)
    return img


def blend_mesh(
    image: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Any,
    color: Sequence[float],
    alpha: float,
) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 RGB with the shaded mesh (:func:`render_mesh`) blended over it at ``alpha``."""
    mesh = render_mesh(vertices, faces, camera, image, color=color)
    return np.clip(image * (1.0 - alpha) + mesh * alpha + 0.5, 0, 255).astype(np.uint8)


def draw_crosses(
    image: np.ndarray, points2d: np.ndarray, color: Sequence[int] | np.ndarray, size: int
) -> np.ndarray:
    """Draw ``(N, 2)`` px ``(x, y)`` points as crosses of ``size`` px with a black outline, *in place* on the
    ``(H, W, 3)`` uint8 ``image`` (returned); ``color`` RGB ``(3,)`` or per point ``(N, 3)``; NaN rows are skipped."""
    pts = np.asarray(points2d, dtype=np.float64).reshape(-1, 2)
    cols = np.broadcast_to(np.asarray(color, dtype=int), (len(pts), 3))
    for (x, y), c in zip(pts, cols, strict=True):
        if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e6 and abs(y) < 1e6:
            centre = (int(round(x)), int(round(y)))
            cv2.drawMarker(image, centre, (0, 0, 0), cv2.MARKER_CROSS, size + 2, 3, cv2.LINE_AA)
            cv2.drawMarker(image, centre, tuple(int(v) for v in c), cv2.MARKER_CROSS, size, 1, cv2.LINE_AA)
    return image


def textured_background(size: tuple[int, int], seed: int = 0, grid_spacing: int = 48) -> np.ndarray:
    """A procedural floor texture: multi-octave smooth noise in sand tones, pebbles and a faint grid.

    Parameters
    ----------
    size
        ``(W, H)`` in pixels.
    seed
        Deterministic seed; equal seeds give identical images.
    grid_spacing
        Grid line spacing in pixels (0 for none).

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    w, h = (int(v) for v in size)
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be (width, height) with positive entries, got {size!r}.")
    rng = np.random.default_rng(seed)
    noise = np.zeros((h, w), np.float32)
    total = 0.0
    for cells, weight in ((3, 1.0), (8, 0.5), (24, 0.25), (80, 0.12)):
        grid = rng.random((max(2, cells * h // max(w, h) + 2), cells + 2)).astype(np.float32)
        noise += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += weight
    noise = np.clip(noise / total, 0.0, 1.0)
    dark = np.array([96, 108, 92], np.float32)
    light = np.array([200, 204, 186], np.float32)
    img = dark + (light - dark) * noise[:, :, None]
    n_pebbles = max(1, w * h // 2500)
    centres = rng.random((n_pebbles, 2)) * (w, h)
    radii = 1.0 + 3.0 * rng.random(n_pebbles)
    tones = rng.uniform(0.6, 1.15, n_pebbles)
    for (x, y), r, t in zip(centres, radii, tones, strict=True):
        c = tuple(float(v) for v in np.clip(img[int(y), int(x)] * t, 0, 255))
        cv2.circle(img, (int(x * _SCALE), int(y * _SCALE)), int(r * _SCALE), c, -1, cv2.LINE_AA, _SHIFT)
    if grid_spacing > 0:
        mask = np.zeros((h, w), np.float32)
        mask[:, ::grid_spacing] = 1.0
        mask[::grid_spacing, :] = 1.0
        mask = cv2.GaussianBlur(mask, (3, 3), 0.8)
        img *= 1.0 - 0.25 * np.clip(mask * 2.0, 0, 1)[:, :, None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ preview annotation
_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: Header/legend colours of annotated previews (dark bands, light text).
_BAND_RGB = (32, 34, 40)
_TEXT_RGB = (235, 235, 235)
_SUBTEXT_RGB = (170, 175, 185)


def _font_scale(width: int) -> float:
    return float(np.clip(width / 1000.0, 0.38, 0.9))


def preview_header_height(width: int) -> int:
    """Height (px) of the header band :func:`annotate_preview` puts above an image ``width`` px wide."""
    s = _font_scale(width)
    return int(round(2 * 26 * s + 12))


def annotate_preview(
    image: np.ndarray,
    title: str,
    subtitle: str = "",
    legend: Sequence[tuple[str, Sequence[int], str]] = (),
) -> np.ndarray:
    """A preview image with a header (title, camera/frame line) above it and a legend strip below it.

    The image itself is not drawn on: it sits unchanged in rows ``preview_header_height(W) ...`` of the result.

    Parameters
    ----------
    image
        ``(H, W, 3)`` uint8 RGB.
    title
        First header line (what the image shows).
    subtitle
        Second header line, e.g. ``"camera cam1 · frame 30"``.
    legend
        ``(label, rgb, marker)`` entries; marker ``"patch"`` (filled square), ``"disc"``, ``"cross"`` or
        ``"line"``. Wrapped over as many rows as the width needs; no strip without entries.

    Returns
    -------
    np.ndarray
        ``(header + H + legend, W, 3)`` uint8 RGB.
    """
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {img.shape}.")
    h, w = img.shape[:2]
    s = _font_scale(w)
    line = int(round(26 * s))
    header = np.empty((preview_header_height(w), w, 3), np.uint8)
    header[:] = _BAND_RGB
    thick = max(1, int(round(2 * s)))
    cv2.putText(
        header, _ascii(title), (8, 6 + line - 6), _FONT, 0.75 * s / 0.75, _TEXT_RGB, thick, cv2.LINE_AA
    )
    if subtitle:
        cv2.putText(
            header,
            _ascii(subtitle),
            (8, 6 + 2 * line - 4),
            _FONT,
            0.6 * s / 0.75,
            _SUBTEXT_RGB,
            1,
            cv2.LINE_AA,
        )
    parts = [header, img]
    if legend:
        parts.append(_legend_strip(legend, w, s))
    return np.ascontiguousarray(np.concatenate(parts, axis=0))


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    return text.replace("·", "-").replace("→", "->").encode("ascii", "replace").decode()


def _legend_strip(legend: Sequence[tuple[str, Sequence[int], str]], width: int, s: float) -> np.ndarray:
    scale = 0.55 * s / 0.75
    row_h = int(round(24 * s)) + 6
    box = max(8, int(round(14 * s)))
    placed: list[tuple[int, int, str, tuple[int, int, int], str]] = []
    x, row = 8, 0
    for label, rgb, marker in legend:
        text = _ascii(label)
        tw = cv2.getTextSize(text, _FONT, scale, 1)[0][0]
        need = box + 6 + tw + 18
        if x + need > width and x > 8:
            x, row = 8, row + 1
        placed.append((x, row, text, tuple(int(c) for c in rgb), marker))
        x += need
    strip = np.empty(((row + 1) * row_h + 6, width, 3), np.uint8)
    strip[:] = _BAND_RGB
    for x, r, text, rgb, marker in placed:
        cy = 4 + r * row_h + row_h // 2
        x0, y0 = x, cy - box // 2
        if marker == "patch":
            cv2.rectangle(strip, (x0, y0), (x0 + box, y0 + box), rgb, -1)
        elif marker == "disc":
            cv2.circle(strip, (x0 + box // 2, cy), box // 2, rgb, -1, cv2.LINE_AA)
            cv2.circle(strip, (x0 + box // 2, cy), box // 2, (20, 20, 20), 1, cv2.LINE_AA)
        elif marker == "cross":
            cv2.drawMarker(strip, (x0 + box // 2, cy), rgb, cv2.MARKER_CROSS, box, 2, cv2.LINE_AA)
        elif marker == "line":
            cv2.line(strip, (x0, cy), (x0 + box, cy), rgb, 2, cv2.LINE_AA)
        else:
            raise ValueError(f"legend marker must be patch, disc, cross or line, got {marker!r}")
        cv2.putText(strip, text, (x0 + box + 6, cy + int(6 * s)), _FONT, scale, _TEXT_RGB, 1, cv2.LINE_AA)
    return strip
