"""Renderers of a verdict (the statement dict): text for terminals, Markdown for CI summaries."""
