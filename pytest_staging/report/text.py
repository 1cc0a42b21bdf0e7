"""Plain-text and Markdown summaries of a verdict statement. Pure: they read the dict only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.decide import BASELINE_WORST_FIRST
from ..core.ledger import clip
from ..core.tiers import TIERS
from ..verdict.files import reason_texts

SHOWN_COUNTS = ("passed", "failed", "error", "crashed", "skipped", "xfailed", "xpassed", "notrun", "deselected")


def tier_counts(entry: dict[str, Any]) -> str:
    counts = entry["counts"]
    parts = [f"{counts[name]} {name}" for name in SHOWN_COUNTS if counts.get(name)]
    if counts.get("destructiveSkipped"):
        parts.append(f"{counts['destructiveSkipped']} destructive skipped (sensitive target)")
    return ", ".join(parts) or "no tests"


def summary_lines(
    statement: dict[str, Any],
    *,
    path: Path | str | None = None,
    keyid: str | None = None,
    public_key: str | None = None,
) -> list[str]:
    """The block printed at the end of a gate run and by ``pytest-staging show``."""
    predicate = statement["predicate"]
    lines = [f"decision: {predicate['decision']}"]
    lines += [f"  - {text}" for text in reason_texts(predicate)]
    target = predicate.get("target") or {}
    release = predicate.get("release") or {}
    lines.append(
        f"target: {target.get('name', '?')} ({target.get('url', '?')}), environment {target.get('environment', '?')}; "
        f"release {release.get('id') or release.get('deployedVersion') or 'unknown'}"
    )
    for tier in TIERS:
        entry = predicate["tiers"][tier]
        required = "required" if entry["required"] else "optional"
        lines.append(f"  {tier:<9} {entry['result']:<10} {required:<9} {tier_counts(entry)}")
    for run in (predicate.get("load") or {}).get("runs", []):
        total = run["total"]
        marks = " ".join(f"{'✓' if t['ok'] else '✗'} {t['expression']}" for t in run["thresholds"])
        lines.append(
            f"  load run {run['test']}: {total['requests']} requests, {total['rps']:.1f} rps, "
            f"p95 {total['p95'] if total['p95'] is not None else '-'} ms, {total['failures']} failed"
            + (f"; {marks}" if marks else "")
        )
    lines += data_lines(statement)
    if predicate.get("traceId"):
        lines.append(f"trace: {predicate['traceId']}")
    # In full: release tooling copies it into `verify --subject`.
    lines += [f"subject: {s['name']}@sha256:{s['digest']['sha256']}" for s in statement["subject"]]
    if path is not None:
        signed = f"signed, keyid {keyid[:16]}…" if keyid else "UNSIGNED: no signing key, it will not verify"
        lines.append(f"verdict: {path} ({signed})")
        if keyid and "shard" in predicate:  # a partial verdict never verifies as PROMOTE: it is merged
            lines.append(
                f"merge:   pytest-staging merge {path} OTHER_SHARDS... --key {public_key or 'PUBLIC_KEY.pem'} "
                "--signing-key KEY"
            )
        elif keyid:
            lines.append(
                f"verify:  pytest-staging verify {path} --key {public_key or 'PUBLIC_KEY.pem'} --expect PROMOTE"
            )
    return lines


#: How each metric result is marked in the baseline table (readable without colour too).
MARKS = {"PASS": "✓", "MARGINAL": "~", "FAIL": "✗", "INCONCLUSIVE": "?", "NODATA": "-"}
#: Baseline results, most severe first: a FAIL is never buried among INCONCLUSIVE rows.
SEVERITY = {result: rank for rank, result in enumerate(BASELINE_WORST_FIRST)}


def by_severity(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A baseline's metrics, most severe result first, then by name."""
    return sorted(metrics, key=lambda metric: (SEVERITY.get(metric["result"], 2), str(metric["name"])))


def _figure(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    try:
        number = float(value)
    except OverflowError:
        return f"~1e{len(str(abs(value))) - 1}"
    if not math.isfinite(number):
        return "-"
    return f"{number:.3g}" if abs(number) < 999.5 else f"{number:.0f}"


def _signed(value: Any) -> str:
    return ("+" if isinstance(value, (int, float)) and value >= 0 else "") + _figure(value)


def baseline_rows(baseline: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per metric: mark, name, baseline med/p95, current med/p95, shift [CI], result (why)."""
    rows: list[tuple[str, ...]] = []
    for metric in by_severity(baseline["metrics"]):
        unit = f" {metric['unit']}" if metric.get("unit") else ""
        then, now = metric["baseline"], metric["current"]
        shift = "-"
        if metric.get("shift") is not None and metric.get("ci"):
            low, high = metric["ci"]
            shift = f"{_signed(metric['shift'])} [{_signed(low)}, {_signed(high)}]{unit}"
        rows.append(
            (
                MARKS.get(metric["result"], "?"),
                metric["name"],
                f"{_figure(then['median'])} / {_figure(then['p95'])}{unit}" if then["count"] else "-",
                f"{_figure(now['median'])} / {_figure(now['p95'])}{unit}" if now["count"] else "-",
                shift,
                f"{metric['result']} ({metric['reason']})",
            )
        )
    return rows


def baseline_lines(statement: dict[str, Any]) -> list[str]:
    """The "staging baseline" block: the comparison's result and a table of every metric."""
    baseline = statement["predicate"].get("baseline")
    if not baseline:
        return []
    confidence = f"{baseline['confidence'] * 100:g}%"
    lines = [
        f"baseline: {baseline['result']} ({baseline['reason']}) against {baseline['file']}, "
        f"release {baseline.get('release') or 'unknown'}, {baseline.get('created') or 'undated'}"
    ]
    lines += [f"WARNING: {text}" for text in baseline["mismatches"]]
    header = ("", "metric", "baseline med / p95", "current med / p95", f"shift [{confidence} CI]", "result")
    rows = [header] + baseline_rows(baseline)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        lines.append(
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    return [line.rstrip() for line in lines]


def data_source(expectation: dict[str, Any]) -> str:
    """``alias:table``, or ``alias:query sha256:…`` (the verdict keeps a query's digest, not its text)."""
    table = expectation.get("table")
    if table:
        return f"{expectation['alias']}:{table}"
    digest = (expectation.get("query") or {}).get("sha256", "?")
    return f"{expectation['alias']}:query sha256:{digest[:12]}"


def data_checks(expectation: dict[str, Any]) -> str:
    """Each check of an expectation, marked: ``✓ schema ✗ unique order_id ✓ min_rows``."""
    return " ".join(
        f"{'✓' if check.get('ok') else '✗'} {check.get('check')}"
        + (f" {check['column']}" if check.get("column") else "")
        for check in expectation.get("checks") or []
    )


def data_rows(statement: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per staging_data expectation: mark, source, rows, invalid (ratio), checks, test."""
    rows: list[tuple[str, ...]] = []
    for expectation in (statement["predicate"].get("data") or {}).get("expectations") or []:
        invalid = expectation.get("invalid")
        ratio = expectation.get("ratio")
        rows.append(
            (
                "✓" if expectation.get("ok") else "✗",
                data_source(expectation),
                f"{_figure(expectation.get('rows'))} rows",
                "-" if invalid is None else f"{invalid} invalid ({(ratio or 0) * 100:.2f}%)",
                data_checks(expectation),
                str(expectation.get("test", "?")),
            )
        )
    return rows


def data_lines(statement: dict[str, Any]) -> list[str]:
    """The "data expectations" table of the staging summary (none: no lines)."""
    rows = data_rows(statement)
    if not rows:
        return []
    rate = (statement["predicate"].get("sli") or {}).get("dataValidationFailureRate")
    shown = "no schema checked" if rate is None else f"{rate * 100:.4g}% of rows invalid"
    lines = [f"data expectations ({shown}):"]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=False))
        lines.append(f"  {cells}  {row[5]}")
    return lines


def _attempts(test: dict[str, Any]) -> str:
    return ", ".join(
        f"{a['outcome']} {a['duration']:.3f}s" + (f" ({clip(a['error'], 80)})" if a.get("error") else "")
        for a in test["attempts"]
    )


def flaky_quarantine_lines(statement: dict[str, Any]) -> list[str]:
    """The "flaky and quarantined" block: which tests, attempts, owners, expiries."""
    predicate = statement["predicate"]
    quarantine = predicate.get("quarantine") or {}
    lines = []
    if predicate.get("flaky"):
        lines.append("flaky (failed, then passed on a re-run):")
        lines += [f"  {t['nodeid']}  attempts: {_attempts(t)}" for t in predicate["flaky"]]
    active = [t for t in quarantine.get("tests", []) if t["quarantine"]["status"] == "active"]
    if active:
        lines.append("quarantined (they ran; a failure does not block while the entry is active):")
        for test in active:
            entry = test["quarantine"]
            ticket = f", {entry['ticket']}" if entry.get("ticket") else ""
            lines.append(
                f"  {test['nodeid']}  {test['outcome']}  owner {entry['owner']}, until {entry['until']}{ticket}: {entry['reason']}"
            )
    for entry in quarantine.get("expired", []):
        lines.append(
            f"WARNING: quarantine expired, the test blocks again: {entry['test']} "
            f"(owner {entry['owner']}, until {entry['until']}; {entry['source']})"
        )
    for entry in quarantine.get("stale", []):
        lines.append(
            f"stale quarantine entry, matches no collected test: {entry['test']} (owner {entry['owner']}; {entry['source']})"
        )
    return lines


def markdown(
    statement: dict[str, Any],
    *,
    signature: tuple[str, str] | None = None,
    trace_url: str | None = None,
    approval: dict[str, Any] | None = None,
) -> str:
    """A GitHub-flavoured Markdown summary (``pytest-staging show --format markdown``, the CI job
    summary). Every text from the verdict is escaped: it may come from the target's answers.
    ``approval``: an approval's predicate with its ``status`` and ``words`` (``show --approval``)."""
    predicate = statement["predicate"]
    decision = str(predicate["decision"])
    target = predicate.get("target") or {}
    release = predicate.get("release") or {}
    if signature is not None and signature[0] == "failed":
        heading = f"## ⚠️ Staging gate: UNVERIFIED (the verdict claims {_md(decision)}; its signature does not verify)"
    else:
        icon = {"PROMOTE": "✅", "HOLD": "⏸️", "REJECT": "❌"}.get(decision, "❔")
        heading = f"## {icon} Staging gate: {_md(decision)}"
    out = [heading, ""]
    out += [f"- {_md(text)}" for text in reason_texts(predicate)]
    out += [
        "",
        f"- **Target** {_code(target.get('name', '?'))} ({_md(target.get('url', '?'))}), environment {_md(target.get('environment', '?'))}",
        f"- **Release** {_code(release.get('id') or release.get('deployedVersion') or 'unknown')}",
    ]
    if signature is not None:
        out.append(f"- **Signature** {_md(signature[1])}")
    if approval is not None:
        from ..verdict.approval import described

        out.append(
            f"- **Approval** {_md(approval['verdictDecision'])} approved by {_md(described(approval))} "
            f"— {_md(approval['words'])}"
        )
    trace_id = predicate.get("traceId")
    if trace_id:
        link = trace_url.replace("{trace_id}", str(trace_id)) if trace_url else None
        out.append(f"- **Trace** [{_md(trace_id)}](<{_md(link)}>)" if link else f"- **Trace** {_code(trace_id)}")
    out += ["", "| tier | result | required | tests |", "| --- | --- | --- | --- |"]
    for tier in TIERS:
        entry = predicate["tiers"][tier]
        out.append(
            f"| {tier} | {_md(entry['result'])} | {'yes' if entry['required'] else 'no'} | {_md(tier_counts(entry))} |"
        )
    baseline = predicate.get("baseline")
    if baseline:
        out += [
            "",
            f"**Baseline** {_md(baseline['result'])}: {_md(baseline['reason'])} (against {_code(baseline['file'])})",
            "",
        ]
        out += [f"- ⚠️ {_md(text)}" for text in baseline.get("mismatches") or []]
        out += [
            "| | metric | baseline med / p95 | current med / p95 | shift [CI] | result |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in baseline_rows(baseline)]
    failing = [t for t in predicate["tests"] if t["outcome"] in ("failed", "error", "crashed")]
    if failing:
        out += ["", "| failing test | tier | outcome | error |", "| --- | --- | --- | --- |"]
        for test in failing:
            out.append(
                f"| {_code(test['nodeid'])} | {_md(test['tier'])} | {_md(test['outcome'])} | {_md(test.get('error') or '')} |"
            )
    if predicate.get("flaky"):
        out += ["", "| flaky test | attempts |", "| --- | --- |"]
        out += [f"| {_code(t['nodeid'])} | {_md(_attempts(t))} |" for t in predicate["flaky"]]
    quarantine = predicate.get("quarantine") or {}
    held = [t for t in quarantine.get("tests") or [] if t.get("quarantine")]
    if held:
        out += [
            "",
            "| quarantined test | entry | outcome | owner | until | reason |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        out += [
            f"| {_code(t['nodeid'])} | {_md(t['quarantine'].get('status', '?'))} | {_md(t['outcome'])} | {_md(t['quarantine'].get('owner'))} "
            f"| {_md(t['quarantine'].get('until'))} | {_md(t['quarantine'].get('reason'))} |"
            for t in held
        ]
    out += [
        f"- ⚠️ quarantine expired, the test blocks again: {_code(e.get('test'))} (owner {_md(e.get('owner'))}, until {_md(e.get('until'))})"
        for e in quarantine.get("expired") or []
    ]
    out += [
        f"- stale quarantine entry, matches no collected test: {_code(e.get('test'))}"
        for e in quarantine.get("stale") or []
    ]
    for run in (predicate.get("load") or {}).get("runs", []):
        total = run.get("total") or {}
        marks = ", ".join(
            f"{'✓' if t.get('ok') else '✗'} {_code(t.get('expression'))}" for t in run.get("thresholds") or []
        )
        out += [
            "",
            f"**Load** {_code(run.get('test'))}: {_figure(total.get('requests'))} requests, {_figure(total.get('rps'))} rps, "
            f"p95 {_figure(total.get('p95'))} ms, {_figure(total.get('failures'))} failed"
            + (f"; {marks}" if marks else ""),
        ]
    data = data_rows(statement)
    if data:
        out += ["", "| | data expectation | rows | invalid | checks | test |", "| --- | --- | --- | --- | --- | --- |"]
        out += [
            f"| {mark} | {_code(source)} | {_md(rows)} | {_md(invalid)} | {_md(checks)} | {_code(test)} |"
            for mark, source, rows, invalid, checks, test in data
        ]
    version = (predicate.get("verifier") or {}).get("versions", {}).get("pytest-staging", "?")
    out += ["", f"Decided {_md(predicate.get('timeVerified'))} by pytest-staging {_md(version)}."]
    return "\n".join(out) + "\n"


#: Characters Markdown (GitHub's) would read as markup; each is backslash-escaped.
_MARKUP = str.maketrans({c: "\\" + c for c in "\\`*_[]()#!|~"})
#: Line breaks of any kind end a table row or start a block: one space each.
_BREAKS = str.maketrans({c: " " for c in "\r\n\v\f\u0085\u2028\u2029"})


def _md(text: Any) -> str:
    """Verdict text as inert Markdown: one line, HTML entities for & < >, markup escaped."""
    value = "" if text is None else str(text)
    value = value.translate(_BREAKS).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.translate(_MARKUP)


def _code(text: Any) -> str:
    """A code-styled name (node id, file) whose backticks cannot end the code span."""
    return f"<code>{_md(text)}</code>"
