"""Write torus.obj, the mesh of day w1d1_raytracing, next to this script (a fixed recipe).

A torus around the z axis: major radius R = 1 (centre to tube centre), minor radius r = 0.4 (tube),
24 segments around z and 12 around the tube, two triangles per quad, 288 vertices and 576
triangles, wound counter-clockwise seen from outside (right-hand rule: normals point out). Vertex
(i, j) sits at angle theta_i = 2 pi i / 24 around z and phi_j = 2 pi j / 12 around the tube:

    ((R + r cos phi) cos theta, (R + r cos phi) sin theta, r sin phi)

Coordinates are written with 6 decimals. Run from the organizer repository's root as
    python solutions/mlab/w1d1_raytracing_assets/make_mesh.py \
        --npz template/tests/data/w1d1_raytracing/torus.npz
to also write the triangles (float32, shape (576, 3, 3)) that the graders compare with.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

R, r, N_MAJOR, N_MINOR = 1.0, 0.4, 24, 12


def torus() -> tuple[list[tuple[str, str, str]], list[tuple[int, int, int]]]:
    """Vertices as 6-decimal strings, and triangles as 0-based vertex indices."""
    vertices = []
    for i in range(N_MAJOR):
        theta = 2 * math.pi * i / N_MAJOR
        for j in range(N_MINOR):
            phi = 2 * math.pi * j / N_MINOR
            x = (R + r * math.cos(phi)) * math.cos(theta)
            y = (R + r * math.cos(phi)) * math.sin(theta)
            z = r * math.sin(phi)
            vertices.append(tuple(f"{c:.6f}".replace("-0.000000", "0.000000") for c in (x, y, z)))

    def index(i: int, j: int) -> int:
        return (i % N_MAJOR) * N_MINOR + j % N_MINOR

    faces = []
    for i in range(N_MAJOR):
        for j in range(N_MINOR):
            a, b, c, d = index(i, j), index(i + 1, j), index(i + 1, j + 1), index(i, j + 1)
            faces += [(a, b, c), (a, c, d)]  # both counter-clockwise seen from outside
    return vertices, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, help="also write the triangles here (for graders)")
    args = parser.parse_args()
    vertices, faces = torus()
    lines = [f"# torus R={R} r={r}, {N_MAJOR} x {N_MINOR} segments, made by make_mesh.py"]
    lines += [f"v {x} {y} {z}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]  # OBJ counts vertices from 1
    out = Path(__file__).with_name("torus.obj")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}: {len(vertices)} vertices, {len(faces)} triangles")
    if args.npz:
        coords = np.array([[float(c) for c in v] for v in vertices], dtype=np.float32)
        triangles = coords[np.array(faces)]  # (576, 3, 3)
        args.npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.npz, triangles=triangles)
        print(f"wrote {args.npz}: triangles {triangles.shape}")


if __name__ == "__main__":
    main()
