"""The ``pytest-staging`` command line (also ``python -m pytest_staging``).

Exit status: 0 success; 1 the verdict failed verification or an expectation (one line on stderr
says why); 2 a usage mistake (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError

DECISIONS = ("PROMOTE", "HOLD", "REJECT")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Clock skew tolerated between the gate's machine and the verifier's.
FUTURE_SKEW = dt.timedelta(minutes=5)


class Failed(Exception):
    """Verification failed; the message is the one line printed."""


def duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1h30m`` → timedelta (argparse type)."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 2h, 7d or 1h30m")
    return dt.timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def subject(text: str) -> tuple[str, str]:
    from .verdict.statement import parse_subject

    parsed = parse_subject(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME@sha256:HEX (64 lowercase hex digits)")
    return parsed.name, parsed.sha256


def decision(text: str) -> str:
    if text.upper() not in DECISIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(DECISIONS)}")
    return text.upper()


def expected_decision(text: str) -> str:
    """A decision ``verify`` accepts: PROMOTE, HOLD, REJECT, or ``any``."""
    return "any" if text.strip().lower() == "any" else decision(text)


def trace_url(text: str) -> str:
    from .report import trace_url_problem

    problem = trace_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-staging",
        description="Create keys for, verify and show the promotion verdicts written by the pytest-staging gate.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-staging {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = commands.add_parser("keygen", help="write a new Ed25519 key pair for signing verdicts")
    keygen.add_argument(
        "--out",
        default="staging-signing",
        metavar="PREFIX",
        help="write PREFIX.key (private, mode 0600) and PREFIX.pub (public); default staging-signing",
    )
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")

    verify = commands.add_parser(
        "verify",
        help="check a verdict's signature and expectations (by default: PROMOTE); exit 0 only if all hold",
        description="Verify the DSSE signature over the exact payload bytes with the given public key, "
        "then check each expectation. The decision must be PROMOTE unless --expect says otherwise, so a "
        "pipeline that checks the exit status never promotes a HOLD or a REJECT. Prints one line; "
        "exit 0 only if everything holds.",
    )
    verify.add_argument("file", metavar="FILE", help="the verdict (DSSE envelope JSON)")
    verify.add_argument("--key", required=True, metavar="PUB", help="Ed25519 public key (PEM) of the gate")
    verify.add_argument(
        "--expect",
        type=expected_decision,
        action="append",
        metavar="DECISION",
        help="accept this decision: PROMOTE (the default), HOLD, REJECT, or any; repeatable (any one of them)",
    )
    verify.add_argument(
        "--subject",
        type=subject,
        action="append",
        default=[],
        metavar="NAME@sha256:HEX",
        help="require this subject (name and digest) in the statement; repeatable",
    )
    verify.add_argument(
        "--max-age", type=duration, metavar="DURATION", help="require timeVerified within this age (90s, 30m, 2h, 7d)"
    )

    quarantine = commands.add_parser("quarantine", help="quarantine helpers")
    quarantine_commands = quarantine.add_subparsers(dest="quarantine_command", metavar="COMMAND", required=True)
    suggest = quarantine_commands.add_parser(
        "suggest",
        help="propose quarantine entries to add, retire and renew from past verdicts",
        description="Read past verdicts, compute each test's flip rate (flips / (runs - 1)) and failure rate, "
        "and print ready-to-paste staging-quarantine.toml entries for flaky tests, plus quarantined tests "
        "that passed in each of the last K runs (retire) and expired entries.",
    )
    suggest.add_argument("verdicts", nargs="+", metavar="VERDICT", help="verdict files, in any order (sorted by timeVerified)")
    suggest.add_argument("--key", metavar="PUB", help="verify each verdict with this public key first (skip none)")
    suggest.add_argument("--threshold", type=float, default=0.2, help="flip rate from which to suggest (default 0.2)")
    suggest.add_argument("--min-runs", type=int, default=3, help="runs a test needs before it is judged (default 3)")
    suggest.add_argument("--retire-after", type=int, default=5, metavar="K", help="retire after K passing runs (default 5)")
    suggest.add_argument("--owner", default="TODO-owner", help="owner for the suggested entries")
    suggest.add_argument("--days", type=int, default=30, help="until = today + DAYS (default 30)")

    report = commands.add_parser(
        "report",
        help="render a verdict as one self-contained HTML file",
        description="Render the verdict alone into an HTML report (no network, no script): decision and reasons, "
        "signature status, tiers, failing, flaky and quarantined tests, baseline metrics with charts, load runs, SLIs.",
    )
    report.add_argument("file", metavar="VERDICT")
    report.add_argument("--html", required=True, metavar="OUT", help="where to write the HTML report")
    report.add_argument("--key", metavar="PUB", help="verify the signature with this public key and show the result")
    report.add_argument(
        "--trace-url", type=trace_url, metavar="TEMPLATE", help="link the trace id, e.g. https://tracing.example/trace/{trace_id}"
    )

    show = commands.add_parser("show", help="print a human summary of a verdict")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--format", choices=("text", "markdown"), default="text")
    show.add_argument("--key", metavar="PUB", help="also verify the signature with this public key and say so")

    worker = commands.add_parser(
        "load-worker",
        help="run a locust worker for a gate started with --staging-load-workers (on this or another machine)",
    )
    worker.add_argument("locustfile", metavar="LOCUSTFILE", help="the same locustfile the gate's load test runs")
    worker.add_argument("--master-host", required=True, help="host of the machine running the gate (the locust master)")
    worker.add_argument("--master-port", type=int, default=5557, help="the master's port (default 5557)")
    worker.add_argument("--processes", type=int, default=0, help="run this many worker processes (locust --processes)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        commands = {
            "keygen": cmd_keygen,
            "verify": cmd_verify,
            "show": cmd_show,
            "report": cmd_report,
            "quarantine": cmd_quarantine,
            "load-worker": cmd_load_worker,
        }
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"pytest-staging {args.command}: {exc.where}: {exc.problem}", file=sys.stderr)
        return 2
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `pytest-staging show ... | head`: the reader has all it wants
        # Python flushes stdout again at exit: point it at /dev/null so that flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_load_worker(args: argparse.Namespace) -> int:
    """``python -m locust --worker`` with the gate's helper loaded: the master sends it the target
    and its headers when it connects, and it stops when the master's run ends."""
    import importlib.util
    import subprocess

    from .load import HELPER

    if importlib.util.find_spec("locust") is None:
        raise ConfigError("load-worker", "", "locust is not installed; install pytest-staging[load]")
    command = [sys.executable, "-m", "locust", "-f", f"{args.locustfile},{HELPER}", "--worker",
               "--master-host", args.master_host, "--master-port", str(args.master_port)]
    if args.processes:
        command += ["--processes", str(args.processes)]
    return subprocess.call(command)


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    from .verdict.dsse import keyid

    private_path, public_path = Path(f"{args.out}.key"), Path(f"{args.out}.pub")
    for path in (private_path, public_path):
        if path.exists() and not args.force:
            raise ConfigError(str(path), "", "exists; pass --force to overwrite or --out to choose another name")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    private_path.unlink(missing_ok=True)
    # Created 0600 from the start: the private key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    print(f"private key: {private_path} (mode 0600; keep it secret: --staging-signing-key or STAGING_SIGNING_KEY)")
    print(f"public key:  {public_path} (give it to release tooling: pytest-staging verify --key)")
    print(f"keyid:       {keyid(key.public_key())}")
    return 0


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the {what} ({exc.strerror or exc})") from None


def load_statement(payload: bytes) -> dict[str, Any]:
    """Parse a payload (an older verdict's reasons brought to today's shape) and check it
    against the shipped JSON Schema."""
    import jsonschema

    from .verdict.files import upgrade

    try:
        statement = upgrade(json.loads(payload.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise Failed("the payload is not UTF-8 JSON") from None
    schema = json.loads(resources.files("pytest_staging.verdict").joinpath("schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(statement))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise Failed(f"the payload is not a promotion verdict: {where}: {error.message}")
    return statement


def _envelope(path: str) -> dict[str, Any]:
    raw = _read(path, "verdict")
    try:
        document = json.loads(raw)
    except ValueError:
        raise Failed(f"{path} is not JSON") from None
    if not isinstance(document, dict):
        raise Failed(f"{path} is not a DSSE envelope")
    return document


def verified_statement(path: str, key_path: str) -> tuple[dict[str, Any], str]:
    from .verdict.dsse import VerificationError, keyid, load_public_key, verify

    public_key = load_public_key(_read(key_path, "public key"), key_path)
    try:
        payload = verify(_envelope(path), public_key)
    except VerificationError as exc:
        raise Failed(str(exc)) from None
    return load_statement(payload), keyid(public_key)


def cmd_verify(args: argparse.Namespace) -> int:
    statement, key = verified_statement(args.file, args.key)
    predicate = statement["predicate"]
    expected = args.expect or ["PROMOTE"]
    if "any" not in expected and predicate["decision"] not in expected:
        from .verdict.files import reason_texts

        reasons = "; ".join(reason_texts(predicate))
        raise Failed(f"decision is {predicate['decision']}, expected {' or '.join(expected)} ({reasons})")
    subjects = {(s["name"], s["digest"]["sha256"]) for s in statement["subject"]}
    for name, digest in args.subject:
        if (name, digest) not in subjects:
            raise Failed(f"subject {name}@sha256:{digest} is not in the verdict")
    if args.max_age is not None:
        verified_at = dt.datetime.strptime(predicate["timeVerified"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
        now = dt.datetime.now(dt.timezone.utc)
        if verified_at > now + FUTURE_SKEW:
            raise Failed(f"timeVerified {predicate['timeVerified']} is in the future")
        if now - verified_at > args.max_age:
            raise Failed(f"verdict is older than {args.max_age} (timeVerified {predicate['timeVerified']})")
    names = ", ".join(f"{s['name']}@sha256:{s['digest']['sha256']}" for s in statement["subject"])
    print(f"OK: {predicate['decision']} for {names}; signed by {key[:16]}…; verified {predicate['timeVerified']}")
    return 0


def statement_and_signature(path: str, key_path: str | None) -> tuple[dict[str, Any], tuple[str, str]]:
    """The statement, and the signature's status (``verified`` | ``failed`` | ``unchecked`` |
    ``unsigned``) with words for people. A statement whose signature fails is still shown."""
    status = None
    if key_path:  # a verdict whose signature fails is still shown, marked so, and the command fails
        try:
            statement, key = verified_statement(path, key_path)
            return statement, ("verified", f"verified with key {key[:16]}…")
        except Failed as exc:
            status = ("failed", f"NOT VERIFIED: {exc}")
    document = _envelope(path)
    statement = _payload_statement(path, document)
    if status is None:
        signatures = document.get("signatures")
        if isinstance(signatures, list) and signatures:
            status = ("unchecked", f"{len(signatures)} signature(s), not checked (pass --key)")
        else:
            status = ("unsigned", "UNSIGNED")
    return statement, status


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import render
    from .verdict.files import write_atomic

    statement, signature = statement_and_signature(args.file, args.key)
    out = Path(args.html)
    html = rendered(args.file, lambda: render(statement, signature=signature, trace_url=args.trace_url))
    try:
        write_atomic(out, html.encode("utf-8"))
    except OSError as exc:
        raise Failed(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {statement['predicate']['decision']}; signature {signature[1]}")
    return 1 if signature[0] == "failed" else 0


def rendered(path: str, render: Callable[[], str]) -> str:
    """A renderer's output; a verdict it cannot render (valid, but shaped unlike ours) is one line."""
    try:
        return render()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise Failed(f"cannot render {path}: {type(exc).__name__}: {exc}") from None


def cmd_show(args: argparse.Namespace) -> int:
    from .report.text import baseline_lines, flaky_quarantine_lines, markdown, summary_lines

    statement, signature = statement_and_signature(args.file, args.key)
    if args.format == "markdown":
        sys.stdout.write(rendered(args.file, lambda: markdown(statement, signature=signature)))
    else:
        lines = rendered(args.file, lambda: "\n".join(flaky_quarantine_lines(statement) + baseline_lines(statement) + summary_lines(statement)))
        print(lines)
        print(f"signature: {signature[1]}")
    # With --key, a signature that does not verify is a failure, whatever the verdict claims.
    return 1 if signature[0] == "failed" else 0


def _payload_statement(path: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    """The statement in an envelope, schema-checked but NOT signature-checked."""
    import base64
    import binascii

    document = document if document is not None else _envelope(path)
    try:
        payload = base64.b64decode(str(document.get("payload", "")), validate=True)
    except binascii.Error:
        raise Failed(f"{path}: payload is not base64") from None
    return load_statement(payload)


def cmd_quarantine(args: argparse.Namespace) -> int:
    from .flips import suggest

    statements = []
    for path in args.verdicts:
        if args.key:
            try:
                statement, _ = verified_statement(path, args.key)
            except Failed as exc:
                raise Failed(f"{path}: {exc}") from None
        else:
            statement = _payload_statement(path)
        statements.append(statement)
    today = dt.datetime.now(dt.timezone.utc).date()
    sys.stdout.write(
        suggest(
            statements,
            threshold=args.threshold,
            min_runs=args.min_runs,
            retire_after=args.retire_after,
            owner=args.owner,
            until=today + dt.timedelta(days=args.days),
            verified=bool(args.key),
        )
    )
    return 0
