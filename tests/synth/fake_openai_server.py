"""A real OpenAI-compatible HTTP server on 127.0.0.1 for testing the `openai` QA backend.

It answers `POST /v1/chat/completions` with a chat completion whose content is QA JSON grounded in
the passages of the request (it quotes the first sentence of each `<passage>`, or of each `<piece>` of
a multi-hop request's `<text>`), plus a `usage` block. Faults are scripted per test:

    with FakeOpenAIServer(api_key="sk-test") as srv:
        srv.inject("429", "500")                 # the next two requests, whatever they are
        srv.inject("slow", marker="Ottawa")      # the next request whose body contains "Ottawa"
        srv.always("500", marker="Atlantis")     # every request whose body contains "Atlantis"
        ... srv.base_url ... srv.requests_received ... srv.max_in_flight ...

        srv.clear()                              # no more faults: the endpoint has recovered

Fault names: "429" (with Retry-After), "500", "400" (a refusal), "slow" (answers after `slow_s`, past the client timeout),
"hang" (waits `slow_s`, then closes the connection without an answer),
"truncated" (content is JSON cut off, finish_reason "length"), "malformed" (content is not JSON),
"ungrounded" (evidence quotes not in the passages), "body_truncated" (the HTTP body is cut off),
"body_malformed" (HTTP 200 with a body that is not JSON), "no_usage" (no usage block), "empty" (content
""), "null" (content null), "no_choices" (`choices: []`).

Bounded: loopback only, a free port, bodies up to 8 MiB, at most `max_requests` answered, and a
watchdog that shuts the server down after `lifetime_s` even if a test forgets to. `port` binds a
given port (a test can first leave it closed, so connections are refused, then start the server
there). `answered` counts the usable answers (QA JSON) per request body: a body answered twice was
paid twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = {"429", "500", "400", "slow", "hang", "truncated", "malformed", "ungrounded", "body_truncated",
          "body_malformed", "no_usage", "empty", "null", "no_choices"}
NOT_ANSWERS = {"truncated", "malformed", "empty", "null", "no_choices"}  # 200 replies that hold no QA JSON

_PASSAGE = re.compile(r'<passage id="(\d+)" title="([^"]*)">\n(.*?)\n</passage>', re.S)
_TEXT = re.compile(r'<text title="([^"]*)">\n(.*?)\n</text>', re.S)
_PIECE = re.compile(r'<piece id="(\d+)">\n(.*?)\n</piece>', re.S)
_SENTENCE = re.compile(r"\S.*?[.!?](?=\s|$)", re.S)
_MAX_BODY = 8 << 20


def first_sentence(text: str, max_words: int = 24) -> str:
    """The first sentence of a passage (at most `max_words` words), verbatim."""
    m = _SENTENCE.search(text)
    sent = m.group(0) if m else text.strip()
    words = sent.split()
    if len(words) > max_words:  # cut at a word boundary, keeping the original spacing
        cut = re.match(r"\s*(?:\S+\s+){%d}\S+" % (max_words - 1), sent)
        sent = cut.group(0).strip() if cut else " ".join(words[:max_words])
    return sent


def qa_for_passages(passages: list[tuple[str, str]], ungrounded: bool = False) -> dict[str, Any]:
    """Grounded QA JSON for (title, text) passages: the evidence is the first sentence of each."""
    quotes = [first_sentence(text) for _, text in passages]
    if ungrounded:
        quotes = [f"The moon of {title or 'nowhere'} is made of green cheese and sings at night."
                  for title, _ in passages]
    titles = [t or f"item {i + 1}" for i, (t, _) in enumerate(passages)]
    if len(passages) == 1:
        question = f"What is the opening statement about {titles[0]}?"
    else:
        question = "What are the opening statements about " + " and ".join(dict.fromkeys(titles)) + "?"
    return {"question": question, "answer": " ".join(quotes), "evidence": quotes}


class FakeOpenAIServer:
    def __init__(self, api_key: str = "sk-test", *, delay_s: float = 0.0, slow_s: float = 2.0,
                 retry_after: str = "0", max_requests: int = 10_000, lifetime_s: float = 120.0, port: int = 0):
        self.api_key = api_key
        self.delay_s = delay_s  # every normal answer waits this long (makes concurrency measurable)
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.port = port
        self.requests_received = 0
        self.answered: Counter = Counter()  # sha256 of a request body -> 200 answers sent for it
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.idempotency_keys: list[str | None] = []  # the Idempotency-Key header of each request, in order
        self.auth_failures = 0
        self._queue: deque[tuple[str | None, str]] = deque()  # (marker, fault) in order
        self._always: list[tuple[str | None, str]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # -- scripting --------------------------------------------------------------------------------
    def inject(self, *faults: str, marker: str | None = None) -> None:
        """Queue faults for the next requests (whose body contains `marker`, when given)."""
        with self._lock:
            for f in faults:
                if f not in FAULTS:
                    raise ValueError(f"unknown fault {f!r}")
                self._queue.append((marker, f))

    def always(self, fault: str, marker: str | None = None) -> None:
        """Apply `fault` to every request (whose body contains `marker`, when given)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._always.append((marker, fault))

    def clear(self) -> None:
        """Forget every scripted fault."""
        with self._lock:
            self._queue.clear()
            self._always.clear()

    def _take_fault(self, raw: str) -> str | None:
        with self._lock:
            for marker, fault in self._always:
                if marker is None or marker in raw:
                    return fault
            for i, (marker, fault) in enumerate(self._queue):
                if marker is None or marker in raw:
                    del self._queue[i]
                    return fault
        return None

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAIServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        self._watchdog = threading.Timer(self.lifetime_s, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- request accounting -----------------------------------------------------------------------
    def _enter(self) -> int:
        with self._lock:
            self.requests_received += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.requests_received

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.0"  # one request per connection: simple and robust

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              declared_length: int | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(declared_length if declared_length is not None else len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired); nothing to do

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": {"message": message, "type": "fake_error", "code": status}}).encode()
        self._send(status, body, headers)

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        srv = self.owner
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._error(413, "request too large")
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        number = srv._enter()
        try:
            self._answer(srv, raw, number)
        finally:
            srv._leave()

    def _answer(self, srv: FakeOpenAIServer, raw: str, number: int) -> None:
        if number > srv.max_requests:
            self._error(503, "fake server request limit reached")
            return
        if self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            with srv._lock:
                srv.auth_failures += 1
            self._error(401, "Incorrect API key provided.")
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._error(400, "request body is not JSON")
            return
        with srv._lock:
            srv.bodies.append(body)
            srv.idempotency_keys.append(self.headers.get("Idempotency-Key"))
        fault = srv._take_fault(raw)
        if fault == "429":
            self._error(429, "Rate limit reached", {"Retry-After": srv.retry_after})
            return
        if fault == "500":
            self._error(500, "The server had an error while processing your request.")
            return
        if fault == "400":
            self._error(400, "This request was refused by the fake server.")
            return
        if fault == "hang":
            srv._stopping.wait(srv.slow_s)
            self.close_connection = True
            return
        if fault == "slow":
            srv._stopping.wait(srv.slow_s)
        elif srv.delay_s:
            srv._stopping.wait(srv.delay_s)
        user = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        passages = [(title, text) for _, title, text in _PASSAGE.findall(user)]
        for title, pieces in _TEXT.findall(user):  # a multi-hop request: pieces of one text
            passages += [(title, text) for _, text in _PIECE.findall(pieces)]
        qa = qa_for_passages(passages, ungrounded=fault == "ungrounded")
        content = json.dumps(qa, ensure_ascii=False)
        finish = "stop"
        if fault == "truncated":
            content, finish = content[: max(1, len(content) // 2)], "length"
        elif fault == "malformed":
            content = "Sure! Here is a question: " + qa["question"] + " (answer: " + qa["answer"] + ")"
        elif fault in ("empty", "null"):
            content = "" if fault == "empty" else None
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        completion_tokens = max(1, len(content or "") // 4)
        response: dict[str, Any] = {
            "id": f"chatcmpl-fake-{number}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish}],
        }
        if fault == "no_choices":
            response["choices"] = []
        if fault != "no_usage":
            response["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        data = json.dumps(response).encode()
        if fault == "body_truncated":
            self._send(200, data[: len(data) // 2], declared_length=len(data))
            self.close_connection = True
            return
        if fault == "body_malformed":
            self._send(200, b"<html>upstream proxy error</html>")
            return
        if fault not in NOT_ANSWERS:
            with srv._lock:
                srv.answered[hashlib.sha256(raw.encode()).hexdigest()] += 1
        self._send(200, data)
