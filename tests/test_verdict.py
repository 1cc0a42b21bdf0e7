"""The signed verdict end to end: real inner pytest runs, our CLI, openssl, securesystemslib."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from docs_text import docs_block

from pytest_staging.cli import main as cli

pytestmark = pytest.mark.usefixtures("staging_env")

VERDICT = "staging-verdict.intoto.json"

PASSING = """
import pytest

def test_smoke(staging_http):
    assert staging_http.get("/get").ok

@pytest.mark.contract
def test_contract(staging_http):
    assert staging_http.get("/json").json()["slideshow"]
"""


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def schema_validate(statement: dict) -> None:
    schema = json.loads(resources.files("pytest_staging.verdict").joinpath("schema.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
        statement
    )


def verify_cli(path: Path, pub: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_staging", "verify", str(path), "--key", str(pub), *extra],
        capture_output=True,
        text=True,
    )


# -- decisions ------------------------------------------------------------------------------


def test_all_pass_promotes_and_verifies(gate, pytester, keys, openssl_recipe):
    result, statement, envelope = gate(PASSING)
    assert result.ret == 0
    predicate = statement["predicate"]
    assert predicate["decision"] == "PROMOTE" and predicate["verificationResult"] == "PASSED"
    assert predicate["tiers"]["smoke"]["counts"]["passed"] == 1
    assert predicate["tiers"]["contract"]["result"] == "passed"
    assert predicate["tiers"]["load"] == {
        "required": False,
        "result": "notrun",
        "duration": 0.0,
        "counts": dict.fromkeys(
            [
                "passed",
                "failed",
                "error",
                "skipped",
                "xfailed",
                "xpassed",
                "crashed",
                "notrun",
                "deselected",
                "destructiveSkipped",
            ],
            0,
        ),
    }
    assert {t["nodeid"].split("::")[1]: t["outcome"] for t in predicate["tests"]} == {
        "test_smoke": "passed",
        "test_contract": "passed",
    }
    assert all(len(t["correlationId"]) == 32 and len(t["attempts"]) == 1 for t in predicate["tests"])
    schema_validate(statement)
    result.stdout.fnmatch_lines(["*= staging verdict =*", "decision: PROMOTE", f"verdict: {VERDICT} (signed, keyid *"])
    path = pytester.path / VERDICT
    ok = verify_cli(path, keys[1], "--expect", "PROMOTE")
    assert ok.returncode == 0, ok.stderr
    unknown = hashlib.sha256(b"unknown").hexdigest()
    assert ok.stdout.startswith(f"OK: PROMOTE for release:unknown@sha256:{unknown}; signed by ")
    result.stdout.fnmatch_lines([f"subject: release:unknown@sha256:{unknown}"])
    # Readable by release tooling running as another user: not mkstemp's 0600.
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    recipe = openssl_recipe(pytester.path, path, keys[1])
    assert (recipe.returncode, recipe.stdout) == (0, "verified: PROMOTE\n"), recipe.stderr


def test_failing_suite_rejects(gate, keys, pytester):
    result, statement, _ = gate(
        PASSING.replace('assert staging_http.get("/get").ok', 'assert staging_http.get("/status/500").ok')
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    predicate = statement["predicate"]
    assert predicate["decision"] == "REJECT" and predicate["verificationResult"] == "FAILED"
    assert predicate["reasons"][0]["code"] == "test-failed" == predicate["reasonCodes"][0]
    assert predicate["reasons"][0]["text"].startswith("1 test failed: test_failing_suite_rejects.py::test_smoke")
    failed = next(t for t in predicate["tests"] if t["outcome"] == "failed")
    assert failed["error"].startswith("AssertionError: assert False + where False = <Response [500]>.ok")
    schema_validate(statement)
    refused = verify_cli(pytester.path / VERDICT, keys[1], "--expect", "PROMOTE")
    assert refused.returncode == 1
    assert refused.stderr.startswith("FAILED: decision is REJECT, expected PROMOTE (1 test failed:")
    # The documentation's jq line lists each reason's code and text.
    line = docs_block("reasons-jq")
    listed = subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + line], cwd=pytester.path, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("test-failed\t1 test failed: test_failing_suite_rejects.py::test_smoke")


@pytest.mark.parametrize(
    ("name", "suite", "args", "reason_code"),
    [
        pytest.param(
            "ctrl-c",
            "def test_a():\n    pass\ndef test_b():\n    raise KeyboardInterrupt\ndef test_c():\n    pass\n",
            [],
            "interrupted",
            id="ctrl-c",
        ),
        pytest.param("collection-error", "def test_a():\n    pass\n", [], "collection-error", id="collection-error"),
        pytest.param(
            "empty-selection",
            "def test_a():\n    pass\n",
            ["-k", "nothing_matches"],
            "nothing-ran",
            id="empty-selection",
        ),
        pytest.param(
            "internal-error", "def test_a():\n    pass\n", ["-p", "boom"], "internal-error", id="internal-error"
        ),
    ],
)
def test_missing_evidence_holds(gate, pytester, name, suite, args, reason_code):
    pytester.makepyfile(boom="def pytest_runtestloop(session):\n    raise RuntimeError('boom')\n")
    if name == "collection-error":
        pytester.makepyfile(test_broken="def test_x(:\n")
    result, statement, _ = gate(suite, *args, subprocess_run=True)
    predicate = statement["predicate"]
    assert predicate["decision"] == "HOLD", predicate["reasons"]
    assert reason_code in predicate["reasonCodes"]
    assert predicate["session"]["exitStatus"] == result.ret != 0
    schema_validate(statement)


def test_exit_status_6_when_all_passed_but_not_promoted(gate, pytester):
    pytester.makeini("[pytest]\nstaging_required_tiers = smoke load\n")
    result, statement, _ = gate(PASSING)
    assert statement["predicate"]["decision"] == "HOLD"
    assert statement["predicate"]["reasons"] == [
        {"code": "required-tier-empty", "text": "required tier load has no test"}
    ]
    assert result.ret == 6
    assert statement["predicate"]["session"]["exitStatus"] == 6


def test_local_partial_run_holds_but_exits_0(gate):
    result, statement, _ = gate(PASSING, "--staging-tier=smoke")
    assert statement["predicate"]["decision"] == "HOLD"
    assert statement["predicate"]["reasonCodes"] == ["required-tier-deselected", "tests-deselected"]
    assert result.ret == 0


def test_a_quarantine_reason_cannot_rewrite_the_verdict(gate, pytester, keys):
    """Issue 14: the payload was a template whose test list replaced the first
    ``"\\u0000tests\\u0000"`` in its text; a quarantine reason written so came first and
    swallowed the list."""
    suite = (
        "import pytest\n\n"
        "@pytest.mark.quarantine(reason='\\x00tests\\x00', owner='web', until='2999-01-01')\n"
        "def test_flaps():\n    assert False\n\n"
        "@pytest.mark.parametrize('i', range(5))\n"
        "def test_ok(i):\n    pass\n"
    )
    result, statement, _ = gate(suite)
    predicate = statement["predicate"]
    assert len(predicate["tests"]) == 6 and predicate["tiers"]["smoke"]["counts"]["xfailed"] == 1
    assert predicate["quarantine"]["tests"][0]["quarantine"]["reason"] == "\x00tests\x00"
    schema_validate(statement)
    assert verify_cli(pytester.path / VERDICT, keys[1], "--expect", "PROMOTE").returncode == 0


def test_text_that_is_not_unicode_still_gives_a_verdict(pytester, httpbin_url, keys):
    """A lone surrogate (what Python makes of bytes that are not UTF-8) in a skip reason and an
    error: the verdict is still written, as ASCII-escaped JSON, and reads back unchanged."""
    suite = "import pytest\n\ndef test_skips():\n    pytest.skip('caf\\udce9')\n\ndef test_fails():\n    assert False, '\\udcff'\n"
    pytester.makepyfile(suite)
    pytester.runpytest(f"--staging-target={httpbin_url}", f"--staging-signing-key={keys[0]}")
    payload = base64.b64decode(json.loads((pytester.path / VERDICT).read_text())["payload"])
    assert payload.isascii()
    tests = {t["nodeid"].split("::")[1]: t for t in json.loads(payload)["predicate"]["tests"]}
    assert tests["test_skips"]["skipReason"] == "caf\udce9"
    assert tests["test_fails"]["error"].startswith("AssertionError: \udcff")
    assert verify_cli(pytester.path / VERDICT, keys[1], "--expect", "REJECT").returncode == 0


def test_unreachable_target_rejects(pytester, keys):
    pytester.makepyfile(PASSING)
    pytester.runpytest("--staging-target=http://127.0.0.1:9", f"--staging-signing-key={keys[0]}")
    statement = json.loads(base64.b64decode(json.loads((pytester.path / VERDICT).read_text())["payload"]))
    assert statement["predicate"]["decision"] == "REJECT"
    # The target is what is wrong, not "N tests failed" (issue 14, item 8).
    assert statement["predicate"]["reasonCodes"][0] == "target-unreachable"
    assert "unreachable" in str(statement["predicate"]["reasons"][0])


def test_release_mismatch_rejects_with_the_reason(pytester, httpbin_url, keys):
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nversion_url = "/response-headers?v=2"\nversion_pointer = "/v"\n'
        },
    )
    pytester.makepyfile(PASSING)
    pytester.runpytest("--staging-target=qa", "--staging-release=1", f"--staging-signing-key={keys[0]}")
    predicate = json.loads(base64.b64decode(json.loads((pytester.path / VERDICT).read_text())["payload"]))["predicate"]
    assert predicate["decision"] == "REJECT"
    assert predicate["reasonCodes"][0] == "release-mismatch"
    assert predicate["release"] == {"id": "1", "deployedVersion": "2", "probe": "/response-headers?v=2"}


# -- xdist --------------------------------------------------------------------------------

XDIST_SUITE = """
import pytest

@pytest.mark.parametrize("i", range(6))
def test_smoke(staging_http, i):
    assert staging_http.get("/get").ok

@pytest.mark.contract
@pytest.mark.parametrize("i", range(4))
def test_contract(i):
    assert i != 3

@pytest.mark.load
def test_load():
    pass
"""


def comparable(statement: dict) -> dict:
    predicate = statement["predicate"]
    return {
        "decision": predicate["decision"],
        "reasons": predicate["reasons"],
        "tiers": {
            tier: {k: v for k, v in entry.items() if k != "duration"} for tier, entry in predicate["tiers"].items()
        },
        "tests": sorted((t["nodeid"], t["tier"], t["outcome"]) for t in predicate["tests"]),
    }


def test_xdist_gives_the_same_decision_and_counts(gate, pytester):
    _, serial, _ = gate(XDIST_SUITE, subprocess_run=True)
    (pytester.path / VERDICT).unlink()
    _, distributed, _ = gate(XDIST_SUITE, "-n", "2", subprocess_run=True)
    assert comparable(serial) == comparable(distributed)
    assert serial["predicate"]["decision"] == "REJECT"
    assert distributed["predicate"]["session"]["xdistWorkers"] == 2
    assert serial["predicate"]["session"]["xdistWorkers"] == 0
    # Only the controller writes, and it leaves no temporary file behind.
    assert sorted(p.name for p in pytester.path.iterdir() if "verdict" in p.name) == [VERDICT]


def test_killed_worker_never_promotes(gate):
    suite = "import os\n\ndef test_a():\n    pass\n\ndef test_dies():\n    os._exit(3)\n\ndef test_b():\n    pass\n"
    result, statement, _ = gate(suite, "-n", "2", subprocess_run=True)
    predicate = statement["predicate"]
    assert predicate["decision"] == "REJECT"
    assert any(t["outcome"] == "crashed" and t["nodeid"].endswith("test_dies") for t in predicate["tests"])
    assert "test-crashed" in predicate["reasonCodes"]
    schema_validate(statement)


# -- signatures -----------------------------------------------------------------------------


def test_unsigned_and_wrong_key_fail_verification(gate, pytester, keys, other_keys):
    result, statement, envelope = gate(PASSING, sign=False)
    assert envelope["signatures"] == []
    assert statement["predicate"]["decision"] == "PROMOTE"
    result.stdout.fnmatch_lines(
        [
            "*StagingWarning: the verdict will be unsigned*",
            f"verdict: {VERDICT} (UNSIGNED: no signing key, it will not verify)",
        ]
    )
    unsigned = verify_cli(pytester.path / VERDICT, keys[1])
    assert (unsigned.returncode, unsigned.stderr.strip()) == (1, "FAILED: the verdict is unsigned (no signatures)")
    gate(PASSING)
    wrong = verify_cli(pytester.path / VERDICT, other_keys[1])
    assert wrong.returncode == 1 and "no signature by key" in wrong.stderr


def test_signing_key_from_environment(gate, pytester, keys, staging_env):
    staging_env.setenv("STAGING_SIGNING_KEY", keys[0].read_text())
    result, _, envelope = gate(PASSING, sign=False)
    assert envelope["signatures"]
    assert verify_cli(pytester.path / VERDICT, keys[1], "--expect", "PROMOTE").returncode == 0
    assert keys[0].read_text().strip().splitlines()[1] not in result.stdout.str()


def test_reference_implementation_agrees(gate, pytester, keys):
    """securesystemslib computes the same key id and verifies our envelope."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    _, _, envelope = gate(PASSING)
    key = SSlibKey.from_crypto(load_pem_public_key(keys[1].read_bytes()))
    assert envelope["signatures"][0]["keyid"] == key.keyid
    Envelope.from_dict(envelope).verify([key], 1)


def test_subjects_and_expectations(gate, pytester, keys):
    artifact = pytester.path / "app.tar"
    artifact.write_bytes(b"release candidate bytes")
    import hashlib

    digest = hashlib.sha256(b"release candidate bytes").hexdigest()
    other = "a" * 64
    _, statement, _ = gate(
        PASSING, f"--staging-artifact=registry/app@sha256:{other}", "--staging-artifact-file=app.tar"
    )
    assert statement["subject"] == [
        {"name": "registry/app", "digest": {"sha256": other}},
        {"name": "app.tar", "digest": {"sha256": digest}},
    ]
    path = pytester.path / VERDICT
    assert verify_cli(path, keys[1], "--subject", f"app.tar@sha256:{digest}", "--max-age", "1h").returncode == 0
    wrong = verify_cli(path, keys[1], "--subject", f"app.tar@sha256:{other}")
    assert wrong.returncode == 1 and "is not in the verdict" in wrong.stderr
    stale = verify_cli(path, keys[1], "--max-age", "0s")
    assert stale.returncode == 1 and "older than" in stale.stderr


def test_release_subject_without_artifacts(gate):
    import hashlib

    result, statement, _ = gate(PASSING, "--staging-release=2.0.1")
    assert statement["subject"] == [
        {"name": "release:2.0.1", "digest": {"sha256": hashlib.sha256(b"2.0.1").hexdigest()}}
    ]
    result.stdout.fnmatch_lines(
        [
            "*StagingWarning: no artifact named: the verdict's subject is only release:2.0.1; name the build with --staging-artifact=*"
        ]
    )


def test_summary_names_the_public_key_next_to_the_private_one(pytester, httpbin_url):
    assert cli(["keygen", "--out", str(pytester.path / "gate")]) == 0
    pytester.makepyfile(PASSING)
    result = pytester.runpytest(f"--staging-target={httpbin_url}", "--staging-signing-key=gate.key")
    result.stdout.fnmatch_lines([f"verify:  pytest-staging verify {VERDICT} --key gate.pub --expect PROMOTE"])


def test_secrets_never_reach_the_verdict(pytester, httpbin_url, keys, staging_env):
    secret = "tok-9f8e7d6c5b4a"
    staging_env.setenv("TOKEN", secret)
    pytester.makefile(
        ".toml",
        **{
            "staging-targets": f'[targets.qa]\nurl = "{httpbin_url}"\nheaders = {{ Authorization = "Bearer ${{TOKEN}}" }}\n'
        },
    )
    pytester.makepyfile(
        """
        def test_leaks(staging_http):
            assert staging_http.headers["Authorization"] == "nope"
        """
    )
    pytester.runpytest("--staging-target=qa", f"--staging-signing-key={keys[0]}")
    raw = (pytester.path / VERDICT).read_text()
    payload = base64.b64decode(json.loads(raw)["payload"]).decode()
    assert secret not in raw and secret not in payload
    assert "Bearer ***" in payload


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (["--staging-require-signature"], {}, ["--staging-require-signature", "no signing key"]),
        (["--staging-signing-key=missing.pem"], {}, ["--staging-signing-key", "cannot read missing.pem"]),
        (
            ["--staging-signing-key=test_usage_errors.py"],
            {},
            ["--staging-signing-key=test_usage_errors.py", "not a PEM private key"],
        ),
        (
            [],
            {"STAGING_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"},
            ["STAGING_SIGNING_KEY", "not a PEM"],
        ),
        (["--staging-artifact=app@sha256:xyz"], {}, ["--staging-artifact", "not NAME@sha256:HEX"]),
        (["--staging-artifact-file=nope.tar"], {}, ["--staging-artifact-file", "cannot read nope.tar"]),
    ],
)
def test_usage_errors(pytester, usage_error, httpbin_url, staging_env, args, env, fragments):
    for name, value in env.items():
        staging_env.setenv(name, value)
    pytester.makepyfile(test_usage_errors="def test_never():\n    raise AssertionError\n")
    usage_error.check(pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", *args), *fragments)
    assert not (pytester.path / VERDICT).exists()


def test_rsa_key_is_refused(pytester, usage_error, httpbin_url):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pytester.path.joinpath("rsa.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    pytester.makepyfile("def test_never():\n    pass\n")
    usage_error.check(
        pytester.runpytest_subprocess(f"--staging-target={httpbin_url}", "--staging-signing-key=rsa.pem"),
        "not an Ed25519 key",
    )


# -- CLI ------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path, capsys):
    prefix = tmp_path / "k"
    assert cli(["keygen", "--out", str(prefix)]) == 0
    assert (prefix.with_suffix(".key").stat().st_mode & 0o777) == 0o600
    assert prefix.with_suffix(".pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert re.search(r"keyid:\s+[0-9a-f]{64}", capsys.readouterr().out)
    assert cli(["keygen", "--out", str(prefix)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err


def test_keygen_makes_the_directory_of_out(tmp_path, capsys):
    prefix = tmp_path / "keys" / "gate"
    assert cli(["keygen", "--out", str(prefix)]) == 0
    assert (prefix.parent.stat().st_mode & 0o777) == 0o700
    assert (tmp_path / "keys" / "gate.key").stat().st_mode & 0o777 == 0o600
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert cli(["keygen", "--out", str(blocked / "gate")]) == 2
    err = capsys.readouterr().err
    assert "cannot write it" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_show_text_and_markdown(gate, pytester, keys):
    gate(PASSING)
    path = str(pytester.path / VERDICT)
    text = subprocess.run(
        [sys.executable, "-m", "pytest_staging", "show", path, "--key", str(keys[1])], capture_output=True, text=True
    )
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].startswith("signature: verified with key")
    assert "decision: PROMOTE" in text.stdout.splitlines()
    assert "signature: verified with key" in text.stdout
    md = subprocess.run(
        [sys.executable, "-m", "pytest_staging", "show", path, "--format", "markdown"], capture_output=True, text=True
    )
    assert md.stdout.startswith("## ✅ Staging gate: PROMOTE")
    assert "| smoke | passed | yes | 1 passed |" in md.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "x.json", "--key", "k.pub", "--max-age", "soon"], "is not a duration"),
        (["verify", "x.json", "--key", "k.pub", "--expect", "MAYBE"], "is not one of PROMOTE, HOLD, REJECT"),
        (["verify", "x.json", "--key", "k.pub", "--subject", "app"], "is not NAME@sha256:HEX"),
    ],
)
def test_cli_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_verify_reports_unreadable_inputs(tmp_path, keys, capsys):
    assert cli(["verify", str(tmp_path / "none.json"), "--key", str(keys[1])]) == 2
    assert "cannot read the verdict" in capsys.readouterr().err
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert cli(["verify", str(garbage), "--key", str(keys[1])]) == 1
    assert capsys.readouterr().err.strip() == "FAILED: the file is not JSON"


def test_openssl_and_jq_are_available():
    """The documentation's recipe needs them; CI installs jq when missing."""
    assert shutil.which("openssl") and shutil.which("jq")
