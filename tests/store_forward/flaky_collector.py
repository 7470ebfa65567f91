"""The real collector app behind a switch: while the file ``--refuse-flag`` exists, samples batches are
answered 422 (as a collector with a validation bug would); removing the file "fixes" it. Events pass.

    python -m tests.store_forward.flaky_collector --db PATH --port P --key K --refuse-flag PATH
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import zstandard

from cloud_sync.collector.app import create_app
from cloud_sync.collector.store import open_store

Scope = dict[str, Any]


def refusing(app: Any, flag: Path) -> Any:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/v1/batches" \
                or not flag.exists():
            await app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        coding = dict(scope["headers"]).get(b"content-encoding", b"identity")
        data = gzip.decompress(body) if coding == b"gzip" else \
            zstandard.ZstdDecompressor().decompress(body) if coding == b"zstd" else body
        if orjson.loads(data).get("stream") == "samples":
            answer = orjson.dumps({"detail": "rows[0]: unit 'mm/min' is not known (refused for the test)"})
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": answer})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--refuse-flag", type=Path, required=True)
    args = parser.parse_args()
    store = open_store(f"sqlite:///{args.db}")
    app = refusing(create_app(store, {args.key: None}, rate_limit=0), args.refuse_flag)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
