"""``report.html``: one self-contained page for a sweep, readable in a browser with no network.

Every figure is an ``<img>`` with a ``data:image/png;base64,`` source, every Markdown table of the figure
modules is rendered to HTML (markdown-it, raw HTML off: any ``<`` in a table is text), and the styles and the
one small script (click a column heading of the trial index to sort by it) are inline. Nothing on the page
refers to another file or host. All text from the results (ids, spec values, error messages) is escaped.

    >>> page(sweep, pngs=["fig3a.png"], tables=["curse-of-memory.md"], trials=rows, versions=vers, note=None)
    '<!DOCTYPE html>...'
"""
from __future__ import annotations

import base64
import json
import math
import os
import struct
from html import escape
from typing import Any

from markdown_it import MarkdownIt

_MD = MarkdownIt("js-default")  # CommonMark + tables; raw HTML in the source is escaped, not passed through

# The per-trial index: (column of the trials view, heading, format of a number; None = text)
INDEX_COLUMNS = (("trial_id", "trial", None), ("stage", "stage", None), ("task", "task", None),
                 ("cell", "cell", None), ("depth", "depth", "d"), ("nu", "ν", "g"), ("seed", "seed", "d"),
                 ("lr", "lr", ".3g"), ("status", "status", None), ("final_loss", "final loss", ".4g"),
                 ("final_metric", "metric", ".4g"), ("steps_done", "steps", "d"), ("error", "error", None))

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329; margin: 0;
       background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2em 2em 3em; background: #fff; min-height: 100vh; }
h1 { font-size: 1.7em; margin: .3em 0 .2em; } h2 { border-bottom: 1px solid #d8dde3; padding-bottom: .2em;
     margin-top: 2em; } h3 { margin-top: 1.5em; } h4 { margin-top: 1.2em; }
nav a { margin-right: 1.2em; color: #2563a8; text-decoration: none; } nav a:hover { text-decoration: underline; }
code, pre { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; background: #f1f3f5;
            border-radius: 3px; } code { padding: 0 .25em; } pre { padding: .7em 1em; overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 14px; }
th, td { border: 1px solid #d8dde3; padding: .25em .6em; vertical-align: top; }
th { background: #eef1f4; text-align: left; } tbody tr:nth-child(even) { background: #fafbfc; }
table.meta th { width: 9em; } table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[data-dir=asc]::after { content: " ▲"; } table.sortable th[data-dir=desc]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.error { max-width: 28em; overflow-wrap: anywhere; font-size: 13px; }
.status-completed { color: #1a7f37; } .status-diverged { color: #b35900; font-weight: 600; }
.status-failed { color: #c62828; font-weight: 600; } .status-running { color: #2563a8; }
.note { border-left: 4px solid #d97706; background: #fff7e6; padding: .6em 1em; margin: 1em 0; }
figure { margin: 1.2em 0 2em; } figure img { max-width: 100%; height: auto; display: block;
         border: 1px solid #e3e6ea; } figcaption { color: #59636e; font-size: 14px; margin-top: .3em; }
.scroll { overflow-x: auto; } details summary { cursor: pointer; color: #2563a8; }
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, i) {
    th.addEventListener("click", function () {
      var asc = th.dataset.dir !== "asc", body = table.tBodies[0];
      table.querySelectorAll("thead th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      var key = function (tr) { var c = tr.cells[i]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
      var rows = Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (tr) { body.appendChild(tr); });
    });
  });
});
"""


def page(sweep: dict, pngs: list[str], tables: list[str], trials: list[dict],
         versions: list[tuple[str, str, str]], note: str | None, charts: list | None = None,
         chart_script: str = "", paper: str = "") -> str:
    """The whole page. ``sweep``: as ``analysis.db.resolve_sweep`` gives it (sweep.json fields + counts);
    ``pngs`` / ``tables``: the figure modules' PNG and Markdown files; ``trials``: one dict per trial with the
    INDEX_COLUMNS; ``versions``: (package, versions the trials ran, version drawing this report) rows;
    ``note``: why there are no figures, or None; ``charts``: ``analysis.report_charts.Chart``s for the Explore
    section, drawn by ``chart_script`` (the Vega bundle), inlined once; ``paper``: the "Paper vs this run"
    section (``analysis.claims_table.html``), first on the page."""
    sid, name = sweep["sweep_id"], sweep.get("name")
    charts = charts or []
    sections = [("paper", "Paper vs this run")] * bool(paper) + [
        ("figures", "Figures"), *([("explore", "Explore")] if charts else []), ("tables", "Tables"),
        ("trials", "Trials"), ("spec", "Spec"), ("versions", "Versions")]
    body = [f"<h1>Report: {escape(str(name))}</h1>",
            "<nav>" + "".join(f'<a href="#{k}">{t}</a>' for k, t in sections) + "</nav>",
            paper, _meta(sweep)]
    if note:
        body.append(f'<p class="note" id="note"><strong>No figures:</strong> {escape(note)}</p>')
    body.append('<h2 id="figures">Figures</h2>')
    body += [_figure(p) for p in pngs] or ["<p>None.</p>"]
    if charts:
        from analysis.report_charts import embed_call

        body.append('<h2 id="explore">Explore</h2><p>Drop-downs filter by grid axis; hover a line for its trial.</p>')
        body += [f'<h3>{escape(c.title)}</h3><div class="chart" id="{escape(c.anchor)}"></div>' for c in charts]
        body.append("<script>" + "\n".join(embed_call(c) for c in charts) + "</script>")
    body.append('<h2 id="tables">Tables</h2>')
    body += [f'<section class="scroll">{_MD.render(demote(_read(p), 2))}</section>' for p in tables] or ["<p>None.</p>"]
    body += ['<h2 id="trials">Trials</h2>', _trial_index(trials),
             '<h2 id="spec">Spec</h2>', _spec(sweep),
             '<h2 id="versions">Versions</h2>', _versions(versions)]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(f'{name} — {sid}')}</title>\n<style>{CSS}</style>\n"
            + (f"<script>{chart_script}</script>\n" if charts else "") + "</head>\n<body>\n<main>\n"
            + "\n".join(body) + f"\n</main>\n<script>{SORT_JS}</script>\n</body>\n</html>\n")


def demote(markdown: str, levels: int) -> str:
    """``markdown`` with every ATX heading ``levels`` levels deeper (a table file's ``#`` under a page's own)."""
    return "\n".join("#" * levels + ln if ln.startswith("#") else ln for ln in markdown.splitlines()) + "\n"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _meta(sweep: dict) -> str:
    counts = sweep.get("counts") or {}
    trials = f"{sweep.get('n_trials', 0)} (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
    status = str(sweep.get("status") or "unknown")
    if counts.get("running"):
        status += f" ({counts['running']} trials still running: the figures are partial)"
    rows = [("sweep id", f"<code>{escape(sweep['sweep_id'])}</code>"), ("name", escape(str(sweep.get("name")))),
            ("scale", escape(str(sweep.get("scale")))), ("created", escape(str(sweep.get("created_at")))),
            ("status", escape(status)), ("trials", escape(trials)),
            ("tags", escape(", ".join(sweep.get("tags") or []) or "—")), ("note", escape(sweep.get("note") or "—")),
            ("reproduce", f"<code>{escape(sweep['reproduce'])}</code>" if sweep.get("reproduce") else "not recorded"),
            ("git", escape(_git(sweep.get("git")))),
            ("redraw", f"<code>sweep report {escape(sweep['sweep_id'])}</code>")]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="meta" id="meta">{body}</table>'


def _git(git: dict | None) -> str:
    if not git:
        return "not run from a checkout (or not recorded)"
    return git["commit"] + (" with uncommitted changes" if git.get("dirty") else "")


def _figure(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    stem = os.path.splitext(os.path.basename(path))[0]
    size = _css_size(data)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return (f'<figure id="fig-{escape(stem)}"><img alt="{escape(stem)}"{dims} '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
            f"<figcaption>{escape(os.path.basename(path))}</figcaption></figure>")


def _css_size(png: bytes) -> tuple[int, int] | None:
    """The PNG's size in CSS pixels (96 per inch) from its IHDR and pHYs chunks, so a figure shows at the size
    it was drawn (a 7-inch figure saved at 150 dpi: 1050 pixels, shown 672 wide); None when not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", png[16:24])
    pos, dpi = 8, 96.0
    while pos + 8 <= len(png):  # chunks: length, type, data, crc; pHYs comes before the image data
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"pHYs":
            ppm, _, unit = struct.unpack(">IIB", png[pos + 8:pos + 17])
            if unit == 1 and ppm > 0:  # unit 1: pixels per metre
                dpi = ppm * 0.0254
            break
        if kind == b"IDAT":
            break
        pos += 12 + length
    scale = 96.0 / dpi
    return round(w * scale), round(h * scale)


def _trial_index(trials: list[dict]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for _, h, _ in INDEX_COLUMNS)
    rows = []
    for t in trials:
        cells = []
        for col, _, fmt in INDEX_COLUMNS:
            v = t.get(col)
            if fmt is None:
                cls = {"status": f' class="status-{escape(str(v))}"', "error": ' class="error"'}.get(col, "")
                cells.append(f"<td{cls}>{escape('' if v is None else str(v))}</td>")
            else:
                finite = v is not None and math.isfinite(v)
                text = "—" if v is None else format(v, fmt) if finite else str(v)
                cells.append(f'<td class="num" data-v="{v if finite else "Infinity"}">{escape(text)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<p>{len(trials)} trials; click a heading to sort.</p><div class="scroll">'
            f'<table class="sortable" id="trial-index"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _spec(sweep: dict) -> str:
    spec = sweep.get("spec") or {}
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td><code>{escape(_value(v))}</code></td></tr>"
                   for k, v in spec.items())
    rest = {k: v for k, v in sweep.items() if k not in ("counts", "n_trials")}
    return ((f'<table class="meta">{rows}</table>' if rows else "<p>sweep.json has no spec.</p>")
            + "<details><summary>sweep.json</summary><pre>"
            + escape(json.dumps(rest, indent=2, sort_keys=True, default=str)) + "</pre></details>")


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _versions(versions: list[tuple[str, str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(p)}</th><td>{escape(t)}</td><td>{escape(r)}</td></tr>" for p, t, r in versions)
    return ("<table><thead><tr><th>package</th><th>trials ran with</th><th>this report drawn with</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
