"""Control for the unbuffered-output test: prints one line (no flush), then waits to be killed."""

import time

print("pytune-test control line")
time.sleep(30)
