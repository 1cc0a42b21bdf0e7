"""The targets file, ${VAR} expansion and JSON pointers: pure functions, tested directly."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.core.errors import ConfigError
from pytest_staging.core.redact import Scrubber
from pytest_staging.core.targets import (
    MIN_SECRET_LENGTH,
    expand,
    find_target,
    load_targets,
    resolve_pointer,
    url_target,
    without_userinfo,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "staging-targets.toml"
    path.write_text(text)
    return path


def test_full_target_is_parsed_and_expanded(tmp_path):
    path = write(
        tmp_path,
        """
[targets.staging-eu]
url = "https://staging-eu.example.com"
environment = "staging"
sensitive = true
timeout = 3
headers = { Authorization = "Bearer ${TOKEN}", X-Team = "pay" }
version_url = "/version"
version_pointer = "/build/sha"
""",
    )
    secrets: set[str] = set()
    targets = load_targets(path, secrets, {"TOKEN": "t0ps3cret"})
    target = targets["staging-eu"]
    assert target.url == "https://staging-eu.example.com"
    assert target.environment == "staging"
    assert target.sensitive is True
    assert target.timeout == 3.0
    assert target.headers == {"Authorization": "Bearer t0ps3cret", "X-Team": "pay"}
    assert (target.version_url, target.version_pointer) == ("/version", "/build/sha")
    assert secrets == {"t0ps3cret"}
    assert "t0ps3cret" not in repr(target)
    assert "t0ps3cret" not in str(target.public())


def test_defaults(tmp_path):
    target = load_targets(write(tmp_path, '[targets.a]\nurl = "http://a:1"\n'), set(), {})["a"]
    assert (target.environment, target.sensitive, target.timeout, dict(target.headers)) == (
        "unspecified",
        False,
        10.0,
        {},
    )


def test_dollar_dollar_is_a_literal_dollar():
    secrets: set[str] = set()
    assert expand("a$$b ${X}", "f", "k", secrets, {"X": "value"}) == "a$b value"
    assert secrets == {"value"}


def test_short_values_are_not_secrets():
    secrets: set[str] = set()
    expand("${PORT}", "f", "k", secrets, {"PORT": "80"})
    assert secrets == set()


@pytest.mark.parametrize(
    ("text", "env", "field", "fragment"),
    [
        ("[targets.a\nurl=", {}, "", "not valid TOML"),
        ('[targets.a]\nenvironment = "x"\n', {}, "targets.a.url", "missing"),
        ('[targets.a]\nurl = "ftp://x"\n', {}, "targets.a.url", "not an http(s) URL"),
        ('[targets.a]\nurl = "http://x"\ntimout = 3\n', {}, "targets.a.timout", "unknown field"),
        ('[targets.a]\nurl = "http://x"\ntimeout = "ten"\n', {}, "targets.a.timeout", "number"),
        ('[targets.a]\nurl = "http://x"\ntimeout = 0\n', {}, "targets.a.timeout", "number"),
        ('[targets.a]\nurl = "http://x"\nsensitive = "yes"\n', {}, "targets.a.sensitive", "true or false"),
        ('[targets.a]\nurl = "http://x"\nheaders = "x"\n', {}, "targets.a.headers", "table"),
        ('[targets.a]\nurl = "http://x"\nheaders = { A = 1 }\n', {}, "targets.a.headers.A", "string"),
        ('[targets.a]\nurl = "http://x"\nheaders = { A = "${NOPE}" }\n', {}, "targets.a.headers.A", "NOPE is not set"),
        # An unclosed ${ would be sent as written and fail as a 401 at the target.
        (
            '[targets.a]\nurl = "http://x"\nheaders = { A = "Bearer ${TOKEN" }\n',
            {"TOKEN": "t0ps3cret"},
            "targets.a.headers.A",
            "does not start a ${NAME}",
        ),
        ('[targets.a]\nurl = "http://x/${1X}"\n', {}, "targets.a.url", "does not start a ${NAME}"),
        ('[targets.a]\nurl = "http://x"\nversion_pointer = "build"\n', {}, "targets.a.version_pointer", "JSON pointer"),
        ('[target.a]\nurl = "http://x"\n', {}, "target", "unknown top-level key"),
        ("targets = 3\n", {}, "targets", "table"),
    ],
)
def test_bad_targets_file_names_file_and_field(tmp_path, text, env, field, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_targets(path, set(), env)
    error = info.value
    assert error.where == str(path)
    assert error.field == field
    assert fragment in error.problem
    assert "\n" not in error.line()


def test_secret_in_url_never_reaches_the_error(tmp_path):
    path = write(tmp_path, '[targets.a]\nurl = "${BASE}"\n')
    with pytest.raises(ConfigError) as info:
        load_targets(path, set(), {"BASE": "ftp://user:hunter22@x"})
    assert "hunter22" not in info.value.line()


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_targets(tmp_path / "missing.toml", set(), {})
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read it"):
        load_targets(directory, set(), {})


def test_url_target():
    secrets: set[str] = set()
    target = url_target("http://127.0.0.1:8000/api", "--staging-target", secrets)
    assert (target.name, target.url, dict(target.headers), secrets) == (
        "127.0.0.1:8000",
        "http://127.0.0.1:8000/api",
        {},
        set(),
    )
    with pytest.raises(ConfigError, match="not an http"):
        url_target("127.0.0.1:8000", "--staging-target", secrets)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("url", "user", "password", "clean", "name"),
    [
        (
            "https://deploy:Pw@staging.example.com/api",
            "deploy",
            "Pw",
            "https://staging.example.com/api",
            "staging.example.com",
        ),
        ("http://deploy:s3cret-pw@127.0.0.1:8000", "deploy", "s3cret-pw", "http://127.0.0.1:8000", "127.0.0.1:8000"),
        # percent-escapes are decoded, as requests does; an @ in the password is escaped
        ("http://de%20ploy:p%40ss%3Aw0rd@[::1]:81/x?q=1", "de ploy", "p@ss:w0rd", "http://[::1]:81/x?q=1", "[::1]:81"),
        ("http://user@host", "user", "", "http://host", "host"),
    ],
)
def test_url_target_user_info_becomes_basic_auth_and_a_secret(url, user, password, clean, name):
    secrets: set[str] = set()
    target = url_target(url, "STAGING_TARGET", secrets)
    assert (target.name, target.url) == (name, clean)
    assert dict(target.headers) == {"Authorization": basic(user, password)}
    scrub = Scrubber(secrets)
    assert scrub(target.headers["Authorization"]) == "Basic ***"
    if len(password) >= MIN_SECRET_LENGTH:
        assert scrub(f"x {password} y") == "x *** y"
    assert "@" not in repr(target) and "@" not in str(target.public())


def test_targets_file_user_info_with_variables(tmp_path):
    path = write(
        tmp_path,
        """
[targets.basic]
url = "https://deploy:${PW}@staging.example.com"
version_url = "https://probe:${PROBE}@versions.example.com/v"

[targets.explicit]
url = "https://deploy:${PW}@staging.example.com"
headers = { authorization = "Bearer ${TOKEN}" }
version_url = "/version"
""",
    )
    secrets: set[str] = set()
    targets = load_targets(path, secrets, {"PW": "Pw", "PROBE": "pr0be-pw", "TOKEN": "t0ps3cret"})
    basic_target, explicit = targets["basic"], targets["explicit"]
    assert basic_target.url == explicit.url == "https://staging.example.com"
    assert dict(basic_target.headers) == {"Authorization": basic("deploy", "Pw")}
    # The probe URL has user info of its own: that is the probe's authorization, shown without it.
    assert basic_target.version_url == "https://versions.example.com/v"
    assert basic_target.version_headers() == {"Authorization": basic("probe", "pr0be-pw")}
    # A header the file sets explicitly wins over the user info; the password stays a secret.
    assert dict(explicit.headers) == {"authorization": "Bearer t0ps3cret"}
    assert explicit.version_headers() == dict(explicit.headers)
    scrub = Scrubber(secrets)
    shown = scrub(f"{basic('deploy', 'Pw')} | {basic('probe', 'pr0be-pw')} | pr0be-pw | t0ps3cret")
    assert shown == "Basic *** | Basic *** | *** | ***"


def test_user_info_never_reaches_an_error(tmp_path):
    for text, field in [
        ('url = "ftp://user:hunter22@x"', "targets.a.url"),
        ('url = "http://user:hunter22@[::1"', "targets.a.url"),
        ('url = "http://user:${PW}@x:port"', "targets.a.url"),
        ('url = "http://x"\nversion_url = "ftp://user:${PW}@x/v"', "targets.a.version_url"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_targets(write(tmp_path, f"[targets.a]\n{text}\n"), set(), {"PW": "hunter22"})
        assert "hunter22" not in info.value.line() and field in info.value.line()
    for url in ("ftp://user:hunter22@x", "http://user:hunter22@[::1", "http://user:hunter22@x:port"):
        with pytest.raises(ConfigError) as info:
            url_target(url, "--staging-target", set())
        assert "hunter22" not in info.value.line()


@given(st.text(alphabet="abcXYZ09-._~!$&'()*+,;=%:@", min_size=1, max_size=30))
def test_without_userinfo_leaves_no_user_info(userinfo):
    shown = without_userinfo(f"https://{userinfo}@host:8443/p?q=1#f")
    assert shown == "https://host:8443/p?q=1#f"


def test_json_pointer():
    doc = {"build": {"sha": "abc", "a/b": 1, "m~n": 2}, "list": [10, 20]}
    assert resolve_pointer(doc, "/build/sha") == "abc"
    assert resolve_pointer(doc, "/build/a~1b") == 1
    assert resolve_pointer(doc, "/build/m~0n") == 2
    assert resolve_pointer(doc, "/list/1") == 20
    assert resolve_pointer(doc, "") == doc
    for missing in ("/nope", "/list/5", "/build/sha/x"):
        with pytest.raises(KeyError):
            resolve_pointer(doc, missing)


SECRET = st.text(alphabet="abcdefxyz0123456789", min_size=4, max_size=12)


@given(st.lists(SECRET, min_size=1, max_size=4), st.text(alphabet="ab :/=-\n", max_size=20))
def test_scrubber_removes_every_secret(secrets, filler):
    cleaned = Scrubber(secrets)(filler + filler.join(secrets) + filler)
    for secret in secrets:
        assert secret not in cleaned


def test_scrubber_masks_longest_first():
    assert Scrubber(["abcd", "abcdefgh"])("x abcdefgh y abcd") == "x *** y ***"
    assert not Scrubber([])
    assert Scrubber([])("abc") == "abc"


def test_only_the_selected_targets_variables_must_be_set(tmp_path):
    """A CI job for one environment has only that environment's secrets (SPEC §2)."""
    path = write(
        tmp_path,
        '[targets.eu]\nurl = "https://eu.example"\nheaders = { Authorization = "Bearer ${EU_TOKEN}" }\n'
        '[targets.us]\nurl = "https://us.example"\nheaders = { Authorization = "Bearer ${US_TOKEN}" }\n',
    )
    secrets: set[str] = set()
    target = find_target(path, "eu", "--staging-target", secrets, {"EU_TOKEN": "eu-s3cret"})
    assert target.headers["Authorization"] == "Bearer eu-s3cret"
    assert secrets == {"eu-s3cret"}
    with pytest.raises(ConfigError, match="US_TOKEN is not set"):
        find_target(path, "us", "--staging-target", set(), {"EU_TOKEN": "eu-s3cret"})


@pytest.mark.parametrize("exists", [True, False])
@pytest.mark.parametrize(
    ("name", "hint"), [("127.0.0.1:8000", True), ("staging.example.com", True), ("staging-eu", False)]
)
def test_a_url_without_its_scheme_gets_a_hint(tmp_path, exists, name, hint):
    path = write(tmp_path, '[targets.a]\nurl = "http://a"\n') if exists else tmp_path / "none.toml"
    with pytest.raises(ConfigError) as info:
        find_target(path, name, "--staging-target", set(), {})
    assert (f"for a URL, write http://{name}" in info.value.line()) == hint
