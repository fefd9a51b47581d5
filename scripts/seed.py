#!/usr/bin/env python3
"""Create N monitors on a running pushmon through its API, concurrently.

Writes the push tokens one a line to --out (in creation order) and prints the rate.
With --pushes K it then sends K heartbeats to every monitor (status=up). With
--push-only FILE it creates nothing and sends --pushes heartbeats to each token in FILE.

Standard library only: a pool of worker threads, each with its own keep-alive
http.client connection. Bounded: every request has a timeout, and the whole run
stops at --deadline-seconds. Exit status 1 if any monitor or heartbeat failed.

  seed.py --url http://127.0.0.1:PORT --admin-token TOK --count 10000 --out tokens.txt
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

RETRIABLE_STATUS = {429, 503}
ATTEMPTS = 4


class Client:
    """One keep-alive connection; reconnects after a connection error."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        last_error = None
        for attempt in range(ATTEMPTS):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                if response.status in RETRIABLE_STATUS and attempt + 1 < ATTEMPTS:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                return response.status, data
            except (OSError, http.client.HTTPException) as error:
                last_error = error
                self.close()
                time.sleep(0.05 * (attempt + 1))
        raise ConnectionError(f"{method} {path.split('?')[0][:20]}...: {last_error}")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Run:
    """Shared progress and error bookkeeping for one phase."""

    def __init__(self, label, total, deadline):
        self.label, self.total, self.deadline = label, total, deadline
        self.lock = threading.Lock()
        self.done = 0
        self.errors = 0
        self.samples = []  # the first few error messages
        self.statuses = {}

    def ok(self):
        with self.lock:
            self.done += 1

    def fail(self, message, status=None):
        with self.lock:
            self.errors += 1
            if status is not None:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if len(self.samples) < 5:
                self.samples.append(message)

    def expired(self):
        return time.monotonic() > self.deadline


def run_workers(concurrency, target, run):
    """Run target(worker_index) on `concurrency` threads, printing progress."""
    threads = [threading.Thread(target=target, args=(w,), daemon=True) for w in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    last_report = started
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.1)
        now = time.monotonic()
        if now - last_report >= 10:
            last_report = now
            print(f"  {run.label}: {run.done}/{run.total} in {now - started:.0f}s "
                  f"({run.errors} errors)", file=sys.stderr, flush=True)
        if run.expired():
            # Workers notice the deadline between requests; give them a moment.
            for thread in threads:
                thread.join(timeout=15)
            break
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--admin-token", required=True)
    parser.add_argument("--count", type=int, default=0, help="monitors to create")
    parser.add_argument("--out", help="file for the push tokens, one a line")
    parser.add_argument("--push-only", metavar="TOKENS_FILE",
                        help="create nothing; push to the tokens in this file")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--monitor-timeout", type=int, default=3600,
                        help="timeout_seconds of the new monitors")
    parser.add_argument("--name-prefix", default="bench-")
    parser.add_argument("--two-labels", action="store_true",
                        help="give each monitor two labels: team (50 values) and env (3)")
    parser.add_argument("--channel", action="append", default=[],
                        help="channel id to list in every new monitor (repeatable)")
    parser.add_argument("--pushes", type=int, default=0,
                        help="heartbeats to send to each monitor after creating them all")
    parser.add_argument("--push-rate", type=float, default=0.0,
                        help="pace the pushes at this many a second in all (0: as fast as possible)")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--deadline-seconds", type=float, default=1800.0,
                        help="give up after this long in total")
    args = parser.parse_args()
    if args.push_only:
        args.pushes = max(args.pushes, 1)
    elif not args.out or args.count <= 0:
        parser.error("--count N (N > 0) and --out FILE are required unless --push-only")

    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("seed.py only targets loopback")
    deadline = time.monotonic() + args.deadline_seconds
    clients = [Client(host, port, args.request_timeout) for _ in range(args.concurrency)]
    headers = {"Authorization": f"Bearer {args.admin_token}",
               "Content-Type": "application/json"}
    tokens = [None] * args.count
    concurrency = max(1, min(args.concurrency, args.count or args.concurrency))

    create = Run("create", args.count, deadline)

    def create_worker(w):
        client = clients[w]
        for i in range(w, args.count, concurrency):
            if create.expired():
                create.fail("deadline reached")
                return
            fields = {"name": f"{args.name_prefix}{i}",
                      "timeout_seconds": args.monitor_timeout,
                      "channels": args.channel}
            if args.two_labels:
                fields["labels"] = {"team": f"team-{i % 50}",
                                    "env": ("prod", "staging", "dev")[i % 3]}
            body = json.dumps(fields)
            try:
                status, data = client.request("POST", "/api/monitors", body, headers)
            except ConnectionError as error:
                create.fail(str(error))
                continue
            if status != 201:
                create.fail(f"POST /api/monitors: {status} {data[:200]!r}", status)
                continue
            try:
                tokens[i] = json.loads(data)["push_token"]
            except (ValueError, KeyError, TypeError) as error:
                create.fail(f"bad monitor JSON: {error}: {data[:200]!r}")
                continue
            create.ok()

    if args.push_only:
        with open(args.push_only) as tokens_file:
            created = [line.strip() for line in tokens_file if line.strip()]
    else:
        elapsed = run_workers(concurrency, create_worker, create)
        created = [token for token in tokens if token]
        with open(args.out, "w") as out:
            out.writelines(token + "\n" for token in created)
        rate = len(created) / elapsed if elapsed > 0 else 0.0
        print(f"created {len(created)} monitors in {elapsed:.2f}s: {rate:.0f} monitors/s "
              f"({create.errors} errors, concurrency {concurrency})", flush=True)
        report_errors(create)
    concurrency = max(1, min(args.concurrency, len(created) or 1))

    push = Run("push", len(created) * args.pushes, deadline)
    if args.pushes > 0 and created:
        started = time.monotonic()

        def push_worker(w):
            client = clients[w]
            for round_ in range(args.pushes):
                for i in range(w, len(created), concurrency):
                    if args.push_rate > 0:
                        due = started + (round_ * len(created) + i) / args.push_rate
                        wait = due - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    if push.expired():
                        push.fail("deadline reached")
                        return
                    try:
                        status, data = client.request(
                            "POST", f"/api/push/{created[i]}?status=up&msg=seed")
                    except ConnectionError as error:
                        push.fail(str(error))
                        continue
                    if status != 200:
                        push.fail(f"push: {status} {data[:200]!r}", status)
                        continue
                    push.ok()

        elapsed = run_workers(concurrency, push_worker, push)
        rate = push.done / elapsed if elapsed > 0 else 0.0
        print(f"pushed {push.done} heartbeats in {elapsed:.2f}s: {rate:.0f} heartbeats/s "
              f"({push.errors} errors)", flush=True)
        report_errors(push)

    for client in clients:
        client.close()
    if create.errors or push.errors or (not args.push_only and len(created) != args.count):
        sys.exit(1)


def report_errors(run):
    if not run.errors:
        return
    print(f"  {run.label} errors by status: {run.statuses or 'none with a status'}",
          file=sys.stderr)
    for sample in run.samples:
        print(f"  e.g. {sample}", file=sys.stderr)


if __name__ == "__main__":
    main()
