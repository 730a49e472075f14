"""Graders for day w1d1_raytracing: rays and shapes built so that the answer is known by
construction (a ray aimed through a chosen point of a triangle must hit it at that point), geometric
properties (hit points lie on the ray and on the triangle, misses really miss, parallel rays miss),
and snapshot images compared within a tolerance.

Run one exercise with `pytest tests/test_w1d1_raytracing.py -k raytrace_mesh`.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from checks import assert_close, assert_equal, assert_vectorized
from mlab import w1d1_raytracing as m
from torch import Tensor

points = pytest.mark.points
DATA = Path(__file__).parent / "data" / "w1d1_raytracing"
UPDATE = os.environ.get("MLAB_UPDATE_SNAPSHOTS") == "1"


def torus() -> Tensor:
    """The day's mesh (576 triangles), as written by mlab/w1d1_raytracing_assets/make_mesh.py."""
    return torch.from_numpy(np.load(DATA / "torus.npz")["triangles"])


def uniform(lo: float, hi: float, *shape: int) -> Tensor:
    return lo + (hi - lo) * torch.rand(*shape)


def rays_from(origins: Tensor, directions: Tensor) -> Tensor:
    """(n, 2, 3) rays from (n, 3) or (3,) origins and (n, 3) directions."""
    return torch.stack([origins.expand_as(directions), directions], dim=-2)


def grid_rays(origin: Tensor, ys: Tensor, zs: Tensor) -> Tensor:
    """Rays from `origin` with directions (1, y, z) over the grid ys x zs, y-major."""
    yz = torch.cartesian_prod(ys, zs)  # (ny * nz, 2)
    return rays_from(origin, torch.cat([torch.ones(len(yz), 1), yz], dim=1))


def check_image(snapshot, name: str, image: Tensor, *, atol: float, max_fraction: float) -> None:
    """Compare an image with its snapshot, allowing a few pixels (on silhouettes and shared edges,
    where rounding decides which triangle a ray hits) to differ by more than atol."""
    path = snapshot.path(name)
    if UPDATE or not path.exists():
        snapshot.check(name, image)  # records it (organizers), or fails saying it is missing
        return
    expected = torch.from_numpy(np.load(path)["value"])
    what = f"{snapshot.test_name} ({name}) against its snapshot"
    if not isinstance(image, Tensor) or image.shape != expected.shape:
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        pytest.fail(f"{what}: got {got}, expected shape {tuple(expected.shape)}", pytrace=False)
    a, e = image.detach().double(), expected.double()
    bad = ~torch.isclose(a, e, rtol=0, atol=atol, equal_nan=True)
    allowed = int(max_fraction * bad.numel())
    if int(bad.sum()) <= allowed:
        return
    r, c = (int(i) for i in bad.nonzero()[0])
    finite = bad & torch.isfinite(a) & torch.isfinite(e)
    worst = f" Max difference {(a - e).abs()[finite].max():.3g}." if finite.any() else ""
    pytest.fail(
        f"{what}: {int(bad.sum())} of {bad.numel()} pixels differ by more than {atol:g} (at most "
        f"{allowed} may).{worst} First at (row {r}, col {c}): got {a[r, c]:.4g}, expected "
        f"{e[r, c]:.4g}. Is the image upside down or transposed?",
        pytrace=False,
    )


# -- 2D: rays against segments, built around sectors --------------------------------------------
# A segment whose endpoints sit at angles a and a + w (0 < w < pi) seen from a point O is met by the
# ray from O at angle b exactly when (b - a) mod 2 pi lies in [0, w]: no linear algebra needed.


def unit2(angle: Tensor) -> Tensor:
    """(n,) angles -> (n, 3) unit vectors in the xy-plane."""
    return torch.stack([angle.cos(), angle.sin(), torch.zeros_like(angle)], dim=-1)


def sector_segments(center: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """n segments around `center`: (segments (n, 2, 3), start angle a (n,), width w (n,))."""
    a, w = uniform(-math.pi, math.pi, n), uniform(0.2, 2.5, n)
    ends = torch.stack([unit2(a) * uniform(0.5, 3, n, 1), unit2(a + w) * uniform(0.5, 3, n, 1)], 1)
    return center + ends, a, w


def in_sector(b: Tensor, a: Tensor, w: Tensor) -> Tensor:
    return torch.remainder(b - a, 2 * math.pi) <= w


def single_ray_cases(kind: str, n: int = 24) -> list[tuple[Tensor, Tensor]]:
    """(ray, segment) pairs that hit (kind 'hit'), pass beside or point away ('miss')."""
    center = torch.cat([uniform(-2, 2, 2), torch.zeros(1)])
    segments, a, w = sector_segments(center, n)
    frac = uniform(0.05, 0.95, n)
    if kind == "hit":
        b = a + frac * w
    else:
        beside = torch.where(
            torch.rand(n) < 0.5, a - uniform(0.05, 1.0, n), a + w + uniform(0.05, 1.0, n)
        )
        b = torch.where(torch.arange(n) % 2 == 0, beside, a + frac * w + math.pi)  # or behind
    rays = rays_from(center, unit2(b) * uniform(0.5, 2, n, 1))
    return list(zip(rays, segments, strict=True))


@points(1)
def test_make_rays_1d():
    rays = m.make_rays_1d(9, 10.0)
    assert_equal(
        torch.as_tensor(rays.shape), torch.tensor([9, 2, 3]), what="make_rays_1d(9, 10.0) shape"
    )
    assert_close(rays[:, 0], torch.zeros(9, 3), what="make_rays_1d(9, 10.0) origins")
    assert_close(rays[:, 1, 0], torch.ones(9), what="make_rays_1d(9, 10.0) direction x (must be 1)")
    assert_close(
        rays[:, 1, 1], torch.linspace(-10, 10, 9), what="make_rays_1d(9, 10.0) direction y"
    )
    assert_close(rays[:, 1, 2], torch.zeros(9), what="make_rays_1d(9, 10.0) direction z")


@points(2)
def test_intersect_ray_1d_hits():
    for ray, segment in single_ray_cases("hit"):
        if not m.intersect_ray_1d(ray, segment):
            pytest.fail(
                f"intersect_ray_1d: the ray {ray.tolist()} is aimed at an interior point of the "
                f"segment {segment.tolist()} but you say it misses. Columns D and L1 - L2?",
                pytrace=False,
            )


@points(2)
def test_intersect_ray_1d_misses():
    for i, (ray, segment) in enumerate(single_ray_cases("miss")):
        if m.intersect_ray_1d(ray, segment):
            how = (
                "passes beside the segment (v outside [0, 1])"
                if i % 2 == 0
                else "points away from it (u < 0)"
            )
            pytest.fail(
                f"intersect_ray_1d: the ray {ray.tolist()} {how}, segment {segment.tolist()}, but you say it hits.",
                pytrace=False,
            )


@points(1)
def test_intersect_ray_1d_parallel():
    segment = torch.tensor([[1.0, 1.0, 0.0], [3.0, 2.0, 0.0]])
    for offset in (-0.5, 0.7):
        ray = torch.tensor(
            [[0.0, offset, 0.0], [2.0, 1.0, 0.0]]
        )  # parallel, off the segment's line
        if m.intersect_ray_1d(ray, segment):
            pytest.fail(
                f"intersect_ray_1d: the ray {ray.tolist()} is parallel to the segment {segment.tolist()}: "
                "it must miss (a singular system)",
                pytrace=False,
            )


@points(3)
@pytest.mark.parametrize("nrays,nsegments", [(40, 1), (60, 5), (31, 12)])
def test_intersect_rays_1d(nrays, nsegments):
    center = torch.cat([uniform(-2, 2, 2), torch.zeros(1)])
    segments, a, w = sector_segments(center, nsegments)
    b = uniform(-math.pi, math.pi, 4 * nrays)
    gap = torch.remainder(b[:, None] - torch.cat([a, a + w])[None], 2 * math.pi)
    b = b[((gap > 0.02) & (gap < 2 * math.pi - 0.02)).all(-1)][:nrays]  # no ray grazes an end
    rays = rays_from(center, unit2(b) * uniform(0.5, 2, len(b), 1))
    expected = in_sector(b[:, None], a[None], w[None]).any(-1)
    got = m.intersect_rays_1d(rays, segments)
    assert_equal(
        got,
        expected,
        what=f"intersect_rays_1d(rays ({len(b)}, 2, 3), segments ({nsegments}, 2, 3))",
    )


@points(1)
def test_intersect_rays_1d_parallel():
    """Horizontal segments; horizontal rays (parallel: all miss) and vertical rays (hit when the
    segment spans their x and lies above them)."""
    y = torch.tensor([-1.0, 0.5, 2.0])
    x1, x2 = torch.tensor([-2.0, 0.0, 1.0]), torch.tensor([-0.5, 2.0, 3.0])
    segments = torch.stack([torch.stack([x1, y, 0 * y], -1), torch.stack([x2, y, 0 * y], -1)], 1)
    x0, y0 = uniform(-3, 4, 30), uniform(-3, 3, 30)
    origins = torch.stack([x0, y0, 0 * x0], -1)
    flat = rays_from(origins, torch.tensor([[1.5, 0.0, 0.0]]).expand(30, 3))
    up = rays_from(origins, torch.tensor([[0.0, 0.7, 0.0]]).expand(30, 3))
    expected = torch.cat(
        [
            torch.zeros(30, dtype=torch.bool),
            ((x0[:, None] >= x1) & (x0[:, None] <= x2) & (y0[:, None] <= y)).any(-1),
        ]
    )
    got = m.intersect_rays_1d(torch.cat([flat, up]), segments)
    assert_equal(
        got,
        expected,
        what="intersect_rays_1d: 30 rays parallel to every segment, then 30 vertical rays",
    )


@points(1)
def test_intersect_rays_1d_vectorized():
    def args(n):
        center = torch.zeros(3)
        return rays_from(center, unit2(uniform(-3, 3, n))), sector_segments(center, n)[0]

    assert_vectorized(m.intersect_rays_1d, args(4), args(40))


# -- 3D: rays against triangles ----------------------------------------------------------------


@points(1)
def test_make_rays_2d():
    rays = m.make_rays_2d(5, 7, 0.3, 0.6)
    assert_equal(
        torch.as_tensor(rays.shape),
        torch.tensor([35, 2, 3]),
        what="make_rays_2d(5, 7, 0.3, 0.6) shape",
    )
    assert_close(rays[:, 0], torch.zeros(35, 3), what="make_rays_2d origins")
    assert_close(rays[:, 1, 0], torch.ones(35), what="make_rays_2d direction x (must be 1)")
    yz = torch.cartesian_prod(torch.linspace(-0.3, 0.3, 5), torch.linspace(-0.6, 0.6, 7))
    assert_close(
        rays[:, 1, 1:],
        yz,
        what="make_rays_2d directions (y, z), y-major order (ray i*7 + j is (y_i, z_j))",
    )


def random_triangles(n: int) -> Tensor:
    """n triangles (n, 3, 3) with edges of length >= 0.5 and angles not too thin."""
    A, e1, e2 = torch.randn(8 * n, 3), torch.randn(8 * n, 3), torch.randn(8 * n, 3)
    area = torch.linalg.cross(e1, e2).norm(dim=-1)
    good = (
        (e1.norm(dim=-1) > 0.5)
        & (e2.norm(dim=-1) > 0.5)
        & (area > 0.4 * e1.norm(dim=-1) * e2.norm(dim=-1))
    )
    A, e1, e2 = A[good][:n], e1[good][:n], e2[good][:n]
    return torch.stack([A, A + e1, A + e2], dim=1)


def aim(triangles: Tensor, u: Tensor, v: Tensor, *, behind: bool = False) -> tuple[Tensor, Tensor]:
    """Rays aimed at the points A + u (B - A) + v (C - A), reaching them at t = 1 / scale.

    Returns (rays (n, 2, 3), t (n,)); with behind=True the rays point the opposite way (t < 0)."""
    A, B, C = triangles.unbind(1)
    P = A + u[:, None] * (B - A) + v[:, None] * (C - A)
    normal = torch.nn.functional.normalize(torch.linalg.cross(B - A, C - A), dim=-1)
    w = torch.nn.functional.normalize(torch.randn_like(P), dim=-1)
    w = torch.nn.functional.normalize(
        w + 1.5 * normal * torch.sign((w * normal).sum(-1, keepdim=True)), dim=-1
    )
    distance, scale = uniform(1, 4, len(P), 1), uniform(0.5, 2, len(P), 1)
    O = P - distance * w  # noqa: E741 (never grazing: w is at most ~34 degrees off the normal)
    D = distance * w * scale * (-1 if behind else 1)
    return rays_from(O, D), (1 / scale[:, 0]) * (-1 if behind else 1)


@points(2)
def test_triangle_ray_intersects_hits():
    triangles = random_triangles(50)
    u, v = uniform(0.05, 0.9, 50), uniform(0.05, 0.9, 50)
    v = torch.minimum(v, 0.95 - u)  # inside, at least 0.05 from every edge
    rays, t = aim(triangles, u, v)
    hit, got_t = m.triangle_ray_intersects(triangles, rays)
    assert_equal(
        hit,
        torch.ones(50, dtype=torch.bool),
        what="triangle_ray_intersects: rays aimed inside 50 triangles hit",
    )
    assert_close(
        got_t,
        t,
        what="triangle_ray_intersects: t of the hit (hit point = O + t D)",
        atol=1e-4,
        rtol=1e-3,
    )


@points(2)
def test_triangle_ray_intersects_misses():
    n = 60
    triangles = random_triangles(n)
    u, v = uniform(0.1, 0.8, n), uniform(0.1, 0.8, n)
    kind = torch.arange(n) % 3  # 0: u < 0, 1: v < 0, 2: u + v > 1
    u = torch.where(kind == 0, -uniform(0.05, 1, n), u)
    v = torch.where(kind == 1, -uniform(0.05, 1, n), v)
    over = 1.05 + uniform(0, 1, n) - u - v
    u, v = torch.where(kind == 2, u + over / 2, u), torch.where(kind == 2, v + over / 2, v)
    rays_beside, _ = aim(triangles, u, v)
    rays_behind, _ = aim(triangles, uniform(0.1, 0.4, n), uniform(0.1, 0.4, n), behind=True)
    hit, _ = m.triangle_ray_intersects(triangles, rays_beside)
    assert_equal(
        hit,
        torch.zeros(n, dtype=torch.bool),
        what="triangle_ray_intersects: rays meeting the plane outside the triangle (u < 0, v < 0 or u + v > 1) miss",
    )
    hit, _ = m.triangle_ray_intersects(triangles, rays_behind)
    assert_equal(
        hit,
        torch.zeros(n, dtype=torch.bool),
        what="triangle_ray_intersects: rays pointing away from the triangle (t < 0) miss",
    )


@points(1)
def test_triangle_ray_intersects_parallel():
    n = 40
    triangles = random_triangles(n)
    A, B, C = triangles.unbind(1)
    normal = torch.nn.functional.normalize(torch.linalg.cross(B - A, C - A), dim=-1)
    P = A + 0.3 * (B - A) + 0.3 * (C - A)
    offset = torch.where(torch.rand(n, 1) < 0.5, -1.0, 1.0) * uniform(0.2, 1, n, 1)
    D = uniform(-1, 1, n, 1) * (B - A) + uniform(-1, 1, n, 1) * (C - A)  # in the plane's directions
    hit, _ = m.triangle_ray_intersects(triangles, rays_from(P + offset * normal - D, D))
    assert_equal(
        hit,
        torch.zeros(n, dtype=torch.bool),
        what="triangle_ray_intersects: rays parallel to the triangle's plane (above or below it) miss",
    )
    # Triangles in planes z = c and rays with direction z = 0 exactly: det is exactly 0. Rays in the
    # plane itself (through the triangle) count as parallel too, so they miss.
    flat = random_triangles(n)
    flat[:, :, 2] = flat[:, :1, 2]
    A, B, C = flat.unbind(1)
    P = A + 0.3 * (B - A) + 0.3 * (C - A)
    lift = torch.where(torch.arange(n)[:, None] % 2 == 0, 0.0, uniform(-1, 1, n, 1))
    D = torch.cat([torch.randn(n, 2), torch.zeros(n, 1)], dim=1)
    origins = P - D + lift * torch.tensor([0.0, 0.0, 1.0])
    hit, _ = m.triangle_ray_intersects(flat, rays_from(origins, D))
    assert_equal(
        hit,
        torch.zeros(n, dtype=torch.bool),
        what="triangle_ray_intersects: rays exactly parallel to the plane (det = 0), half of them "
        "lying in it, miss (|det| < eps is a miss: guard the division)",
    )


@points(2)
def test_triangle_ray_intersects_broadcast():
    triangles = random_triangles(7)
    rays = rays_from(torch.randn(5, 3) * 3, torch.randn(5, 3))
    hit, t = m.triangle_ray_intersects(triangles[None], rays[:, None])  # (5, 1, ...) x (1, 7, ...)
    assert_equal(
        torch.as_tensor(hit.shape),
        torch.tensor([5, 7]),
        what="triangle_ray_intersects(triangles (1, 7, 3, 3), rays (5, 1, 2, 3)): hit shape",
    )
    assert_equal(
        torch.as_tensor(t.shape),
        torch.tensor([5, 7]),
        what="triangle_ray_intersects(triangles (1, 7, 3, 3), rays (5, 1, 2, 3)): t shape",
    )
    pairs_hit, pairs_t = m.triangle_ray_intersects(
        triangles.repeat(5, 1, 1), rays.repeat_interleave(7, 0)
    )
    assert_equal(
        hit.flatten(), pairs_hit, what="broadcast (5, 7) hits against the 35 pairs one by one"
    )
    assert_close(
        torch.where(hit, t, 0).flatten(),
        torch.where(pairs_hit, pairs_t, 0),
        what="broadcast t against the pairs one by one",
        atol=1e-5,
    )


@points(2)
def test_raytrace_triangle():
    """A triangle in the plane x = 2 with legs along y and z: inside is y >= y0, z >= z0,
    (y - y0) + (z - z0) <= a at the point where each ray crosses the plane."""
    y0, z0, a, depth = -0.3, -0.5, 0.9, 2.0
    triangle = torch.tensor([[depth, y0, z0], [depth, y0 + a, z0], [depth, y0, z0 + a]])
    ys, zs = torch.linspace(-0.37, 0.41, 23), torch.linspace(-0.43, 0.35, 19)  # off the edges
    rays = grid_rays(torch.zeros(3), ys, zs)
    y, z = depth * rays[:, 1, 1], depth * rays[:, 1, 2]
    expected = (y >= y0) & (z >= z0) & ((y - y0) + (z - z0) <= a)
    got = m.raytrace_triangle(rays, triangle)
    assert_equal(
        got,
        expected,
        what="raytrace_triangle(rays (437, 2, 3) on a grid, a triangle in the plane x = 2)",
    )


@points(1)
def test_raytrace_triangle_vectorized():
    triangle = random_triangles(1)[0]
    assert_vectorized(
        m.raytrace_triangle, (torch.randn(10, 2, 3), triangle), (torch.randn(100, 2, 3), triangle)
    )


# -- raytrace_mesh ------------------------------------------------------------------------------


def stacked_triangles() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Right triangles facing the origin at depths x = d: (triangles, d, (y0, z0), legs a)."""
    d = torch.tensor([3.0, 1.5, 5.0, 2.0, 4.0, 2.5])
    corner = torch.tensor(
        [[-0.6, -0.5], [0.1, 0.0], [-2.0, -2.0], [-0.5, 0.2], [0.3, -1.0], [-1.0, -1.2]]
    )
    a = torch.tensor([1.2, 0.8, 4.0, 0.9, 1.5, 1.1])
    A = torch.cat([d[:, None], corner], dim=1)
    B, C = A + a[:, None] * torch.tensor([0.0, 1, 0]), A + a[:, None] * torch.tensor([0.0, 0, 1])
    return torch.stack([A, B, C], dim=1), d, corner, a


@points(3)
def test_raytrace_mesh_stack():
    """Rays from the origin through a stack of triangles at several depths x = d (direction x is
    1, so a hit at depth d has t = d): the closest hit wins, rays through no triangle give inf, -1."""
    triangles, d, corner, a = stacked_triangles()
    ys, zs = torch.linspace(-0.62, 0.63, 17), torch.linspace(-0.57, 0.59, 15)  # off the edges
    rays = grid_rays(torch.zeros(3), ys, zs)
    y, z = (
        d * rays[:, 1, 1:2],
        d * rays[:, 1, 2:3],
    )  # (nrays, ntriangles): where each plane is crossed
    inside = (
        (y >= corner[:, 0]) & (z >= corner[:, 1]) & ((y - corner[:, 0]) + (z - corner[:, 1]) <= a)
    )
    depth = torch.where(inside, d, torch.inf)
    expected_distance, expected_index = depth.min(-1)
    expected_index = torch.where(inside.any(-1), expected_index, -1)
    assert inside.any(-1).float().mean() < 0.95, "test setup: some rays must miss everything"
    distance, index = m.raytrace_mesh(rays, triangles)
    what = f"raytrace_mesh(rays {tuple(rays.shape)}, a stack of {len(d)} triangles at depths {d.tolist()})"
    assert_close(distance, expected_distance, what=f"{what}: distance (inf on a miss)", atol=1e-4)
    assert_equal(
        index, expected_index, what=f"{what}: index of the closest triangle (-1 on a miss)"
    )


@points(2)
def test_raytrace_mesh_properties():
    """Random rays through a random triangle soup. Every reported hit lies on the ray (t >= 0) and
    on the reported triangle; no triangle is hit closer; a reported miss meets no triangle. Pairs
    within 1e-3 of a triangle's edge are left out (either answer is fine there)."""
    triangles = random_triangles(30) * 0.8
    origins = torch.randn(200, 3) * 0.5 - torch.tensor([4.0, 0, 0])
    targets = torch.randn(200, 3) * 0.7  # into the soup
    rays = rays_from(origins, (targets - origins) * uniform(0.3, 2, 200, 1))
    distance, index = m.raytrace_mesh(rays, triangles)
    what = "raytrace_mesh(rays (200, 2, 3), triangles (30, 3, 3))"
    assert_equal(
        torch.as_tensor(distance.shape), torch.tensor([200]), what=f"{what}: distance shape"
    )
    assert_equal(torch.as_tensor(index.shape), torch.tensor([200]), what=f"{what}: index shape")
    # Reference by torch.linalg.solve: O + t D = A + u (B - A) + v (C - A) for every pair.
    O, D = rays[:, None, 0].double(), rays[:, None, 1].double()  # noqa: E741 (200, 1, 3)
    A, B, C = triangles[None].double().unbind(2)  # (1, 30, 3)
    mat = torch.stack(torch.broadcast_tensors(-D, B - A, C - A), dim=-1)  # (200, 30, 3, 3)
    t, u, v = torch.linalg.solve(mat, (O - A).expand(-1, 30, -1)).unbind(-1)
    margin = torch.stack([u, v, 1 - u - v, t], -1).min(-1).values
    clear_hit, clear_miss = margin > 1e-3, margin < -1e-3
    assert clear_hit.any(-1).float().mean() > 0.3, "test setup: many rays must hit"
    reported = index >= 0
    rows = torch.arange(200)
    k = index.clamp(min=0)
    wrong_miss = ~reported & clear_hit.any(-1)
    if wrong_miss.any():
        i = int(wrong_miss.nonzero()[0])
        j = int(clear_hit[i].nonzero()[0])
        pytest.fail(
            f"{what}: ray {i} hits triangle {j} at t = {t[i, j]:.4g} but you report a miss",
            pytrace=False,
        )
    bogus = reported & clear_miss[rows, k]
    if bogus.any():
        i = int(bogus.nonzero()[0])
        pytest.fail(
            f"{what}: ray {i} misses triangle {int(index[i])} (barycentric u = {u[i, k[i]]:.3g}, "
            f"v = {v[i, k[i]]:.3g}, t = {t[i, k[i]]:.3g}) but you report it as the hit",
            pytrace=False,
        )
    t_hit = torch.where(clear_hit, t, torch.inf).min(-1).values
    on_ray = torch.where(reported, t[rows, k], torch.inf)
    assert_close(
        distance[reported],
        on_ray[reported].float(),
        what=f"{what}: distance = t where the ray meets the reported triangle",
        atol=1e-4,
    )
    closer = reported & (t_hit < distance.double() - 1e-4)
    if closer.any():
        i = int(closer.nonzero()[0])
        pytest.fail(
            f"{what}: ray {i} hits a triangle at t = {t_hit[i]:.4g}, closer than your {distance[i]:.4g}",
            pytrace=False,
        )
    assert torch.isinf(distance[~reported]).all(), (
        f"{what}: a miss (index -1) must have distance inf"
    )


TORUS_EYE = torch.tensor([-3.5, 0.0, 1.5])


@points(2)
def test_raytrace_mesh_torus_depth(snapshot):
    """The depth image of the torus seen from (-3.5, 0, 1.5), looking down a little."""
    rays = grid_rays(TORUS_EYE, torch.linspace(-0.5, 0.5, 30), torch.linspace(-0.7, -0.1, 24))
    distance, index = m.raytrace_mesh(rays, torus())
    depth = distance.reshape(30, 24)
    check_image(snapshot, "depth", depth, atol=1e-3, max_fraction=0.005)
    assert_equal(
        index < 0,
        torch.isinf(distance),
        what="raytrace_mesh on the torus: index -1 exactly where distance is inf",
    )


@points(1)
def test_raytrace_mesh_vectorized():
    def args(nrays, ntriangles):
        return torch.randn(nrays, 2, 3), random_triangles(ntriangles)

    assert_vectorized(m.raytrace_mesh, args(8, 5), args(80, 50))


@points(1)
@pytest.mark.bench
@pytest.mark.slow
def test_raytrace_mesh_benchmark(record_benchmark):
    """Rays per second of raytrace_mesh at 256 x 256 pixels on the torus (576 triangles), batched in
    chunks of 4096 rays, against calling it one ray at a time (timed on 256 rays and scaled).
    Reference solution: about 4 s of CPU time batched (16k rays/s on one core); on 2 busy shared
    cores 2.6k-4.7k rays/s batched against 1.4k-1.9k rays/s one at a time. Never fails on time."""
    triangles = torus()
    rays = grid_rays(TORUS_EYE, torch.linspace(-0.5, 0.5, 256), torch.linspace(-0.7, -0.1, 256))
    m.raytrace_mesh(rays[:512], triangles)  # warm-up
    start = time.perf_counter()
    distance = torch.cat([m.raytrace_mesh(chunk, triangles)[0] for chunk in rays.split(4096)])
    batched = time.perf_counter() - start
    sample = torch.arange(0, len(rays), len(rays) // 256)
    start = time.perf_counter()
    one_by_one = torch.cat([m.raytrace_mesh(rays[i : i + 1], triangles)[0] for i in sample])
    naive = (time.perf_counter() - start) * len(rays) / len(sample)
    assert_close(
        distance[sample],
        one_by_one,
        what="raytrace_mesh batched against one ray at a time",
        atol=1e-4,
    )
    assert torch.isfinite(distance).float().mean() > 0.2, (
        "benchmark setup: the torus must fill the view"
    )
    record_benchmark(
        "raytrace_mesh",
        "256x256 rays x 576 triangles",
        batched,
        naive,
        note=f"{len(rays) / batched:.3g} rays/s batched, {len(rays) / naive:.3g} rays/s one ray at a time",
    )
    print(
        f"raytrace_mesh: {len(rays) / batched:.3g} rays/s batched, {len(rays) / naive:.3g} rays/s "
        f"one at a time: {naive / batched:.1f}x"
    )


# -- the mesh ----------------------------------------------------------------------------------

OBJ = """\
# a square pyramid, written the way exporters do
mtllib pyramid.mtl
o pyramid
v 0.0 0.0 0.0
v 2.0 0.0 0.0
v  2.0 2.0 0.0
v 0.0 2.0 0.0
vt 0.5 0.5
vn 0.0 0.0 1.0

v 1.0 1.0 1.5
usemtl stone
f 1 3 2
f 1/1 4/1 3/1
f 1//1 2//1 5//1
s off
f 2/1/1 3/1/1 5/1/1
f 3 4 5
f 4 1 5
"""


@points(2)
def test_load_mesh_obj(tmp_path):
    path = tmp_path / "pyramid.obj"
    path.write_text(OBJ)
    base = [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.0, 2.0, 0.0]]
    apex = [1.0, 1.0, 1.5]
    expected = torch.tensor(
        [
            [base[0], base[2], base[1]],
            [base[0], base[3], base[2]],
            [base[0], base[1], apex],
            [base[1], base[2], apex],
            [base[2], base[3], apex],
            [base[3], base[0], apex],
        ]
    )
    got = m.load_mesh(path)
    assert_close(
        got,
        expected,
        what="load_mesh of a pyramid OBJ (comments, vt/vn lines, 'f 1/1 4/1 3/1' entries; indices count from 1)",
    )


@points(2)
def test_load_mesh_torus():
    triangles = m.load_mesh()
    assert_close(
        triangles, torus(), what="load_mesh() of the shipped torus.obj (576 triangles)", atol=1e-6
    )
    x, y, z = triangles.reshape(-1, 3).unbind(-1)
    off = ((x**2 + y**2).sqrt() - 1.0) ** 2 + z**2 - 0.4**2  # 0 on the torus R = 1, r = 0.4
    assert off.abs().max() < 1e-4, (
        f"load_mesh(): a vertex is off the torus surface by {off.abs().max():.3g}"
    )


# -- camera, normals, shading ------------------------------------------------------------------


def random_pose() -> Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3))
    q = q * torch.sign(torch.diagonal(r))
    q[:, 2] *= torch.sign(torch.linalg.det(q))  # a rotation: det +1
    pose = torch.eye(4)
    pose[:3, :3], pose[:3, 3] = q, torch.randn(3) * 2
    return pose


@points(2)
def test_camera_rays_identity():
    """With the identity pose: directions (1, y, z), row 0 at the top (y = +y_limit)."""
    h, w = 5, 7
    rays = m.camera_rays(torch.eye(4), h, w, 0.3, 0.6)
    assert_equal(
        torch.as_tensor(rays.shape),
        torch.tensor([h * w, 2, 3]),
        what="camera_rays(eye(4), 5, 7, 0.3, 0.6) shape",
    )
    grid = rays.reshape(h, w, 2, 3)
    assert_close(grid[..., 0, :], torch.zeros(h, w, 3), what="camera_rays(identity pose): origins")
    assert_close(
        grid[..., 1, 0],
        torch.ones(h, w),
        what="camera_rays(identity pose): direction x (forward) must be 1",
    )
    ys = torch.linspace(0.3, -0.3, h)[:, None].expand(h, w)
    assert_close(
        grid[..., 1, 1],
        ys,
        what="camera_rays(identity pose): y (up) per pixel: +y_limit in row 0 (the top), falling down the rows",
    )
    zs = torch.linspace(-0.6, 0.6, w)[None, :].expand(h, w)
    assert_close(
        grid[..., 1, 2],
        zs,
        what="camera_rays(identity pose): z (right) per pixel: -z_limit in column 0, rising along a row",
    )


@points(2)
def test_camera_rays_pose():
    pose = random_pose()
    R, position = pose[:3, :3], pose[:3, 3]
    local = m.camera_rays(torch.eye(4), 4, 6, 0.4, 0.5)
    world = m.camera_rays(pose, 4, 6, 0.4, 0.5)
    assert_close(
        world[:, 0],
        position.expand(24, 3),
        what="camera_rays(pose): every origin is the camera position pose[:3, 3]",
        atol=1e-5,
    )
    assert_close(
        world[:, 1],
        local[:, 1] @ R.T,
        what="camera_rays(pose): directions are R d (R = pose[:3, :3] maps camera axes to world axes; not R.T d)",
        atol=1e-5,
    )


@points(2)
def test_triangle_normals():
    triangles = random_triangles(20) * uniform(0.2, 5, 20, 1, 1)
    n = m.triangle_normals(triangles)
    assert_equal(
        torch.as_tensor(n.shape),
        torch.tensor([20, 3]),
        what="triangle_normals(triangles (20, 3, 3)) shape",
    )
    assert_close(
        n.norm(dim=-1), torch.ones(20), what="triangle_normals: length of each normal (normalized?)"
    )
    A, B, C = triangles.unbind(1)
    e1, e2 = B - A, C - A
    dots = torch.stack([(n * e1).sum(-1) / e1.norm(dim=-1), (n * e2).sum(-1) / e2.norm(dim=-1)], -1)
    assert_close(
        dots,
        torch.zeros(20, 2),
        what="triangle_normals: cosine between the normal and the edges B - A, C - A",
        atol=1e-5,
    )
    orientation = torch.linalg.det(torch.stack([e1, e2, n], dim=1))
    assert (orientation > 0).all(), (
        "triangle_normals: the normal points the wrong way for "
        f"{int((orientation <= 0).sum())} of 20 triangles: use (B - A) x (C - A), not (C - A) x (B - A)"
    )


def front() -> Tensor:
    """The pose of a camera at the origin looking along +x with up = +z: camera right is world -y."""
    return m.look_at(torch.zeros(3), torch.tensor([1.0, 0.0, 0.0]))


@points(3)
def test_render_mesh_torus(snapshot):
    pose = m.look_at(torch.tensor([3.0, -2.0, 2.2]), torch.zeros(3))
    image = m.render_mesh(
        torus(), pose, 36, 48, 0.45, 0.6, torch.tensor([1.0, -1.0, 2.0]), ambient=0.1
    )
    check_image(snapshot, "image", image, atol=1e-3, max_fraction=0.005)


@points(2)
@pytest.mark.parametrize("angle", [0.0, 60.0, 120.0])
def test_render_mesh_lambert(angle):
    """A triangle facing the camera, lit from `angle` degrees off its normal, through a light
    vector of length 3: every pixel on it is ambient + (1 - ambient) max(0, cos angle)."""
    triangle = torch.tensor([[[4.0, 2.0, -2.0], [4.0, -2.0, -2.0], [4.0, 0.0, 2.0]]])
    theta = math.radians(angle)
    light = 3 * torch.tensor([-math.cos(theta), math.sin(theta), 0.0])  # towards the camera, tilted
    expected = 0.2 + 0.8 * max(0.0, math.cos(theta))
    for name, mesh in (
        ("", triangle),
        (" with its vertices in the other order", triangle[:, [0, 2, 1]]),
    ):
        image = m.render_mesh(mesh, front(), 9, 9, 0.3, 0.3, light, ambient=0.2)
        on = image != 0
        assert on.float().mean() > 0.3, (
            f"render_mesh: the triangle filling the view{name} covers only {int(on.sum())} of 81 pixels"
        )
        assert_close(
            image[on],
            torch.full((int(on.sum()),), expected),
            what=f"render_mesh: shading of a triangle facing the camera{name}, light {angle:g} degrees off its normal (light_direction of length 3)",
            atol=1e-4,
        )


@points(2)
def test_render_mesh_orientation():
    """A small triangle up and to the left of the view must appear in the top-left of the image;
    everything else is background 0."""
    triangle = torch.tensor(
        [[[5.0, 1.0, 0.5], [5.0, 0.4, 0.5], [5.0, 0.7, 1.1]]]
    )  # +y is left, +z up
    image = m.render_mesh(triangle, front(), 20, 30, 0.25, 0.25, torch.tensor([-1.0, 0.0, 0.0]))
    rows, cols = (image > 0).nonzero().unbind(-1)
    assert 3 < len(rows) < 100, (
        f"render_mesh: {len(rows)} of 600 pixels are lit, the small triangle covers about 15 (is the "
        "background, where rays hit nothing, 0?)"
    )
    assert rows.float().mean() < 10 and cols.float().mean() < 15, (
        f"render_mesh: a triangle up and to the left of the view lands around (row {rows.float().mean():.1f}, "
        f"col {cols.float().mean():.1f}) of a 20 x 30 image, not in the top-left: is row 0 the top "
        "(largest y) and column 0 the left (smallest z)? Flipped or transposed?"
    )
