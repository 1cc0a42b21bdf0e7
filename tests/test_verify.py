"""Release tooling reads the verdict through `pytest-staging verify`: DSSE to the letter,
policy expectations, --format json, a tamper corpus, and the documentation's openssl recipe and pipeline."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from docs_text import docs_block
from hypothesis import given
from hypothesis import strategies as st

from pytest_staging.cli import Failed, build_parser, cmd_verify
from pytest_staging.cli import main as cli
from pytest_staging.verdict import PAYLOAD_TYPE, dsse
from pytest_staging.verdict.files import read_verdict

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
FAILING = PASSING.replace('"/get"', '"/status/500"')
#: A named target whose version probe reports v1.4.2 (httpbin echoes the query as JSON).
TARGETS = """
[targets.staging-eu]
url = "{url}"
environment = "staging"
version_url = "/response-headers?v=v1.4.2"
version_pointer = "/v"
"""


def dumps(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- DSSE, pure ------------------------------------------------------------------------------

KEY, OTHER = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
PUBLIC, OTHER_PUBLIC = KEY.public_key(), OTHER.public_key()
BODY = b'{"_type":"https://in-toto.io/Statement/v1"}'


def signature(key: Ed25519PrivateKey, keyid: str | None = None, body: bytes = BODY) -> dict:
    entry = {"sig": b64(key.sign(dsse.pae(PAYLOAD_TYPE, body)))}
    if keyid is not None:
        entry["keyid"] = keyid
    return entry


def envelope(*signatures: dict, body: bytes = BODY) -> dict:
    return {"payloadType": PAYLOAD_TYPE, "payload": b64(body), "signatures": list(signatures)}


@given(st.binary(max_size=200))
def test_standard_and_url_safe_base64_both_decode(data):
    assert dsse.b64decode(base64.b64encode(data).decode(), "x") == data
    assert dsse.b64decode(base64.urlsafe_b64encode(data).decode(), "x") == data


@given(st.text(alphabet="AQgwYZ09+/-_= \n", max_size=16))
def test_only_the_canonical_text_of_some_bytes_decodes(text):
    """One encoding per alphabet for any bytes: whatever decodes is exactly what the encoder writes."""
    try:
        data = dsse.b64decode(text, "x")
    except dsse.VerificationError:
        return
    assert text in (base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("YWI", "payload lacks its padding"),
        ("YWJj+_8=", "payload mixes the standard and URL-safe base64 alphabets"),
        ("YWJj\nZA==", "payload holds whitespace"),
        (" YWJj", "payload holds whitespace"),
        ("YWJjZB==", "payload is not canonical base64 (non-zero unused bits)"),
        ("YR==", "payload is not canonical base64 (non-zero unused bits)"),
        ("YWJ!", "payload is not base64"),
        ("ÿWJj", "payload is not base64"),
        (17, "payload is not a base64 string"),
    ],
)
def test_non_canonical_base64_is_refused(text, problem):
    with pytest.raises(dsse.VerificationError) as info:
        dsse.b64decode(text, "payload")
    assert str(info.value) == problem


def test_url_safe_envelope_verifies():
    document = envelope(signature(KEY))
    raw = dumps(document)
    url_safe = {**document, "payload": base64.urlsafe_b64encode(BODY).decode()}
    url_safe["signatures"] = [
        {"sig": base64.urlsafe_b64encode(base64.b64decode(document["signatures"][0]["sig"])).decode()}
    ]
    assert dsse.verify(dsse.parse(raw), [PUBLIC]).payload == BODY
    assert dsse.verify(dsse.parse(dumps(url_safe)), [PUBLIC]).payload == BODY


@pytest.mark.parametrize(
    "keyid", [None, "", "not-this-key", dsse.keyid(OTHER_PUBLIC)], ids=["unset", "empty", "wrong", "another-key"]
)
def test_keyid_is_a_hint_never_a_reason_to_reject(keyid):
    verified = dsse.verify(envelope(signature(KEY, keyid)), [PUBLIC])
    assert verified == (BODY, dsse.keyid(PUBLIC))
    # Tried against every key, whichever the keyid points at first.
    assert dsse.verify(envelope(signature(KEY, keyid)), [OTHER_PUBLIC, PUBLIC]).keyid == dsse.keyid(PUBLIC)


def test_keyid_never_picks_a_key_without_checking():
    forged = signature(OTHER, dsse.keyid(PUBLIC))  # another key's signature under the right keyid
    with pytest.raises(dsse.VerificationError, match="no signature by key"):
        dsse.verify(envelope(forged), [PUBLIC])


def test_any_valid_signature_by_a_given_key_suffices():
    junk = {"keyid": dsse.keyid(PUBLIC), "sig": b64(bytes(64))}
    assert dsse.verify(envelope(junk, signature(OTHER), signature(KEY)), [PUBLIC]).payload == BODY
    # Key rotation: either key verifies, and the one that did is named.
    assert dsse.verify(envelope(signature(OTHER)), [PUBLIC, OTHER_PUBLIC]).keyid == dsse.keyid(OTHER_PUBLIC)
    with pytest.raises(dsse.VerificationError, match=r"no signature by key \w{16}… or \w{16}… verifies"):
        dsse.verify(envelope(junk), [PUBLIC, OTHER_PUBLIC])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"payload":"e30=","payloadType":"application/vnd.in-toto+json","payload":"W10=","signatures":[]}',
        b'{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"","sig":"AA=="}]}',
    ],
    ids=["payload twice", "sig twice"],
)
def test_duplicate_json_keys_are_refused(raw):
    with pytest.raises(dsse.VerificationError, match="duplicate JSON key"):
        dsse.parse(raw)


def test_duplicate_keys_inside_the_signed_payload_are_refused():
    body = b'{"_type":"https://in-toto.io/Statement/v1","predicate":{"decision":"REJECT","decision":"PROMOTE"}}'
    raw = dumps(envelope(signature(KEY, body=body), body=body))
    with pytest.raises(dsse.VerificationError, match="duplicate JSON key 'decision'"):
        read_verdict(raw, [PUBLIC])


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "not a DSSE envelope"),
        ({"payload": "", "payloadType": PAYLOAD_TYPE}, "not a DSSE envelope"),
        ({"payload": "", "payloadType": 1, "signatures": []}, "payloadType is not a string"),
        ({"payload": "", "payloadType": PAYLOAD_TYPE, "signatures": {}}, "signatures is not a list"),
        (
            {"payload": "", "payloadType": PAYLOAD_TYPE, "signatures": ["AA=="]},
            "signatures[0] is not an object with a sig",
        ),
        (
            {"payload": "", "payloadType": PAYLOAD_TYPE, "signatures": [{"keyid": 3, "sig": ""}]},
            "signatures[0].keyid is not a string",
        ),
        (
            {"payload": "", "payloadType": PAYLOAD_TYPE, "signatures": [{"sig": "AA"}]},
            "signatures[0].sig lacks its padding",
        ),
    ],
)
def test_malformed_envelopes_are_refused_with_one_line(document, problem):
    with pytest.raises(dsse.VerificationError) as info:
        dsse.parse(json.dumps(document).encode())
    assert str(info.value).startswith(problem)


def test_unsigned_and_foreign_payload_types_never_verify():
    with pytest.raises(dsse.VerificationError, match=r"^the verdict is unsigned \(no signatures\)$"):
        dsse.verify(envelope(), [PUBLIC])
    with pytest.raises(dsse.VerificationError, match="payloadType is 'application/json'"):
        dsse.verify({**envelope(signature(KEY)), "payloadType": "application/json"}, [PUBLIC])


# -- verify's expectations, on real verdicts -----------------------------------------------


@pytest.fixture
def staged(gate, pytester, httpbin_url):
    """A PROMOTE from the named target staging-eu (environment staging, probe says v1.4.2) for
    the artifact app.tar: (verdict path, statement, app.tar's digest)."""
    pytester.makefile(".toml", **{"staging-targets": TARGETS.format(url=httpbin_url)})
    (pytester.path / "app.tar").write_bytes(b"release candidate")
    _, statement, _ = gate(PASSING, "--staging-target=staging-eu", "--staging-artifact-file=app.tar")
    assert statement["predicate"]["decision"] == "PROMOTE"
    return pytester.path / VERDICT, statement, hashlib.sha256(b"release candidate").hexdigest()


def run_verify(capsys, path: Path, *args: str) -> tuple[int, str, list[str]]:
    code = cli(["verify", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_every_expectation_that_holds_passes(staged, keys, other_keys, httpbin_url, capsys):
    path, statement, digest = staged
    host = httpbin_url.split("://", 1)[1]
    policy = statement["predicate"]["policy"]["digest"]["sha256"]
    code, out, err = run_verify(
        capsys,
        path,
        "--key",
        str(other_keys[1]),
        "--key",
        str(keys[1]),  # rotation: either key may sign
        "--expect",
        "PROMOTE",
        "--subject",
        f"app.tar@sha256:{digest}",
        "--subject-digest",
        f"sha256:{digest.upper()}",
        "--environment",
        "staging",
        "--target",
        "staging-eu",
        "--target",
        f"HTTP://user:secret@{host}/",
        "--release",
        "v1.4.2",
        "--require-tier",
        "smoke",
        "--require-tier",
        "contract",
        "--policy-digest",
        f"sha256:{policy}",
        "--max-age",
        "1h",
    )
    assert (code, err) == (0, [])
    assert out.startswith(f"OK: PROMOTE for app.tar@sha256:{digest}; signed by ")


def test_each_unmet_expectation_is_one_line(staged, keys, capsys):
    path, statement, digest = staged
    other = "b" * 64
    policy = statement["predicate"]["policy"]["digest"]["sha256"]
    code, out, err = run_verify(
        capsys,
        path,
        "--key",
        str(keys[1]),
        "--expect",
        "HOLD",
        "--expect",
        "REJECT",
        "--subject",
        f"app.tar@sha256:{other}",
        "--subject-digest",
        f"sha256:{other}",
        "--environment",
        "production",
        "--target",
        "https://prod.example.com",
        "--release",
        "v1.4.3",
        "--require-tier",
        "load",
        "--policy-digest",
        f"sha256:{other}",
        "--max-age",
        "0s",
    )
    assert (code, out) == (1, "")
    subjects = f"app.tar@sha256:{digest}"
    assert err[0].startswith("FAILED: decision is PROMOTE, expected HOLD or REJECT (all required tiers ran")
    assert err[1:] == [
        f"FAILED: subject app.tar@sha256:{other} is not in the verdict (its subjects: {subjects})",
        f"FAILED: no subject has digest sha256:{other} (the verdict's subjects: {subjects})",
        "FAILED: environment is staging, expected production",
        f"FAILED: target is staging-eu ({statement['predicate']['target']['url']}), expected https://prod.example.com",
        "FAILED: release is v1.4.2 (deployedVersion), expected v1.4.3",
        "FAILED: tier load is optional and notrun, expected required and passed",
        f"FAILED: policy digest is sha256:{policy}, expected sha256:{other}",
        f"FAILED: verdict is older than 0:00:00 (timeVerified {statement['predicate']['timeVerified']})",
    ]


def test_release_id_comes_before_the_deployed_version(gate, pytester, keys, capsys):
    gate(PASSING, "--staging-release=2.0.1")
    path = pytester.path / VERDICT
    assert run_verify(capsys, path, "--key", str(keys[1]), "--release", "2.0.1")[0] == 0
    assert run_verify(capsys, path, "--key", str(keys[1]), "--release", "2.0.2")[2] == [
        "FAILED: release is 2.0.1 (release.id), expected 2.0.2"
    ]
    gate(PASSING)
    unknown = run_verify(capsys, path, "--key", str(keys[1]), "--release", "2.0.1")[2]
    assert unknown == ["FAILED: release is unknown (no release.id, no deployedVersion), expected 2.0.1"]


def test_a_failed_tier_is_not_a_required_tier_that_passed(gate, pytester, keys, capsys):
    gate(FAILING, "--staging-no-fail-fast")
    path = pytester.path / VERDICT
    code, _, err = run_verify(
        capsys, path, "--key", str(keys[1]), "--expect", "any", "--require-tier", "smoke", "--require-tier", "contract"
    )
    assert (code, err) == (1, ["FAILED: tier smoke is required and failed, expected required and passed"])


def test_format_json_prints_exactly_the_verified_statement(staged, keys, other_keys):
    path, statement, _ = staged
    payload = dsse.parse(path.read_bytes()).payload
    command = [sys.executable, "-m", "pytest_staging", "verify", str(path), "--key", str(keys[1]), "--format", "json"]
    ok = subprocess.run(command, capture_output=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, payload + b"\n", b"")
    assert json.loads(ok.stdout) == statement
    held = subprocess.run([*command, "--expect", "HOLD"], capture_output=True, text=True)
    assert (held.returncode, held.stdout) == (1, "")
    assert held.stderr.startswith("FAILED: decision is PROMOTE, expected HOLD") and len(held.stderr.splitlines()) == 1
    wrong_key = subprocess.run([*command[:6], str(other_keys[1]), "--format", "json"], capture_output=True, text=True)
    assert (wrong_key.returncode, wrong_key.stdout) == (1, "")
    assert wrong_key.stderr.startswith("FAILED: no signature by key ") and len(wrong_key.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subject-digest", "sha256:abc"], "is not sha256:HEX"),
        (["--subject-digest", "md5:" + "a" * 64], "is not sha256:HEX"),
        (["--policy-digest", "a" * 64], "is not sha256:HEX"),
        (["--require-tier", "e2e"], "is not one of smoke, contract, load"),
        (["--format", "yaml"], "invalid choice"),
    ],
)
def test_flag_mistakes_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli(["verify", "x.json", "--key", "k.pub", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_every_flag_with_an_example(capsys):
    with pytest.raises(SystemExit):
        cli(["verify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in (
        "--key",
        "--expect",
        "--subject",
        "--subject-digest",
        "--environment",
        "--target",
        "--release",
        "--require-tier",
        "--policy-digest",
        "--max-age",
        "--approval",
        "--approver-key",
        "--format",
    ):
        assert f"({flag} " in text, flag  # each help text ends with an example: (--flag VALUE ...)


# -- the tamper corpus -----------------------------------------------------------------------


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def span(raw: bytes, prefix: bytes) -> range:
    """Positions of the string value after ``prefix`` (``"name":"``) in the envelope's bytes."""
    start = raw.index(prefix) + len(prefix)
    return range(start, raw.index(b'"', start))


def part_of(raw: bytes, index: int) -> str:
    for name, prefix in (
        ("payload", b'"payload":"'),
        ("payloadType", b'"payloadType":"'),
        ("keyid", b'"keyid":"'),
        ("sig", b'"sig":"'),
    ):
        if index in span(raw, prefix):
            return name
    return "structure"


def semantic_tampers(original: dict, other: dict, keys, other_keys) -> dict[str, tuple[bytes, bool]]:
    """name -> (file bytes, whether verify should accept it: only when the signed bytes are the original's)."""
    payload = base64.b64decode(original["payload"])
    statement = json.loads(payload)
    good = original["signatures"][0]
    private = dsse.load_private_key(keys[0].read_bytes(), "key")
    foreign = dsse.load_private_key(other_keys[0].read_bytes(), "key")

    def with_statement(change) -> dict:
        changed = json.loads(payload)
        change(changed)
        return {**original, "payload": b64(dumps(changed))}

    def with_signatures(*signatures) -> dict:
        return {**original, "signatures": list(signatures)}

    junk = {"keyid": good["keyid"], "sig": b64(os.urandom(64))}
    other_payload = json.loads(base64.b64decode(other["payload"]))
    promoted = {
        **other_payload,
        "predicate": {**other_payload["predicate"], "decision": "PROMOTE", "verificationResult": "PASSED"},
    }
    tampers = {
        "decision changed": (with_statement(lambda s: s["predicate"].update(decision="HOLD")), False),
        "subject changed": (with_statement(lambda s: s["subject"][0]["digest"].update(sha256="0" * 64)), False),
        "timeVerified changed": (
            with_statement(lambda s: s["predicate"].update(timeVerified="2099-01-01T00:00:00.000000Z")),
            False,
        ),
        "a REJECT made PROMOTE, its own signature kept": ({**other, "payload": b64(dumps(promoted))}, False),
        "the signature of another verdict": (with_signatures(other["signatures"][0]), False),
        "another verdict's payload under this signature": ({**original, "payload": other["payload"]}, False),
        "signatures removed": ({k: v for k, v in original.items() if k != "signatures"}, False),
        "signatures empty": (with_signatures(), False),
        "signature empty": (with_signatures({**good, "sig": ""}), False),
        "signature zeroed": (with_signatures({**good, "sig": b64(bytes(64))}), False),
        "signature truncated": (with_signatures({**good, "sig": b64(base64.b64decode(good["sig"])[:32])}), False),
        "another key under the right keyid": (
            with_signatures({"keyid": good["keyid"], "sig": b64(foreign.sign(dsse.pae(PAYLOAD_TYPE, payload)))}),
            False,
        ),
        "payloadType changed": ({**original, "payloadType": "application/json"}, False),
        "a second, bogus signature": (with_signatures(good, junk), True),
        "a junk signature first": (with_signatures(junk, good), True),
        "a foreign signature first": (with_signatures({"keyid": "", "sig": b64(foreign.sign(b"x"))}, good), True),
        "keyid changed": (with_signatures({**good, "keyid": "someone-else"}), True),
        "keyid removed": (with_signatures({"sig": good["sig"]}), True),
        "URL-safe base64": (
            {
                **original,
                "payload": base64.urlsafe_b64encode(payload).decode(),
                "signatures": [{**good, "sig": base64.urlsafe_b64encode(base64.b64decode(good["sig"])).decode()}],
            },
            True,
        ),
        "re-signed by the right key (control)": (
            with_signatures({"keyid": good["keyid"], "sig": b64(private.sign(dsse.pae(PAYLOAD_TYPE, payload)))}),
            True,
        ),
    }
    assert statement["predicate"]["decision"] == "PROMOTE" and other_payload["predicate"]["decision"] == "REJECT"
    files = {name: (dumps(document), accept) for name, (document, accept) in tampers.items()}
    raw = dumps(original)
    # Bytes the same signed payload, refused all the same: a verdict's file digest identifies its content.
    sig = good["sig"]  # 64 bytes: always two padding characters, four unused bits before them
    files["signature without padding"] = (raw.replace(sig.encode(), sig[:-2].encode()), False)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    unused_bit = sig[:-3] + alphabet[alphabet.index(sig[-3]) | 1] + "=="
    assert base64.b64decode(unused_bit) == base64.b64decode(sig)
    files["signature with a non-zero unused bit"] = (raw.replace(sig.encode(), unused_bit.encode()), False)
    wrapped = "\n".join(original["payload"][i : i + 76] for i in range(0, len(original["payload"]), 76))
    files["payload wrapped at 76 columns"] = (
        raw.replace(original["payload"].encode(), json.dumps(wrapped)[1:-1].encode()),
        False,
    )
    files["duplicate payload key"] = (
        raw.replace(b'{"payload":', b'{"payload":"' + other["payload"].encode() + b'","payload":', 1),
        False,
    )
    files["truncated"] = (raw[: len(raw) // 2], False)
    files["truncated by one byte"] = (raw[:-2], False)
    files["not JSON"] = (b"junk", False)
    return files


def test_tamper_corpus(gate, pytester, keys, other_keys, capsysbinary, openssl_recipe, tmp_path):
    """No file whose signed bytes changed is accepted, by verify (every file of the corpus) or by
    the documentation's openssl recipe (a sample); the files whose signed bytes did not change are."""
    gate(FAILING)
    other = json.loads((pytester.path / VERDICT).read_bytes())
    gate(PASSING)
    raw = (pytester.path / VERDICT).read_bytes()
    original = json.loads(raw)
    payload = base64.b64decode(original["payload"])
    pub = str(keys[1])

    corpus = semantic_tampers(original, other, keys, other_keys)
    keyid_bytes = set(span(raw, b'"keyid":"')) | set(range(raw.index(b'"keyid"') + 1, raw.index(b'"keyid"') + 6))
    for index in range(len(raw)):  # every byte of the file, the final newline included
        corpus[f"flip byte {index} ({part_of(raw, index)})"] = (flip(raw, index), index in keyid_bytes)
    # The verify command itself, its arguments parsed once (argparse would cost more than the rest).
    args = build_parser().parse_args(["verify", "-", "--key", pub, "--expect", "any", "--format", "json"])
    capsysbinary.readouterr()  # the inner runs' output
    accepted = set()
    for name, (data, _) in corpus.items():
        args.file = str(tmp_path / "tampered.json")
        Path(args.file).write_bytes(data)
        try:
            code, reasons = cmd_verify(args), ()
        except Failed as exc:
            code, reasons = 1, exc.args
        out = capsysbinary.readouterr().out
        if code == 0:
            accepted.add(name)
            assert out == payload + b"\n", f"{name}: verify accepted changed signed bytes"  # the oracle
        else:
            assert (out, len(reasons)) == (b"", 1), name
    assert accepted == {name for name, (_, accept) in corpus.items() if accept}

    # The openssl recipe on a sample: every semantic tamper, and up to 6 flips of each part.
    flips = [name for name in corpus if name.startswith("flip byte")]
    sample = [name for name in corpus if not name.startswith("flip byte")]
    for part in ("structure", "payloadType", "payload", "keyid", "sig"):
        in_part = [name for name in flips if name.endswith(f"({part})")]
        sample += in_part[:: max(1, len(in_part) // 6)][:6]
    assert len(sample) >= 50
    work = tmp_path / "recipe"
    work.mkdir()
    recipe_accepted = set()
    for name in sample:
        path = tmp_path / "tampered.json"
        path.write_bytes(corpus[name][0])
        (work / "payload.json").unlink(missing_ok=True)
        result = openssl_recipe(work, path, keys[1])
        if result.returncode == 0:
            recipe_accepted.add(name)
            assert result.stdout == "verified: PROMOTE\n"
            assert (work / "payload.json").read_bytes() == payload, f"{name}: the recipe accepted changed signed bytes"
    # The recipe checks no keyid and no canonical form: it accepts what verify accepts and, of the
    # rest, only files whose signed bytes are the original's (checked above).
    assert {name for name in sample if corpus[name][1]} <= recipe_accepted


# -- the documentation (docs/verifying.md): the recipe and the release gate -------------------


def test_recipe_answers_right_on_good_and_bad_files(gate, pytester, keys, other_keys, openssl_recipe, tmp_path):
    gate(FAILING)
    refused = openssl_recipe(tmp_path, pytester.path / VERDICT, keys[1])
    assert (refused.returncode, refused.stdout) == (1, "verified: REJECT\n")  # verified, but not a PROMOTE
    gate(PASSING)
    good = pytester.path / VERDICT
    assert openssl_recipe(tmp_path, good, keys[1]).stdout == "verified: PROMOTE\n"
    wrong_key = openssl_recipe(tmp_path, good, other_keys[1])
    assert (wrong_key.returncode, wrong_key.stdout) == (1, "")
    assert wrong_key.stderr.startswith("FAILED: no signature by")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({**json.loads(good.read_bytes()), "payloadType": "application/json"}))
    not_ours = openssl_recipe(tmp_path, foreign, keys[1])
    assert (not_ours.returncode, not_ours.stderr) == (1, "FAILED: not an in-toto DSSE envelope\n")


def test_recipe_checks_the_statement_type_after_the_signature(keys, openssl_recipe, tmp_path):
    private = dsse.load_private_key(keys[0].read_bytes(), "key")
    body = dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"decision": "PROMOTE"},
        }
    )
    path = tmp_path / "provenance.json"
    path.write_bytes(dumps(dsse.envelope(body, private)))
    result = openssl_recipe(tmp_path, path, keys[1])
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "FAILED: not a pytest-staging promotion verdict\n",
    )


def test_release_gate_pipeline_step(staged, keys, tmp_path):
    """The documentation's "Gating a release" shell step, run as printed: it prints the release of a
    verified PROMOTE for the image digest, and stops a pipeline for anything else."""
    path, statement, digest = staged
    step = docs_block("gate-release")
    work = tmp_path / "pipeline"
    work.mkdir()
    shutil.copy(path, work / VERDICT)
    shutil.copy(keys[1], work / "staging-signing.pub")
    env = {
        **os.environ,
        "IMAGE_DIGEST": f"sha256:{digest}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    ok = subprocess.run(["bash", "-c", step], cwd=work, env=env, capture_output=True, text=True)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "promoting release v1.4.2\n", "")
    wrong = subprocess.run(
        ["bash", "-c", step],
        cwd=work,
        env={**env, "IMAGE_DIGEST": "sha256:" + "c" * 64},
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0 and "promoting" not in wrong.stdout
    assert wrong.stderr.startswith("FAILED: no subject has digest sha256:cccc")
    # The GitHub Actions job runs the same step.
    steps = yaml.safe_load(docs_block("gate-release-yaml"))["jobs"]["promote"]["steps"]
    run = next(s for s in steps if "run" in s and "pytest-staging verify" in s["run"])
    assert run["run"].strip() == step.strip()
    assert run["env"]["IMAGE_DIGEST"].startswith("${{")


def test_the_signing_key_given_for_the_public_one_says_which_to_pass(staged, keys, capsys):
    status, _, lines = run_verify(capsys, staged[0], "--key", str(keys[0]))
    assert status != 0 and len(lines) == 1, lines
    assert "a private key, not a public one; pass its public half (the .pub file)" in lines[0]
