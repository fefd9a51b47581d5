#!/usr/bin/env python3
"""Kill, damage, restart: the driver of scripts/soak-truncate.sh.

Each round runs the real server on one data directory, drives CLIENTS clients pushing
heartbeats with a unique msg to MONITORS monitors, and logs every acknowledged one
(a 200 whose body arrived) with the time its answer arrived (acks.jsonl). Then it
SIGKILLs the server and reads the high-water mark. For each kind of damage it copies
the data directory, damages the copy's journal and starts the server on it:

  truncate-10/50/90/99  the newest journal cut at that share of its data
  zero-block            4 KiB of zeros written in the middle of its data
  delete-journal        the journal files removed
  delete-store          the whole fjall/ directory removed

Each copy must be either REFUSED (the server exits with an error naming the loss,
and `pushmon check` exits 1) or STARTED with every heartbeat acknowledged before the
mark's `acknowledged_before_ms` in its history. Heartbeats acknowledged after that
moment (the last second before the kill) may be lost without notice: those are
counted apart (the documented window). A STARTED copy missing a heartbeat from
before the mark is a failure. Finally the undamaged directory is restarted (a restart
after SIGKILL must never be refused) and must hold every acknowledged heartbeat.

Standard library only; everything targets 127.0.0.1, each step has a timeout and the
whole run stops at --deadline-seconds. Exit status 1 on any failure.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DAMAGES = [
    "truncate-10",
    "truncate-50",
    "truncate-90",
    "truncate-99",
    "zero-block",
    "delete-journal",
    "delete-store",
]
READY_TIMEOUT = 60
EXIT_TIMEOUT = 60


def now_ms():
    return int(time.time() * 1000)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, binary, data_dir, token, extra=()):
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log_path = f"{data_dir}.log"
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", self.url, "--data-dir", data_dir,
             "--admin-token", token, "--rate-limit-per-second", "1000000",
             "--rate-limit-burst", "1000000", "--rate-limit-ip-per-second", "0",
             "--history-max-heartbeats", "0", "--history-max-age-days", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, env={**os.environ, "NO_COLOR": "1"})
        self.token = token

    def wait(self):
        """'ready', or 'exited' once the process ended first."""
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            if self.process.poll() is not None:
                return "exited"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return "ready"
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server on {self.url} neither ready nor exited")

    def api(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=EXIT_TIMEOUT)

    def term(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=EXIT_TIMEOUT)

    def stderr(self):
        self.log.flush()
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")


def load(server, monitors, clients, seconds, round_no, acks_file):
    """Pushes until `seconds` have passed or the server is gone; logs every ack."""
    stop = threading.Event()
    lock = threading.Lock()
    count = [0]

    def client(index):
        conn = None
        n = 0
        while not stop.is_set():
            monitor_id, token = monitors[(index * 7 + n) % len(monitors)]
            msg = f"r{round_no}-c{index}-{n}"
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                query = urllib.parse.urlencode({"msg": msg})
                conn.request("POST", f"/api/push/{token}?{query}")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200 and b"true" in body:
                    line = json.dumps({"t": now_ms(), "monitor": monitor_id, "msg": msg})
                    with lock:
                        acks_file.write(line + "\n")
                        count[0] += 1
            except (OSError, http.client.HTTPException):
                conn = None
                if server.process.poll() is not None:
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    acks_file.flush()
    os.fsync(acks_file.fileno())
    return count[0]


def journals(data_dir):
    store = os.path.join(data_dir, "fjall")
    found = []
    for name in os.listdir(store):
        if name.endswith(".jnl"):
            found.append((int(name[:-4]), os.path.join(store, name)))
    return [path for _, path in sorted(found)]


def data_end(path):
    """Where the data of a (sparse, zero-padded) journal ends."""
    with open(path, "rb") as journal:
        data = journal.read()
    return len(data.rstrip(b"\0"))


def damage(data_dir, kind):
    newest = journals(data_dir)[-1]
    if kind.startswith("truncate-"):
        share = int(kind.split("-")[1])
        end = data_end(newest)
        os.truncate(newest, end * share // 100)
        return f"{os.path.basename(newest)} cut from {end} to {end * share // 100} bytes"
    if kind == "zero-block":
        end = data_end(newest)
        at = max(0, end // 2 - 2048)
        with open(newest, "r+b") as journal:
            journal.seek(at)
            journal.write(b"\0" * 4096)
        return f"{os.path.basename(newest)}: 4 KiB zeroed at {at} of {end}"
    if kind == "delete-journal":
        for path in journals(data_dir):
            os.remove(path)
        return "journal files removed"
    if kind == "delete-store":
        shutil.rmtree(os.path.join(data_dir, "fjall"))
        return "fjall/ removed"
    raise ValueError(kind)


def recorded(server, monitor_ids):
    """Every heartbeat msg in each monitor's history (a deleted monitor: none)."""
    found = {}
    for monitor_id in monitor_ids:
        msgs = set()
        before = None
        while True:
            path = f"/api/monitors/{monitor_id}/events?limit=1000"
            if before is not None:
                path += f"&before={before}"
            status, body = server.api("GET", path)
            if status == 404:
                break
            if status != 200:
                raise RuntimeError(f"events of {monitor_id}: {status}")
            events = body["events"]
            msgs.update(e["msg"] for e in events if e.get("kind") == "heartbeat" and e.get("msg"))
            if len(events) < 1000:
                break
            before = events[-1]["seq"]
        found[monitor_id] = msgs
    return found


def read_acks(path):
    with open(path) as acks:
        return [json.loads(line) for line in acks if line.strip()]


def lost_acks(server, acks, covered_before):
    """(lost before the mark's moment, lost after it)."""
    found = recorded(server, sorted({ack["monitor"] for ack in acks}))
    early = late = 0
    for ack in acks:
        if ack["msg"] not in found.get(ack["monitor"], ()):
            if covered_before is not None and ack["t"] < covered_before:
                early += 1
            else:
                late += 1
    return early, late


def check(binary, data_dir):
    done = subprocess.run([binary, "check", "--data-dir", data_dir], capture_output=True,
                          text=True, timeout=EXIT_TIMEOUT)
    return done.returncode, done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--monitors", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-round-seconds", type=float, default=4.0)
    parser.add_argument("--deadline-seconds", type=int, default=1800)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    started = time.time()
    work = tempfile.mkdtemp(prefix="pushmon-soak-truncate.")
    token = "soak-" + os.urandom(12).hex()
    data_dir = os.path.join(work, "data")
    acks_path = os.path.join(work, "acks.jsonl")
    failures = []
    outcomes = {kind: {"refused": 0, "started-whole": 0, "started-lost-in-window": 0,
                       "started-lost-undetected": 0, "other": 0} for kind in DAMAGES}
    window_losses = 0
    clean_restarts = 0
    try:
        server = Server(args.binary, data_dir, token)
        if server.wait() != "ready":
            raise RuntimeError(server.stderr())
        monitors = []
        for n in range(args.monitors):
            status, body = server.api("POST", "/api/monitors",
                                      {"name": f"soak {n}", "timeout_seconds": 86400})
            if status != 201:
                raise RuntimeError(f"create monitor: {status} {body}")
            monitors.append((body["id"], body["push_token"]))
        with open(acks_path, "a") as acks_file:
            for round_no in range(args.rounds):
                if time.time() - started > args.deadline_seconds:
                    print(f"deadline reached after {round_no} rounds")
                    break
                seconds = random.uniform(1.0, args.max_round_seconds)
                acked = load(server, monitors, args.clients, seconds, round_no, acks_file)
                mark = json.load(open(os.path.join(data_dir, "high-water-mark")))
                covered = mark.get("acknowledged_before_ms")
                acks = read_acks(acks_path)
                after_mark = sum(1 for ack in acks if covered is None or ack["t"] >= covered)
                print(f"round {round_no}: {seconds:.1f}s of load, {acked} acknowledged "
                      f"({len(acks)} in all), SIGKILL; mark last_seq={mark['last_seq']}, "
                      f"{after_mark} acknowledged after its moment")
                for kind in DAMAGES:
                    copy = os.path.join(work, f"r{round_no}-{kind}")
                    shutil.copytree(data_dir, copy, symlinks=True)
                    what = damage(copy, kind)
                    damaged = Server(args.binary, copy, token)
                    state = damaged.wait()
                    if state == "exited":
                        stderr = damaged.stderr()
                        code, report = check(args.binary, copy)
                        clear = ("acknowledged writes are missing" in stderr
                                 or "is missing, but the high-water mark" in stderr
                                 or "is damaged" in stderr)
                        if damaged.process.returncode == 1 and clear and code == 1:
                            outcomes[kind]["refused"] += 1
                            verdict = "refused"
                        else:
                            outcomes[kind]["other"] += 1
                            verdict = "FAILED: exited without a clear refusal"
                            failures.append(f"round {round_no} {kind}: {stderr[-600:]} / "
                                            f"check {code}: {report[-300:]}")
                        detail = stderr.strip().splitlines()[-1][-160:] if stderr.strip() else ""
                        print(f"  {kind:15} {what}: {verdict} (exit {damaged.process.returncode}, "
                              f"check exit {code}): ...{detail}")
                    else:
                        early, late = lost_acks(damaged, acks, covered)
                        damaged.term()
                        if early:
                            outcomes[kind]["started-lost-undetected"] += 1
                            failures.append(f"round {round_no} {kind}: started and lost {early} "
                                            f"heartbeats acknowledged before the mark")
                            verdict = f"FAILED: started, {early} lost from before the mark"
                        elif late:
                            outcomes[kind]["started-lost-in-window"] += 1
                            window_losses += late
                            verdict = f"started, {late} lost from the last second (window)"
                        else:
                            outcomes[kind]["started-whole"] += 1
                            verdict = "started, nothing acknowledged lost"
                        print(f"  {kind:15} {what}: {verdict}")
                    if not args.keep:
                        shutil.rmtree(copy, ignore_errors=True)
                        for suffix in (".log",):
                            if os.path.exists(copy + suffix):
                                os.remove(copy + suffix)
                # The undamaged store: a restart after SIGKILL is never refused.
                server = Server(args.binary, data_dir, token)
                if server.wait() != "ready":
                    failures.append(f"round {round_no}: the undamaged store was refused: "
                                    f"{server.stderr()[-600:]}")
                    break
                clean_restarts += 1
                early, late = lost_acks(server, acks, None)
                if early or late:
                    failures.append(f"round {round_no}: the undamaged store lost "
                                    f"{early + late} acknowledged heartbeats")
        if server.process.poll() is None:
            server.term()
        code, report = check(args.binary, data_dir)
        if code != 0:
            failures.append(f"final check: {report[-600:]}")
        total = len(read_acks(acks_path))
        print()
        print("===== soak-truncate summary =====")
        print(f"rounds={args.rounds} monitors={args.monitors} clients={args.clients} "
              f"acknowledged={total} clean_restarts_after_sigkill={clean_restarts} "
              f"elapsed={time.time() - started:.0f}s")
        print(f"{'damage':15} {'refused':>8} {'whole':>6} {'window':>7} {'UNDETECTED':>10} {'other':>6}")
        for kind in DAMAGES:
            o = outcomes[kind]
            print(f"{kind:15} {o['refused']:>8} {o['started-whole']:>6} "
                  f"{o['started-lost-in-window']:>7} {o['started-lost-undetected']:>10} {o['other']:>6}")
        print(f"heartbeats lost within the last-second window (not detected, documented): {window_losses}")
        print(f"failures: {len(failures)}")
        for failure in failures:
            print(f"  {failure}")
        print("=================================")
        return 1 if failures else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
