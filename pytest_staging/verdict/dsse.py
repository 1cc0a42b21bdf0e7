"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) signed with Ed25519. Pure.

The signature covers the PAE of the payload bytes, never a re-serialisation of them, so a
verifier checks exactly what was signed before it parses anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from ..errors import ConfigError
from . import PAYLOAD_TYPE


class VerificationError(Exception):
    """The envelope is not a validly signed verdict; the message is one line for the user."""


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
        raise ConfigError(where, "", "the key is encrypted; give an unencrypted PEM key (pytest-staging keygen)") from None
    except (ValueError, Exception):  # cryptography raises several types for bad PEM
        raise ConfigError(where, "", "not a PEM private key; create one with `pytest-staging keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(where, "", "not an Ed25519 key; create one with `pytest-staging keygen`")
    return key


def load_public_key(pem: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except Exception:
        raise ConfigError(where, "", "not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(where, "", "not an Ed25519 public key")
    return key


def envelope(payload: bytes, private_key: Any | None) -> dict[str, Any]:
    """A DSSE envelope of ``payload``; ``signatures`` is empty without a key."""
    signatures = []
    if private_key is not None:
        signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
        signatures.append({"keyid": keyid(private_key.public_key()), "sig": base64.b64encode(signature).decode("ascii")})
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"), "signatures": signatures}


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"{what} is not valid base64") from None


def verify(document: Any, public_key: Any) -> bytes:
    """Check the envelope's signature by ``public_key`` and return the exact signed payload bytes.

    Raises VerificationError with a one-line reason. An unsigned envelope never verifies.
    """
    from cryptography.exceptions import InvalidSignature

    if not isinstance(document, dict) or not {"payloadType", "payload", "signatures"} <= set(document):
        raise VerificationError("not a DSSE envelope (needs payloadType, payload, signatures)")
    if document["payloadType"] != PAYLOAD_TYPE:
        raise VerificationError(f"payloadType is {document['payloadType']!r}, expected {PAYLOAD_TYPE!r}")
    payload = _b64(document["payload"], "payload")
    signatures = document["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise VerificationError("the verdict is unsigned (no signatures)")
    wanted = keyid(public_key)
    message = pae(PAYLOAD_TYPE, payload)
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        try:
            public_key.verify(_b64(entry.get("sig"), "signature"), message)
        except InvalidSignature:
            continue
        if entry.get("keyid") not in (None, "", wanted):
            raise VerificationError(f"signature verifies but its keyid {entry.get('keyid')!r} is not this key's {wanted}")
        return payload
    raise VerificationError(f"no signature by key {wanted[:16]}… verifies over the payload")
