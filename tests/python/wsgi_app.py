"""A tiny WSGI app for the real-server tests: 200 on every path, `/slow` takes a second.

Every line it writes goes to stdout without an explicit flush, so it only shows up while the
server runs when the interpreter is unbuffered. Each line is one write: `print` writes the text and
the newline separately, and unbuffered lines from several workers sharing one pipe then interleave.
"""

import os
import sys
import time


def say(line):
    sys.stdout.write(line + "\n")


say(f"pytune-test app loaded pid={os.getpid()}")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/slow":
        say(f"pytune-test slow start pid={os.getpid()}")
        time.sleep(1.0)
    say(f"pytune-test request path={path} pid={os.getpid()}")
    body = f"ok {path} pid={os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
