"""Day w1d1_raytracing: a renderer as array programming.

A ray is a (2, 3) tensor `[origin, direction]`: the points `origin + t * direction` for t >= 0. We
start in 2D (rays against line segments), then intersect rays with triangles by the Moller-Trumbore
algorithm, trace a whole image against a whole mesh with one broadcast (rays x triangles), and
shade the closest hit by Lambert's cosine law to render a mesh from any camera pose. No Python loop
over rays or triangles anywhere: the graders check it. Read docs/w1d1_raytracing.md for the maths.

Reference: T. Moller and B. Trumbore, "Fast, Minimum Storage Ray/Triangle Intersection" (1997).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Bool, Float, Int
from torch import Tensor

ASSETS = Path(__file__).parent / "w1d1_raytracing_assets"  # torus.obj, made by make_mesh.py

# -- 2D: rays against line segments ------------------------------------------------------------


def make_rays_1d(num_pixels: int, y_limit: float) -> Float[Tensor, "num_pixels 2 3"]:
    """A fan of rays from the origin through `num_pixels` points evenly spaced on the line x = 1.

    rays[i, 0] is the origin (0, 0, 0); rays[i, 1] is the direction (1, y_i, 0) with
    y_i = torch.linspace(-y_limit, y_limit, num_pixels)[i].
    """
    # BEGIN SOLUTION
    rays = torch.zeros(num_pixels, 2, 3)
    rays[:, 1, 0] = 1.0
    rays[:, 1, 1] = torch.linspace(-y_limit, y_limit, num_pixels)
    return rays
    # END SOLUTION


def intersect_ray_1d(
    ray: Float[Tensor, "2 3"], segment: Float[Tensor, "2 3"], eps: float = 1e-6
) -> bool:
    """Does the ray meet the segment between the points segment[0] and segment[1]?

    Work in the xy-plane (ignore z). Solve O + u D = L1 + v (L2 - L1) for (u, v): a 2x2 linear
    system `[D, L1 - L2] @ [u, v] = L1 - O`. It hits when u >= 0 and 0 <= v <= 1. A ray parallel to
    the segment (|det| < eps) counts as a miss.
    """
    # BEGIN SOLUTION
    O, D = ray[0, :2], ray[1, :2]  # noqa: E741 (the paper's names)
    L1, L2 = segment[0, :2], segment[1, :2]
    mat = torch.stack([D, L1 - L2], dim=-1)  # (2, 2): the columns are D and L1 - L2
    if torch.linalg.det(mat).abs() < eps:
        return False
    u, v = torch.linalg.solve(mat, L1 - O)
    return bool((u >= 0) & (v >= 0) & (v <= 1))
    # END SOLUTION


def intersect_rays_1d(
    rays: Float[Tensor, "nrays 2 3"], segments: Float[Tensor, "nsegments 2 3"], eps: float = 1e-6
) -> Bool[Tensor, " nrays"]:
    """For each ray, does it meet at least one of the segments? (xy-plane, as intersect_ray_1d)

    Batch the 2x2 systems over every (ray, segment) pair by broadcasting. `torch.linalg.solve`
    fails on a singular matrix, so swap the parallel pairs' matrices for the identity before
    solving, and count them as misses.
    """
    # BEGIN SOLUTION
    O, D = rays[:, None, 0, :2], rays[:, None, 1, :2]  # noqa: E741 (nrays, 1, 2)
    L1, L2 = segments[None, :, 0, :2], segments[None, :, 1, :2]  # (1, nsegments, 2)
    D, edge = torch.broadcast_tensors(D, L1 - L2)  # (nrays, nsegments, 2)
    mat = torch.stack([D, edge], dim=-1)  # (nrays, nsegments, 2, 2)
    parallel = torch.linalg.det(mat).abs() < eps
    mat = torch.where(parallel[..., None, None], torch.eye(2), mat)
    u, v = torch.linalg.solve(mat, L1 - O).unbind(-1)  # (nrays, nsegments) each
    hits = (u >= 0) & (v >= 0) & (v <= 1) & ~parallel
    return hits.any(dim=-1)
    # END SOLUTION


# -- 3D: rays against triangles ----------------------------------------------------------------


def make_rays_2d(
    num_pixels_y: int, num_pixels_z: int, y_limit: float, z_limit: float
) -> Float[Tensor, "nrays 2 3"]:
    """Rays from the origin through a num_pixels_y x num_pixels_z grid of points on the plane x = 1.

    nrays = num_pixels_y * num_pixels_z, ordered y-major: ray i * num_pixels_z + j has direction
    (1, y_i, z_j) with y = linspace(-y_limit, y_limit, num_pixels_y) and
    z = linspace(-z_limit, z_limit, num_pixels_z). Every origin is (0, 0, 0).
    """
    # BEGIN SOLUTION
    rays = torch.zeros(num_pixels_y, num_pixels_z, 2, 3)
    rays[:, :, 1, 0] = 1.0
    rays[:, :, 1, 1] = torch.linspace(-y_limit, y_limit, num_pixels_y)[:, None]
    rays[:, :, 1, 2] = torch.linspace(-z_limit, z_limit, num_pixels_z)[None, :]
    return rearrange(rays, "ny nz p d -> (ny nz) p d")
    # END SOLUTION


def triangle_ray_intersects(
    triangle: Float[Tensor, "*batch 3 3"], ray: Float[Tensor, "*batch 2 3"], eps: float = 1e-6
) -> tuple[Bool[Tensor, "*batch"], Float[Tensor, "*batch"]]:
    """Moller-Trumbore: does the ray hit the triangle [A, B, C], and at which ray parameter t?

    Solve O + t D = A + u (B - A) + v (C - A) by Cramer's rule with e1 = B - A, e2 = C - A,
    s = O - A, h = D x e2, q = s x e1:

        det = e1 . h,   u = (s . h) / det,   v = (D . q) / det,   t = (e2 . q) / det.

    A hit needs |det| >= eps (not parallel), u >= 0, v >= 0, u + v <= 1 and t >= 0. The leading
    dims of `triangle` and `ray` broadcast against each other, so (1, ntri, 3, 3) against
    (nrays, 1, 2, 3) tests every pair. Returns (hit, t); t only means something where hit is True.
    """
    # BEGIN SOLUTION
    A, B, C = triangle.unbind(-2)  # (*batch, 3) each
    O, D = ray.unbind(-2)  # noqa: E741 (origin and direction, as in the paper)
    e1, e2 = B - A, C - A
    s = O - A
    h = torch.linalg.cross(*torch.broadcast_tensors(D, e2))  # cross wants equal shapes
    q = torch.linalg.cross(*torch.broadcast_tensors(s, e1))
    det = (e1 * h).sum(-1)
    parallel = det.abs() < eps
    inv_det = 1.0 / torch.where(parallel, 1.0, det)  # no division by ~0 on parallel pairs
    u = (s * h).sum(-1) * inv_det
    v = (D * q).sum(-1) * inv_det
    t = (e2 * q).sum(-1) * inv_det
    hit = ~parallel & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0)
    return hit, t
    # END SOLUTION


def raytrace_triangle(
    rays: Float[Tensor, "nrays 2 3"], triangle: Float[Tensor, "3 3"]
) -> Bool[Tensor, " nrays"]:
    """Which rays hit the triangle: one call of triangle_ray_intersects, broadcast over rays."""
    # BEGIN SOLUTION
    hit, _ = triangle_ray_intersects(triangle, rays)
    return hit
    # END SOLUTION


def raytrace_mesh(
    rays: Float[Tensor, "nrays 2 3"], triangles: Float[Tensor, "ntriangles 3 3"]
) -> tuple[Float[Tensor, " nrays"], Int[Tensor, " nrays"]]:
    """The closest hit of every ray on a triangle soup, testing all rays x triangles at once.

    Returns (distance, index): distance is the smallest t over the triangles the ray hits (inf if
    it hits none: it is the depth along the ray in units of its direction), index is that
    triangle's index (-1 if none).
    """
    # BEGIN SOLUTION
    hit, t = triangle_ray_intersects(triangles[None], rays[:, None])  # (nrays, ntriangles)
    t = torch.where(hit, t, torch.inf)
    distance, index = t.min(dim=-1)
    index = torch.where(hit.any(dim=-1), index, -1)
    return distance, index
    # END SOLUTION


def raytrace_mesh_chunked(
    rays: Float[Tensor, "nrays 2 3"],
    triangles: Float[Tensor, "ntriangles 3 3"],
    chunk_size: int = 4096,
) -> tuple[Float[Tensor, " nrays"], Int[Tensor, " nrays"]]:
    """raytrace_mesh on `chunk_size` rays at a time: memory grows with chunk_size x ntriangles,
    not nrays x ntriangles (256 x 256 rays x 576 triangles would need gigabytes at once)."""
    parts = [raytrace_mesh(chunk, triangles) for chunk in rays.split(chunk_size)]
    return torch.cat([d for d, _ in parts]), torch.cat([i for _, i in parts])


# -- a mesh, a camera and light ----------------------------------------------------------------


def mesh_path(name: str = "torus.obj") -> Path:
    """Where the mesh `name` is: $MLAB_DATA_DIR, then ~/.cache/mlab, then the copy shipped here."""
    places = [Path(os.environ["MLAB_DATA_DIR"])] if os.environ.get("MLAB_DATA_DIR") else []
    places += [Path.home() / ".cache" / "mlab", ASSETS]
    for place in places:
        if (place / name).is_file():
            return place / name
    raise FileNotFoundError(
        f"{name} not found in {', '.join(map(str, places))}: run mlab/w1d1_raytracing_assets/make_mesh.py"
    )


def load_mesh(path: str | Path | None = None) -> Float[Tensor, "ntriangles 3 3"]:
    """Read a Wavefront OBJ file (default: the shipped torus, `mesh_path()`) into a triangle soup.

    Only two kinds of line matter: `v x y z` adds a vertex, `f i j k` a triangle of vertices i, j, k
    counted FROM 1 (a face entry may read `i/vt/vn`: keep the part before the first `/`). Ignore
    every other line (comments `#`, normals `vn`, groups ...). Gather with one indexing step:
    triangles[n, k] = vertices[faces[n, k]], with faces counted from 0.
    """
    # BEGIN SOLUTION
    path = mesh_path() if path is None else Path(path)
    vertices, faces = [], []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "v":
            vertices.append([float(x) for x in fields[1:4]])
        elif fields and fields[0] == "f":
            faces.append([int(entry.split("/")[0]) for entry in fields[1:4]])
    vertices_t = torch.tensor(vertices, dtype=torch.float32)  # (nvertices, 3)
    faces_t = torch.tensor(faces, dtype=torch.long) - 1  # (ntriangles, 3), OBJ counts from 1
    return vertices_t[faces_t]  # (ntriangles, 3, 3)
    # END SOLUTION


def look_at(
    eye: Float[Tensor, " 3"], target: Float[Tensor, " 3"], up: Float[Tensor, " 3"] | None = None
) -> Float[Tensor, "4 4"]:
    """A camera pose: the 4x4 camera-to-world matrix of a camera at `eye` looking at `target`.

    The camera frame is x = forward, y = up, z = right (right-handed: forward x up = right). Columns
    0, 1, 2 of the pose hold those axes in world coordinates and column 3 the camera position, so
    `pose @ [p, 1]` maps a point p from camera to world coordinates. `up` (default +z) must not be
    parallel to the viewing direction.
    """
    up = torch.tensor([0.0, 0.0, 1.0]) if up is None else up
    forward = F.normalize(target - eye, dim=0)
    right = F.normalize(torch.linalg.cross(forward, up), dim=0)
    true_up = torch.linalg.cross(right, forward)
    pose = torch.eye(4)
    pose[:3, :3] = torch.stack([forward, true_up, right], dim=1)  # columns
    pose[:3, 3] = eye
    return pose


def camera_rays(
    camera_to_world: Float[Tensor, "4 4"], height: int, width: int, y_limit: float, z_limit: float
) -> Float[Tensor, "nrays 2 3"]:
    """World-space rays through the pixels of a height x width image, in reading order.

    In the camera frame (x forward, y up, z right) these are make_rays_2d(height, width, y_limit,
    z_limit), reordered so that ray r * width + c is pixel (r, c) with row 0 at the TOP of the
    image (largest y) and column 0 at the left (smallest z). Then move them to the world: a
    direction d becomes R d and an origin o becomes R o + p, where R = camera_to_world[:3, :3]
    and p = camera_to_world[:3, 3].
    """
    # BEGIN SOLUTION
    rays = make_rays_2d(height, width, y_limit, z_limit)
    rays = rearrange(rays, "(h w) p d -> h w p d", h=height).flip(0)  # row 0 is the top (max y)
    rays = rearrange(rays, "h w p d -> (h w) p d")
    R, position = camera_to_world[:3, :3], camera_to_world[:3, 3]
    world = rays @ R.T  # rotates both origins and directions: (nrays, 2, 3)
    world[:, 0] += position  # only points (origins) move with the camera
    return world
    # END SOLUTION


def triangle_normals(triangles: Float[Tensor, "ntriangles 3 3"]) -> Float[Tensor, "ntriangles 3"]:
    """Unit normal of each triangle [A, B, C]: (B - A) x (C - A), scaled to length 1.

    Its direction follows the right-hand rule: counter-clockwise vertices seen from outside give an
    outward normal.
    """
    # BEGIN SOLUTION
    A, B, C = triangles.unbind(-2)
    return F.normalize(torch.linalg.cross(B - A, C - A), dim=-1)
    # END SOLUTION


def render_mesh(
    triangles: Float[Tensor, "ntriangles 3 3"],
    camera_to_world: Float[Tensor, "4 4"],
    height: int,
    width: int,
    y_limit: float,
    z_limit: float,
    light_direction: Float[Tensor, " 3"],
    ambient: float = 0.1,
    chunk_size: int = 4096,
) -> Float[Tensor, "height width"]:
    """Render the mesh seen from `camera_to_world`, flat-shaded by Lambert's cosine law.

    Trace camera_rays with raytrace_mesh_chunked. A pixel whose ray hits triangle k gets
    ambient + (1 - ambient) * max(0, n . l), where n is triangle k's unit normal turned to face the
    camera (n . D <= 0) and l is `light_direction` (pointing from the surface towards the light)
    scaled to length 1. A pixel that hits nothing is 0 (background).
    """
    # BEGIN SOLUTION
    rays = camera_rays(camera_to_world, height, width, y_limit, z_limit)  # (h * w, 2, 3)
    _, index = raytrace_mesh_chunked(rays, triangles, chunk_size)
    hit = index >= 0
    normals = triangle_normals(triangles)[index.clamp(min=0)]  # (h * w, 3)
    facing_away = (normals * rays[:, 1]).sum(-1, keepdim=True) > 0
    normals = torch.where(facing_away, -normals, normals)
    light = F.normalize(light_direction, dim=0)
    lambert = (normals @ light).clamp(min=0)  # (h * w,)
    shade = torch.where(hit, ambient + (1 - ambient) * lambert, 0.0)
    return rearrange(shade, "(h w) -> h w", h=height)
    # END SOLUTION
