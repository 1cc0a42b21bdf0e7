"""One HTTP/1.1 GET over a connected socket: how the pre-flight asks an ``http://`` target.

A speed trick, kept because it pays. http.client would do the same, but importing it imports
ssl and email.parser too, whatever the URL's scheme. In bench/overhead.py's ``active`` case
(5,000 tests, an ``http://`` target) the pre-flight through http.client costs 24M instructions
more than through this module: 12.658 against 12.634 billion, counted by callgrind with the
garbage collector disabled by a ``-p`` plugin (enabled, its passes move a run's total by some
10M either way, more than the difference): 0.2% of bare pytest, against an active budget of 5%.
To re-measure, make ``preflight._get_once`` use ``http.client.HTTPConnection`` for ``http://``
too and count the active case before and after.

``https://`` targets need ssl anyway: the pre-flight sends them through http.client.
"""

from __future__ import annotations

import socket

#: Most bytes read (headers and body): a version probe answers in a few.
MAX_RESPONSE = 1 << 20
USER_AGENT = "pytest-staging-preflight"


class BadResponse(Exception):
    """What came back is not a complete HTTP/1.x response; the message is a short reason."""


def get(sock: socket.socket, netloc: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Send ``GET path`` with ``Connection: close``, read the answer to its end and parse it.

    Returns the status, the headers (lower-case names) and the body. Socket errors (a timeout
    included) and a header that is not Latin-1 come through as they are.
    """
    sent = {"Host": netloc, "Accept-Encoding": "identity", "Connection": "close", "User-Agent": USER_AGENT}
    sent.update(headers)
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in sent.items()) + "\r\n"
    sock.sendall(request.encode("latin-1"))
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return parse_response(b"".join(chunks))


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of a complete HTTP/1.x response."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if not separator or len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise BadResponse("not an HTTP response" if raw else "the connection closed without an answer")
    response_headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if response_headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif response_headers.get("content-length", "").isdigit():
        body = body[: int(response_headers["content-length"])]
    return int(status_line[1]), response_headers, body


def _unchunk(data: bytes) -> bytes:
    out: list[bytes] = []
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            raise BadResponse("a chunked answer ended early")
        try:
            length = int(data[position:line_end].split(b";")[0], 16)
        except ValueError:
            raise BadResponse("a chunked answer is malformed") from None
        if length == 0:
            return b"".join(out)
        start = line_end + 2
        out.append(data[start : start + length])
        position = start + length + 2
