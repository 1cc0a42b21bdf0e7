"""Where the target comes from (option, env, ini, targets file) and every usage error we raise."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("staging_env")

SHOW_TARGET = """
def test_show(staging_target):
    print("TARGET", staging_target.name, staging_target.url, staging_target.environment,
          staging_target.sensitive, staging_target.release)
"""


def target_line(result: pytest.RunResult) -> str:
    line = next(line for line in result.stdout.lines if "TARGET " in line)
    return line[line.index("TARGET ") :].removesuffix(".").strip()


def test_url_option_activates_the_gate(pytester, httpbin_url):
    pytester.makepyfile(SHOW_TARGET)
    result = pytester.runpytest("-s", f"--staging-target={httpbin_url}")
    result.assert_outcomes(passed=1)
    host = httpbin_url.removeprefix("http://")
    assert target_line(result) == f"TARGET {host} {httpbin_url} unspecified False None"
    result.stdout.fnmatch_lines([f"staging: target {host} ({httpbin_url}), environment unspecified, *"])


def test_option_beats_env_beats_ini(pytester, httpbin_url, staging_env):
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f"""
[targets.from-env]
url = "{httpbin_url}/anything/env"
[targets.from-ini]
url = "{httpbin_url}/anything/ini"
[targets.from-option]
url = "{httpbin_url}/anything/option"
"""
        },
    )
    pytester.makeini("[pytest]\nstaging_target = from-ini\n")
    pytester.makepyfile(SHOW_TARGET)
    assert "/anything/ini " in target_line(pytester.runpytest("-s"))
    staging_env.setenv("STAGING_TARGET", "from-env")
    assert "/anything/env " in target_line(pytester.runpytest("-s"))
    assert "/anything/option " in target_line(pytester.runpytest("-s", "--staging-target=from-option"))


def test_targets_file_option_and_ini(pytester, httpbin_url):
    pytester.mkdir("conf")
    pytester.path.joinpath("conf", "targets.toml").write_text(
        f'[targets.qa]\nurl = "{httpbin_url}"\nenvironment = "qa"\n'
    )
    pytester.makepyfile(SHOW_TARGET)
    result = pytester.runpytest("-s", "--staging-target=qa", "--staging-targets-file=conf/targets.toml")
    assert target_line(result).startswith("TARGET qa ") and " qa " in target_line(result)
    pytester.makeini("[pytest]\nstaging_targets_file = conf/targets.toml\n")
    assert target_line(pytester.runpytest("-s", "--staging-target=qa")).startswith("TARGET qa ")


def test_release_option_and_env(pytester, httpbin_url, staging_env):
    pytester.makepyfile(SHOW_TARGET)
    result = pytester.runpytest("-s", f"--staging-target={httpbin_url}", "--staging-release=1.2.3")
    assert target_line(result).endswith(" 1.2.3")
    result.stdout.fnmatch_lines(["staging: *release 1.2.3*"])
    staging_env.setenv("STAGING_RELEASE", "9.9")
    assert target_line(pytester.runpytest("-s", f"--staging-target={httpbin_url}")).endswith(" 9.9")


def test_staging_fixture_without_target_fails_clearly(pytester):
    pytester.makepyfile("def test_x(staging_http):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*staging_http: no staging target configured; pass --staging-target=NAME|URL*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("files", "args", "env", "fragments"),
    [
        pytest.param(
            {}, ["--staging-target=nowhere"], {}, ["staging-targets.toml", "does not exist"], id="no-targets-file"
        ),
        pytest.param(
            {"staging-targets.toml": '[targets.a]\nurl = "http://127.0.0.1:1"\n'},
            ["--staging-target=b"],
            {},
            ["staging-targets.toml: targets.b:", "known targets: a"],
            id="unknown-target",
        ),
        pytest.param(
            {"staging-targets.toml": "[targets.a\n"},
            ["--staging-target=a"],
            {},
            ["not valid TOML"],
            id="malformed-toml",
        ),
        pytest.param(
            {"staging-targets.toml": '[targets.a]\nurl = "http://x"\nheaders = { A = "${MISSING_VAR}" }\n'},
            ["--staging-target=a"],
            {},
            ["targets.a.headers.A", "MISSING_VAR is not set"],
            id="unset-variable",
        ),
        pytest.param(
            {"staging-targets.toml": '[targets.a]\nurl = "http://x"\ntimeout = -1\n'},
            ["--staging-target=a"],
            {},
            ["targets.a.timeout"],
            id="bad-field",
        ),
        pytest.param({}, ["--staging-target=ftp://x"], {}, ["--staging-target", "not an http(s) URL"], id="bad-url"),
        pytest.param({}, [], {"STAGING_TARGET": "ftp://x"}, ["STAGING_TARGET", "not an http(s) URL"], id="bad-env-url"),
        pytest.param(
            {},
            ["--staging-target=http://x", "--staging-tier=smok"],
            {},
            ["--staging-tier", "unknown tier 'smok'"],
            id="bad-tier",
        ),
        pytest.param(
            {},
            ["--staging-target=http://x", "--staging-tier=,"],
            {},
            ["--staging-tier", "no tier given"],
            id="empty-tier",
        ),
        pytest.param(
            {"pytest.ini": "[pytest]\nstaging_default_tier = nightly\n"},
            ["--staging-target=http://x"],
            {},
            ["pytest.ini: staging_default_tier", "'nightly'"],
            id="bad-default-tier",
        ),
        pytest.param(
            {"pytest.ini": "[pytest]\n"},
            ["--staging-target=http://x", "-o", "staging_reruns=-1"],
            {},
            ["-o: staging_reruns", "-1"],
            id="bad-ini-value-given-with-o",
        ),
        pytest.param(
            {"pytest.ini": "[pytest]\nstaging_required_tiers = smoke perf\n"},
            ["--staging-target=http://x"],
            {},
            ["staging_required_tiers", "'perf'"],
            id="bad-required-tiers",
        ),
        pytest.param(
            {},
            ["--staging-target=http://x", "--staging-sensitive-url=prod("],
            {},
            ["--staging-sensitive-url", "invalid regular expression"],
            id="bad-regex",
        ),
        pytest.param(
            {"pytest.ini": "[pytest]\nstaging_sensitive_url = [\n"},
            ["--staging-target=http://x"],
            {},
            ["pytest.ini: staging_sensitive_url", "invalid regular expression"],
            id="bad-ini-regex",
        ),
        pytest.param(
            {},
            ["--staging-target=127.0.0.1:8000"],
            {},
            ["--staging-target names target '127.0.0.1:8000'", "for a URL, write http://127.0.0.1:8000"],
            id="url-without-scheme",
        ),
        pytest.param(
            {},
            ["--staging-target=http://x", "-p", "xdist", "-n", "2", "--dist=each"],
            {},
            ["--dist=each", "--dist=load"],
            id="unordered-dist-mode",
        ),
    ],
)
def test_usage_errors(pytester, usage_error, staging_env, files, args, env, fragments):
    for name, text in files.items():
        pytester.path.joinpath(name).write_text(text)
    for name, value in env.items():
        staging_env.setenv(name, value)
    pytester.makepyfile("def test_never():\n    raise AssertionError('must not run')\n")
    usage_error.check(pytester.runpytest_subprocess(*args), *fragments)


def test_usage_error_never_prints_the_secret(pytester, usage_error, staging_env):
    staging_env.setenv("BASE_URL", "gopher://admin:pa55word@host")
    pytester.path.joinpath("staging-targets.toml").write_text('[targets.a]\nurl = "${BASE_URL}"\n')
    pytester.makepyfile("def test_never():\n    pass\n")
    line = usage_error.check(pytester.runpytest_subprocess("--staging-target=a"), "targets.a.url")
    assert "pa55word" not in line


def test_help_works_with_a_broken_setting(pytester, staging_env):
    staging_env.setenv("STAGING_TARGET", "no-such-target")
    result = pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--staging-target=NAME|URL*"])
