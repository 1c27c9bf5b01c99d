"""A tiny Celery app for the real-worker tests, on the in-memory broker (no server to run).

Once the worker is ready it queues one `slow` task (three seconds long) to itself, so that SIGTERM can
arrive while a task runs. Each pool child says so when it starts. Lines go to the process's real
stdout (the worker redirects `sys.stdout` into its logger), one write each, without a flush: they
show up while the worker runs only when the interpreter is unbuffered.
"""

import os
import sys
import time

from celery import Celery
from celery.signals import worker_process_init, worker_ready


def say(line):
    sys.__stdout__.write(line + "\n")


app = Celery("celery_app", broker="memory://")

say(f"pytune-test app loaded pid={os.getpid()}")


@worker_process_init.connect
def pool_child_started(**_):
    say(f"pytune-test celery child pid={os.getpid()}")


@app.task
def slow():
    say(f"pytune-test slow start pid={os.getpid()}")
    time.sleep(3.0)
    say(f"pytune-test slow done pid={os.getpid()}")


@worker_ready.connect
def queue_slow_task(**_):
    say(f"pytune-test worker ready pid={os.getpid()}")
    slow.delay()
