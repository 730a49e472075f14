"""`cohort generate` and `cohort serve`: the pairs' repositories on the cohort's forge."""

from __future__ import annotations

import argparse
import subprocess

from cohort import forge, roster
from cohort.cli.roster import cohort_dir_option
from cohort.curriculum import available_days
from cohort.errors import ForgeError
from cohort.forge.local import LocalForge


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="create one repository per pair, starting from the template",
        description="Take the template snapshot and create every pair's repository on the "
        "forge of cohort.toml. Idempotent: re-runs skip what exists and finish "
        "what an interrupted run left.",
    )
    cohort_dir_option(p)
    p.set_defaults(run=run_generate)
    p = sub.add_parser(
        "serve",
        help="serve the local forge's repositories with git daemon",
        description="Pairs clone and push over git://HOST:PORT/<pair>.git; every push is "
        "queued for grading. There is no authentication: keep it on a trusted network.",
    )
    cohort_dir_option(p)
    p.add_argument("--host", help="address to listen on (default: forge.host of cohort.toml)")
    p.add_argument("--port", type=int, help="port (default: forge.port of cohort.toml)")
    p.set_defaults(run=run_serve)


def run_generate(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    done = forge.generate(cohort)
    graded = set(available_days(done.template.tests))
    missing = [d.name for d in cohort.days if d.name not in graded]
    if missing:
        print(
            f"note: no graders in the template for {', '.join(missing)}; pushes are graded on the other days"
        )
    print(
        f"{len(done.created)} created, {len(done.existing)} already there; template at "
        f"{done.template.ref}{f' ({done.template.commit[:12]})' if done.template.commit else ''}"
    )
    return 0


def run_serve(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    local = forge.connect(cohort)
    if not isinstance(local, LocalForge):
        raise ForgeError(
            f"{cohort.path}: forge.backend: `cohort serve` serves the local forge only"
        )
    host, port = args.host or cohort.forge.host, args.port or cohort.forge.port
    print(f"serving {local.root} on git://{host}:{port}/<pair>.git (Ctrl-C stops)", flush=True)
    try:
        return subprocess.run(local.serve_command(host, port)).returncode
    except KeyboardInterrupt:
        return 0
