"""``report.html``: one self-contained page per sweep. Checked twice: parsed here (the embedded PNGs are the
report's files byte for byte, the tables carry the Markdown tables' cells, every text is escaped), and loaded
in headless Chromium with networking off, where the browser itself says that every image decoded and that the
trial index has one row per trial. Real Parquet on tmp_path, real DuckDB, a real smoke sweep on Ray."""
from __future__ import annotations

import base64
import json
import pathlib
import re
import subprocess
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from analysis.db import query_arrow
from analysis.report import HTML, report
from chromium import Chromium
from orchestrator.cli import app
from test_analysis import PNG_SIGNATURE, markdown_rows, write_sweep_json, write_trial

runner = CliRunner()
EVIL = "<img src=x onerror=\"document.title='pwned'\"> & \"quoted\" </td></tr>"  # an error message with markup
URL_ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)

# What the browser reports: every image (loaded? natural size), the trial index's rows, every src/href
PAGE_STATE = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {images: imgs.map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight, shown: i.width,
                                  alt: i.alt})),
          rows: [...document.querySelectorAll("#trial-index tbody tr")]
                .map(tr => [...tr.cells].map(c => c.textContent)),
          refs: [...document.querySelectorAll("[src], [href]")]
                .map(e => e.getAttribute("src") || e.getAttribute("href")),
          title: document.title, note: (document.getElementById("note") || {}).textContent || null};
})()"""


class Page(HTMLParser):
    """The parts of report.html the tests read: images, tables (rows of cell texts), scripts, links."""

    def __init__(self, text: str):
        super().__init__()
        self.imgs, self.tables, self.scripts, self.attrs, self._cell = [], {}, [], [], None
        self._table, self._script, self._n = None, None, 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self._n += 1
            self._table = a.get("id") or f"table{self._n}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "script":
            self._script = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._script is not None:
            self._script.append(data)


def assert_self_contained(text: str, page: Page) -> None:
    assert not URL_ATTR.search(text), URL_ATTR.search(text)
    for tag, attr, value in page.attrs:
        if attr in ("src", "href"):
            assert value.startswith(("data:image/png;base64,", "#")), (tag, attr, value[:80])
    assert all(tag not in ("link", "iframe", "object", "embed") for tag, _, _ in page.attrs)
    assert not any(tag == "script" and attr == "src" for tag, attr, _ in page.attrs)


# ------------------------------------------------------------------------------- a sweep written by hand
@pytest.fixture
def failing_sweep(tmp_path) -> pathlib.Path:
    """curse-of-memory, 3 cells x 2 seeds at nu 0.9 plus an lr_search trial; one seed failed with markup in its
    error, one diverged; two torch versions among the trials."""
    r = tmp_path / "results"
    write_sweep_json(r, "s1", "curse-of-memory", "2026-01-01T00:00:00+00:00")
    new = json.dumps({"python": "3.11.7", "torch": "2.13.0+cpu"})
    rows = [("rnn", 0, "completed", 0.5, None), ("rnn", 1, "completed", 0.25, None),
            ("lru", 0, "completed", 0.125, None), ("lru", 1, "failed", None, EVIL),
            ("gru", 0, "diverged", float("nan"), "loss is nan at step 3"), ("gru", 1, "completed", 0.75, None)]
    for i, (cell, seed, status, loss, error) in enumerate(rows):
        write_trial(r, "s1", f"{cell}-s{seed}", cell=cell, seed=seed, status=status, final_loss=loss, error=error,
                    steps_done=3 if status == "diverged" else 10, versions=new)
    write_trial(r, "s1", "lr-rnn", stage="lr_search", lr=0.1, final_loss=0.4, steps_done=10,
                versions=json.dumps({"python": "3.11.7", "torch": "2.12.0"}))
    return r


@pytest.mark.slow
def test_page_embeds_the_figures_tables_index_spec_and_versions(failing_sweep, tmp_path):
    done = report(str(failing_sweep), "s1")
    out = failing_sweep / "s1" / "report"
    assert done.note is None
    assert [pathlib.Path(p).name for p in done.paths] == ["fig3a.png", "fig3b.png", "curse-of-memory.md",
                                                          "lr_landscape.png", "index.md", HTML]
    text = (out / HTML).read_text()
    page = Page(text)
    assert_self_contained(text, page)

    # every figure, as the very bytes of its PNG file, named by its file
    pngs = [p for p in done.paths if p.endswith(".png")]
    assert [i["alt"] for i in page.imgs] == ["fig3a", "fig3b", "lr_landscape"]
    for img, png in zip(page.imgs, pngs):
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"), validate=True)
        assert data == pathlib.Path(png).read_bytes() and data[:8] == PNG_SIGNATURE
        # shown at the size it was drawn: 150 dpi -> 96 CSS px per inch (fig3a is 7 x 4.8 in: 1050 x 720 px)
        w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (int(img["width"]), int(img["height"])) == (round(w * 96 / 150), round(h * 96 / 150))
    assert (int(page.imgs[0]["width"]), int(page.imgs[0]["height"])) == (672, 461)

    # the Markdown table, cell for cell, as an HTML table
    md = markdown_rows((out / "curse-of-memory.md").read_text())
    html_rows = {(r[0], float(r[2])): r for t in page.tables.values() for r in t
                 if len(r) == 8 and r[0] in ("rnn", "lru")}
    assert html_rows == md and len(md) == 2

    # the trial index: every trial once, the failed one with its error as plain text
    index = page.tables["trial-index"]
    assert index[0] == ["trial", "stage", "task", "cell", "depth", "ν", "seed", "lr", "status", "final loss",
                        "metric", "steps", "error"]
    by_id = {r[0]: r for r in index[1:]}
    assert sorted(by_id) == ["gru-s0", "gru-s1", "lr-rnn", "lru-s0", "lru-s1", "rnn-s0", "rnn-s1"]
    assert by_id["lru-s1"][8:] == ["failed", "—", "—", "10", EVIL]
    assert by_id["gru-s0"][8:] == ["diverged", "nan", "—", "3", "loss is nan at step 3"]
    assert by_id["rnn-s1"] == ["rnn-s1", "seed", "teacher_student", "rnn", "1", "0.9", "1", "0.001", "completed",
                               "0.25", "—", "10", ""]
    assert "<img src=x" not in text and "&lt;img src=x onerror=" in text  # escaped, never markup

    # the spec and the versions (the trials' two torch versions counted; the process's own beside them)
    meta = {r[0]: r[1] for t in page.tables.values() for r in t if len(r) == 2}
    assert meta["sweep id"] == "s1" and meta["scale"] == "smoke" and meta["name"] == "curse-of-memory"
    assert meta["trials"] == "7 (running 0, completed 5, diverged 1, failed 1, pruned 0)"
    versions = {r[0]: r[1:] for t in page.tables.values() for r in t if len(r) == 3}
    assert versions["torch"][0] == "2.12.0 (1 trials), 2.13.0+cpu (6 trials)"
    assert versions["python"][0] == "3.11.7" and versions["duckdb"][1] == __import__("duckdb").__version__

    # in the browser: the markup in the error stays text, both images decode, the sort script sorts
    with Chromium(tmp_path / "profile") as b:
        b.open((out / HTML).as_uri())
        state = b.evaluate(PAGE_STATE)
        assert state["title"] == "curse-of-memory — s1" and state["note"] is None
        assert [(i["complete"], i["w"] > 0, i["alt"]) for i in state["images"]] == [(True, True, "fig3a"),
                                                                                   (True, True, "fig3b"),
                                                                                   (True, True, "lr_landscape")]
        assert len(state["rows"]) == 7 and {r[12] for r in state["rows"]} >= {EVIL}
        order = b.evaluate("""(() => { document.querySelectorAll("#trial-index th")[9].click();  // final loss
            return [...document.querySelectorAll("#trial-index tbody tr")].map(tr => tr.cells[0].textContent); })()""")
        # ascending; the missing (failed) and nan (diverged) losses last, in the page's order (stage, trial)
        assert order == ["lru-s0", "rnn-s1", "lr-rnn", "rnn-s0", "gru-s1", "gru-s0", "lru-s1"]


def test_no_figures_still_writes_the_page_with_a_note(tmp_path):
    r = tmp_path / "results"
    write_sweep_json(r, "y", "curse-of-memory", "2026-01-02T00:00:00+00:00")
    write_trial(r, "y", "t0", stage="lr_search", status="failed", error="worker died")
    write_trial(r, "y", "t1", status="running")
    write_sweep_json(r, "x", "from-a-spec-file", "2026-01-01T00:00:00+00:00")
    write_trial(r, "x", "x0", sweep="from-a-spec-file")
    for sid, n, why in (("y", 2, "sweep y has no finished seed-stage trials yet (see `sweep status y`)"),
                        ("x", 1, "no figures for sweep x (name 'from-a-spec-file'); sweeps with figures: attractors")):
        res = runner.invoke(app, ["report", sid, "--results", str(r)])
        assert res.exit_code == 0, res.output
        out = r / sid / "report"
        assert res.stdout.split() == [str(out / "index.md"), str(out / HTML)]
        assert res.stderr.startswith(f"note: no figures: {why}")
        page = Page((out / HTML).read_text())
        assert page.imgs == [] and len(page.tables["trial-index"]) == 1 + n  # heading + every trial
        for name in (HTML, "index.md"):
            assert why.split(" (")[0] in (out / name).read_text()
    assert page.tables["trial-index"][1][0] == "x0"
    meta = dict(r for r in Page((r / "y" / "report" / HTML).read_text()).tables["meta"])
    assert meta["status"] == "running (1 trials still running: the figures are partial)"
    assert meta["trials"] == "2 (running 1, completed 0, diverged 0, failed 1, pruned 0)"
    assert not list((r / "y" / "report").glob(".*"))  # no temporaries left behind
    res = runner.invoke(app, ["report", "zzz", "--results", str(r)])  # an unknown sweep is still an error
    assert res.exit_code == 2 and res.stderr.startswith("error: no sweep with id or name 'zzz'")


# ------------------------------------------------------------------------------ a real smoke sweep, in Chromium
@pytest.mark.slow
def test_smoke_sweep_report_renders_in_chromium(com_smoke, tmp_path):
    results, sid, _ = com_smoke  # the session's curse-of-memory smoke sweep, shared with test_launch
    out = tmp_path / "report"
    res = runner.invoke(app, ["report", sid, "--results", str(results), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out / HTML
    assert str(page) in res.stdout.split() and (out / "index.md").exists()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 2 and sorted(p for p in res.stdout.split() if p.endswith(".png")) == [str(p) for p in pngs]
    trials = query_arrow(str(results), f"SELECT trial_id, status FROM trials WHERE sweep_id = '{sid}'").to_pylist()
    text = page.read_text()
    assert_self_contained(text, Page(text))

    with Chromium(tmp_path / "profile") as b:
        b.open(page.as_uri())
        state = b.evaluate(PAGE_STATE)
        shot = b.screenshot(tmp_path / "report.png")
    assert len(state["images"]) == len(pngs)
    assert all(i["complete"] and i["w"] > 300 and i["h"] > 200 and i["shown"] > 0
               for i in state["images"]), state["images"]
    assert sorted(i["alt"] for i in state["images"]) == sorted(p.stem for p in pngs)
    assert len(state["rows"]) == len(trials) == 16  # smoke: 2 rates x 2 seeds x 2 cells x 2 nu0
    assert sorted((r[0], r[8]) for r in state["rows"]) == sorted((t["trial_id"], t["status"]) for t in trials)
    assert all(ref.startswith(("data:image/png;base64,", "#")) for ref in state["refs"]), state["refs"]
    assert b.requests and all(u.startswith(("file://", "data:", "about:")) for u in b.requests), b.requests
    assert b.requests[0] == page.as_uri()
    assert shot[:8] == PNG_SIGNATURE and int.from_bytes(shot[20:24], "big") > 1500  # the whole, long page


@pytest.mark.slow
def test_make_test_installs_chromium_when_missing_and_launch_does_not(tmp_path):
    root = pathlib.Path(__file__).resolve().parent.parent
    missing = tmp_path / "no" / "chromium"

    def dry(target: str) -> str:
        r = subprocess.run(["make", "-n", "-C", str(root), target, f"CHROMIUM={missing}", f"VENV={tmp_path}/venv"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    steps = dry("test")
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
    assert "DEBIAN_FRONTEND=noninteractive apt-get update -qq" in steps and install in steps
    assert steps.index(install) < steps.index("-m pytest")
    assert "apt-get" not in dry("launch")
    assert "apt-get" not in subprocess.run(["make", "-n", "-C", str(root), "test", f"VENV={tmp_path}/venv"],
                                           capture_output=True, text=True, timeout=60).stdout  # installed here


# ------------------------------------------------------------------ the Explore section: altair charts, in Chromium
DRAWN = """(async () => {
  for (let i = 0; i < 200 && document.querySelectorAll('.chart svg').length
                             < document.querySelectorAll('.chart').length; i++)
    await new Promise(r => setTimeout(r, 50));
  return Object.fromEntries([...document.querySelectorAll('.chart')].map(d => [d.id,
    d.querySelectorAll('g.mark-line path').length]));
})()"""


def choose(b: Chromium, label: str, value: str) -> int:
    """Pick ``value`` in the curves chart's drop-down named ``label``; the number of lines drawn after."""
    return b.evaluate(f"""(async () => {{
      const s = [...document.querySelectorAll('#chart-curves select')]
        .find(s => s.parentElement.textContent.trim().startsWith({json.dumps(label)}));
      s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change'));
      await new Promise(r => setTimeout(r, 300));
      return document.querySelectorAll('#chart-curves g.mark-line path').length; }})()""")


@pytest.fixture
def axis_sweep(tmp_path) -> pathlib.Path:
    """A sweep over cell x hidden (an extra axis), one seed each, 400 steps per trial, and a Hessian table."""
    from trainers.record import TrialWriter

    r = tmp_path / "results"
    write_sweep_json(r, "ax", "curse-of-memory", "2026-01-03T00:00:00+00:00")
    meta = json.loads((r / "ax" / "sweep.json").read_text())
    meta["spec"] = {"name": "curse-of-memory", "cells": ["rnn", "lru"], "nus": [0.9], "vary": ["hidden=8,16"]}
    (r / "ax" / "sweep.json").write_text(json.dumps(meta))
    for cell in ("rnn", "lru"):
        for hidden in (8, 16):
            tid = f"{cell}-d1-nu0.9-hidden{hidden}-s0"
            write_trial(r, "ax", tid, steps=400, cell=cell, hidden=hidden, lr=0.003 if cell == "lru" else 0.0007,
                        config_json=json.dumps({"hidden": hidden}))
    w = TrialWriter(str(r), "ax", "rnn-d1-nu0.9-hidden8-s0")
    for step in (0, 100, 200):
        for stat in ("top", "trace"):
            w.append("hessian", {"step": step, "stat": stat, "idx": 0, "value": 1.0 + step, "weight": None})
    w.flush()
    return r


@pytest.mark.slow
def test_explore_curves_filter_by_axis_and_probe_panels(axis_sweep, tmp_path):
    from analysis.db import connect, resolve_sweep
    from analysis.report_charts import POINTS, build

    charts = {c.anchor: c for c in build(connect(str(axis_sweep)), resolve_sweep(str(axis_sweep), "ax"))}
    assert sorted(charts) == ["chart-curves", "chart-hessian"]  # the steps as curves; the Hessian table's panel
    points = charts["chart-curves"].spec["data"]["values"]
    per_trial = {}
    for p in points:
        per_trial.setdefault(p["trial_id"], []).append(p["step"])
    assert len(per_trial) == 4 and all(len(s) <= POINTS + 1 and s[-1] == 400 for s in per_trial.values())
    assert per_trial["rnn-d1-nu0.9-hidden8-s0"][:3] == [3, 6, 9]  # every 3rd step of 400: 134 points
    assert len(charts["chart-hessian"].spec["data"]["values"]) == 6

    report(str(axis_sweep), "ax")
    page = axis_sweep / "ax" / "report" / HTML
    text = page.read_text()
    assert_self_contained(text, Page(text))
    with Chromium(tmp_path / "profile") as b:
        b.open(page.as_uri())
        drawn = b.evaluate(DRAWN)
        assert drawn["chart-curves"] == 8  # 4 trials x (loss, gradient norm)
        assert drawn["chart-hessian"] == 2  # one trial's top and trace
        assert choose(b, "cell", "rnn") == 4
        assert choose(b, "hidden", "16") == 2  # filters combine
        assert choose(b, "cell", "all") == 4
        assert choose(b, "hidden", "all") == 8
        # hover a curve: the tooltip names its trial and rate
        x, y = b.evaluate("""(() => { const p = document.querySelector('#chart-curves g.mark-line path');
            p.scrollIntoView({block: "center"});
            const q = p.getPointAtLength(p.getTotalLength() / 2).matrixTransform(p.getScreenCTM());
            return [q.x, q.y]; })()""")
        for dx in (0, 0.5, 1):  # onto the line: the browser hit-tests its stroke
            b.send("Input.dispatchMouseEvent", type="mouseMoved", x=x + dx, y=y)
        tip = b.evaluate("""(async () => { await new Promise(r => setTimeout(r, 300));
            return (document.getElementById('vg-tooltip-element') || {}).textContent || ''; })()""")
    assert "-hidden" in tip and "lr" in tip, tip
    assert b.requests and all(u.startswith(("file://", "data:", "about:")) for u in b.requests), b.requests
