"""`cohort summary`: the static site, its CSV and Markdown, the stuck list, escaping, and the pages
rendered in a real headless browser (Debian's chromium driven through chromedriver's WebDriver
HTTP API, no extra Python package)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from cohort import report, roster, store
from cohort.curriculum import DAYS
from cohort.report import tables
from tests.test_forge_local import write_roster
from tests.test_store import doc, keep

EVIL = "<script>alert(1)</script>"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def cohort(tmp_path) -> roster.Roster:
    """A cohort of four pairs with a small history of graded pushes on w0_prep."""
    c = write_roster(tmp_path / "c", tmp_path, ["alpha", "beta", "gamma", "delta"])
    failing = (
        "w0_prep",
        "tests/test_w0_prep.py::test_mul",
        "AssertionError: mul(2, 3) is 5, expected 6",
    )
    todo = ("w0_prep", "tests/test_w0_prep.py::test_add", "NotImplementedError: add")
    for i in range(3):  # alpha: the same real failure three pushes running
        keep(c.dir, doc("alpha", f"a{i}", at(i), {"w0_prep": (1, 3)}, [failing]))
    keep(
        c.dir, doc("beta", "b0", at(0), {"w0_prep": (1, 3)}, [failing])
    )  # beta: two pushes, 30 h apart
    keep(c.dir, doc("beta", "b1", at(30), {"w0_prep": (1, 3)}, [failing]))
    for i in range(4):  # gamma: not started; NotImplementedError is no sign of being stuck
        keep(c.dir, doc("gamma", f"g{i}", at(i), {"w0_prep": (0, 3)}, [todo]))
    keep(c.dir, doc("delta", "d0", at(0), {"w0_prep": (1, 3)}, [failing]))
    keep(c.dir, doc("delta", "d1", at(1), {"w0_prep": (1, 3)}, [failing]))
    keep(c.dir, doc("delta", "d2", at(2), {"w0_prep": (3, 3)}))  # fixed it
    # pair-provided text everywhere it can go, from a pair the roster does not know
    evil = doc(
        f"mallory{EVIL}",
        "e0",
        at(3),
        {"w0_prep": (0, 3)},
        [("w0_prep", f"tests/test_w0_prep.py::test_{EVIL}", f"AssertionError: {EVIL}")],
        diffs={"w0_prep": f"+++ pair/mlab/w0_prep.py\n+x = '{EVIL}'\n"},
        flags=[
            {
                "file": "mlab/w0_prep.py",
                "line": 1,
                "why": "exits the process",
                "code": f"os._exit(0)  # {EVIL}",
            }
        ],
        edited_tests=["test_w0_prep.py"],
        benchmarks=[
            {
                "test": "tests/test_w0_prep.py::test_b",
                "name": EVIL,
                "shape": "(8, 8)",
                "time_s": 0.002,
                "ref_time_s": 0.001,
                "speedup": 0.5,
                "note": "",
            }
        ],
    )
    keep(c.dir, evil)
    return c


def test_summary_writes_index_pages_csv_and_markdown(cohort):
    site = report.write_site(cohort)
    out = cohort.dir / "site"
    assert site.index == out / "index.html" and site.pairs == 5 and site.rows == 13
    index = site.index.read_text()
    for pair in ("alpha", "beta", "gamma", "delta"):
        assert f'href="pairs/{pair}.html"' in index and f'href="pairs/{pair}/w0_prep.html"' in index
        assert (out / "pairs" / pair / "w0_prep.html").exists()
    assert "<svg" in index and "<script" not in index.replace("&lt;script", "")
    with (out / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert set(tables.CSV_COLUMNS) >= {
        "pair",
        "day",
        "score",
        "max_score",
        "commit",
        "committed_at",
        "graded_at",
    }
    assert list(rows[0]) == list(tables.CSV_COLUMNS) and len(rows) == 13
    assert {(r["pair"], r["commit"], float(r["score"])) for r in rows if r["pair"] == "delta"} == {
        ("delta", "d0", 1),
        ("delta", "d1", 1),
        ("delta", "d2", 3),
    }
    md = (out / "summary.md").read_text()
    assert "| alpha | [1/3](pairs/alpha/w0_prep.html) | 1/3 |" in md and "## Stuck" in md
    pack = (out / "pairs" / "alpha" / "w0_prep.html").read_text()
    assert "AssertionError: mul(2, 3) is 5, expected 6" in pack and "a2" in pack


def test_a_grade_without_the_sandbox_is_marked_on_the_dashboard(cohort):
    why = "bubblewrap (bwrap) is not installed"
    keep(
        cohort.dir,
        doc("gamma", "g9", at(9), {"w0_prep": (1, 3)}, isolation={"mode": "none", "reason": why}),
    )
    keep(cohort.dir, doc("alpha", "a9", at(9), {"w0_prep": (1, 3)}, isolation={"mode": "bwrap"}))
    site = report.write_site(cohort)
    index = site.index.read_text()
    assert index.count(">isolation: none</span>") == 1  # gamma's cell, not alpha's
    assert f"isolation: none ({why})" in index and "1 pair-day(s)" in index
    out = cohort.dir / "site" / "pairs"
    assert f"none: {why}" in (out / "gamma" / "w0_prep.html").read_text()
    assert "<td>bwrap</td>" in (out / "alpha" / "w0_prep.html").read_text()


def test_stuck_lists_repeated_real_failures_only(cohort):
    report.write_site(cohort)
    db = store.connect(cohort.dir)
    from cohort.report import board, stuck

    b = board.build(store.day_scores(db), [p.name for p in cohort.pairs], ["w0_prep"])
    found = {
        (s.pair, s.test.split("::")[1], s.pushes, round(s.hours)) for s in stuck.find(db, b, 3, 24)
    }
    assert found == {("alpha", "test_mul", 3, 2), ("beta", "test_mul", 2, 30)}


def test_pair_provided_text_is_escaped_everywhere(cohort):
    report.write_site(cohort)
    pages = list((cohort.dir / "site").rglob("*.html"))
    assert len(pages) == 2 + 5 + 5  # index, exercises; a page and a pack per pair
    for page in pages:
        text = page.read_text()
        assert "<script" not in text, page
    evil_pack = next(p for p in pages if "mallory" in str(p.parent) and p.name == "w0_prep.html")
    text = evil_pack.read_text()
    assert (
        text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    )  # title, test, output, diff, flag, bench
    assert "differs from the trusted tests" in text and "exits the process" in text


# -- in a real browser -----------------------------------------------------------------------------

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class WebDriver:
    """The few WebDriver (W3C) calls the test needs, over chromedriver's HTTP API."""

    def __init__(self, port: int, user_data_dir: Path):
        self.base = f"http://127.0.0.1:{port}"
        options = {
            "binary": shutil.which("chromium"),
            "args": [*CHROME_FLAGS, f"--user-data-dir={user_data_dir}"],
        }
        caps = {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        self.session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})[
            "sessionId"
        ]

    def call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def s(self, method: str, path: str, body: dict | None = None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.s("POST", "/url", {"url": url})

    def js(self, script: str):
        return self.s("POST", "/execute/sync", {"script": script, "args": []})

    def console(self) -> list[dict]:
        return self.s("POST", "/se/log", {"type": "browser"})


@pytest.fixture
def browser(tmp_path):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = subprocess.Popen(
        ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        wd = WebDriver(port, tmp_path / "chrome-profile")
        yield wd
        wd.call("DELETE", f"/session/{wd.session}")
    finally:
        driver.terminate()
        driver.wait()


def test_every_page_renders_without_console_errors_and_its_links_resolve(cohort, browser):
    report.write_site(cohort)
    site = cohort.dir / "site"
    browser.open(site.joinpath("index.html").as_uri())
    assert browser.js("return document.querySelectorAll('table.heat td.cell a').length") == 5
    assert browser.js("return document.querySelectorAll('svg.progress polyline').length") == 5
    assert browser.js("return document.title") == "test"
    for page in sorted(site.rglob("*.html")):
        browser.open(page.as_uri())
        errors = [e["message"] for e in browser.console() if e["level"] == "SEVERE"]
        assert not errors, f"{page}: {errors}"
        assert browser.js("return document.body.innerText.length") > 50
        for href in browser.js(
            "return [...document.querySelectorAll('a[href], [src]')].map(e => e.href || e.src)"
        ):
            target = Path(unquote(urlparse(href).path))
            assert urlparse(href).scheme == "file" and target.is_file(), (
                f"{page}: broken link {href}"
            )


# -- benchmark ---------------------------------------------------------------------------------------


def synthetic_store(
    cohort_dir: Path, pairs: int, days: list[str], pushes: int, tests: int = 10
) -> int:
    """Fill a store as `pairs` x `days` x `pushes` graded pushes would (one day each): scores climb,
    one test at a time fails for real before it passes; results files for the latest of each."""
    rng = random.Random(0)
    db = store.connect(cohort_dir)
    results, day_rows, failures, latest = [], [], [], {}
    rid = 0
    for p in range(pairs):
        pair, skill = f"pair-{p + 1:02d}", rng.uniform(0.5, 1.2)
        for d, day in enumerate(days):
            for k in range(pushes):
                rid += 1
                level = min(tests, int(tests * skill * (k + 1) / pushes))
                commit, pushed_at = f"{rid:040x}", at((d * pushes + k) * 0.1 + p * 0.01)
                results.append(
                    (
                        rid,
                        pair,
                        commit,
                        "refs/heads/main",
                        pushed_at,
                        pushed_at,
                        pushed_at,
                        level,
                        tests,
                        f"results/{pair}/{commit}.json",
                    )
                )
                day_rows.append((rid, pair, day, pushed_at, level, tests, level, tests))
                failures += [
                    (rid, day, f"tests/test_{day}.py::test_{i}", "fail" if i == level else "todo")
                    for i in range(level, tests)
                ]
                latest[pair, day] = (commit, pushed_at, level, tests)
    with store.transaction(db):
        db.executemany(
            "INSERT INTO results (id, pair, commit_sha, ref, committed_at, pushed_at, graded_at, score,"
            " max_score, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            results,
        )
        db.executemany(
            "INSERT INTO day_scores (result_id, pair, day, pushed_at, score, max_score, passed,"
            " total) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            day_rows,
        )
        db.executemany("INSERT INTO failures VALUES (?, ?, ?, ?)", failures)
    for (pair, day), (commit, pushed_at, level, total) in latest.items():
        fails = [
            (day, f"tests/test_{day}.py::test_{i}", "AssertionError: max abs error 0.3 at [2, 1]")
            for i in range(level, total)
        ]
        document = doc(
            pair,
            commit,
            pushed_at,
            {day: (level, total)},
            fails,
            diffs={
                day: "--- stubs\n+++ pair\n@@ -1 +1 @@\n-raise NotImplementedError\n+return x\n"
                * 20
            },
        )
        path = cohort_dir / store.results_path(pair, commit)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
    return rid


@pytest.mark.bench
@pytest.mark.slow
def test_bench_summary_of_40_pairs_18_days_200_pushes(tmp_path):
    days = [d.name for d in DAYS][:18]
    cohort_dir = tmp_path / "c"
    cohort_dir.mkdir()
    pairs = "".join(
        f'[[pairs]]\nname = "pair-{p + 1:02d}"\nmembers = ["m{p}a", "m{p}b"]\n' for p in range(40)
    )
    schedule = "".join(f"{d} = {{ release = 2026-01-05, deadline = 2026-02-05 }}\n" for d in days)
    (cohort_dir / "cohort.toml").write_text(
        f'[cohort]\nname = "bench"\n[template]\nrepo = "."\n{pairs}[days]\n{schedule}'
    )
    started = time.perf_counter()
    n = synthetic_store(cohort_dir, 40, days, 200)
    made = time.perf_counter() - started
    times, cpu = [], []
    for _ in range(3):
        started, before = time.perf_counter(), os.times()
        subprocess.run(
            [sys.executable, "-m", "cohort", "summary", "--dir", str(cohort_dir)],
            check=True,
            capture_output=True,
        )
        after = os.times()
        times.append(time.perf_counter() - started)
        cpu.append(
            after.children_user
            + after.children_system
            - before.children_user
            - before.children_system
        )
    with sqlite3.connect(cohort_dir / store.DB_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM day_scores").fetchone()[0] == n == 40 * 18 * 200
    best = min(times)
    print(
        f"\nbench summary: {n} graded pushes (40 pairs x 18 days x 200), store made in {made:.1f} s; "
        f"`cohort summary` wall {best:.2f} s (best of 3: {', '.join(f'{t:.2f}' for t in times)}), "
        f"CPU {min(cpu):.2f} s; target 2 s: ratio {best / 2:.2f}"
    )


# -- what people read: packs, marks on the index, the schedule -------------------------------------

LONG = "AssertionError: softmax(x) for x of shape (4, 7): " + "max abs error 0.31 at [2, 1]; " * 12


def _test(day: str, name: str, status: str, output: str = "") -> dict:
    return {
        "name": f"tests/test_{day}.py::{name}",
        "score": 1 if status == "passed" else 0,
        "max_score": 0 if status == "skipped" else 1,
        "status": status,
        "output": output,
        "tags": [day],
    }


@pytest.fixture
def marked(tmp_path) -> roster.Roster:
    """Three pairs on two days, one of them not released yet: alpha has every kind of trouble,
    beta finished late with edited tests, idle never pushed; a template whose w0_prep ships a
    line the static scan flags."""
    c = tmp_path / "c"
    c.mkdir()
    (c / "cohort.toml").write_text(
        '[cohort]\nname = "marks"\n[template]\nrepo = "."\n'
        + "".join(
            f'[[pairs]]\nname = "{p}"\nmembers = ["{p}-a"]\n' for p in ("alpha", "beta", "idle")
        )
        + "[days]\nw0_prep = { release = 2026-01-05T00:00:00Z, deadline = 2026-01-06T18:00:00Z }\n"
        "w1d1_raytracing = { release = 2099-01-05T00:00:00Z, deadline = 2099-01-06T18:00:00Z }\n"
    )
    (c / "template" / "mlab").mkdir(parents=True)
    (c / "template" / "mlab" / "w0_prep.py").write_text("import sys\nsys.exit(0)  # shipped\n")
    day = "w0_prep"
    diff = "--- stubs/mlab/w0_prep.py\n+++ pair/mlab/w0_prep.py\n+return a + b\n-raise NotImplementedError\n"
    a = doc("alpha", "a0", at(0), {day: (1, 5), "w1d1_raytracing": (0, 1)}, diffs={day: diff})
    a["tests"] = [
        _test(
            day, "test_todo", "failed", "NotImplementedError: add: see docs/w0_prep.md#add\n  at x"
        ),
        _test(day, "test_real", "failed", LONG),
        _test(day, "test_hang", "failed", "timed out after 30 s, interrupted at mlab/w0_prep.py:3"),
        _test(
            day, "test_dies", "failed", "the test process killed by SIGSEGV while running this test"
        ),
        _test(day, "test_ok", "passed"),
        _test(day, "test_gpu", "skipped", "needs a CUDA GPU: runs on the GPU runner"),
        _test("w1d1_raytracing", "test_rays", "failed", "NotImplementedError: rays"),
    ]
    a["extra_data"]["days"][day].update(passed=1, total=5)
    a["extra_data"]["flags"] = [
        {
            "file": "mlab/w0_prep.py",
            "line": 2,
            "why": "exits the process",
            "code": "sys.exit(0)  # shipped",
        },
        {"file": "mlab/w0_prep.py", "line": 9, "why": "exits the process", "code": "os._exit(1)"},
    ]
    keep(c, a)
    b = doc("beta", "b0", at(40), {day: (3, 3)}, edited_tests=["test_w0_prep.py"])
    keep(c, b)
    return roster.load(c)


def _row(index: str, pair: str) -> str:
    start = index.index(f'href="pairs/{pair}.html"')
    return index[start : index.index("</tr>", start)]


def test_the_index_marks_trouble_schedule_last_push_and_days_done(marked):
    index = report.write_site(marked).index.read_text()
    alpha, beta, idle = (_row(index, p) for p in ("alpha", "beta", "idle"))
    for mark in ("timeout", "crash", "flags"):
        assert f'class="badge {mark}"' in alpha and f'class="badge {mark}"' not in beta
    assert 'class="badge edited"' in beta and 'class="badge late"' in beta
    assert 'class="badge late"' not in alpha and "edited" not in alpha
    assert "no push" in idle and "never" in idle and "0/0" not in idle
    assert "2026-01-05 09:00" in alpha and "2026-01-07 01:00" in beta  # last push column
    assert "due 01-06 18:00" in index and "not released" in index
    assert 'class="cell unreleased"' in alpha  # graded early, shown as not released
    assert index.count("1 of 3</td>") == 1 and "0 of 3</td>" in index  # w0_prep, w1d1
    assert "1 of 3 done" in index  # the days-done chart


def test_a_pack_puts_real_failures_first_whole_and_stubs_apart(marked):
    report.write_site(marked)
    pack = (marked.dir / "site" / "pairs" / "alpha" / "w0_prep.html").read_text()
    assert "Failing tests (3 of 5)" in pack and "Not started (1 of 5)" in pack
    assert "<td>1/5 (1 skipped)</td>" in pack and "Skipped (1, not counted)" in pack
    assert pack.index("test_real") < pack.index("Not started") < pack.index("test_todo")
    assert escape_html(LONG) in pack  # the whole message, not its first 200 characters
    assert (
        "os._exit(1)" in pack and "sys.exit(0)" not in pack
    )  # the template's own line is not flagged


def escape_html(text: str) -> str:
    from html import escape

    return escape(text)


def _bench(speedup: float) -> list[dict]:
    test = "tests/test_w1d6_kernels.py::test_matmul_speed"
    return [
        {
            "test": test,
            "name": "matmul",
            "shape": s,
            "time_s": 1.0,
            "ref_time_s": speedup,
            "speedup": speedup,
            "note": "",
        }
        for s in ("(64, 64)", "(256, 256)")
    ]


def test_exercises_page_puts_the_hardest_first_with_time_to_pass(marked):
    later = json.loads((marked.dir / store.results_path("alpha", "a0")).read_text())
    later["extra_data"].update(commit="a1", pushed_at=at(2))
    for t in later["tests"]:
        if t["name"].endswith("test_real"):
            t.update(status="passed", output="", score=1)
    keep(marked.dir, later)
    report.write_site(marked)
    page = (marked.dir / "site" / "exercises.html").read_text()
    rows = page.split("<tr>")[2:]
    names = [r.split("<code>")[1].split("</code>")[0] for r in rows]
    assert names.index("test_hang") < names.index("test_real") and "test_rays" not in page
    real = rows[names.index("test_real")]
    assert "1 of 3" in real and "2.0 h" in real, real  # a0 at 09:00 failed it, a1 at 11:00 passed
    hang = rows[names.index("test_hang")]
    assert "timed out after 30 s" in hang and "0 of 3" in hang


def test_benchmark_leaderboards_rank_gpu_runs_and_mark_cpu_ones(marked):
    gpu = {"kind": "gpu", "gpu": "NVIDIA H200"}
    keep(
        marked.dir,
        doc("alpha", "k0", at(1), {"w1d6_kernels": (1, 1)}, benchmarks=_bench(1.5), runner=gpu),
    )
    keep(
        marked.dir,
        doc("alpha", "k1", at(2), {"w1d6_kernels": (1, 1)}, benchmarks=_bench(3.0), runner=gpu),
    )
    keep(
        marked.dir,
        doc("alpha", "k2", at(3), {"w1d6_kernels": (1, 1)}, benchmarks=_bench(0.5), runner=gpu),
    )
    cpu = {"kind": "cpu", "gpu": None}
    keep(
        marked.dir,
        doc("beta", "k3", at(1), {"w1d6_kernels": (1, 1)}, benchmarks=_bench(9.0), runner=cpu),
    )
    index = report.write_site(marked).index.read_text()
    board = index[index.index("<h2>Benchmarks</h2>") :]
    assert "w1d6_kernels: <code>matmul</code>" in board
    alpha, beta = board.index(">alpha</a>"), board.index(">beta</a>")
    assert (
        alpha < beta and "3.00x" in board and "<code>k1</code>" in board
    )  # best commit, not latest
    assert "CPU: correctness only" in board[beta:] and "9.00x" not in board
