"""A tiny ASGI app for the real-server tests: 200 on every path, `/slow` takes a second.

Every line it writes goes to stdout without an explicit flush, so it only shows up while the
server runs when the interpreter is unbuffered. Each line is one write: `print` writes the text and
the newline separately, and unbuffered lines from several workers sharing one pipe then interleave.
"""

import asyncio
import os
import sys


def say(line):
    sys.stdout.write(line + "\n")


say(f"pytune-test app loaded pid={os.getpid()}")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/slow":
        say(f"pytune-test slow start pid={os.getpid()}")
        await asyncio.sleep(1.0)
    say(f"pytune-test request path={path} pid={os.getpid()}")
    body = f"ok {path} pid={os.getpid()}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
