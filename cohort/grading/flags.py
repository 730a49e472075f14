"""Lines of pair code worth a reviewer's look: what reaches into the grader, the test process or
its exit (listed in the review pack; they change no score)."""

from __future__ import annotations

import re
from pathlib import Path

SUSPICIOUS = {
    r"\b_?pytest\b": "reaches into pytest",
    r"\bsys\.modules\b": "edits loaded modules",
    r"\bos\._exit\b|\bsys\.exit\b": "exits the process",
    r"results\.json|COHORT_": "touches the grader's files or settings",
    r"\bsys\._getframe\b|\binspect\.(stack|currentframe)\b": "inspects the caller's frames",
    r"\bgc\.get_objects\b|\bbuiltins\b": "reaches into interpreter state",
    r"\bsignal\.": "changes signal handling",
    r"\bsubprocess\b|\bos\.(fork|setsid|spawn\w*|exec\w*|system|popen)\b": "starts processes",
}


def scan_pair_code(mlab: Path) -> list[dict]:
    """Lines of pair code that reach into the grader, the test process or its exit."""
    flags = []
    for path in sorted(mlab.rglob("*.py")) if mlab.is_dir() else []:
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in SUSPICIOUS.items():
                if re.search(pattern, code):
                    rel = path.relative_to(mlab.parent).as_posix()
                    flags.append(
                        {"file": rel, "line": lineno, "why": why, "code": line.strip()[:200]}
                    )
    return flags
