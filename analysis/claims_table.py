"""The "Paper vs this run" table of ``analysis.claims`` verdicts, three ways: Markdown (index.md), HTML
(report.html, escaped) and a rich table (``sweep verify``). Columns: the claim (figure, where, statement),
the paper's value, this run's value (mean ± standard error over seeds), the verdict (with by how much it
differs); each claim's tolerance and its reason under the table."""
from __future__ import annotations

from html import escape

from rich.markup import escape as rich_escape
from rich.table import Table

from analysis.claims import DIFFERS, HOLDS, NOT_AT_SCALE, Verdict

TITLE = "Paper vs this run"
HEAD = ("claim", "paper", "this run", "verdict")
STYLE = {HOLDS: "green", DIFFERS: "bold red", NOT_AT_SCALE: "yellow"}  # anything else (not measured): dim


def verdict_text(v: Verdict) -> str:
    return f"{v.verdict}: {v.gap}" if v.gap else v.verdict


def claim_text(v: Verdict) -> str:
    return f"{v.claim.figure} ({v.claim.where}): {v.claim.statement}"


def summary(verdicts: list[Verdict], scale: str | None) -> str:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return (f"{len(verdicts)} claims at scale {scale}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
            if verdicts else "no claims declared for this sweep")


def markdown(verdicts: list[Verdict], scale: str | None) -> str:
    cell = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"## {TITLE}", "", summary(verdicts, scale) + ".", ""]
    if not verdicts:
        return "\n".join(lines)
    lines += ["| # | " + " | ".join(HEAD) + " |", "| ---: |" + " --- |" * len(HEAD)]
    for i, v in enumerate(verdicts, 1):
        lines.append(f"| {i} | " + " | ".join(cell(s) for s in (claim_text(v), v.paper, v.value, verdict_text(v)))
                     + " |")
    lines += ["", "Tolerances (expected at scales; why):", ""]
    lines += [f"{i}. {', '.join(v.claim.scales)}: {v.claim.tolerance}" for i, v in enumerate(verdicts, 1)]
    return "\n".join(lines) + "\n"


def html(verdicts: list[Verdict], scale: str | None) -> str:
    """The section for report.html: a heading with id ``paper``, the summary line and the table (id
    ``paper-vs-run``; each row's class ``verdict-holds`` / ``verdict-differs`` / ...)."""
    out = [f"<style>{CSS}</style>", f'<h2 id="paper">{TITLE}</h2>', f"<p>{escape(summary(verdicts, scale))}.</p>"]
    if not verdicts:
        return "\n".join(out)
    rows = []
    for i, v in enumerate(verdicts, 1):
        cls = "verdict-" + v.verdict.split()[0]
        rows.append(f'<tr class="{cls}"><td class="num">{i}</td><td>{escape(claim_text(v))}'
                    f'<br><small>tolerance ({escape(", ".join(v.claim.scales))}): {escape(v.claim.tolerance)}'
                    f"</small></td><td>{escape(v.paper)}</td><td>{escape(v.value)}</td>"
                    f"<td><strong>{escape(verdict_text(v))}</strong></td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#",) + HEAD)
    return "\n".join(out + ['<div class="scroll"><table id="paper-vs-run"><thead><tr>' + head + "</tr></thead>"
                            f"<tbody>{''.join(rows)}</tbody></table></div>"])


CSS = (".verdict-holds td:last-child { color: #1a7f37; } .verdict-differs td:last-child { color: #c62828; } "
       ".verdict-not td:last-child { color: #8a6d00; } #paper-vs-run small { color: #59636e; }")


def rich_table(verdicts: list[Verdict], title: str, why: bool = False) -> Table:
    """The table for a terminal; ``why``: each claim's tolerance and its reason under the claim."""
    t = Table(*("#",) + HEAD, title=title, show_lines=True, expand=True)
    for i, v in enumerate(verdicts, 1):
        reason = rich_escape(f"\ntolerance ({', '.join(v.claim.scales)}): {v.claim.tolerance}") if why else ""
        t.add_row(str(i), f"{rich_escape(claim_text(v))}[dim]{reason}[/]", rich_escape(v.paper),
                  rich_escape(v.value), f"[{STYLE.get(v.verdict, 'dim')}]{rich_escape(verdict_text(v))}[/]")
    return t
