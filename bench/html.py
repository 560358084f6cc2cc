"""A static HTML leaderboard per suite (results/<suite>/index.html): no server, no network, one file
beside the PNGs. Sortable tables (click a header, or link `index.html#sort=<table>:<header>`) with intervals and tied-best marks, the plots, the
claims with their verdicts, pairwise comparisons, and the provenance of the runs."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from bench import stats, tables
from bench.claims import NOTE as CLAIMS_NOTE, shown_verdict

SCRIPT = """
function sortTable(th) {
  const table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  const asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
  const key = td => { const v = parseFloat(td.dataset.sort ?? td.textContent.replace(/,/g, ''));
                      return isNaN(v) ? td.textContent : v; };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => { const x = key(a.cells[col]), y = key(b.cells[col]);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return asc ? c : -c; });
  rows.forEach(r => body.appendChild(r));
}
// a link can carry a sort: index.html#sort=<table id>:<column header>
window.addEventListener('DOMContentLoaded', () => {
  const m = decodeURIComponent(location.hash).match(/^#sort=([^:]+):(.+)$/);
  if (!m) return;
  const th = Array.from(document.querySelectorAll('#' + m[1] + ' th')).find(h => h.textContent === m[2]);
  if (th) sortTable(th);
});
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; }
td.best { font-weight: bold; background: #e8f5e9; }
.holds { color: #1b5e20; } .does-not-hold { color: #b71c1c; } .inconclusive { color: #8d6e00; }
p.note { color: #444; max-width: 70em; }
img { max-width: 48%; margin: 0.5em; border: 1px solid #ddd; }
"""
BOLD = re.compile(r"^\*\*(.*)\*\*$")


def _cell(text) -> tuple[str, str]:
    """(html of the cell content, class) from a Markdown-ish table cell; bold = best or tied."""
    text = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    m = BOLD.match(text)
    return (html.escape(m.group(1)), "best") if m else (html.escape(text), "")


def table(frame: pd.DataFrame, table_id: str) -> str:
    """`frame` as a sortable HTML table (id `table_id`): cells in `**bold**` become best cells, numbers sort as numbers."""
    head = "".join(f"<th onclick=\"sortTable(this)\">{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            content, cls = _cell(value)
            number = re.match(r"^-?[\d.,]+(e[-+]?\d+)?", content.replace(",", ""))
            sort = f' data-sort="{number.group(0)}"' if number else ""
            cells.append(f"<td class=\"{cls}\"{sort}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table id=\"{table_id}\"><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_page(suite: str, path: Path, leaderboard: pd.DataFrame, rule: str, note: str, caption: str,
               paper: tuple | None, figures: list[Path], claims: list, comparisons: list, provenance: list[dict],
               robustness: tuple | None = None, sections: list[tuple] = ()) -> Path:
    """The suite's report page at `path`: epoch rule, paper table (`paper` = rows, columns, keys for
    bench.tables.cells, with its Markdown `caption`), robustness table, further `sections` ((title, caption,
    (rows, columns, keys)) each: the grid axes), leaderboard, plots (`figures`, linked by
    file name), claims with each comparison, pairwise comparisons and provenance. Returns `path`."""
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(suite)} leaderboard</title>",
             f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
             f"<h1>{html.escape(suite)}</h1><p class=\"note\">Epoch rule: {html.escape(rule)}. "
             "Click a column header to sort.</p>"]
    if paper:
        caption_html = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(caption or ""))
        parts += ["<h2>Paper-style table</h2>", f"<p class=\"note\">{caption_html}</p>",
                  table(pd.DataFrame(tables.cells(*paper)), "paper")]
    if robustness:
        parts += ["<h2>Does the forgetting survive?</h2>", f"<p class=\"note\">{html.escape(tables.ROBUSTNESS_CAPTION)}</p>",
                  table(pd.DataFrame(tables.cells(*robustness)), "robustness")]
    for i, (title, section_caption, cells_of) in enumerate(sections):  # e.g. the grid axes (bench/axes.py)
        parts += [f"<h2>{html.escape(title)}</h2>", f"<p class=\"note\">{html.escape(section_caption)}</p>",
                  table(pd.DataFrame(tables.cells(*cells_of)), f"section-{i}")]
    parts += ["<h2>Leaderboard</h2>", f"<p class=\"note\">{html.escape(note)}.</p>", table(leaderboard, "leaderboard")]
    if figures:
        parts += ["<h2>Plots</h2>"] + [f"<img src=\"{html.escape(f.name)}\" alt=\"{html.escape(f.stem)}\">" for f in figures]
    if claims:
        rows = pd.DataFrame([{"claim": c.id, "verdict": shown_verdict(c), "metric": c.metric,
                              "margin": stats.fmt(c.margin), "statement": c.text, "source": c.source} for c in claims])
        parts += ["<h2>Claims</h2>", f"<p class=\"note\">{html.escape(CLAIMS_NOTE)}</p>", table(rows, "claims")]
        for c in claims:
            checks = pd.DataFrame([{"A": k.a, "B": k.b, f"A {c.values}": k.a_value, f"B {c.values}": k.b_value,
                                    "A - B": k.diff, "interval": k.interval, "level": k.level, "margin": k.margin, "p": k.p,
                                    "pairs": k.pairs, "verdict": k.verdict, "replicates needed": k.needed, "why": k.reason}
                                   for k in c.checks])
            css = c.verdict.replace(" ", "-")
            parts += [f"<h3 class=\"{css}\">{html.escape(c.id)}: {html.escape(shown_verdict(c))}</h3>"]
            parts += [f"<p class=\"note\">Partial family: {html.escape(c.note)}.</p>"] if c.note else []
            parts += [table(checks, f"claim-{c.id}")]
    for i, comp in enumerate(comparisons):
        frame = pd.DataFrame([{"metric": r["metric"], "A": r["a"], "B": r["b"], "A - B": stats.fmt(r["diff"]),
                               "95% interval": "–" if r["lo"] is None else f"[{stats.fmt(r['lo'])}, {stats.fmt(r['hi'])}]",
                               "p": stats.fmt(r["p"]), "pairs": r["n"], "verdict": r["verdict"]} for r in comp.rows])
        parts += [f"<h2>Comparison: A = {html.escape(comp.a)}, B = {html.escape(comp.b)}</h2>", table(frame, f"compare-{i}")]
    if provenance:
        parts += ["<h2>Provenance</h2><p class=\"note\">Exact numbers differ across hardware (CPU instruction sets, "
                  "GPU kernels and thread counts change float rounding); conclusions rest on the intervals.</p>",
                  table(pd.DataFrame(provenance), "provenance")]
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path
