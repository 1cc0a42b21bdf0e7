"""MkDocs hook: the configuration reference's option table, made at build time from the option table.

``configuration.md`` holds the line ``<!-- options-table -->``; this hook replaces it with one row
per command-line option and ini key that ``pytest_staging.options.add_options`` declares, so the
page always lists what ``pytest --help`` lists. Nothing generated is committed.

``add_options`` is called with :class:`Recorder`, a stand-in for pytest's parser that keeps each
call's arguments (options.py imports nothing but typing, so the plugin's start-up stays cheap; the
recording lives here).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

PAGE = "configuration.md"
PLACEHOLDER = "<!-- options-table -->"

# Environment variables named in a help text: "env STAGING_RELEASE", or any NAME_WITH_UNDERSCORES.
ENV_VAR = re.compile(r"\b[Ee]nv ([A-Z][A-Z0-9_]+)\b|\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
# A default stated in a help text: "(default 60)", "(default: the first subject's name)", "; default 0)",
# "allow (default), hold or reject".
STATED_DEFAULT = re.compile(r"(?:\(|; )default:? ([^;)]+)|(\w+) \(default\)")
# Names worth setting as code when a help text mentions them bare.
NAME = re.compile(r"--staging-[a-z-]+|\bstaging_[a-z_]+\b|\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


class Declared(NamedTuple):
    """One ``addoption`` or ``addini`` call, as made."""

    name: str  # "--staging-target" or "staging_target"
    help: str
    default: Any
    metavar: str | None = None
    action: str | None = None
    type: str | None = None  # an ini key's type ("bool", "args"); None: a string


class Recorder:
    """Stands in for pytest's ``Parser`` and its option group: records every option and ini key."""

    def __init__(self) -> None:
        self.options: list[Declared] = []
        self.inis: list[Declared] = []

    def getgroup(self, name: str, description: str = "") -> Recorder:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.options.append(
            Declared(
                name=names[0],
                help=attrs.get("help", ""),
                default=attrs.get("default"),
                metavar=attrs.get("metavar"),
                action=attrs.get("action"),
            )
        )

    def addini(self, name: str, help: str, type: str | None = None, default: Any = None) -> None:
        self.inis.append(Declared(name=name, help=help, default=default, type=type))


def record(add_options: Callable[[Any], None]) -> Recorder:
    recorder = Recorder()
    add_options(recorder)
    return recorder


def render(add_options: Callable[[Any], None]) -> str:
    """The reference table: option, ini key, environment variable, default, help; one row per option
    (with the ini key of the same name, ``--staging-foo-bar`` / ``staging_foo_bar``), then the ini
    keys that have no option."""
    recorded = record(add_options)
    inis = {ini.name: ini for ini in recorded.inis}
    rows = []
    for option in recorded.options:
        ini = inis.pop(option.name.removeprefix("--").replace("-", "_"), None)
        rows.append(_row(option, ini))
    rows.extend(_row(None, ini) for ini in inis.values())
    header = "| option | ini key | environment variable | default | what it does |\n| --- | --- | --- | --- | --- |\n"
    return header + "".join("| " + " | ".join(row) + " |\n" for row in rows)


def _row(option: Declared | None, ini: Declared | None) -> list[str]:
    helps = [d.help for d in (option, ini) if d is not None]
    envs = dict.fromkeys(a or b for text in helps for a, b in ENV_VAR.findall(text))
    name = ""
    if option is not None:
        name = _code(f"{option.name}={option.metavar}" if option.metavar else option.name)
    return [
        name,
        _code(ini.name) if ini is not None else "",
        ", ".join(_code(env) for env in envs),
        _default(option, ini),
        _text(helps[0], envs),
    ]


def _default(option: Declared | None, ini: Declared | None) -> str:
    if ini is not None and ini.type == "bool":
        return _code("true" if ini.default else "false")
    if ini is not None and ini.default not in (None, ""):
        return _code(str(ini.default))
    if option is not None and option.action == "store_true":
        return "off"
    for declared in (option, ini):
        stated = declared and STATED_DEFAULT.search(declared.help)
        if stated:
            return _text((stated.group(1) or stated.group(2)).strip())
    return ""


def _code(text: str) -> str:
    # A table cell ends at a bare "|", even inside a code span.
    return "<code>" + html.escape(text, quote=False).replace("|", "&#124;") + "</code>"


def _text(text: str, names: Iterable[str] = ()) -> str:
    """Help text as a table cell: its `code` kept, bare option/ini/variable names set as code."""
    pattern = re.compile("|".join([NAME.pattern, *(rf"\b{re.escape(name)}\b" for name in names)]))
    parts = re.split(r"(`[^`]*`)", text)
    cell = []
    for i, part in enumerate(parts):
        if i % 2:
            cell.append(_code(part[1:-1]))
            continue
        last = 0
        for match in pattern.finditer(part):
            cell.append(html.escape(part[last : match.start()], quote=False).replace("|", "&#124;"))
            cell.append(_code(match.group()))
            last = match.end()
        cell.append(html.escape(part[last:], quote=False).replace("|", "&#124;"))
    return "".join(cell)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if PLACEHOLDER not in markdown:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{PAGE} lost its {PLACEHOLDER} line: the option table has nowhere to go")
    from pytest_staging.options import add_options

    # In a block of its own class, for the page's CSS (docs/stylesheets/extra.css).
    table = f'<div class="staging-options" markdown>\n\n{render(add_options)}\n</div>'
    return markdown.replace(PLACEHOLDER, table)
