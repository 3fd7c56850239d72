"""WSGI answers shaped like Tenable's: JSON with its content type, HTML 429s, the error bodies it sends."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"
DENIED = {
    "missing": {"statusCode": 401, "error": "Unauthorized", "message": "Missing authentication"},
    "invalid": {"statusCode": 401, "error": "Unauthorized", "message": "Invalid credentials."},
    "forbidden": {"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope"},
}
FILE_NOT_FOUND = {"error": "The requested file was not found"}
HTML_429 = (
    b"<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


def json_response(
    start_response: Callable, status: int, body: Any, headers: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", JSON_TYPE), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


def bad_request(start_response: Callable, message: str) -> list[bytes]:
    """Tenable's 400 body, with a sentence saying what was wrong with the request."""
    return json_response(start_response, 400, {"statusCode": 400, "error": "Bad Request", "message": message})


def rate_limited(start_response: Callable, retry_after: str | None) -> list[bytes]:
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(HTML_429)))]
    if retry_after is not None:
        headers.append(("retry-after", str(retry_after)))
    start_response("429 Too Many Requests", headers)
    return [HTML_429]


def error_body(status: int) -> dict[str, Any]:
    if status == 500:
        return {
            "statusCode": 500,
            "error": "Internal Server Error",
            "message": "An internal server error occurred. Please wait a moment and try your request again.",
        }
    phrase = HTTPStatus(status).phrase
    return {"statusCode": status, "error": phrase, "message": phrase}


def gzipped(chunks: Iterable[bytes], level: int = 1) -> Iterator[bytes]:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def gzip_bomb(size: int) -> Iterator[bytes]:
    """About `size` bytes of a `.nessus` file padded with comments after its root tag: compresses ~1000:1."""
    yield b"<NessusClientData_v2>"
    block = (b"<!--" + b" " * 1017 + b"-->") * 1024  # 1 MiB; comments, so no parser limit stops it first
    for start in range(0, size, len(block)):
        yield block[: size - start]
