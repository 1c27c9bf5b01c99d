"""A tiny ASGI app for the real-server tests: 200 on every path, `/slow` takes a second.

Every line it prints goes to stdout without an explicit flush, so it only shows up while the
server runs when the interpreter is unbuffered.
"""

import asyncio
import os

print(f"pytune-test app loaded pid={os.getpid()}")


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
        print(f"pytune-test slow start pid={os.getpid()}")
        await asyncio.sleep(1.0)
    print(f"pytune-test request path={path} pid={os.getpid()}")
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
