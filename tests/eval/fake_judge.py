"""A chat-completions endpoint on 127.0.0.1 for the judge tests (and the openai generation backend's):
`script(case, n)` gives the n-th (from 0) answer to `case` (`case_of(body)`; default: the `case N` its
last message names, else "any"): a reply text, None (content null), an HTTP
status, or one of the faults HANG (wait `hang_s`, then close without an answer), NOT_JSON (a 200 whose
body is not JSON) and NO_CHOICES (`choices: []`). Every request and every reply sent is recorded."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG, NOT_JSON, NO_CHOICES = "<hang>", "<not json>", "<no choices>"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def named_case(body: dict) -> str:
    """The `case N` a request's last message names, else "any"."""
    named = re.search(r"(case \d+)", body["messages"][-1]["content"])
    return named.group(1) if named else "any"


class FakeJudge:
    def __init__(self, script, hang_s: float = 1.0, case_of=named_case):
        self.script, self.hang_s = script, hang_s
        self.requests, self.calls, self.replies = [], {}, {}
        self.lock, self.stopping = threading.Lock(), threading.Event()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                case = case_of(body)
                with judge.lock:
                    n = judge.calls.get(case, 0)
                    judge.calls[case] = n + 1
                    judge.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                           "body": body, "case": case})
                out = judge.script(case, n)
                if out == HANG:
                    judge.stopping.wait(judge.hang_s)
                    self.close_connection = True
                    return
                with judge.lock:
                    judge.replies.setdefault(case, []).append(out)
                self._reply(body, out)

            def _reply(self, body, out):
                if isinstance(out, int):
                    self.send_response(out)
                    self.send_header("retry-after-ms", "10")
                    payload = json.dumps({"error": {"message": f"fake {out}", "type": "server"}}).encode()
                elif out == NOT_JSON:
                    self.send_response(200)
                    payload = b"<html>502 upstream proxy error</html>"
                else:
                    self.send_response(200)
                    choices = [] if out == NO_CHOICES else [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": out}}]
                    payload = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                          "choices": choices, "usage": USAGE}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
