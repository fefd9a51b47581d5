"""A webhook receiver for benchmarks: answers 200 to every POST and appends, for each
alert, the milliseconds from the alert's `at` to its arrival, one number a line, to
the file given. Loopback only; stops after --max-seconds.

    python3 scripts/webhook_sink.py --port 9999 --out lags.txt --max-seconds 300
"""
import argparse
import datetime
import http.server
import json
import threading


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            arrived = datetime.datetime.now(datetime.timezone.utc)
            try:
                at = json.loads(body)["at"].replace("Z", "+00:00")
                lag_ms = (arrived - datetime.datetime.fromisoformat(at)).total_seconds() * 1000
                with lock:
                    out.write(f"{lag_ms:.1f}\n")
            except (ValueError, KeyError, TypeError):
                pass
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Timer(args.max_seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
