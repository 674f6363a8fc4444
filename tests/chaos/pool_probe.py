"""Six threads query PostgreSQL through the server's connection pool (the production settings)
for `SECONDS`, each request as a web request does it: a connection from the pool, one
transaction, the connection back. Prints, as JSON, how the requests went: how many, which
errors, and the longest.

    python -m tests.chaos.pool_probe SECONDS
"""

import json
import os
import sys
import threading
import time
from collections import Counter


def main(seconds: float) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import close_old_connections, connection, transaction

    errors: Counter[str] = Counter()
    longest = 0.0
    requests = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    print("ready", flush=True)

    def work() -> None:
        nonlocal longest, requests
        while time.monotonic() < stop:
            close_old_connections()
            started = time.monotonic()
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(0.02)")
            except Exception as error:
                with lock:
                    errors[str(error).splitlines()[0]] += 1
            finally:
                close_old_connections()
            with lock:
                requests += 1
                longest = max(longest, time.monotonic() - started)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"requests": requests, "errors": errors, "longest": longest}), flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]))
