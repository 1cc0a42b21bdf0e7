"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) signed with Ed25519. Pure, but for
:func:`read_signing_key`, which reads the gate's key from its file or the environment.

The signature covers the PAE of the payload bytes, never a re-serialisation of them, so a
verifier checks exactly what was signed before it parses anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..core.errors import ConfigError
from . import PAYLOAD_TYPE


class VerificationError(Exception):
    """The file is not a well-formed, validly signed envelope (or verdict); the message is one
    line for the user."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def keyid(public_key: Any) -> str:
    """The key id securesystemslib computes by default for an Ed25519 key: sha256 of the canonical
    JSON ``{"keytype": "ed25519", "keyval": {"public": <raw key hex>}, "scheme": "ed25519"}``."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    canonical = json.dumps(
        {"keytype": "ed25519", "keyval": {"public": raw}, "scheme": "ed25519"}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_private_key(pem: bytes, where: str) -> Any:
    """An Ed25519 private key from PEM; any problem is a ConfigError that never quotes the key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(
            where, "", "the key is encrypted; give an unencrypted PEM key (pytest-staging keygen)"
        ) from None
    except (ValueError, Exception):  # cryptography raises several types for bad PEM
        raise ConfigError(where, "", "not a PEM private key; create one with `pytest-staging keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(where, "", "not an Ed25519 key; create one with `pytest-staging keygen`")
    return key


def read_signing_key(
    path: str | None, here: Path, environ: Mapping[str, str], secrets: set[str], required: bool
) -> Any:
    """The gate's key: --staging-signing-key (a PEM file, relative to ``here``), else the PEM text
    in env STAGING_SIGNING_KEY (added to ``secrets``, so it is scrubbed from every output), else
    None: an unsigned verdict, unless --staging-require-signature makes that a usage error."""
    if path:
        where = f"--staging-signing-key={path}"
        try:
            pem = (here / path).read_bytes()
        except OSError as exc:
            problem = f"cannot read {path} ({exc.strerror or exc}); check the path and its permissions"
            raise ConfigError("--staging-signing-key", "", problem) from None
    elif environ.get("STAGING_SIGNING_KEY", "").strip():
        where = "STAGING_SIGNING_KEY"
        pem = environ["STAGING_SIGNING_KEY"].encode("utf-8")
        secrets.add(environ["STAGING_SIGNING_KEY"].strip())
    else:
        if required:
            problem = "no signing key; pass --staging-signing-key=PATH or set STAGING_SIGNING_KEY"
            raise ConfigError("--staging-require-signature", "", problem)
        return None
    return load_private_key(pem, where)


def load_public_key(pem: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except Exception:
        if b"PRIVATE KEY-----" in pem:  # the gate's signing key, given where its public half belongs
            raise ConfigError(
                where, "", "a private key, not a public one; pass its public half (the .pub file)"
            ) from None
        raise ConfigError(where, "", "not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(where, "", "not an Ed25519 public key")
    return key


def envelope(payload: bytes, private_key: Any | None) -> dict[str, Any]:
    """A DSSE envelope of ``payload``; ``signatures`` is empty without a key."""
    signatures = []
    if private_key is not None:
        signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
        signatures.append(
            {"keyid": keyid(private_key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        )
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"), "signatures": signatures}


class Signature(NamedTuple):
    keyid: str  #: a hint only: unauthenticated, "" when unset
    sig: bytes


class Envelope(NamedTuple):
    """A decoded DSSE envelope: what the signatures are checked over, nothing re-parsed later."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


class Verified(NamedTuple):
    payload: bytes  #: the exact signed bytes, the only ones to parse
    keyid: str  #: the key id of the given key whose signature verified


def loads(raw: bytes | str) -> Any:
    """JSON with every object's keys unique: two parsers must never read one file differently
    (Python's json and jq keep the last of duplicate keys, other parsers the first)."""
    return json.loads(raw, object_pairs_hook=_unique)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise VerificationError(f"duplicate JSON key {duplicate!r}")
    return document


def parse(raw: bytes) -> Envelope:
    """The envelope in a file's bytes, decoded strictly (any signatures, none checked yet).

    Rejects what DSSE readers could disagree on: duplicate JSON keys and base64 in any but its
    one canonical form (standard or URL-safe, padded), so the file's digest identifies its content.
    """
    try:
        document = loads(raw)
    except ValueError:  # UnicodeDecodeError too; a duplicate key is a VerificationError already
        raise VerificationError("the file is not JSON") from None
    return from_document(document)


def from_document(document: Any) -> Envelope:
    """An already-parsed envelope (a dict), decoded as :func:`parse` does."""
    if not isinstance(document, dict) or not {"payloadType", "payload", "signatures"} <= set(document):
        raise VerificationError("not a DSSE envelope (needs payloadType, payload, signatures)")
    payload_type = document["payloadType"]
    if not isinstance(payload_type, str):
        raise VerificationError("payloadType is not a string")
    signatures = document["signatures"]
    if not isinstance(signatures, list):
        raise VerificationError("signatures is not a list")
    decoded = []
    for index, entry in enumerate(signatures):
        if not isinstance(entry, dict) or "sig" not in entry:
            raise VerificationError(f"signatures[{index}] is not an object with a sig")
        hint = entry.get("keyid")  # unset and empty mean the same (DSSE)
        if hint is not None and not isinstance(hint, str):
            raise VerificationError(f"signatures[{index}].keyid is not a string")
        decoded.append(Signature(hint or "", b64decode(entry["sig"], f"signatures[{index}].sig")))
    return Envelope(payload_type, b64decode(document["payload"], "payload"), tuple(decoded))


_URL_SAFE = str.maketrans("-_", "+/")


def b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64 (DSSE accepts both), padded, in its one canonical form."""
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    standard = text
    if "-" in text or "_" in text:
        if "+" in text or "/" in text:
            raise VerificationError(f"{what} mixes the standard and URL-safe base64 alphabets")
        standard = text.translate(_URL_SAFE)
    try:
        data = base64.b64decode(standard, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        if any(char.isspace() for char in text):
            problem = "holds whitespace"
        elif len(text) % 4:
            problem = "lacks its padding"
        else:
            problem = "is not base64"
        raise VerificationError(f"{what} {problem}") from None
    # Several texts decode to the same bytes when the bits after the last byte are not zero:
    # only the one the encoder writes is accepted. Each whole group of four characters before the
    # last decodes to its three bytes one to one, so a text of the encoder's length can differ
    # from the encoder's only in its last group: that group alone is encoded again (the whole
    # payload cost 4% of reading a verdict, bench/history.py).
    last = len(data) % 3 or 3
    if len(standard) != 4 * -(-len(data) // 3) or (
        data and base64.b64encode(data[-last:]).decode("ascii") != standard[-4:]
    ):
        raise VerificationError(f"{what} is not canonical base64 (non-zero unused bits)")
    return data


def verify(document: Envelope | dict[str, Any], public_keys: Any) -> Verified:
    """Check that a signature by one of ``public_keys`` (one key or several: key rotation)
    verifies over the PAE of the payload; returns the exact signed payload bytes and the id of
    the key that verified them.

    Every signature is tried against every key. A signature's keyid is a hint only (DSSE): it
    orders the keys tried first, never decides. Raises VerificationError with a one-line
    reason; an unsigned envelope never verifies.
    """
    from cryptography.exceptions import InvalidSignature

    envelope = document if isinstance(document, Envelope) else from_document(document)
    keys = list(public_keys) if isinstance(public_keys, (list, tuple)) else [public_keys]
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}")
    if not envelope.signatures:
        raise VerificationError("the verdict is unsigned (no signatures)")
    ids = [keyid(key) for key in keys]
    message = pae(envelope.payload_type, envelope.payload)
    for signature in envelope.signatures:
        for index in sorted(range(len(keys)), key=lambda i: ids[i] != signature.keyid):
            try:
                keys[index].verify(signature.sig, message)
            except InvalidSignature:
                continue
            return Verified(envelope.payload, ids[index])
    names = " or ".join(f"{key_id[:16]}…" for key_id in ids)
    raise VerificationError(f"no signature by key {names} verifies over the payload")
