"""Figures for docs/w1d1_raytracing.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w1d1_raytracing.py` (about a minute on 2 cores).
Writes docs/img/w1d1_raytracing_*.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w1d1_raytracing as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def save(fig, name: str) -> None:
    path = IMG / f"w1d1_raytracing_{name}.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")


def rays_1d() -> None:
    """A fan of rays in the xy-plane against three segments: hits in colour."""
    rays = m.make_rays_1d(15, 1.0)
    segments = torch.tensor(
        [
            [[1.5, -0.9, 0], [2.2, -0.2, 0]],
            [[2.6, 0.3, 0], [2.0, 0.9, 0]],
            [[3.2, -1.6, 0], [3.6, 0.6, 0]],
        ]
    )
    hits = m.intersect_rays_1d(rays, segments)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for ray, hit in zip(rays, hits, strict=True):
        end = ray[0] + 4 * ray[1]
        ax.plot(
            [ray[0, 0], end[0]], [ray[0, 1], end[1]], color="tab:orange" if hit else "0.8", lw=1
        )
    for seg in segments:
        ax.plot(seg[:, 0], seg[:, 1], color="tab:blue", lw=3)
    ax.scatter(
        rays[:, 1, 0], rays[:, 1, 1], s=8, color="k", zorder=3, label="O + D (the pixels, x = 1)"
    )
    ax.set(xlim=(-0.2, 4.2), ylim=(-2.2, 2.2), xlabel="x", ylabel="y", aspect="equal")
    ax.set_title("make_rays_1d(15, 1.0); intersect_rays_1d hits in orange", fontsize=10)
    ax.legend(loc="lower left", fontsize=8)
    save(fig, "rays_1d")


def triangle() -> None:
    """raytrace_triangle on a 2D grid of rays: the triangle as the camera sees it."""
    rays = m.make_rays_2d(48, 48, 0.5, 0.5)
    tri = torch.tensor([[2.0, 0.3, -0.8], [2.0, -0.9, 0.2], [2.0, 0.5, 0.8]])
    hits = m.raytrace_triangle(rays, tri).reshape(48, 48)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.imshow(hits.float(), origin="lower", extent=(-0.5, 0.5, -0.5, 0.5), cmap="Blues")
    ax.set(xlabel="z of the ray direction", ylabel="y of the ray direction")
    ax.set_title("raytrace_triangle: make_rays_2d(48, 48, 0.5, 0.5)", fontsize=9)
    save(fig, "triangle")


def torus_views() -> None:
    """Depth and shading of the shipped torus: raytrace_mesh and render_mesh."""
    triangles = m.load_mesh()
    pose = m.look_at(torch.tensor([3.0, -2.0, 2.2]), torch.zeros(3))
    rays = m.camera_rays(pose, 160, 160, 0.5, 0.5)
    depth, _ = m.raytrace_mesh_chunked(rays, triangles)
    image = m.render_mesh(triangles, pose, 256, 256, 0.5, 0.5, torch.tensor([1.0, -1.0, 2.0]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    shown = axes[0].imshow(depth.reshape(160, 160), cmap="viridis_r")
    fig.colorbar(shown, ax=axes[0], fraction=0.046, pad=0.02)
    axes[0].set_title("raytrace_mesh: distance t of the closest hit", fontsize=9)
    axes[1].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("render_mesh: 256 x 256, Lambertian shading", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    save(fig, "torus")


def poses() -> None:
    """One mesh, four camera poses (look_at) and lights."""
    triangles = m.load_mesh()
    views = [
        ((3.0, -2.0, 2.2), (1.0, -1.0, 2.0)),
        ((0.1, 0.0, 4.0), (0.5, 0.5, 1.0)),
        ((3.6, 0.0, 0.6), (1.0, -1.0, 0.5)),
        ((-2.0, 2.5, -1.5), (-1.0, 1.0, -0.5)),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.7))
    for ax, (eye, light) in zip(axes, views, strict=True):
        pose = m.look_at(torch.tensor(eye), torch.zeros(3))
        image = m.render_mesh(triangles, pose, 128, 128, 0.55, 0.55, torch.tensor(light))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"eye {eye}", fontsize=8)
        ax.set_axis_off()
    save(fig, "poses")


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    rays_1d()
    triangle()
    torus_views()
    poses()
