"""The documentation: the site builds with `mkdocs build --strict` (a broken link or anchor fails),
its configuration reference lists every option and ini key pytest knows, and the README stays the
short page a newcomer reads."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from docs_text import DOCS, README, ROOT

from pytest_staging.options import add_options

HOOK = DOCS / "hooks" / "options_reference.py"


def load_hook():
    """The MkDocs hook as a module (it lives beside the pages, outside any package)."""
    spec = importlib.util.spec_from_file_location("options_reference", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The site as CI builds it: `mkdocs build --strict`, into a directory of its own."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, out


def test_the_site_builds_strictly_with_every_page(site):
    result, out = site
    assert result.returncode == 0, result.stderr
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = [page for entry in nav for page in entry.values()]
    assert sorted(pages) == sorted(str(p.relative_to(DOCS)) for p in DOCS.glob("*.md")), "a page is missing from nav"
    for page in pages:
        built = out / page.replace(".md", ".html")
        assert built.is_file(), page
    assert not (out / "hooks").exists()  # build code, not a page
    assert (out / "assets" / "report.png").is_file()


def _pytest_help(tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_reference_lists_every_option_and_ini_key_pytest_knows(site, tmp_path):
    result, out = site
    assert result.returncode == 0, result.stderr
    shown = _pytest_help(tmp_path)
    options = set(re.findall(r"^  (--staging-[a-z-]+)", shown, re.M))
    inis = set(re.findall(r"^  (staging_[a-z_]+) \(", shown, re.M))
    assert len(options) > 20 and len(inis) > 15  # the help was read, not an empty page
    page = (out / "configuration.html").read_text(encoding="utf-8")
    table = page.split("<table>", 1)[1].split("</table>", 1)[0]  # the first table: the generated one
    rows = [
        [unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    ]
    assert {row[0].split("=", 1)[0] for row in rows if row[0]} == options
    assert {row[1] for row in rows if row[1]} == inis
    target = next(row for row in rows if row[0] == "--staging-target=NAME|URL")
    assert target[1:3] == ["staging_target", "STAGING_TARGET"]


def test_the_reference_follows_the_option_table():
    """An option added to the table is a new row, with its ini key, variable and default."""
    hook = load_hook()

    def with_one_more(parser):
        add_options(parser)
        parser.getgroup("staging").addoption(
            "--staging-canary",
            metavar="PCT",
            help="send PCT percent of the traffic to the canary (env STAGING_CANARY; default 5).",
        )
        parser.addini("staging_canary", "share of the traffic sent to the canary", default="")

    before, after = hook.render(add_options), hook.render(with_one_more)
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == [
        "| <code>--staging-canary=PCT</code> | <code>staging_canary</code> | <code>STAGING_CANARY</code> | 5 "
        "| send PCT percent of the traffic to the canary (env <code>STAGING_CANARY</code>; default 5). |"
    ]
    assert len(after.splitlines()) == len(before.splitlines()) + 1


def test_a_reference_page_without_its_placeholder_fails_the_build():
    from mkdocs.exceptions import PluginError

    hook = load_hook()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="configuration.md"))
    with pytest.raises(PluginError, match="options-table"):
        hook.on_page_markdown("# Configuration reference\n", page=page, config=None, files=None)
    other = SimpleNamespace(file=SimpleNamespace(src_uri="targets.md"))
    assert hook.on_page_markdown("<!-- options-table -->", page=other, config=None, files=None) == (
        "<!-- options-table -->"
    )


def test_the_readme_is_at_most_12_kb():
    assert README.stat().st_size <= 12 * 1024, "move the detail to a page under docs/"


def test_the_readmes_links_into_the_docs_resolve():
    """GitHub shows the README outside the site, so `mkdocs build` does not check its links."""
    links = re.findall(r"\]\(([^)#]+?)(?:#([^)]+))?\)", README.read_text(encoding="utf-8"))
    local = [(path, anchor) for path, anchor in links if "://" not in path]
    assert len(local) > 15
    for path, anchor in local:
        assert (ROOT / path).is_file(), path
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
            assert anchor in slugs, f"{path}#{anchor}"


def test_ci_runs_the_readmes_test_command_verbatim():
    """The README's first block is the two commands; .ci/run runs the second as printed."""
    first = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    commands = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert commands[0] == "bash example_suites/demo.sh"
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
