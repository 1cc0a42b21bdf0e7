"""A self-contained HTML promotion report, rendered from a verdict statement alone. Pure.

One file: inline CSS (light and dark, print), inline SVG charts, no script, nothing fetched, so
it opens from an artifact store or an e-mail. Everything is escaped; every chart has a text
alternative and the tables carry the same numbers, so it reads without colour or images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from ..core.tiers import TIERS
from ..verdict.files import reason_texts
from .text import MARKS, by_severity, data_rows, tier_counts

#: How the decision is shown: symbol and CSS class (the word itself is always written out).
DECISIONS = {"PROMOTE": ("✔", "promote"), "HOLD": ("❚❚", "hold"), "REJECT": ("✘", "reject")}
#: Endpoints drawn in one p95 chart (the slowest); the table below it lists every endpoint.
CHARTED = 5
#: Line styles for chart series: distinguishable without colour (dash patterns) as well as with.
STYLES = (("var(--c1)", ""), ("var(--c2)", "6 3"), ("var(--c3)", "2 3"), ("var(--c4)", "8 3 2 3"), ("var(--c5)", "1 5"))

CSS = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de;
  --panel: #f6f8fa; --promote: #1a7f37; --hold: #9a6700; --reject: #cf222e;
  --c1: #0969da; --c2: #bf3989; --c3: #1a7f37; --c4: #9a6700; --c5: #6e7781; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --panel: #151b23;
    --promote: #3fb950; --hold: #d29922; --reject: #f85149;
    --c1: #4493f8; --c2: #db61a2; --c3: #3fb950; --c4: #d29922; --c5: #9198a1; } }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 70rem; padding: 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 2rem 0 .6rem;
  border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.banner { border: 3px solid currentColor; border-radius: 8px; padding: 1rem 1.2rem; margin: 1rem 0; }
.banner.promote { color: var(--promote); } .banner.hold { color: var(--hold); } .banner.reject { color: var(--reject); }
.banner .decision { font-size: 2rem; font-weight: 700; letter-spacing: .04em; }
.banner ul { color: var(--fg); margin: .4rem 0 0; padding-left: 1.2rem; }
.signature { display: inline-block; margin-top: .6rem; padding: .2rem .6rem; border-radius: 4px;
  border: 2px solid currentColor; font-weight: 600; color: var(--fg); }
.signature.verified { color: var(--promote); } .signature.failed, .signature.unsigned { color: var(--reject); }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--panel); } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; overflow-wrap: break-word; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .2rem 1rem; margin: .4rem 0; }
dd { overflow-wrap: anywhere; } .wide { overflow-x: auto; }
dt { color: var(--muted); } dd { margin: 0; }
.muted { color: var(--muted); } .charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: .85rem; color: var(--muted); }
svg text { fill: var(--fg); font: 11px system-ui, sans-serif; } svg .axis { stroke: var(--line); }
a { color: var(--c1); }
@media print { body { max-width: none; padding: 0; font-size: 11pt; } h2 { break-after: avoid; }
  tr, figure { break-inside: avoid; } .wide { overflow: visible; } a { color: inherit; } }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–" if value is None else _e(value)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond floats: show its order of magnitude
        return f"~1e{len(str(abs(value))) - 1}"
    if not math.isfinite(number):
        return "–"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:.{digits}g}" if abs(number) < 10 ** (digits - 1) else f"{number:,.0f}"


def _table(caption: str, head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table; cells are HTML already (escape before), ``numeric`` columns right-aligned."""
    # In a scrolling box: a narrow window scrolls the table instead of cutting it off.
    out = [f'<div class="wide"><table><caption>{_e(caption)}</caption><thead><tr>']
    out += [f'<th scope="col">{_e(h)}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = [f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def render(
    statement: dict[str, Any],
    *,
    signature: tuple[str, str] | None = None,
    trace_url: str | None = None,
    approval: dict[str, Any] | None = None,
    history: Sequence[Any] | None = None,
) -> str:
    """The whole page. ``signature``: (``verified`` | ``failed`` | ``unsigned`` | ``unchecked``,
    words shown); ``trace_url``: a template with ``{trace_id}`` that makes the trace id a link;
    ``approval``: an approval's predicate with its ``status`` and ``words`` (``report --approval``);
    ``history``: earlier runs (``core.history.Recent``, oldest first) drawn next to this one."""
    predicate = statement["predicate"]
    decision = predicate["decision"]
    symbol, css = DECISIONS.get(decision, ("?", "hold"))
    shown = decision
    if signature is not None and signature[0] == "failed":  # not the gate's word: no green banner
        symbol, css, shown = "⚠", "hold", f"UNVERIFIED — claims {decision}"
    target = predicate.get("target") or {}
    release = predicate.get("release") or {}
    title = f"Staging gate: {shown} · {target.get('name', '?')} · release {release.get('id') or 'unknown'}"
    body = [
        f'<header><h1>{_e(title)}</h1><p class="muted">Decided {_e(predicate.get("timeVerified"))} by pytest-staging '
        f"{_e(predicate.get('verifier', {}).get('versions', {}).get('pytest-staging', '?'))}</p></header>",
        "<main>",
        _banner(predicate, shown, symbol, css, signature),
        _guarded(_approval, approval) if approval is not None else "",
        _guarded(_identity, statement, trace_url),
        *(_guarded(part, predicate) for part in (_tiers, _failing, _flaky, _quarantine, _baseline, _load, _data, _sli)),
        _guarded(_history, predicate, history) if history is not None else "",
        "</main>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(part for part in body if part)
        + "</body></html>\n"
    )


def _guarded(part: Callable[..., str], *args: Any) -> str:
    """One section; a verdict shaped unlike ours (valid, but with odd values) loses that section,
    said so in place, not the whole report."""
    try:
        return part(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        return f"<section><p><strong>A part of this report could not be shown</strong> ({_e(type(exc).__name__)}: {_e(exc)}).</p></section>"


def _banner(predicate: dict[str, Any], shown: str, symbol: str, css: str, signature: tuple[str, str] | None) -> str:
    reasons = "".join(f"<li>{_e(text)}</li>" for text in reason_texts(predicate))
    sig = ""
    if signature is not None:
        status, words = signature
        sig = f'<p class="signature {_e(status)}" id="signature">Signature: {_e(words)}</p>'
    return (
        f'<section class="banner {css}" aria-labelledby="decision"><div class="decision" id="decision">'
        f'<span aria-hidden="true">{symbol}</span> {_e(shown)}</div>'
        f"<ul>{reasons}</ul>{sig}</section>"
    )


#: How an approval's status is marked (the words always say it too).
APPROVAL_CSS = {"valid": "verified", "unchecked": "unchecked", "expired": "failed", "failed": "failed"}


def _approval(approval: dict[str, Any]) -> str:
    """Who approved the HOLD, when, why and until when, and whether the approval holds."""
    rows = [
        ("Approved", f"{_e(approval['verdictDecision'])} approved by <strong>{_e(approval['approver'])}</strong>"),
        ("When", f"<code>{_e(approval['timeApproved'])}</code>"),
        ("Why", _e(approval["reason"])),
        ("Until", f"<code>{_e(approval['expires'])}</code>" if approval["expires"] else "no expiry"),
    ]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{value}</dd>" for name, value in rows)
    status = (
        f'<p class="signature {APPROVAL_CSS.get(approval["status"], "failed")}">Approval: {_e(approval["words"])}</p>'
    )
    return f'<section aria-labelledby="approval"><h2 id="approval">Approval</h2><dl>{items}</dl>{status}</section>'


def _identity(statement: dict[str, Any], trace_url: str | None) -> str:
    predicate = statement["predicate"]
    target = predicate.get("target") or {}
    release = predicate.get("release") or {}
    session = predicate.get("session") or {}
    rows = [
        (
            "Release",
            # As the terminal names it: --staging-release, else the version the target reported.
            f"<code>{_e(release.get('id') or release.get('deployedVersion') or 'unknown')}</code>"
            + (
                f" (deployed version <code>{_e(release['deployedVersion'])}</code>)"
                if release.get("id") and release.get("deployedVersion")
                else " (reported by the target)"
                if release.get("deployedVersion")
                else ""
            ),
        ),
        (
            "Target",
            f"{_e(target.get('name'))} — <code>{_e(target.get('url'))}</code>, environment {_e(target.get('environment'))}"
            + (" (sensitive)" if target.get("sensitive") else ""),
        ),
    ]
    rows += [
        ("Subject", f"<code>{_e(s['name'])}@sha256:{_e(s['digest']['sha256'])}</code>")
        for s in statement.get("subject", [])
    ]
    rows.append(
        (
            "Session",
            f"{_e(session.get('start'))} → {_e(session.get('end'))}, {_num(session.get('durationSeconds'))} s, "
            f"exit status {_e(session.get('exitStatus'))}, xdist workers {_e(session.get('xdistWorkers'))}",
        )
    )
    trace_id = predicate.get("traceId")
    if trace_id:
        shown = f"<code>{_e(trace_id)}</code>"
        if trace_url:
            shown = f'<a href="{_e(trace_url.replace("{trace_id}", trace_id))}">{shown}</a>'
        rows.append(("Trace", shown))
    items = "".join(f"<dt>{_e(name)}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<section aria-labelledby="identity"><h2 id="identity">Release identity</h2><dl>{items}</dl></section>'


def _tiers(predicate: dict[str, Any]) -> str:
    rows = []
    for tier in TIERS:
        entry = predicate["tiers"][tier]
        ran = any(count for name, count in entry["counts"].items() if name != "deselected")
        seconds = _num(entry.get("duration")) if ran else "–"
        rows.append(
            (
                _e(tier),
                _e(entry["result"]),
                "required" if entry["required"] else "optional",
                _e(tier_counts(entry)),
                seconds,
            )
        )
    table = _table(
        "Tests per tier, in the order they ran", ("tier", "result", "required", "tests", "seconds"), rows, numeric=(4,)
    )
    return f'<section aria-labelledby="tiers"><h2 id="tiers">Tiers</h2>{table}</section>'


def _failing(predicate: dict[str, Any]) -> str:
    failing = [t for t in predicate["tests"] if t["outcome"] in ("failed", "error", "crashed")]
    if not failing:
        return ""
    rows = [
        (
            f"<code>{_e(t['nodeid'])}</code>",
            _e(t["tier"]),
            _e(t["outcome"]) + (" (quarantined)" if (t.get("quarantine") or {}).get("status") == "active" else ""),
            _e(t.get("error") or ""),
            f"<code>{_e(t.get('correlationId') or '')}</code>",
        )
        for t in failing
    ]
    table = _table(f"{len(failing)} failing test(s)", ("test", "tier", "outcome", "error", "correlation id"), rows)
    return f'<section aria-labelledby="failing"><h2 id="failing">Failing tests</h2>{table}</section>'


def _attempts(test: dict[str, Any]) -> str:
    items = "".join(
        f"<li>{_e(a['outcome'])} in {_num(a['duration'])} s"
        + (f": {_e(a['error'])}" if a.get("error") else "")
        + "</li>"
        for a in test["attempts"]
    )
    return f"<ol>{items}</ol>"


def _flaky(predicate: dict[str, Any]) -> str:
    flaky = predicate.get("flaky") or []
    if not flaky:
        return ""
    rows = [(f"<code>{_e(t['nodeid'])}</code>", _e(t["tier"]), _attempts(t)) for t in flaky]
    table = _table(f"{len(flaky)} test(s) failed, then passed on a re-run", ("test", "tier", "attempts"), rows)
    return f'<section aria-labelledby="flaky"><h2 id="flaky">Flaky tests</h2>{table}</section>'


def _quarantine(predicate: dict[str, Any]) -> str:
    quarantine = predicate.get("quarantine") or {}
    tests, expired, stale = (
        quarantine.get("tests") or [],
        quarantine.get("expired") or [],
        quarantine.get("stale") or [],
    )
    if not (tests or expired or stale):
        return ""
    parts = []
    if tests:
        rows: list[tuple[str, ...]] = [
            (
                f"<code>{_e(t['nodeid'])}</code>",
                _e(t["outcome"]),
                _e(t["quarantine"]["status"]),
                _e(t["quarantine"]["owner"]),
                _e(t["quarantine"]["until"]),
                _e(t["quarantine"].get("ticket") or ""),
                _e(t["quarantine"]["reason"]),
            )
            for t in tests
        ]
        parts.append(
            _table(
                "Quarantined tests (they ran; an active entry keeps a failure from blocking)",
                ("test", "outcome", "entry", "owner", "until", "ticket", "reason"),
                rows,
            )
        )
    if expired:
        rows = [(f"<code>{_e(e['test'])}</code>", _e(e["owner"]), _e(e["until"]), _e(e.get("source"))) for e in expired]
        parts.append(_table("Expired entries: these tests block again", ("test", "owner", "until", "source"), rows))
    if stale:
        rows = [(f"<code>{_e(e['test'])}</code>", _e(e["owner"]), _e(e["until"]), _e(e.get("source"))) for e in stale]
        parts.append(_table("Stale entries: they match no collected test", ("test", "owner", "until", "source"), rows))
    return f'<section aria-labelledby="quarantine"><h2 id="quarantine">Quarantine</h2>{"".join(parts)}</section>'


def _baseline(predicate: dict[str, Any]) -> str:
    baseline = predicate.get("baseline")
    if not baseline:
        return ""
    level = f"{baseline['confidence'] * 100:g}%"
    head = (
        f"<p><strong>{_e(baseline['result'])}</strong> — {_e(baseline['reason'])}; against <code>{_e(baseline['file'])}</code> "
        f"(release {_e(baseline.get('release') or 'unknown')}, {_e(baseline.get('created') or 'undated')}, "
        f"<code>{_e(baseline['digest'])}</code>)</p>"
    )
    warnings = "".join(f"<p><strong>Warning:</strong> {_e(text)}</p>" for text in baseline.get("mismatches", []))
    rows = []
    for metric in by_severity(baseline["metrics"]):
        unit = metric.get("unit") or ""
        then, now = metric["baseline"], metric["current"]
        shift = "–"
        if metric.get("shift") is not None:
            shift = f"{_num(metric['shift'])} [{_num(metric['ci'][0])}, {_num(metric['ci'][1])}]"
        rows.append(
            (
                f'<span aria-hidden="true">{MARKS.get(metric["result"], "?")}</span> {_e(metric["result"])}',
                f"<code>{_e(metric['name'])}</code>" + (f" <span class='muted'>({_e(unit)})</span>" if unit else ""),
                f"{_num(then['median'])} / {_num(then['p95'])} <span class='muted'>n={_num(then['count'])}</span>",
                f"{_num(now['median'])} / {_num(now['p95'])} <span class='muted'>n={_num(now['count'])}</span>",
                _e(shift),
                _e(metric["reason"]),
                _distribution_chart(metric),
            )
        )
    table = _table(
        f"Every metric: baseline against this run (median / p95; shift = Hodges-Lehmann, {level} interval)",
        ("result", "metric", "baseline", "current", "shift [CI]", "why", "distributions"),
        rows,
    )
    return f'<section aria-labelledby="baseline"><h2 id="baseline">Baseline comparison</h2>{head}{warnings}{table}</section>'


def _distribution_chart(metric: dict[str, Any], width: int = 250, height: int = 58) -> str:
    """Two box plots on one axis (p5-p95 whiskers, p25-p75 box, median line): baseline, current."""
    sides = [
        (name, metric[name])
        for name in ("baseline", "current")
        if metric[name].get("count") and metric[name].get("p25") is not None
    ]
    if not sides:
        return '<span class="muted">no data</span>'
    low = min(s["p5"] for _, s in sides)
    high = max(s["p95"] for _, s in sides)
    span = (high - low) or 1.0
    left, right = 56, 8

    def x(value: float) -> float:
        return round(left + (value - low) / span * (width - left - right), 1)

    parts = []
    for row, (name, s) in enumerate(sides):
        y = 4 + row * 20
        colour = "var(--c5)" if name == "baseline" else "var(--c1)"
        parts.append(
            f'<text x="0" y="{y + 10}">{name}</text>'
            f'<line x1="{x(s["p5"])}" x2="{x(s["p95"])}" y1="{y + 6}" y2="{y + 6}" stroke="{colour}" stroke-width="1.5"/>'
            f'<rect x="{x(s["p25"])}" y="{y}" width="{max(x(s["p75"]) - x(s["p25"]), 1)}" height="12" fill="none" stroke="{colour}" stroke-width="2"/>'
            f'<line x1="{x(s["median"])}" x2="{x(s["median"])}" y1="{y - 2}" y2="{y + 14}" stroke="{colour}" stroke-width="3"/>'
        )
    parts.append(f'<text x="{left}" y="{height - 2}">{_e(_num(low))}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end">{_e(_num(high))}</text>')
    words = "; ".join(
        f"{name}: median {_num(s['median'])}, middle half {_num(s['p25'])} to {_num(s['p75'])}, p5 {_num(s['p5'])} to p95 {_num(s['p95'])}"
        for name, s in sides
    )
    return (
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{_e(metric['name'])} — {_e(words)}</title>{''.join(parts)}</svg>"
    )


def _ceiling(value: float) -> float:
    """A round axis top about a tenth above the peak (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value * 1.1))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * 1.1)


def _line_chart(
    title: str,
    unit: str,
    lines: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    end: float | None = None,
    note: str = "",
    width: int = 330,
) -> str:
    """A line chart of (t, value) series on one axis from 0 s; a legend names each (colour and dash
    pattern), a gap in a series breaks its line, a lone point is a dot."""
    points = [(t, v) for _, series in lines for t, v in series if v is not None]
    if not points:
        return ""
    left, right, top, plot_h = 44, 10, 10, 120
    t1 = max([t for t, _ in points] + [end or 0.0]) or 1.0
    v1 = _ceiling(max(v for _, v in points))
    height = top + plot_h + 22 + 14 * len(lines)

    def xy(t: float, v: float) -> tuple[float, float]:
        return round(left + t / t1 * (width - left - right), 1), round(top + plot_h - v / v1 * plot_h, 1)

    parts = [
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_e(_num(v1))}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{top + plot_h + 12}">0 s</text>',
        f'<text x="{width - right}" y="{top + plot_h + 12}" text-anchor="end">{_e(_num(t1))} s</text>',
    ]
    for i, (name, series) in enumerate(lines):
        colour, dash = STYLES[i % len(STYLES)]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for t, v in series:
            if v is None:
                runs.append([])
            else:
                runs[-1].append(xy(t, v))
        for run in runs:
            if len(run) == 1:
                parts.append(f'<circle cx="{run[0][0]}" cy="{run[0][1]}" r="3" fill="{colour}"/>')
            elif run:
                coords = " ".join(f"{x},{y}" for x, y in run)
                parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dashed}/>')
        y = top + plot_h + 30 + 14 * i
        parts.append(
            f'<line x1="{left}" x2="{left + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="2"{dashed}/>'
        )
        parts.append(f'<text x="{left + 30}" y="{y}">{_e(name)}</text>')
    summary = "; ".join(
        f"{name}: {len(values)} s sampled, peak {_num(max(values))}"
        for name, series in lines
        if (values := [v for _, v in series if v is not None])
    )
    caption = f"{title} ({unit})" + (f" — {note}" if note else "")
    return (
        f'<figure><svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{_e(caption)}: {_e(summary)}</title>{''.join(parts)}</svg>"
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _unit(expression: str) -> str:
    """The unit of a load threshold's measured value."""
    text = expression.replace(" ", "")
    if text.startswith("rate("):
        return ""
    return " rps" if text.startswith("rps") else " ms"


def _load(predicate: dict[str, Any]) -> str:
    runs = (predicate.get("load") or {}).get("runs") or []
    if not runs:
        return ""
    parts = []
    for run in runs:
        profile, total = run.get("profile") or {}, run["total"]
        parts.append(
            f"<h3>{_e(run['test'])}</h3><p>{_e(profile.get('users'))} users, spawn rate {_e(profile.get('spawnRate'))}/s, "
            f"{_e(profile.get('duration'))} s, <code>{_e(profile.get('locustfile'))}</code>: {_num(total['requests'])} requests, "
            f"{_num(total['rps'])} rps, p95 {_num(total['p95'])} ms, {_num(total['failures'])} failed"
            + (f" — <strong>aborted</strong> after {_num(run['aborted']['after'])} s" if run.get("aborted") else "")
            + "</p>"
        )
        if run.get("thresholds"):
            rows: list[tuple[str, ...]] = [
                (
                    f'<span aria-hidden="true">{"✓" if t["ok"] else "✗"}</span> {"ok" if t["ok"] else "breached"}',
                    f"<code>{_e(t['expression'])}</code>",
                    _num(t["value"]) + (_unit(t["expression"]) if t["value"] is not None else ""),
                )
                for t in run["thresholds"]
            ]
            parts.append(_table("Thresholds", ("result", "threshold", "measured"), rows, numeric=(2,)))
        endpoints = run.get("endpoints") or {}
        if endpoints:
            rows = [
                (
                    f"<code>{_e(name)}</code>",
                    _num(e["requests"]),
                    _num(e["failures"]),
                    _num(e["rps"]),
                    _num(e["p50"]),
                    _num(e["p95"]),
                    _num(e["p99"]),
                    _num(e["max"]),
                )
                for name, e in sorted(endpoints.items())
            ]
            parts.append(
                _table(
                    "Every endpoint (times in ms)",
                    ("endpoint", "requests", "failed", "rps", "p50", "p95", "p99", "max"),
                    rows,
                    numeric=range(1, 8),
                )
            )
        series = run.get("series") or []
        names = sorted({name for second in series for name in second["endpoints"]})
        # The slowest endpoints get a line each; the table above has every one.
        names.sort(key=lambda name: -max((s["endpoints"].get(name, {}).get("p95") or 0 for s in series), default=0))
        shown, hidden = names[:CHARTED], len(names) - CHARTED
        rps = [(s["t"], float(sum(e.get("requests") or 0 for e in s["endpoints"].values()))) for s in series]
        failures = [(s["t"], float(sum(e.get("failures") or 0 for e in s["endpoints"].values()))) for s in series]
        p95 = [(name, [(s["t"], s["endpoints"].get(name, {}).get("p95")) for s in series]) for name in shown]
        end = profile.get("duration")
        charts = [
            _line_chart("Requests per second", "rps", [("all endpoints", rps)], end),
            _line_chart("Failures per second", "failures/s", [("all endpoints", failures)], end),
            _line_chart(
                "p95 latency per endpoint",
                "ms",
                p95,
                end,
                f"the {CHARTED} slowest; {hidden} more in the table" if hidden > 0 else "",
            ),
        ]
        parts.append(f'<div class="charts">{"".join(charts)}</div>')
    return f'<section aria-labelledby="load"><h2 id="load">Load runs</h2>{"".join(parts)}</section>'


def _data(predicate: dict[str, Any]) -> str:
    rows = [
        (_e(mark), f"<code>{_e(source)}</code>", _e(count), _e(invalid), _e(checks), f"<code>{_e(test)}</code>")
        for mark, source, count, invalid, checks, test in data_rows({"predicate": predicate})
    ]
    if not rows:
        return ""
    table = _table(
        f"{len(rows)} expectation(s) over the staged data (a query is named by its digest)",
        ("", "data", "rows", "invalid", "checks", "test"),
        rows,
    )
    return f'<section aria-labelledby="data"><h2 id="data">Staged data</h2>{table}</section>'


def _sli(predicate: dict[str, Any]) -> str:
    sli = predicate.get("sli") or {}
    rate = sli.get("validationPassRate")
    rows = [
        ("Contract validations passed", "no validations" if rate is None else f"{rate * 100:.2f}%"),
        ("Flakiness (share of tests that ran and were flaky)", f"{(sli.get('flakinessRate') or 0) * 100:.2f}%"),
    ]
    if "dataValidationFailureRate" in sli:
        data_rate = sli["dataValidationFailureRate"]
        rows.append(
            (
                "Data validation failures (staged rows against their schema)",
                "no rows checked" if data_rate is None else f"{data_rate * 100:.4g}%",
            )
        )
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows)
    return f'<section aria-labelledby="sli"><h2 id="sli">Service level indicators</h2><dl>{items}</dl></section>'


def _history(predicate: dict[str, Any], history: Sequence[Any]) -> str:
    """The earlier runs and this one: a bar per run, its height the gate duration, its colour and
    mark the decision (this run outlined), and a table with the same numbers."""
    from ..core.history import parse_time

    session = predicate.get("session") or {}
    release = predicate.get("release") or {}
    this = (
        parse_time(predicate.get("timeVerified")) or 0.0,
        predicate.get("decision"),
        session.get("durationSeconds") if session.get("exitStatus") is not None else None,
        (predicate.get("target") or {}).get("environment"),
        release.get("id") or release.get("deployedVersion"),
        True,
    )
    runs = [(r.verified_at, r.decision, r.duration, r.environment, r.release, False) for r in history]
    runs.append(this)
    runs.sort(key=lambda run: run[0])
    peak = _ceiling(max((run[2] or 0.0 for run in runs), default=0.0))
    bar, gap, left, top, plot_h = 18, 6, 44, 10, 120
    width = left + len(runs) * (bar + gap) + 10
    height = top + plot_h + 34
    parts = [
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" x2="{width - 10}" y1="{top + plot_h}" y2="{top + plot_h}"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_e(_num(peak))} s</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (_, decision, duration, _, _, current) in enumerate(runs):
        symbol, css = DECISIONS.get(str(decision), ("?", "hold"))
        x = left + gap + index * (bar + gap)
        h = max(round((duration or 0.0) / peak * plot_h, 1), 1.0)
        outline = ' stroke="var(--fg)" stroke-width="2"' if current else ""
        parts.append(
            f'<rect x="{x}" y="{round(top + plot_h - h, 1)}" width="{bar}" height="{h}" fill="var(--{css})"{outline}/>'
            f'<text x="{x + bar / 2}" y="{top + plot_h + 13}" text-anchor="middle">{symbol}</text>'
        )
        if current:
            parts.append(f'<text x="{x + bar / 2}" y="{top + plot_h + 27}" text-anchor="middle">this</text>')
    words = "; ".join(
        f"{'this run' if current else _time(at)}: {decision}, {_num(duration)} s"
        for at, decision, duration, _, _, current in runs
    )
    chart = (
        f'<figure><svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>Decisions and gate durations of the last {len(runs)} runs, oldest first — {_e(words)}</title>"
        f"{''.join(parts)}</svg><figcaption>Gate duration (s) of each run, oldest first; the colour and mark "
        "are the decision (✔ PROMOTE, ❚❚ HOLD, ✘ REJECT); this run is outlined.</figcaption></figure>"
    )
    rows = [
        (
            ("<strong>this run</strong> " if current else "") + _e(_time(at)),
            _e(environment),
            f"<code>{_e(release or 'unknown')}</code>",
            f'<span aria-hidden="true">{DECISIONS.get(str(decision), ("?", ""))[0]}</span> {_e(decision)}',
            _num(duration),
        )
        for at, decision, duration, environment, release, current in reversed(runs)
    ]
    table = _table(
        f"The last {len(runs)} runs, newest first",
        ("verified", "environment", "release", "decision", "gate duration (s)"),
        rows,
        numeric=(4,),
    )
    return f'<section aria-labelledby="history"><h2 id="history">Recent runs</h2>{chart}{table}</section>'


def _time(timestamp: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
