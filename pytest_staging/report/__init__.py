"""Renderers of a verdict (the statement dict): text for terminals, Markdown for CI summaries,
HTML for people. Pure: they read the dict only."""

from __future__ import annotations


def trace_url_problem(template: str) -> str | None:
    """Why a trace link template is unusable (None when it is fine): it must be an http(s) URL
    with ``{trace_id}`` in it, so no other scheme (``javascript:``) can end up in a link."""
    if not template.startswith(("http://", "https://")) or "{trace_id}" not in template:
        return f"{template!r} is not an http(s) URL with {{trace_id}} in it, e.g. https://tracing.example/trace/{{trace_id}}"
    return None
