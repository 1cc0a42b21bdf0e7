"""Staging targets: the targets file, ``${VAR}`` expansion and the secrets it brings in.

A URL's user info (``https://deploy:PW@host``) is split off where the target is built: the
target's URL is shown everywhere, so it never carries the password; the credentials travel as
an HTTP Basic ``Authorization`` header instead.

Pure: no pytest imports. Every user mistake is a :class:`ConfigError` naming file and field.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigError

DEFAULT_TIMEOUT = 10.0
#: Values shorter than this are not scrubbed: hiding every "1" or "on" would wreck the output
#: without protecting anything a secret that short could protect.
MIN_SECRET_LENGTH = 4

#: The patterns are compiled on first use (the ``re`` module caches them), not at import: most
#: runs need none of them, and four compiles cost 2M instructions (bench/overhead.py).
_VAR = r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}"
#: A ``${`` that does not start a ``${NAME}``: sent as written, it would fail as a 401 at the target.
_BROKEN_VAR = r"\$\$|\$\{(?![A-Za-z_][A-Za-z0-9_]*\})"
#: ``host:port`` or a dotted host: a URL without its scheme, not a target's name.
_LOOKS_LIKE_HOST = r"^[\w.-]+(:\d+)?(/.*)?$"
#: ``scheme://user:password@``: the authority ends at the first ``/ ? #``, the user info at its
#: last ``@``. Loose about the scheme, so even a malformed URL is shown without it.
_USERINFO = r"^([^/?#@]*://)[^/?#]*@"
_FIELDS = {
    "url": "the base URL (http or https)",
    "environment": "free text, e.g. staging",
    "sensitive": "true or false",
    "timeout": "seconds per request, a number > 0",
    "headers": "a table of header names to strings",
    "version_url": "a path or URL answering with the deployed version",
    "version_pointer": "a JSON pointer into the version body, e.g. /build/sha",
    "databases": 'a table of aliases to SQLAlchemy URLs, e.g. { orders = "sqlite:///staging.db" }',
}
#: A SQLAlchemy URL as its own parser reads one: ``dialect[+driver]://[user[:password]@][host][:port][/database]``.
#: Checked here without importing SQLAlchemy (the gate starts before any test asks for a database).
_DATABASE_URL = r"^[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?://(?P<userinfo>[^/?#@]*@)?(?P<host>\[[^]/?]*\]|[^/:?@]*)(:(?P<port>[^/?]*))?(/[^?]*)?(\?.*)?$"
#: An alias is what a test passes to ``staging_data``: a plain name.
_ALIAS = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


@dataclasses.dataclass(frozen=True)
class Target:
    """A resolved staging target. ``headers`` may hold secrets: never print or serialise it."""

    name: str
    url: str
    environment: str = "unspecified"
    sensitive: bool = False
    timeout: float = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    version_url: str | None = None
    version_pointer: str | None = None
    #: Where it came from: the targets file path, or the option/env/ini that gave a URL.
    source: str = ""
    #: The release under test: ``--staging-release`` or, without it, the probed version.
    release: str | None = None
    #: The Basic ``Authorization`` from an absolute ``version_url``'s own user info, if it had one.
    version_authorization: str | None = dataclasses.field(default=None, repr=False)
    #: ``[targets.NAME.databases]``: alias -> SQLAlchemy URL, password included: never print it.
    databases: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def public(self) -> dict[str, Any]:
        """The fields that may appear in reports and verdicts (never the headers)."""
        return {"name": self.name, "url": self.url, "environment": self.environment}

    def version_headers(self) -> dict[str, str]:
        """The headers of the version probe: the target's, with the probe URL's own credentials."""
        if self.version_authorization is None:
            return dict(self.headers)
        headers = {key: value for key, value in self.headers.items() if key.lower() != "authorization"}
        headers["Authorization"] = self.version_authorization
        return headers


def tomllib() -> Any:
    """The TOML parser, imported only when a targets or quarantine file is actually read."""
    if sys.version_info >= (3, 11):
        import tomllib as parser
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as parser
    return parser


def expand(value: str, where: str, field: str, secrets: set[str], environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` with the environment's value (``$$`` is a literal ``$``).

    Every value read this way is added to ``secrets`` so it can be scrubbed from all output.
    """

    for broken in re.finditer(_BROKEN_VAR, value):
        if broken.group() == "${":
            raise ConfigError(
                where, field, "'${' does not start a ${NAME} (a name, then '}'); close it, or write $$ for a literal $"
            )

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in environ:
            raise ConfigError(where, field, f"environment variable {name} is not set; export it or remove ${{{name}}}")
        found = environ[name]
        if len(found) >= MIN_SECRET_LENGTH:
            secrets.add(found)
        return found

    return re.sub(_VAR, substitute, value)


def without_userinfo(url: str) -> str:
    """``url`` as it may be shown: without ``user:password@``, whatever else is wrong with it."""
    return re.sub(_USERINFO, r"\1", url, count=1)


def split_userinfo(url: str, secrets: set[str]) -> tuple[str, str | None]:
    """``url`` without its user info, and the Basic ``Authorization`` value it carried (or None).

    As requests reads it: percent-escapes decoded, a user without a password sent as ``user:``.
    The password (the user, when there is no password: then it is the token), its escaped form
    and the base64 credentials are added to ``secrets``.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    credential = password or user
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    for secret in (credential, unquote(credential), token):
        if len(secret) >= MIN_SECRET_LENGTH:
            secrets.add(secret)
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host and, if any, a numeric port."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def masked(text: str) -> str:
    """A URL or target name that did not parse, as it may be shown: everything up to its last
    ``@`` is user info as far as we can tell (a password may hold ``/``, ``?`` or ``#``)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else text


def check_url(url: str, where: str, field: str) -> None:
    if not is_http_url(url):
        hint = "; percent-encode '/', '?', '#' and '@' in a password" if "@" in url else ""
        raise ConfigError(
            where, field, f"{masked(url)!r} is not an http(s) URL; write it as https://host[:port][/path]{hint}"
        )


def url_target(url: str, source: str, secrets: set[str]) -> Target:
    """A target given directly as a URL (``--staging-target=https://...``); its name is host[:port]."""
    check_url(url, source, "")
    clean, authorization = split_userinfo(url, secrets)
    headers = {"Authorization": authorization} if authorization else {}
    return Target(name=urlsplit(clean).netloc, url=clean, headers=headers, source=source)


def load_targets(path: Path, secrets: set[str], environ: Mapping[str, str] = os.environ) -> dict[str, Target]:
    """Parse a ``staging-targets.toml``: one ``[targets.NAME]`` table per target, its fields those of ``_FIELDS``."""
    where = str(path)
    return {name: _parse_target(name, table, where, secrets, environ) for name, table in _tables(path).items()}


def _tables(path: Path) -> dict[str, Any]:
    """The ``[targets.NAME]`` tables of a targets file, as written (nothing expanded yet)."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(where, "", "file not found; create it or pass --staging-targets-file=PATH") from None
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read it ({exc.strerror or exc}); check its permissions") from None
    toml = tomllib()
    try:
        data = toml.loads(raw.decode("utf-8"))
    except (toml.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(where, "", f"not valid TOML ({exc}); fix the syntax") from None
    extra = set(data) - {"targets"}
    if extra:
        raise ConfigError(where, sorted(extra)[0], "unknown top-level key; targets go in [targets.NAME] tables")
    tables = data.get("targets", {})
    if not isinstance(tables, dict):
        raise ConfigError(where, "targets", "must be a table of [targets.NAME] tables")
    return tables


def find_target(
    path: Path, name: str, source: str, secrets: set[str], environ: Mapping[str, str] = os.environ
) -> Target:
    """Target ``name`` of the targets file at ``path``; ``source`` says where the name came from
    (an option, a variable, an ini key) for the messages. Only this target's ``${VAR}`` need be
    set: a CI job for one environment has only that environment's secrets."""
    url_hint = (
        f"; for a URL, write http://{masked(name)}"
        if re.match(_LOOKS_LIKE_HOST, name) and ("." in name or ":" in name)
        else ""
    )
    if not path.exists():
        raise ConfigError(
            str(path),
            "",
            f"{source} names target {masked(name)!r} but this targets file does not exist; "
            f"create it, pass --staging-targets-file, or give a URL{url_hint}",
        )
    tables = _tables(path)
    if name not in tables:
        known = ", ".join(sorted(tables)) or "none"
        raise ConfigError(
            str(path), f"targets.{masked(name)}", f"no such target (from {source}); known targets: {known}{url_hint}"
        )
    return _parse_target(name, tables[name], str(path), secrets, environ)


def _parse_target(name: str, table: Any, where: str, secrets: set[str], environ: Mapping[str, str]) -> Target:
    prefix = f"targets.{name}"
    if not isinstance(table, dict):
        raise ConfigError(where, prefix, "must be a table ([targets.NAME] with url = ...)")
    for key in table:
        if key not in _FIELDS:
            known = ", ".join(_FIELDS)
            raise ConfigError(where, f"{prefix}.{key}", f"unknown field; known fields: {known}")

    def text(key: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise ConfigError(where, f"{prefix}.{key}", f"missing; set it to {_FIELDS[key]}")
            return None
        if not isinstance(value, str):
            raise ConfigError(where, f"{prefix}.{key}", f"expected a string ({_FIELDS[key]}), got {value!r}")
        return expand(value, where, f"{prefix}.{key}", secrets, environ)

    url = text("url", required=True)
    assert url is not None
    # Complain about the URL as written, so an expanded secret never reaches the message.
    if not re.search(_VAR, table["url"]):
        check_url(url, where, f"{prefix}.url")
    elif not is_http_url(url):
        shown = without_userinfo(table["url"])
        raise ConfigError(where, f"{prefix}.url", f"{shown!r} does not expand to an http(s) URL")
    url, authorization = split_userinfo(url, secrets)

    sensitive = table.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise ConfigError(where, f"{prefix}.sensitive", f"expected true or false, got {sensitive!r}")

    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(where, f"{prefix}.timeout", f"expected {_FIELDS['timeout']}, got {timeout!r}")

    headers_raw = table.get("headers", {})
    if not isinstance(headers_raw, dict):
        raise ConfigError(where, f"{prefix}.headers", 'expected a table, e.g. { Authorization = "Bearer ${TOKEN}" }')
    headers = {}
    for key, value in headers_raw.items():
        if not isinstance(value, str):
            raise ConfigError(where, f"{prefix}.headers.{key}", f"expected a string, got {value!r}")
        headers[key] = expand(value, where, f"{prefix}.headers.{key}", secrets, environ)

    if authorization and not any(key.lower() == "authorization" for key in headers):
        headers["Authorization"] = authorization
    version_url = text("version_url")
    version_authorization = None
    if version_url is not None and is_http_url(version_url):
        version_url, version_authorization = split_userinfo(version_url, secrets)
    elif version_url is not None and without_userinfo(version_url) != version_url:
        shown = without_userinfo(table["version_url"])
        raise ConfigError(
            where, f"{prefix}.version_url", f"{shown!r} is not an http(s) URL; write it as /path or https://host/path"
        )

    pointer = text("version_pointer")
    if pointer is not None and pointer != "" and not pointer.startswith("/"):
        raise ConfigError(where, f"{prefix}.version_pointer", f"{pointer!r} is not a JSON pointer; start it with '/'")

    return Target(
        name=name,
        url=url,
        environment=text("environment") or "unspecified",
        sensitive=sensitive,
        timeout=float(timeout),
        headers=headers,
        version_url=version_url,
        version_pointer=pointer,
        source=where,
        version_authorization=version_authorization,
        databases=_databases(table.get("databases", {}), where, f"{prefix}.databases", secrets, environ),
    )


def _databases(raw: Any, where: str, field: str, secrets: set[str], environ: Mapping[str, str]) -> dict[str, str]:
    """``[targets.NAME.databases]``: alias -> SQLAlchemy URL, ``${VAR}`` expanded; the password
    of each URL's user info is a secret (the URL itself goes to SQLAlchemy whole)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            where, field, 'expected a table, e.g. { orders = "postgresql+psycopg://gate:${DB_PASSWORD}@db/orders" }'
        )
    databases = {}
    for alias, value in raw.items():
        if not re.match(_ALIAS, alias):
            raise ConfigError(where, f"{field}.{alias}", "not a usable alias; use letters, digits, '_', '.' or '-'")
        if not isinstance(value, str):
            raise ConfigError(
                where, f"{field}.{alias}", f"expected a SQLAlchemy URL string, got {type(value).__name__}"
            )
        url = expand(value, where, f"{field}.{alias}", secrets, environ)
        parsed = re.match(_DATABASE_URL, url)
        port = parsed["port"] if parsed else None
        if parsed is None or (port and not port.isdigit()):
            # Shown as written, without its user info: neither an expanded secret nor a password.
            hint = "; percent-encode '/', '?', '#' and '@' in a password" if "@" in value else ""
            raise ConfigError(
                where,
                f"{field}.{alias}",
                f"{masked(without_userinfo(value))!r} is not a SQLAlchemy URL; write it as "
                f"dialect+driver://user:password@host[:port]/database or sqlite:///path{hint}",
            )
        userinfo = (parsed["userinfo"] or "")[:-1]
        password = userinfo.partition(":")[2]
        for secret in (password, unquote(password)):
            if len(secret) >= MIN_SECRET_LENGTH:
                secrets.add(secret)
        databases[alias] = url
    return databases


def join_url(base: str, url: str) -> str:
    """``url`` if absolute, else appended to ``base`` keeping its path (``/api`` + ``/x`` = ``/api/x``)."""
    if urlsplit(url).scheme:
        return url
    return base.rstrip("/") + "/" + url.lstrip("/")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901 JSON pointer lookup; raises KeyError naming the missing part."""
    if pointer == "":
        return document
    current = document
    for part in pointer[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise KeyError(part)
    return current
