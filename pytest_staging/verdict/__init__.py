"""The promotion verdict: an in-toto Statement in a DSSE envelope, signed with Ed25519.

``statement.py`` builds the payload from the ledger and the decision, ``dsse.py`` signs,
parses and verifies envelopes, ``files.py`` writes them atomically and reads them back (one
reader for every caller), ``vsa.py`` writes the SLSA verification summary beside the verdict,
``schema.json`` is the payload's JSON Schema.
"""

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://pytest-staging.dev/promotion-verdict/v1"
