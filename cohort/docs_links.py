"""Point a template snapshot at the published docs site (`template.docs_url` in cohort.toml).

`cohort build-template` writes stubs that name the organizers' docs by path,
`raise NotImplementedError("raytrace_mesh: see docs/w1d1_raytracing.md#raytrace_mesh")`; a pair
repository has no docs/ folder, so when the cohort sets `docs_url` the snapshot every pair starts
from names the page on the site instead (`see <docs_url>/w1d1_raytracing/#raytrace_mesh`, mkdocs'
directory URLs) and its README links to the site. Without `docs_url` nothing changes.
"""

from __future__ import annotations

import re
from pathlib import Path

STUB_LINK = re.compile(r"see docs/(?P<page>[A-Za-z0-9_]+)\.md(?:#(?P<anchor>[\w-]+))?")
README = "README.md"


def site_link(docs_url: str, page: str, anchor: str | None = None) -> str:
    """`docs/<page>.md#<anchor>` as a URL of the built site."""
    return f"{docs_url.rstrip('/')}/{page}/" + (f"#{anchor}" if anchor else "")


def rewrite_stubs(text: str, docs_url: str) -> str:
    return STUB_LINK.sub(lambda m: "see " + site_link(docs_url, m["page"], m["anchor"]), text)


def readme_note(docs_url: str) -> str:
    return (
        f"**The course site: <{docs_url.rstrip('/')}/>**: a page per day with its exercises, "
        "points, hints and common mistakes; each stub's error message links to its section.\n"
    )


def apply(tree: Path, docs_url: str | None) -> list[Path]:
    """Rewrite the snapshot at `tree` (the template's files) for `docs_url`; the files changed."""
    if not docs_url:
        return []
    changed = []
    for path in sorted((tree / "mlab").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        new = rewrite_stubs(text, docs_url)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    readme = tree / README
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        head, sep, body = text.partition("\n")
        if head.startswith("# ") and sep:
            new = f"{head}\n\n{readme_note(docs_url)}{body}"
        else:
            new = readme_note(docs_url) + "\n" + text
        readme.write_text(new, encoding="utf-8")
        changed.append(readme)
    return changed
