"""The docs site: `mkdocs build --strict` passes (also with day pages that have no graders yet),
the maths renders offline in headless Chromium, each day page carries the exercise/points table
read from its graders, and every stub's docs link resolves in the built site."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohort import docs_links
from cohort.curriculum import available_days

ROOT = Path(__file__).resolve().parents[1]
DAYS = available_days(ROOT / "template" / "tests")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytest.importorskip("material", reason="mkdocs-material is not installed (pip: [docs] or [dev])")


def load_hook():
    spec = importlib.util.spec_from_file_location("cohort_site", ROOT / "docs/hooks/cohort_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cohort_site"] = module
    spec.loader.exec_module(module)
    return module


def build(config: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_nav_has_the_sections_in_order(site):
    html = (site / "index.html").read_text()
    tabs = re.findall(r'class="md-tabs__link[^"]*"[^>]*>\s*([^<]+?)\s*<', html)
    assert tabs == [
        "Start here",
        "Prep",
        "Week 1",
        "Week 2",
        "Week 3",
        "Week 4 projects",
        "Organizers",
    ]
    for page in ("start/your-repository", "projects", *DAYS):
        assert (site / page / "index.html").exists(), page


def test_days_without_graders_slot_into_their_week(tmp_path):
    """The days being written (no graders yet) build strict and land in their week, in order."""
    (tmp_path / "template").symlink_to(ROOT / "template")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("img"))
    (tmp_path / "docs" / "img").symlink_to(ROOT / "docs" / "img")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    new = {
        "w2d6_later": "a sixth day",
        "w3d8_later": "an eighth day",
        "w3d10_later": "a tenth day",
    }
    for day, title in new.items():
        (tmp_path / "docs" / f"{day}.md").write_text(
            f"# {day}: {title}\n\nText with $x^2$.\n\n## Exercises, in order\n\n### `f`\n\nDo it.\n"
            '\n??? hint "Stuck?"\n    Broadcast.\n'
        )
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nav = load_hook().build_nav(tmp_path / "docs")
    weeks = {
        title: [e if isinstance(e, str) else next(iter(e.values())) for e in entries]
        for section in nav
        for title, entries in section.items()
    }
    assert (
        weeks["Week 2"].index("w2d6_later.md") == weeks["Week 2"].index("w2d5_data_parallel.md") + 1
    )
    assert weeks["Week 3"][-3:] == ["w3d7_elk.md", "w3d8_later.md", "w3d10_later.md"]
    page = (tmp_path / "out" / "w3d8_later" / "index.html").read_text()
    assert "Exercises and points" not in page  # no graders yet: no table
    assert '<details class="hint">' in page  # `??? hint` folds away
    assert 'class="arithmatex"' in page


def test_summary_workflow_publishes_the_docs_beside_the_dashboard():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "cohort-summary.yml").read_text())
    steps = flow["jobs"]["build"]["steps"]
    names = [s.get("name") for s in steps]
    docs = steps[names.index("Build the docs site into site/docs")]
    assert names.index("Write the summary site") < names.index(docs["name"])
    assert 'mkdocs build --strict --site-dir "$COHORT_DIR/site/docs"' in docs["run"]
    assert "env" not in docs  # no secret near the docs build


def test_every_day_page_lists_its_exercises_with_points(site):
    hook = load_hook()
    for day in DAYS:
        html = (site / day / "index.html").read_text()
        assert 'id="exercises-and-points"' in html, day
        found = hook.exercises(ROOT / "template" / "tests" / f"test_{day}.py", [], day)
        total = sum(e.points for e in found)
        assert f"<strong>{total:g} points</strong>" in html, day
    raytracing = (site / "w1d1_raytracing" / "index.html").read_text()
    assert '<a href="#raytrace_mesh"><code>raytrace_mesh</code></a>' in raytracing


def test_static_points_agree_with_the_grader_plugin():
    """The table is read with ast; pytest's own collection (the grader's) gives the same points."""
    probe = (
        "import pytest\n"
        "class P:\n"
        "    def pytest_collection_modifyitems(self, items):\n"
        "        for it in items:\n"
        "            m = it.get_closest_marker('points')\n"
        "            print('POINTS', it.name, m.args[0] if m else 0)\n"
        "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/test_w0_prep.py',"
        " 'tests/test_w1d5_autograd.py'], plugins=[P()])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT / "template", capture_output=True, text=True
    )
    lines = [
        line.rsplit(None, 1)[1] for line in proc.stdout.splitlines() if line.startswith("POINTS ")
    ]
    assert lines, proc.stdout + proc.stderr
    real = sum(float(points) for points in lines)
    hook = load_hook()
    static = sum(
        e.points
        for day in ("w0_prep", "w1d5_autograd")
        for e in hook.exercises(ROOT / "template" / "tests" / f"test_{day}.py", [], day)
    )
    assert static == real


def test_read_tests_counts_points_cases_and_marks():
    hook = load_hook()
    source = (
        "import pytest\npoints = pytest.mark.points\nCASES = [1, 2]\nCASES += [3]\n"
        "GRID = [(a, b) for a in CASES for b in range(2)]\n"
        "@points(2)\n@pytest.mark.parametrize('x', CASES)\ndef test_a(x): pass\n"
        "@pytest.mark.points(1)\n@pytest.mark.parametrize('a,b', GRID)\n@pytest.mark.gpu\n"
        "def test_b(a, b): pass\n"
        "@pytest.mark.points(3)\n@pytest.mark.parametrize('x', make())\ndef test_c(x): pass\n"
        "class TestLinear:\n    @points(1)\n    def test_forward(self): pass\n"
        "def test_unscored(): pass\n"
    )
    got = [(t.name, t.points, t.cases, t.marks) for t, _ in hook.read_tests(source)]
    assert got == [
        ("test_a", 2.0, 3, ()),
        ("test_b", 1.0, 6, ("gpu",)),
        ("test_c", 3.0, None, ()),
        ("TestLinear::test_forward", 1.0, 1, ()),
    ]


@pytest.mark.parametrize("day", DAYS)
def test_every_day_page_has_common_mistakes(day):
    text = (ROOT / "docs" / f"{day}.md").read_text()
    assert re.search(r"^## Common mistakes", text, flags=re.M), (
        f"docs/{day}.md: add a '## Common mistakes' section (what the graders catch)"
    )


def test_every_stub_link_resolves_in_the_built_site(site, tmp_path):
    """What a pair gets with `template.docs_url` set: each stub names `<site>/<day>/#<anchor>`,
    and that page and heading exist in the built site."""
    url = "https://mlab.example/docs"
    shutil.copytree(ROOT / "template" / "mlab", tmp_path / "mlab")
    changed = docs_links.apply(tmp_path, url)
    assert changed, "no stub names its docs page"
    missing, links = [], 0
    for path in sorted((tmp_path / "mlab").rglob("*.py")):
        text = path.read_text()
        assert "see docs/" not in text, path
        for m in re.finditer(re.escape(url) + r"/(?P<page>\w+)/(?:#(?P<anchor>[\w-]+))?", text):
            links += 1
            html = site / m["page"] / "index.html"
            if not html.exists() or (m["anchor"] and f'id="{m["anchor"]}"' not in html.read_text()):
                missing.append(f"{path.relative_to(tmp_path)}: {m[0]}")
    assert links > 100
    assert not missing, "\n".join(sorted(set(missing)))


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (apt-get install chromium)")
def test_maths_renders_offline_in_chromium(site, tmp_path):
    page = site / "w1d1_raytracing" / "index.html"
    raw = page.read_text()
    assert raw.count('class="arithmatex"') >= 5
    # everything the page loads is on the site: no script or stylesheet from the network
    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', raw)
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = proc.stdout
    assert "</html>" in dom, proc.stderr[-2000:]
    displays = dom.count('class="katex-display"')
    assert displays >= 5, f"{displays} display equations rendered by KaTeX; JS did not run?"
    assert dom.count('class="katex"') >= raw.count('class="arithmatex"')
    assert "katex-error" not in dom
    text = re.sub(r"<annotation[^>]*>.*?</annotation>", "", dom, flags=re.S)  # KaTeX's TeX copy
    assert "$$" not in text and "\\[" not in text, "raw TeX left in the rendered page"
