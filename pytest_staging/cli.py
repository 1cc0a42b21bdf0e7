"""The ``pytest-staging`` command line (also ``python -m pytest_staging``).

Exit status: 0 success; 1 the verdict (or its approval) failed verification or an expectation, or
``approve`` refused the file (one line on stderr says why); 2 a usage mistake (bad arguments, unreadable file); ``merge`` exits 6 when the merged
decision is not PROMOTE.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .core.errors import ConfigError
from .options import VERDICT_FILE

DECISIONS = ("PROMOTE", "HOLD", "REJECT")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Clock skew tolerated between the gate's machine and the verifier's.
FUTURE_SKEW = dt.timedelta(minutes=5)


class Failed(Exception):
    """Verification failed; each argument is one line printed (one per unmet expectation)."""


def duration(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1h30m`` → timedelta (argparse type)."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 2h, 7d or 1h30m")
    try:
        return dt.timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than any date can say") from None


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


def digest(text: str) -> str:
    """``sha256:HEX`` → HEX (lowercase)."""
    algorithm, _, value = text.strip().partition(":")
    if algorithm.lower() != "sha256" or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise argparse.ArgumentTypeError(f"{text!r} is not sha256:HEX (64 hex digits)")
    return value.lower()


def tier(text: str) -> str:
    from .core.tiers import TIERS

    if text.strip().lower() not in TIERS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(TIERS)}")
    return text.strip().lower()


def expected_decision(text: str) -> str:
    """A decision ``verify`` accepts: PROMOTE, HOLD, REJECT, or ``any``."""
    return "any" if text.strip().lower() == "any" else decision(text)


def trace_url(text: str) -> str:
    from .report import trace_url_problem

    problem = trace_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


#: The longest an approval may last: a sign-off is for a release, not a standing exemption.
LONGEST_APPROVAL = dt.timedelta(days=366)


def positive_duration(text: str) -> dt.timedelta:
    value = duration(text)
    if value <= dt.timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration longer than zero")
    if value > LONGEST_APPROVAL:
        raise argparse.ArgumentTypeError(
            f"{text!r} is longer than {LONGEST_APPROVAL.days}d, the longest an approval lasts"
        )
    return value


def one_line(text: str) -> str:
    """Text a person wrote for the record: one line, not blank (it is shown in terminals and reports)."""
    from .verdict.approval import line_problem

    problem = line_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def add_approval_options(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--approval",
        metavar="FILE",
        help=f"{what}; written by pytest-staging approve (--approval staging-verdict.intoto.approval.json)",
    )
    command.add_argument(
        "--approver-key",
        action="append",
        default=[],
        metavar="PUB",
        help="an approver's Ed25519 public key (PEM), never the gate's; repeatable: an approval signed by any "
        "of them will do (--approver-key approvers/alice.pub)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-staging",
        description="Create keys for, verify, approve, merge and show the promotion verdicts written by the "
        "pytest-staging gate.",
    )
    parser.add_argument("--version", action="version", version=f"pytest-staging {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = commands.add_parser(
        "keygen", help="write a new Ed25519 key pair: the gate's, to sign verdicts, or an approver's, to sign approvals"
    )
    keygen.add_argument(
        "--out",
        default="staging-signing",
        metavar="PREFIX",
        help="write PREFIX.key (private, mode 0600) and PREFIX.pub (public); default staging-signing",
    )
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")

    approve = commands.add_parser(
        "approve",
        help="sign off a HOLD verdict as a person: write an approval attestation bound to that verdict file",
        description="""\
Write an approval: a DSSE envelope, signed with the approver's own Ed25519 key, over an in-toto
statement whose subject is the verdict file (the sha256 of its bytes) and the verdict's subjects.
`verify --approval FILE --approver-key PUB` then accepts that HOLD where PROMOTE is expected. Only a
signed HOLD can be approved: a REJECT, a PROMOTE or a file that is not a verdict is refused (exit 1,
nothing written). The approver's key must not be the gate's: the gate never approves itself.""",
        epilog="""example:
  pytest-staging keygen --out approvers/alice
  pytest-staging approve staging-verdict.intoto.json --key approvers/alice.key --by "Alice Example" \\
      --reason "baseline inconclusive after the CDN change; latency checked by hand (INC-1234)" --expires 24h
  pytest-staging verify staging-verdict.intoto.json --key gate.pub \\
      --approval staging-verdict.intoto.approval.json --approver-key approvers/alice.pub""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    approve.add_argument(
        "file", metavar="VERDICT", help="the HOLD verdict to approve, e.g. staging-verdict.intoto.json"
    )
    approve.add_argument(
        "--key",
        metavar="APPROVER.key",
        help="the approver's Ed25519 private key (PEM, as `pytest-staging keygen` writes); or the PEM text in "
        "env STAGING_APPROVER_KEY",
    )
    approve.add_argument(
        "--by", required=True, type=one_line, metavar="NAME", help='who approves, e.g. --by "Alice Example"'
    )
    approve.add_argument(
        "--reason",
        required=True,
        type=one_line,
        metavar="TEXT",
        help='why going ahead without the missing evidence is acceptable, e.g. --reason "load test re-run by hand"',
    )
    approve.add_argument(
        "--expires",
        type=positive_duration,
        metavar="DURATION",
        help="the approval stops counting after this long (--expires 24h; 90s, 30m, 7d, 1h30m); "
        "without it, it does not expire",
    )
    approve.add_argument(
        "--out",
        metavar="PATH",
        help="where to write it (default: the verdict's path with .approval.json in place of .json)",
    )

    verify = commands.add_parser(
        "verify",
        help="check a verdict's signature and expectations (by default: PROMOTE); exit 0 only if all hold",
        description="""\
Verify the DSSE signature over the exact payload bytes with the given public key(s), then check
each expectation against the verified statement. The decision must be PROMOTE unless --expect
says otherwise, so a pipeline that checks the exit status never promotes a HOLD or a REJECT.
Exit 0 only if everything holds; 1 if not (one line on stderr per unmet expectation); 2 for a
usage mistake (bad arguments, unreadable file).""",
        epilog="""examples:
  pytest-staging verify staging-verdict.intoto.json --key gate.pub
  pytest-staging verify staging-verdict.intoto.json --key gate-2024.pub --key gate-2025.pub \\
      --expect PROMOTE --subject-digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 \\
      --environment staging --target https://staging-eu.example.com --release 1.4.2 \\
      --require-tier smoke --require-tier contract --max-age 2h --format json | jq -r .predicate.decision""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument(
        "file", metavar="FILE", help="the verdict (DSSE envelope JSON), e.g. staging-verdict.intoto.json"
    )
    verify.add_argument(
        "--key",
        required=True,
        action="append",
        metavar="PUB",
        help="Ed25519 public key (PEM) of the gate; repeatable for key rotation: a valid signature by any "
        "of them is enough, whatever keyid it names (--key old.pub --key new.pub)",
    )
    verify.add_argument(
        "--expect",
        type=expected_decision,
        action="append",
        metavar="DECISION",
        help="accept this decision: PROMOTE (the default), HOLD, REJECT, or any; repeatable, any one of "
        "them (--expect PROMOTE --expect HOLD)",
    )
    verify.add_argument(
        "--subject",
        type=subject,
        action="append",
        default=[],
        metavar="NAME@sha256:HEX",
        help="require this subject, name and digest; repeatable (--subject registry.example.com/shop@sha256:9f86d0...)",
    )
    verify.add_argument(
        "--subject-digest",
        type=digest,
        action="append",
        default=[],
        metavar="sha256:HEX",
        help="require a subject with this digest, whatever its name; repeatable (--subject-digest sha256:9f86d0...)",
    )
    verify.add_argument(
        "--environment", metavar="ENV", help="require the target's environment to be ENV (--environment staging)"
    )
    verify.add_argument(
        "--target",
        metavar="NAME_OR_URL",
        help="require the target by name or URL; a trailing / and user info in the URL do not matter "
        "(--target staging-eu or --target https://staging-eu.example.com)",
    )
    verify.add_argument(
        "--release",
        metavar="ID",
        help="require the release: release.id, else the version the target's probe reported (--release 1.4.2)",
    )
    verify.add_argument(
        "--require-tier",
        type=tier,
        action="append",
        default=[],
        metavar="TIER",
        help="require that this tier was required and passed; repeatable (--require-tier smoke --require-tier contract)",
    )
    verify.add_argument(
        "--policy-digest",
        type=digest,
        metavar="sha256:HEX",
        help="require the gate's policy digest, as pinned from a verdict you trust (--policy-digest sha256:5d41...)",
    )
    verify.add_argument(
        "--max-age",
        type=duration,
        metavar="DURATION",
        help="require timeVerified within this age (--max-age 2h; 90s, 30m, 7d, 1h30m)",
    )
    add_approval_options(
        verify,
        "accept a HOLD where PROMOTE is expected if FILE is a valid, unexpired approval of "
        "exactly this verdict file, signed by an --approver-key",
    )
    verify.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default): one OK line. json: the verified statement on stdout, exactly the signed "
        "payload, nothing on stdout on failure (--format json | jq -r .predicate.release.deployedVersion); "
        'with --approval: {"approval": <its statement>, "verdict": <the verdict\'s>}',
    )

    merge = commands.add_parser(
        "merge",
        help="merge the partial verdicts of a sharded gate (--staging-shard=K/N) into one signed verdict",
        description="""\
Verify every partial verdict with the given public key(s), check that they are the shards 1..N of
one run (each once; the same collection, target, release, subjects and policy), decide over the
union of their tests as one gate run would, and sign and write one verdict. Partials that do not
add up make it a HOLD (shard-missing, shard-duplicated, shard-mismatch). Exit 0 when the merged
decision is PROMOTE, 6 when it is not, 1 when a partial fails verification (nothing is written,
and an earlier verdict at --out is removed), 2 for a usage mistake.""",
        epilog="""example:
  pytest-staging merge partials/shard-*.intoto.json --key gate.pub --signing-key gate.key \\
      --out staging-verdict.intoto.json
  pytest-staging verify staging-verdict.intoto.json --key gate.pub""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    merge.add_argument("partials", nargs="+", metavar="PARTIAL", help="the shards' partial verdicts, in any order")
    merge.add_argument(
        "--key",
        required=True,
        action="append",
        metavar="PUB",
        help="Ed25519 public key (PEM) the partials must verify with; repeatable (any one of them will do)",
    )
    merge.add_argument(
        "--signing-key",
        metavar="KEY",
        help="Ed25519 private key (PEM) that signs the merged verdict; or the PEM text in env STAGING_SIGNING_KEY",
    )
    merge.add_argument(
        "--out",
        default=VERDICT_FILE,
        metavar="PATH",
        help=f"where to write the merged verdict (default {VERDICT_FILE})",
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
    suggest.add_argument(
        "verdicts", nargs="+", metavar="VERDICT", help="verdict files, in any order (sorted by timeVerified)"
    )
    suggest.add_argument(
        "--key",
        metavar="PUB",
        help="verify each verdict with this public key first; one that does not verify stops the "
        "command (without --key the verdicts are read unverified)",
    )
    suggest.add_argument("--threshold", type=float, default=0.2, help="flip rate from which to suggest (default 0.2)")
    suggest.add_argument("--min-runs", type=int, default=3, help="runs a test needs before it is judged (default 3)")
    suggest.add_argument(
        "--retire-after", type=int, default=5, metavar="K", help="retire after K passing runs (default 5)"
    )
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
        "--trace-url",
        type=trace_url,
        metavar="TEMPLATE",
        help="link the trace id, e.g. https://tracing.example/trace/{trace_id}",
    )
    add_approval_options(report, "show this approval of the verdict: who, when, why, until when")

    report.add_argument(
        "--history",
        nargs="+",
        metavar="PATH",
        help="also draw the last runs' decisions and gate durations next to this one, from these verdict "
        "files or directories (searched for *.intoto.json); with --key, only verdicts that verify",
    )

    history = commands.add_parser(
        "history",
        help="the staging SLIs over many verdicts: promotion success, validation pass rate, latency, flakiness",
        description="""\
Read verdict files and directories (searched for *.intoto.json, recursively) one at a time and
report, overall and per environment: runs and decisions, promotion success rate (PROMOTE / runs),
validation pass rate (mean of the runs' rates), promotion latency p50/p95 (timeVerified - the
release's build time, PROMOTE verdicts with --staging-build-time), flakiness rate (mean of the runs'
rates) and the flakiest tests with their quarantine owners, gate duration p50/p95, and the HOLD and
REJECT reasons by code. A shard's partial verdict is not a run: only merged verdicts count.
Exit 0; 1 when a file could not be read or is not a verdict (each is named on stderr; the others
are still reported); 2 for a usage mistake. With --key, verdicts that do not verify are skipped,
counted and named on stderr, and do not change the exit status.""",
        epilog="""examples:
  pytest-staging history verdicts/ --key gate.pub --since 30d
  pytest-staging history verdicts/ --key gate.pub --format openmetrics > /var/lib/node_exporter/staging.prom""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("paths", nargs="+", metavar="PATH", help="verdict files or directories")
    history.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="PUB",
        help="count only verdicts whose signature verifies with this public key (repeatable); the others are "
        "skipped and counted",
    )
    history.add_argument(
        "--since",
        type=duration,
        metavar="DURATION",
        help="count only verdicts verified within this age (--since 30d; 90s, 30m, 2h, 7d, 1h30m)",
    )
    history.add_argument(
        "--format",
        choices=("text", "markdown", "json", "openmetrics"),
        default="text",
        help="text (default); markdown; json; openmetrics: the Prometheus text format on stdout (for "
        "node_exporter's textfile collector or a Pushgateway)",
    )
    history.add_argument("--top", type=int, default=10, metavar="N", help="list the N flakiest tests (default 10)")

    show = commands.add_parser("show", help="print a human summary of a verdict")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--format", choices=("text", "markdown"), default="text")
    show.add_argument("--key", metavar="PUB", help="also verify the signature with this public key and say so")
    add_approval_options(show, "show this approval of the verdict: who, when, why, until when")

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
            "approve": cmd_approve,
            "verify": cmd_verify,
            "show": cmd_show,
            "report": cmd_report,
            "merge": cmd_merge,
            "quarantine": cmd_quarantine,
            "load-worker": cmd_load_worker,
            "history": cmd_history,
        }
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"pytest-staging {args.command}: {exc.where}: {exc.problem}", file=sys.stderr)
        return 2
    except Failed as exc:
        for line in exc.args:
            print(f"FAILED: {line}", file=sys.stderr)
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

    from .fixtures.load import HELPER

    if importlib.util.find_spec("locust") is None:
        raise ConfigError("load-worker", "", "locust is not installed; install pytest-staging[load]")
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{args.locustfile},{HELPER}",
        "--worker",
        "--master-host",
        args.master_host,
        "--master-port",
        str(args.master_port),
    ]
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
    try:
        # A missing directory is made (0700: it holds a private key), as `--out keys/gate` suggests.
        private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_path.unlink(missing_ok=True)
        # Created 0600 from the start: the private key is never readable by others, not even briefly.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        where = exc.filename or private_path
        raise ConfigError(str(where), "", f"cannot write it ({exc.strerror or exc}); choose another --out") from None
    print(f"private key: {private_path} (mode 0600; keep it secret: --staging-signing-key or STAGING_SIGNING_KEY)")
    print(f"public key:  {public_path} (give it to release tooling: pytest-staging verify --key)")
    print(f"keyid:       {keyid(key.public_key())}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Write an approval of a HOLD verdict; refusals exit 1 and write nothing."""
    import time

    from .verdict import dsse
    from .verdict.approval import Refused, approval_statement
    from .verdict.files import envelope_bytes, write_atomic
    from .verdict.statement import payload_bytes

    verdict_path = Path(args.file)
    out = Path(args.out) if args.out else approval_path(verdict_path)
    if out.resolve() == verdict_path.resolve():
        raise ConfigError("--out", "", f"{out} is the verdict itself; the approval needs a file of its own")
    if args.key:
        key = dsse.load_private_key(_read(args.key, "approver's key"), f"--key={args.key}")
    elif os.environ.get("STAGING_APPROVER_KEY", "").strip():
        key = dsse.load_private_key(os.environ["STAGING_APPROVER_KEY"].encode("utf-8"), "STAGING_APPROVER_KEY")
    else:
        raise ConfigError("--key", "", "no approver's key; pass --key=APPROVER.key or set STAGING_APPROVER_KEY")
    raw = _read(args.file, "verdict")
    try:
        statement = approval_statement(
            raw, verdict_path.name, approver=args.by, reason=args.reason, now=time.time(), expires=args.expires
        )
    except Refused as exc:
        raise Failed(f"{args.file}: {exc}") from None
    try:  # the gate's key never approves (see verdict/approval.py): not even by mistake
        dsse.verify(dsse.parse(raw), [key.public_key()])
    except dsse.VerificationError:
        pass
    else:
        raise Failed(
            f"{args.file}: it is signed with this very key; an approver signs with a key of their own "
            "(pytest-staging keygen --out approver), never the gate's"
        )
    envelope = dsse.envelope(payload_bytes(statement), key)
    try:
        write_atomic(out, envelope_bytes(envelope, base64_payload=True))
    except OSError as exc:
        raise ConfigError("--out", "", f"cannot write {out} ({exc.strerror or exc}); give a writable path") from None
    predicate = statement["predicate"]
    print(f"approved: {args.file} (HOLD) by {predicate['approver']}, key {dsse.keyid(key.public_key())[:16]}…")
    # What was let through, in the verdict's words: the approver sees what they signed off.
    for reason in predicate["verdictReasons"]:
        print(f"  - {reason['text']}")
    print(f"  reason:  {predicate['reason']}")
    print(f"  expires: {predicate['expires'] or 'never'}")
    print(f"approval: {out}")
    print(f"verify:   pytest-staging verify {args.file} --key GATE.pub --approval {out} --approver-key APPROVER.pub")
    return 0


def approval_path(verdict: Path) -> Path:
    """The verdict's path with ``.approval.json`` in place of ``.json`` (appended when it has none)."""
    name = verdict.name.removesuffix(".json") if verdict.name.endswith(".json") else verdict.name
    return verdict.with_name(f"{name}.approval.json")


def checked_approval(args: argparse.Namespace, verdict_raw: bytes, verdict: dict[str, Any]) -> tuple[Any, str, str]:
    """The approval ``--approval`` names, checked against this verdict: (approval, status, words).

    status: ``valid`` (signed by an --approver-key, of exactly this verdict, in force now),
    ``unchecked`` (of this verdict and in force; no --approver-key to check its signature with),
    ``expired``, or ``failed`` (a signature that does not verify, another verdict, an impossible
    date); the words say which. A file that is not an approval at all raises Failed."""
    from .verdict import dsse
    from .verdict.approval import binding_problem, expired, read_approval, time_problem

    path = args.approval
    keys = [dsse.load_public_key(_read(key_path, "approver's public key"), key_path) for key_path in args.approver_key]
    gate_keys = {
        _raw_public(dsse.load_public_key(_read(key_path, "public key"), key_path)) for key_path in _gate_keys(args)
    }
    for key_path, key in zip(args.approver_key, keys, strict=True):
        # A key that signs verdicts is the gate's, given as --key or not: it must not approve them.
        if _raw_public(key) in gate_keys or _signed_by(verdict_raw, key):
            raise ConfigError(
                f"--approver-key={key_path}",
                "",
                "is the gate's key (a --key, or it signed this verdict): the gate must not approve its own "
                "verdicts; give the approvers' keys",
            )
    raw = _read(path, "approval")
    try:
        approval = read_approval(raw, keys)
    except dsse.VerificationError as exc:
        try:  # shown all the same, marked NOT VERIFIED, when it is an approval at all
            unverified = read_approval(raw)
        except dsse.VerificationError:
            raise Failed(f"approval {path}: {exc}") from None
        return unverified, "failed", f"NOT VERIFIED: {exc}"
    problem = binding_problem(approval, verdict_raw, verdict)
    if problem:
        return approval, "failed", f"NOT AN APPROVAL OF THIS VERDICT: {problem}"
    now = dt.datetime.now(dt.timezone.utc)
    problem = time_problem(approval, verdict, now, FUTURE_SKEW)
    if problem:
        return approval, "failed", f"NOT VALID: {problem}"
    ended = expired(approval, now)
    if ended:
        return approval, "expired", f"EXPIRED at {ended}"
    if approval.keyid is None:
        return approval, "unchecked", "signature not checked (pass --approver-key)"
    return approval, "valid", f"verified with approver key {approval.keyid[:16]}…"


def _gate_keys(args: argparse.Namespace) -> list[str]:
    """The gate's public keys given with --key (a list for verify, one or none for show and report)."""
    key = getattr(args, "key", None)
    return [] if key is None else [key] if isinstance(key, str) else list(key)


def _signed_by(verdict_raw: bytes, key: Any) -> bool:
    from .verdict import dsse

    try:
        dsse.verify(dsse.parse(verdict_raw), [key])
    except dsse.VerificationError:
        return False
    return True


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the {what} ({exc.strerror or exc})") from None


def read(path: str, key_paths: Sequence[str] = (), raw: bytes | None = None) -> Any:
    """The verdict at ``path`` (:func:`pytest_staging.verdict.files.read_verdict`), or in ``raw``,
    its bytes read once already; with key paths, a signature by one of those keys must verify.
    Unreadable files are usage errors."""
    from .verdict.dsse import VerificationError, load_public_key
    from .verdict.files import read_verdict

    keys = [load_public_key(_read(key_path, "public key"), key_path) for key_path in key_paths]
    try:
        return read_verdict(_read(path, "verdict") if raw is None else raw, keys)
    except VerificationError as exc:
        raise Failed(str(exc)) from None


def cmd_merge(args: argparse.Namespace) -> int:
    """Verify the partials, merge them, sign and write one verdict; 0 only for a PROMOTE."""
    import hashlib
    import time

    from .report.text import summary_lines
    from .verdict.dsse import VerificationError, load_private_key, load_public_key
    from .verdict.files import read_verdict, remove_envelope
    from .verdict.merge import Given, merge

    out = Path(args.out)
    for path in args.partials:
        if Path(path).resolve() == out.resolve():
            raise ConfigError(
                "--out", "", f"{args.out} is also a partial to merge; give the merged verdict a file of its own"
            )
    try:
        if args.signing_key:
            signing_key = load_private_key(_read(args.signing_key, "signing key"), f"--signing-key={args.signing_key}")
        elif os.environ.get("STAGING_SIGNING_KEY", "").strip():
            signing_key = load_private_key(os.environ["STAGING_SIGNING_KEY"].encode("utf-8"), "STAGING_SIGNING_KEY")
        else:
            raise ConfigError(
                "--signing-key",
                "",
                "no signing key; pass --signing-key=PATH or set STAGING_SIGNING_KEY (a merged verdict is signed)",
            )
        keys = [load_public_key(_read(key_path, "public key"), key_path) for key_path in args.key]
        partials = []
        for path in args.partials:
            raw = _read(path, "partial verdict")
            try:
                statement = read_verdict(raw, keys).statement
            except VerificationError as exc:
                raise Failed(f"{path}: {exc}; nothing merged") from None
            partials.append(Given(path, hashlib.sha256(raw).hexdigest(), statement))
    except (ConfigError, Failed):
        # No earlier verdict at --out may outlive a merge that failed: it is not this merge's.
        remove_envelope(out)
        raise
    try:
        issued, decision = merge(partials, path=out, signing_key=signing_key, now=time.time())
    except OSError as exc:
        remove_envelope(out)
        raise ConfigError(
            "--out", "", f"cannot write {args.out} ({exc.strerror or exc}); give a writable path"
        ) from None
    indices = sorted(
        {entry["index"] for entry in issued.statement["predicate"]["shards"] if entry["index"] is not None}
    )
    print(f"merged {len(partials)} partial verdicts (shards {', '.join(map(str, indices)) or 'none'}):")
    print("\n".join(summary_lines(issued.statement, path=out, keyid=issued.keyid, public_key=args.key[0])))
    return 0 if decision.decision == "PROMOTE" else 6


def cmd_verify(args: argparse.Namespace) -> int:
    # Read once: the approval is checked against the very bytes whose signature verified.
    raw = _read(args.file, "verdict")
    verdict = read(args.file, args.key, raw)
    approval = None
    if args.approval is not None or args.approver_key:
        if args.approval is None or not args.approver_key:
            raise ConfigError(
                "--approval" if args.approval is None else "--approver-key",
                "",
                "--approval FILE and --approver-key PUB go together: an approval counts only when its signer is trusted",
            )
        approval, status, words = checked_approval(args, raw, verdict.statement)
        if status != "valid":
            raise Failed(f"approval {args.approval}: {words}")
    unmet = unmet_expectations(verdict.statement, args, approved=approval is not None)
    if unmet:
        raise Failed(*unmet)
    if args.format == "json":
        # The exact bytes the signatures cover: tooling never parses anything but what was verified.
        if approval is None:
            sys.stdout.buffer.write(verdict.payload + b"\n")
        else:
            sys.stdout.buffer.write(b'{"approval":' + approval.payload + b',"verdict":' + verdict.payload + b"}\n")
        return 0
    statement, predicate = verdict.statement, verdict.statement["predicate"]
    line = f"OK: {predicate['decision']} for {_subjects(statement)}; signed by {verdict.keyid[:16]}…; verified {predicate['timeVerified']}"
    if approval is not None:
        from .verdict.approval import described

        line += f"; approved by {described(approval.predicate)}; approval signed by {approval.keyid[:16]}…"
    print(line)
    return 0


def unmet_expectations(statement: dict[str, Any], args: argparse.Namespace, *, approved: bool = False) -> list[str]:
    """One line per expectation of ``verify`` the (verified) statement does not meet: what the
    verdict holds, and what was expected. ``approved``: a valid approval of this HOLD was given,
    which makes it meet an expected PROMOTE too."""
    from .verdict.files import reason_texts

    predicate = statement["predicate"]
    unmet = []
    expected = args.expect or ["PROMOTE"]
    accepted = (
        {predicate["decision"], "PROMOTE"} if approved and predicate["decision"] == "HOLD" else {predicate["decision"]}
    )
    if "any" not in expected and not accepted & set(expected):
        reasons = "; ".join(reason_texts(predicate))
        unmet.append(f"decision is {predicate['decision']}, expected {' or '.join(expected)} ({reasons})")
    subjects = {(s["name"], s["digest"]["sha256"]) for s in statement["subject"]}
    for name, hexdigest in args.subject:
        if (name, hexdigest) not in subjects:
            unmet.append(
                f"subject {name}@sha256:{hexdigest} is not in the verdict (its subjects: {_subjects(statement)})"
            )
    for hexdigest in args.subject_digest:
        if not any(hexdigest == held for _, held in subjects):
            unmet.append(f"no subject has digest sha256:{hexdigest} (the verdict's subjects: {_subjects(statement)})")
    target = predicate.get("target") or {}
    if args.environment is not None and target.get("environment") != args.environment:
        unmet.append(f"environment is {target.get('environment', 'not named')}, expected {args.environment}")
    if args.target is not None and not _same_target(args.target, target):
        held = f"{target.get('name')} ({target.get('url')})" if target else "not named"
        unmet.append(f"target is {held}, expected {args.target}")
    if args.release is not None:
        release = predicate.get("release") or {}
        held_release, where = (
            (release.get("id"), "release.id")
            if release.get("id") is not None
            else (release.get("deployedVersion"), "deployedVersion")
        )
        if held_release != args.release:
            shown = (
                f"{held_release} ({where})"
                if held_release is not None
                else "unknown (no release.id, no deployedVersion)"
            )
            unmet.append(f"release is {shown}, expected {args.release}")
    for name in args.require_tier:
        result = predicate["tiers"].get(name) or {}
        if not (result.get("required") and result.get("result") == "passed"):
            required = "required" if result.get("required") else "optional"
            unmet.append(
                f"tier {name} is {required} and {result.get('result', 'absent')}, expected required and passed"
            )
    if args.policy_digest is not None:
        held_digest = (predicate["policy"].get("digest") or {}).get("sha256")
        if held_digest != args.policy_digest:
            unmet.append(f"policy digest is sha256:{held_digest}, expected sha256:{args.policy_digest}")
    if args.max_age is not None:
        from .verdict.statement import from_iso

        verified_at = from_iso(predicate["timeVerified"])
        now = dt.datetime.now(dt.timezone.utc)
        if verified_at > now + FUTURE_SKEW:
            unmet.append(
                f"timeVerified {predicate['timeVerified']} is in the future, expected within the last {args.max_age}"
            )
        elif now - verified_at > args.max_age:
            unmet.append(f"verdict is older than {args.max_age} (timeVerified {predicate['timeVerified']})")
    return unmet


def _subjects(statement: dict[str, Any]) -> str:
    return ", ".join(f"{s['name']}@sha256:{s['digest']['sha256']}" for s in statement["subject"])


def _same_target(wanted: str, target: dict[str, Any]) -> bool:
    """``wanted`` names the target, or is its URL: a trailing ``/``, user info (never in a
    verdict) and the case of the scheme and host do not matter."""
    if not target:
        return False
    if wanted.rstrip("/") == str(target.get("name", "")).rstrip("/"):
        return True
    return _comparable_url(wanted) == _comparable_url(str(target.get("url", "")))


def _comparable_url(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url.rstrip("/")
    host = parts.netloc.rpartition("@")[2].lower()
    return parts._replace(scheme=parts.scheme.lower(), netloc=host, path=parts.path.rstrip("/")).geturl()


def statement_and_signature(path: str, key_path: str | None, raw: bytes) -> tuple[dict[str, Any], tuple[str, str]]:
    """The statement in ``raw`` (the file at ``path``, read once), and the signature's status
    (``verified`` | ``failed`` | ``unchecked`` | ``unsigned``) with words for people. A statement
    whose signature fails is still shown."""
    status = None
    if key_path:  # a verdict whose signature fails is still shown, marked so, and the command fails
        try:
            verdict = read(path, [key_path], raw)
            return verdict.statement, ("verified", f"verified with key {verdict.keyid[:16]}…")
        except Failed as exc:
            status = ("failed", f"NOT VERIFIED: {exc}")
    verdict = read(path, (), raw)
    if status is None:
        if verdict.signatures:
            status = ("unchecked", f"{verdict.signatures} signature(s), not checked (pass --key)")
        else:
            status = ("unsigned", "UNSIGNED")
    return verdict.statement, status


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import render
    from .verdict.files import write_atomic

    raw = _read(args.file, "verdict")
    statement, signature = statement_and_signature(args.file, args.key, raw)
    approval = shown_approval(args, raw, statement)
    out = Path(args.html)
    history = _recent_runs(args.file, args.history, args.key) if args.history else None
    html = rendered(
        args.file,
        lambda: render(statement, signature=signature, trace_url=args.trace_url, approval=approval, history=history),
    )
    try:
        write_atomic(out, html.encode("utf-8"))
    except OSError as exc:
        raise Failed(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {statement['predicate']['decision']}; signature {signature[1]}")
    if approval is not None:
        print(f"approval: {approval['status']}: {approval['words']}")
    return 1 if "failed" in (signature[0], approval and approval["status"]) else 0


def shown_approval(args: argparse.Namespace, raw: bytes, statement: dict[str, Any]) -> dict[str, Any] | None:
    """What ``show`` and ``report`` display of ``--approval``: its predicate, with ``status`` and
    ``words`` (:func:`checked_approval`); None without one."""
    if args.approval is None:
        if args.approver_key:
            raise ConfigError("--approver-key", "", "checks an approval; give the approval too (--approval FILE)")
        return None
    approval, status, words = checked_approval(args, raw, statement)
    return {**approval.predicate, "status": status, "words": words}


#: Earlier runs the report's history chart draws.
RECENT_RUNS = 20


def _recent_runs(path: str, paths: Sequence[str], key_path: str | None) -> list[Any]:
    """The last runs among the verdicts under ``paths`` (with --key: those that verify), less the
    verdict the report is about; files that cannot be read are named on stderr and left out."""
    from .verdict.dsse import load_public_key
    from .verdict.history import read_history

    keys = [load_public_key(_read(key_path, "public key"), key_path)] if key_path else []
    read = read_history(paths, keys, recent=RECENT_RUNS + 1)
    for skipped in read.unverified + read.unreadable:
        print(f"history: left out {skipped.path}: {skipped.why}", file=sys.stderr)
    itself = Path(path).resolve()
    runs = [run for run in read.history.recent if Path(run.source).resolve() != itself]
    return runs[-RECENT_RUNS:]


def rendered(path: str, render: Callable[[], str]) -> str:
    """A renderer's output; a verdict it cannot render (valid, but shaped unlike ours) is one line."""
    try:
        return render()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise Failed(f"cannot render {path}: {type(exc).__name__}: {exc}") from None


#: What ``show`` adds to a decision its signature does not prove.
_UNPROVEN = {
    "failed": " (NOT VERIFIED: the signature does not match; do not act on it)",
    "unchecked": " (signature not checked: pass --key)",
    "unsigned": " (unsigned: nothing proves it)",
}


def cmd_show(args: argparse.Namespace) -> int:
    from .report.text import baseline_lines, flaky_quarantine_lines, markdown, summary_lines

    raw = _read(args.file, "verdict")
    statement, signature = statement_and_signature(args.file, args.key, raw)
    approval = shown_approval(args, raw, statement)
    if args.format == "markdown":
        sys.stdout.write(rendered(args.file, lambda: markdown(statement, signature=signature, approval=approval)))
    else:
        # The signature first: a decision is worth only what its signature proves.
        label = _UNPROVEN.get(signature[0], "")

        def text() -> str:
            summary = [line + label if line.startswith("decision: ") else line for line in summary_lines(statement)]
            return "\n".join(flaky_quarantine_lines(statement) + baseline_lines(statement) + summary)

        lines = rendered(args.file, text)
        print(f"signature: {signature[1]}")
        if approval is not None:
            print(f"approval:  {approval_words(approval)}")
        print(lines)
    # With --key, a signature that does not verify is a failure, whatever the verdict claims; so is
    # an approval that is not one of this verdict, or whose signature does not verify.
    return 1 if "failed" in (signature[0], approval and approval["status"]) else 0


def approval_words(approval: dict[str, Any]) -> str:
    """An approval as ``show`` prints it: who, when, until when, why, and its status."""
    from .verdict.approval import described

    return f"{approval['verdictDecision']} approved by {described(approval)} [{approval['words']}]"


def cmd_quarantine(args: argparse.Namespace) -> int:
    from .core.flips import suggest

    statements = []
    for path in args.verdicts:
        try:
            statements.append(read(path, [args.key] if args.key else []).statement)
        except Failed as exc:
            raise Failed(f"{path}: {exc}") from None
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


def cmd_history(args: argparse.Namespace) -> int:
    """The SLIs over the verdicts under the PATHs; 1 when a file could not be read (named on stderr)."""
    import json
    import time

    from .report.history import markdown, text
    from .report.openmetrics import render
    from .verdict.dsse import load_public_key
    from .verdict.history import read_history

    keys = [load_public_key(_read(key_path, "public key"), key_path) for key_path in args.key]
    since = time.time() - args.since.total_seconds() if args.since is not None else None
    read = read_history(args.paths, keys, since=since)
    for skipped in read.unverified:
        print(f"skipped (does not verify): {skipped.path}: {skipped.why}", file=sys.stderr)
    for skipped in read.unreadable:
        print(f"ERROR: {skipped.path}: {skipped.why}", file=sys.stderr)
    if args.format == "openmetrics":
        sys.stdout.write(render(read.history))
    elif args.format == "json":
        document = {
            "verdicts": {
                "read": read.verdicts,
                "counted": read.history.overall.runs,
                "partialShards": read.history.partials,
                "older": read.history.older,
                "unverified": len(read.unverified),
                "unreadable": [skipped.path for skipped in read.unreadable],
                "otherAttestations": read.others,
            },
            **read.history.to_dict(args.top),
        }
        print(json.dumps(document, indent=2, sort_keys=False))
    else:
        render_text = markdown if args.format == "markdown" else text
        sys.stdout.write(render_text(read, top=args.top, since=args.since, verified=bool(keys)))
    return 1 if read.unreadable else 0
