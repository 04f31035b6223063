"""The OpenAI-compatible QA backend (transport and grounding) against a real local HTTP server (tests/synth/fake_openai_server.py)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from longcurate.core.config import ConfigError
from longcurate.synth.config import OpenAIConfig
from longcurate.synth.grounding import (
    AnswerFormatError, UngroundedError, ground, key_fragment, locate_quote, normalize_ws, parse_answer)
from longcurate.core.api_key import api_key_from_env
from longcurate.core.endpoint import Policy, backoff_s
from longcurate.synth.openai_qa import BUDGET_EXHAUSTED, MAX_REQUESTS_REACHED, OpenAIBackend
from longcurate.synth.qa import PENDING, REFUSED, QABackend, QARequest, SegmentText

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer, first_sentence  # noqa: E402

KEY = "sk-test-3f9c1d2e7a6b5c4d-NEVER-LOG-ME"
KEY_ENV = "LONGCURATE_TEST_OPENAI_KEY"

TEXTS = [
    ("Lake Vostok", "Lake Vostok lies beneath the East Antarctic ice sheet at a depth of almost four kilometres. "
     "Its water has been isolated from the atmosphere for about fifteen million years."),
    ("Harbour bridge", "The Quayside swing bridge was opened in 1876 and turned on hydraulic power.\n"
     "It rotates through ninety degrees to let tall ships pass up the river."),
    ("Copper smelting", "Early copper smelters in the valley burned charcoal made from local oak.  "
     "By 1840 the hills around the works were almost bare of trees."),
    ("Glass flutes", "The glass flute was patented in Paris by Claude Laurent in 1806. "
     "Laurent made about two hundred of them, several for Napoleon."),
    ("Night trains", "The sleeper service between the two capitals ran every evening at a quarter past nine. "
     "Each carriage carried twenty-two passengers in eleven compartments."),
    ("Salt roads", "Salt from the coastal pans was carried inland on mule trains along the old ridge road. "
     "Toll houses stood at every river crossing."),
    ("Bell foundry", "The foundry cast its largest bell, weighing nine tonnes, for the cathedral in 1911. "
     "It took three days for the metal to cool in the pit."),
    ("Ice hotel", "Every winter the ice hotel is rebuilt from blocks cut out of the frozen river nearby. "
     "In spring the whole building melts back into the water."),
]
SEGS = [SegmentText(doc_id=f"doc-{i}", title=t, index=0, text=x) for i, (t, x) in enumerate(TEXTS)]


def fine(i: int, rid: str | None = None) -> QARequest:
    return QARequest(request_id=rid or f"req-fine-{i}", kind="fine", qtype="openai:fine", segments=(SEGS[i],))


def multi(i: int, j: int) -> QARequest:
    return QARequest(request_id=f"req-multi-{i}-{j}", kind="multihop", qtype="openai:multihop",
                     segments=(SEGS[i], SEGS[j]))


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=KEY, slow_s=1.5, lifetime_s=60) as srv:
        yield srv


@pytest.fixture
def backend_for(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def make(srv: FakeOpenAIServer, **overrides) -> OpenAIBackend:
        kw = dict(base_url=srv.base_url, model="fake-model", api_key_env=KEY_ENV, max_concurrency=4,
                  max_retries=3, timeout_s=0.4, backoff_initial_s=0.01, backoff_max_s=0.05,
                  price_input_per_1m=1.0, price_output_per_1m=2.0, max_output_tokens=256)
        kw.update(overrides)
        cache = kw.pop("cache_dir", None) or str(tmp_path / "cache")
        return OpenAIBackend(OpenAIConfig(**kw), cache_dir=cache, seed=0)

    return make


def span_text(req: QARequest, ev) -> str:
    return req.segments[ev.segment].text[ev.char_start:ev.char_end]


# ------------------------------------------------------------------------------------------------
# parsing and grounding (pure functions)
# ------------------------------------------------------------------------------------------------

def test_parse_answer_accepts_fences_and_rejects_bad_json():
    good = {"question": "When did it open?", "answer": "In 1876.", "evidence": ["opened in 1876"]}
    assert parse_answer(json.dumps(good))["evidence"] == ["opened in 1876"]
    assert parse_answer("```json\n" + json.dumps(good) + "\n```")["answer"] == "In 1876."
    assert parse_answer("Here you go: " + json.dumps(good) + " Enjoy!")["question"] == "When did it open?"
    assert parse_answer(json.dumps({**good, "evidence": "opened in 1876"}))["evidence"] == ["opened in 1876"]
    with pytest.raises(AnswerFormatError, match="truncated"):
        parse_answer(json.dumps(good)[:30], "length")
    with pytest.raises(AnswerFormatError, match="malformed"):
        parse_answer("The question is: when did it open? The answer: 1876.")
    for missing in ("question", "answer", "evidence"):
        with pytest.raises(AnswerFormatError, match=missing):
            parse_answer(json.dumps({k: v for k, v in good.items() if k != missing}))
    with pytest.raises(AnswerFormatError, match="answer"):
        parse_answer(json.dumps({**good, "answer": "  "}))
    with pytest.raises(AnswerFormatError):
        parse_answer(json.dumps({**good, "evidence": []}))
    with pytest.raises(AnswerFormatError):
        parse_answer("")


def test_normalize_ws_maps_back_to_original_offsets():
    text = "  a \n\n bc\td  "
    norm, index = normalize_ws(text)
    assert norm == "a bc d"
    assert [text[i] if not text[i].isspace() else " " for i in index] == list(norm)


def test_locate_quote_whitespace_normalised_with_original_offsets():
    seg = SEGS[1]  # contains a newline between its sentences
    quote = "turned on   hydraulic power. It rotates\nthrough ninety degrees"
    ev = locate_quote(quote, [SEGS[0], seg])
    assert ev is not None and ev.segment == 1
    got = seg.text[ev.char_start:ev.char_end]
    assert " ".join(got.split()) == " ".join(quote.split())
    assert "\n" in got  # the span covers the original newline
    assert locate_quote('"…opened in 1876 and turned..."', [seg]) is not None  # decoration stripped
    assert locate_quote("opened in 1877 and turned", [seg]) is None


def test_ground_rejects_ungrounded_and_single_segment_multihop():
    q = {"question": "How deep is the lake under the East Antarctic ice?", "answer": "Almost four kilometres.",
         "evidence": [first_sentence(SEGS[0].text)]}
    spans, frags = ground("fine", q, [SEGS[0]])
    assert len(spans) == 1 and spans[0].char_start == 0
    assert frags and all(f in SEGS[0].text for f in frags) and all(len(f.split()) <= 8 for f in frags)
    assert key_fragment("It\nrotates through ninety degrees to let tall ships pass up the river.") == \
        "rotates through ninety degrees to let tall ships"
    assert key_fragment("one  two three") == "one  two three"  # verbatim, spacing kept
    with pytest.raises(UngroundedError, match="not found"):
        ground("fine", {**q, "evidence": ["The lake is heated by a volcano underneath it."]}, [SEGS[0]])
    with pytest.raises(UngroundedError, match="at least 2"):
        ground("multihop", q, [SEGS[0], SEGS[1]])
    with pytest.raises(UngroundedError, match="refers to the context"):
        ground("fine", {**q, "question": "Based on the context, how deep is the lake?"}, [SEGS[0]])
    with pytest.raises(UngroundedError, match="at least 3 words"):
        ground("fine", {**q, "evidence": ["Lake"]}, [SEGS[0]])
    two = {**q, "evidence": [first_sentence(SEGS[0].text), first_sentence(SEGS[1].text)]}
    spans, _ = ground("multihop", two, [SEGS[0], SEGS[1]])
    assert sorted(e.segment for e in spans) == [0, 1]


# ------------------------------------------------------------------------------------------------
# the backend over HTTP
# ------------------------------------------------------------------------------------------------

def test_generates_grounded_results_in_order_with_accounting(server, backend_for):
    reqs = [fine(0), multi(1, 2), fine(3), fine(4)]
    be = backend_for(server)
    res = be.generate(reqs)
    assert [r.request_id for r in res] == [r.request_id for r in reqs]
    assert all(r.ok for r in res), [r.error for r in res]
    for req, r in zip(reqs, res):
        assert [span_text(req, e) for e in r.evidence] == [first_sentence(s.text) for s in req.segments]
        assert r.generator == f"openai:fake-model:{req.kind}"
        assert r.key_fragments and all(any(f in s.text for s in req.segments) for f in r.key_fragments)
        assert all("\n" not in f for f in r.key_fragments)
    assert {e.segment for e in res[1].evidence} == {0, 1}
    st = be.stats()
    assert st["requests"] == 4 and server.requests_received == 4 and server.auth_failures == 0
    assert st["cache_hits"] == 0 and st["retries"] == 0 and st["failures"] == 0
    assert st["prompt_tokens"] == sum(r.usage["prompt_tokens"] for r in res) > 0
    assert st["completion_tokens"] == sum(r.usage["completion_tokens"] for r in res) > 0
    expected = (st["prompt_tokens"] * 1.0 + st["completion_tokens"] * 2.0) / 1e6
    assert st["cost_usd"] == pytest.approx(expected)
    sent = server.bodies[0]
    assert sent["model"] == "fake-model" and sent["max_tokens"] == 256 and sent["temperature"] == 0.0
    assert sent["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("fault", ["429", "500", "slow", "truncated", "malformed", "body_truncated",
                                   "body_malformed"])
def test_retries_with_backoff_then_succeeds(server, backend_for, fault):
    server.inject(fault, fault)
    be = backend_for(server, max_concurrency=1)
    [r] = be.generate([fine(0)])
    assert r.ok, r.error
    assert server.requests_received == 3
    st = be.stats()
    assert st["retries"] == 2 and st["requests"] == 3 and st["failures"] == 0


def test_gives_up_after_n_tries_for_that_item_only(server, backend_for):
    server.always("500", marker="Glass flute")  # every request about SEGS[3] fails
    be = backend_for(server, max_retries=2)
    reqs = [fine(i) for i in range(6)]
    res = be.generate(reqs)
    failed = [r for r in res if not r.ok]
    assert [r.request_id for r in failed] == ["req-fine-3"]
    assert failed[0].error.startswith("gave up after 3 tries: HTTP 500")
    assert failed[0].failure == PENDING  # the endpoint failed, not the item: a later run tries again
    assert failed[0].question is None and failed[0].evidence == []
    assert sum("Glass flute" in json.dumps(b) for b in server.bodies) == 3
    st = be.stats()
    assert st["failures"] == 1 and st["retries"] == 2 and st["requests"] == 5 + 3


def test_a_4xx_refuses_the_item_alone_and_is_not_retried(server, backend_for):
    server.always("400", marker="Glass flute")
    be = backend_for(server)
    res = be.generate([fine(i) for i in range(5)])
    assert [r.ok for r in res] == [True, True, True, False, True]
    assert res[3].failure == REFUSED and res[3].error == "HTTP 400: This request was refused by the fake server."
    assert sum("Glass flute" in json.dumps(b) for b in server.bodies) == 1  # not retried
    assert not be.exhausted and be.stats()["failures"] == 1


def test_circuit_breaker_stops_after_consecutive_endpoint_failures(server, backend_for):
    from longcurate.core.endpoint import CIRCUIT_OPEN

    server.always("500")
    be = backend_for(server, max_retries=1, max_concurrency=1, max_consecutive_failures=3)
    res = be.generate([fine(i) for i in range(8)])
    assert all(r.failure == PENDING for r in res)
    assert server.requests_received == 3  # three failed requests in a row; nothing more is sent
    assert be.exhausted and be.stop_reason.startswith(CIRCUIT_OPEN) and "HTTP 500" in be.stop_reason
    assert [r.error for r in res[3:]] == [be.stop_reason] * 5  # the rest never sent
    server.clear()  # a success resets the count: failures in a row, not in all
    be = backend_for(server, max_retries=0, max_concurrency=1, max_consecutive_failures=2)
    server.inject("500")
    server.inject("500", marker="Copper smelting")
    res = be.generate([fine(0), fine(1), fine(2), fine(3)])
    assert [r.ok for r in res] == [False, True, False, True] and not be.exhausted


def test_a_reply_that_stays_unusable_is_pending_and_never_cached(server, backend_for):
    server.inject("malformed", "malformed", "malformed")
    be = backend_for(server, max_retries=2, max_concurrency=1)
    [r] = be.generate([fine(0)])
    assert r.failure == PENDING and r.error.startswith("gave up after 3 tries: not an answer: malformed JSON")
    assert server.requests_received == 3 and not be.exhausted and be.stats()["non_answers"] == 3
    assert not list(be.cache.root.glob("*/*.json"))  # nothing cached: the sample is not redrawn either
    [again] = backend_for(server).generate([fine(0)])  # the endpoint now answers: the rerun pays once
    assert again.ok and server.requests_received == 4


def test_backoff_is_exponential_capped_and_deterministic():
    policy = Policy(backoff_initial_s=1.0, backoff_max_s=6.0)
    delays = [backoff_s(policy, "req-1", k) for k in range(1, 6)]
    assert delays == [backoff_s(policy, "req-1", k) for k in range(1, 6)]  # same request -> same waits
    for k, d in enumerate(delays, start=1):
        step = min(6.0, 2.0 ** (k - 1))
        assert 0.5 * step <= d < step
    assert delays[-1] <= 6.0
    assert backoff_s(policy, "req-2", 1) != delays[0]  # the jitter depends on the request
    assert backoff_s(policy, "req-1", 1, 4.0) == 4.0  # Retry-After honoured ...
    assert backoff_s(policy, "req-1", 1, 60.0) == 6.0  # ... up to backoff_max_s


def test_retry_after_header_is_honoured(backend_for):
    with FakeOpenAIServer(api_key=KEY, retry_after="0.3") as srv:
        srv.inject("429")
        be = backend_for(srv, backoff_max_s=1.0)
        t0 = time.perf_counter()
        [r] = be.generate([fine(0)])
        assert r.ok and time.perf_counter() - t0 >= 0.3 and srv.requests_received == 2


def test_second_run_uses_cache_and_sends_nothing(server, backend_for, tmp_path):
    reqs = [fine(0), fine(1), multi(2, 3), multi(4, 5)]
    server.inject("500")  # a retry in the first run must not change what is cached
    first = backend_for(server).generate(reqs)
    assert all(r.ok for r in first)
    sent = server.requests_received
    be2 = backend_for(server)  # a fresh backend: as in a new process
    second = be2.generate(reqs)
    assert server.requests_received == sent
    assert [asdict(r) for r in second] == [asdict(r) for r in first]
    st = be2.stats()
    assert st["cache_hits"] == 4 and st["requests"] == 0 and st["cost_usd"] == 0
    # a changed request (other model) is a cache miss
    backend_for(server, model="other-model").generate([fine(0)])
    assert server.requests_received == sent + 1


_CHILD = r"""
import json, sys
from longcurate.synth.config import OpenAIConfig
from longcurate.synth.openai_qa import OpenAIBackend
from longcurate.synth.qa import QARequest, SegmentText
from dataclasses import asdict
args = json.load(sys.stdin)
reqs = [QARequest(**{**r, "segments": tuple(SegmentText(**s) for s in r["segments"])}) for r in args["requests"]]
be = OpenAIBackend(OpenAIConfig(**args["cfg"]), args["cache"], seed=0)
print(json.dumps({"results": [asdict(r) for r in be.generate(reqs)], "stats": be.stats()}))
"""


def test_cache_is_shared_across_processes(server, backend_for, tmp_path):
    import subprocess

    reqs = [fine(0), multi(1, 2)]
    first = backend_for(server).generate(reqs)
    sent = server.requests_received
    cfg = dict(base_url=server.base_url, model="fake-model", api_key_env=KEY_ENV, timeout_s=5.0,
               price_input_per_1m=1.0, price_output_per_1m=2.0, max_output_tokens=256)
    args = {"requests": [asdict(r) for r in reqs], "cfg": cfg, "cache": str(tmp_path / "cache")}
    env = {**os.environ, KEY_ENV: KEY, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(args), capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert server.requests_received == sent
    assert child["stats"]["cache_hits"] == 2 and child["stats"]["requests"] == 0
    assert child["results"] == json.loads(json.dumps([asdict(r) for r in first]))
    assert KEY not in proc.stdout + proc.stderr


def test_corrupt_or_torn_cache_entry_is_a_miss(server, backend_for, tmp_path):
    from longcurate.synth.cache import ResponseCache

    first = backend_for(server).generate([fine(0)])
    cache = ResponseCache(tmp_path / "cache")
    [entry] = list((tmp_path / "cache").glob("*/*.json"))
    entry.write_text(entry.read_text()[:40], encoding="utf-8")  # as if a non-atomic writer had died
    (entry.parent / f".{entry.name}.tmp").write_text("{", encoding="utf-8")  # a leftover temp file
    assert cache.get(entry.stem) is None and len(cache) == 1
    again = backend_for(server).generate([fine(0)])
    assert server.requests_received == 2 and asdict(again[0]) == asdict(first[0])
    assert cache.get(entry.stem) is not None  # rewritten whole
    assert "sk-" not in entry.read_text()


def test_question_filter_is_not_overeager():
    q = {"answer": "Nine tonnes.", "evidence": [first_sentence(SEGS[6].text)]}
    for ok in ("How heavy was the bell cast for the cathedral in 1911?",
               "What did the text of the 1911 contract say about the bell's weight?",
               "Which market segment did the foundry serve with its largest bell?"):
        ground("fine", {**q, "question": ok}, [SEGS[6]])
    for bad in ("According to the passage, how heavy was the bell?", "In passage 1, what weighed nine tonnes?",
                "What does the given text say about the bell?", "How heavy is the bell in the context?"):
        with pytest.raises(UngroundedError):
            ground("fine", {**q, "question": bad}, [SEGS[6]])
    for ok in ("When did the passage of the foundry act allow a nine-tonne bell?",
               "Why did bells matter in the context of the 1911 cathedral works?"):
        ground("fine", {**q, "question": ok}, [SEGS[6]])


def test_multihop_question_may_not_point_at_the_pieces():
    """IN2: the question must not say "the context" or "the passage" (nor name the pieces)."""
    segs = [SegmentText("bells", "Bell foundry", 0, SEGS[6].text), SegmentText("bells", "Bell foundry", 3, SEGS[7].text)]
    q = {"answer": "Nine tonnes; it melts.", "evidence": [first_sentence(s.text) for s in segs]}
    spans, _ = ground("multihop", {**q, "question": "What did the foundry cast in 1911, and what happens to the "
                                                    "ice hotel each spring?"}, segs)
    assert sorted(e.segment for e in spans) == [0, 1]
    for bad, phrase in (("What does the passage say about the bell and the hotel?", "the passage"),
                        ("What do the context and its bells have in common?", "the context"),
                        ("How do piece 1 and piece 2 relate?", "piece 1"),
                        ("What links these pieces about the bell?", "these pieces")):
        with pytest.raises(UngroundedError, match=f"refers to the context.*{phrase}"):
            ground("multihop", {**q, "question": bad}, segs)


def test_ungrounded_answer_is_rejected_not_retried_and_cached(server, backend_for):
    server.inject("ungrounded", marker="Salt from the coastal pans")
    be = backend_for(server)
    res = be.generate([fine(4), fine(5), fine(6)])
    assert res[0].ok and res[2].ok
    assert res[1].error.startswith("ungrounded: evidence quote not found")
    assert res[1].question is None and res[1].evidence == []
    assert server.requests_received == 3 and be.stats()["ungrounded"] == 1
    again = backend_for(server).generate([fine(5)])  # the rejected answer is cached: never paid twice
    assert again[0].error == res[1].error and server.requests_received == 3


def test_identical_requests_are_sent_once(server, backend_for):
    reqs = [fine(0, "a"), fine(0, "b"), fine(1)]
    res = backend_for(server).generate(reqs)
    assert [r.request_id for r in res] == ["a", "b", "req-fine-1"]
    assert res[0].question == res[1].question and all(r.ok for r in res)
    assert server.requests_received == 2


def test_never_more_than_max_concurrency_in_flight(backend_for):
    with FakeOpenAIServer(api_key=KEY, delay_s=0.15) as srv:
        be = backend_for(srv, max_concurrency=3, timeout_s=5.0)
        res = be.generate([fine(i % 8, f"r{i}") for i in range(8)] + [multi(i, i + 1) for i in range(4)])
        assert all(r.ok for r in res)
        assert srv.requests_received == 12
        assert 2 <= srv.max_in_flight <= 3  # concurrent, and bounded


def test_stops_cleanly_at_max_requests(server, backend_for):
    be = backend_for(server, max_requests=3, max_concurrency=2)
    res = be.generate([fine(i) for i in range(7)])
    assert sum(r.ok for r in res) == 3
    assert [r.error for r in res if not r.ok] == [MAX_REQUESTS_REACHED] * 4
    assert server.requests_received == 3
    st = be.stats()
    assert st["requests"] == 3 and st["skipped_max_requests"] == 4 and st["stopped"] == MAX_REQUESTS_REACHED
    assert be.exhausted
    assert be.generate([fine(7)])[0].error == MAX_REQUESTS_REACHED  # the cap holds across calls
    assert server.requests_received == 3


def test_max_requests_counts_retries(server, backend_for):
    server.inject("500", "500")
    be = backend_for(server, max_requests=2, max_concurrency=1)
    [r] = be.generate([fine(0)])
    assert r.error == MAX_REQUESTS_REACHED and server.requests_received == 2


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stops_cleanly_at_budget(server, backend_for, concurrency):
    probe = backend_for(server)
    _, per_request = probe.meter.estimate_usd(probe.payload(fine(0)))
    budget = 2.5 * per_request  # room for about two worst-case requests (more as actual costs come in)
    be = backend_for(server, budget_usd=budget, max_concurrency=concurrency)
    res = be.generate([fine(i) for i in range(8)])
    ok = sum(r.ok for r in res)
    st = be.stats()
    assert 2 <= ok < 8
    assert all(r.error == BUDGET_EXHAUSTED for r in res if not r.ok)
    assert server.requests_received == st["requests"] == ok
    assert st["cost_usd"] <= budget and st["skipped_budget"] == 8 - ok and st["stopped"] == BUDGET_EXHAUSTED


def test_missing_usage_counts_as_estimated_spend(server, backend_for):
    server.inject("no_usage")
    be = backend_for(server)
    [r] = be.generate([fine(0)])
    assert r.ok and r.usage == {}
    st = be.stats()
    assert st["cost_usd"] == 0 and st["unmetered_cost_usd"] > 0


def test_api_key_from_env_missing_key_errors(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)

    def key(url: str) -> str:
        return api_key_from_env(KEY_ENV, url, "synth.openai", "the openai QA backend")

    with pytest.raises(ConfigError, match=KEY_ENV):
        key("https://api.example.com/v1")
    assert key("http://127.0.0.1:8000/v1") == "EMPTY" and key("http://localhost:8000/v1") == "EMPTY"
    monkeypatch.setenv(KEY_ENV, "sk-abc")
    assert key("https://api.example.com/v1") == "sk-abc"


def test_local_server_without_key_uses_dummy(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FakeOpenAIServer(api_key="EMPTY") as srv:
        cfg = OpenAIConfig(base_url=srv.base_url, model="m", api_key_env=KEY_ENV, timeout_s=2.0)
        [r] = OpenAIBackend(cfg, tmp_path / "c").generate([fine(0)])
        assert r.ok and srv.auth_failures == 0


def test_wrong_key_stops_and_no_key_leaks(server, backend_for, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-0123456789")
    be = backend_for(server, max_concurrency=1)
    res = be.generate([fine(i) for i in range(4)])
    assert server.auth_failures == 1 and server.requests_received == 1  # stopped after the first 401
    assert all(not r.ok and "HTTP 401" in r.error for r in res)
    assert all("sk-wrong" not in r.error for r in res)


def test_key_appears_in_no_log_output_or_cache_file(server, backend_for, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, including openai's and the HTTP client's
    for name in ("openai", "httpx2", "httpcore2", "httpx", "httpcore", "longcurate"):
        caplog.set_level(logging.DEBUG, logger=name)
    server.inject("429", "500", "slow", "malformed", "body_truncated")
    server.always("500", marker="Ice hotel")
    be = backend_for(server, max_retries=2)
    res = be.generate([fine(i) for i in range(8)] + [multi(0, 1)])
    assert sum(not r.ok for r in res) == 1
    backend_for(server).generate([fine(0)])  # a cached run too
    out, err = capsys.readouterr()
    texts = [caplog.text, out, err, json.dumps(be.stats()), repr(be), repr(res)]
    texts += [r.getMessage() for r in caplog.records]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, "the cache wrote nothing"
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in written]
    assert "retry" in caplog.text and "HTTP Request" in caplog.text  # the logs were captured
    assert server.auth_failures == 0  # the key was sent to the server ...
    for t in texts:
        assert KEY not in t  # ... and never written anywhere else
        assert KEY[8:24] not in t


def test_from_config_defaults_and_generate_inside_a_running_loop(server, tmp_path, monkeypatch):
    import asyncio

    from longcurate.config import RunConfig

    monkeypatch.setenv(KEY_ENV, KEY)
    run_cfg = RunConfig(output_dir=str(tmp_path / "run"), seed=7)
    run_cfg.synth.openai = OpenAIConfig(base_url=server.base_url, model="fake-model", api_key_env=KEY_ENV,
                                        timeout_s=5.0)
    be = OpenAIBackend.from_config(run_cfg)
    assert be.cache.root == tmp_path / "run" / "openai-cache" and be.seed == 7
    assert isinstance(be, QABackend) and be.name == "openai" and not be.exhausted
    run_cfg.synth.openai.cache_dir = str(tmp_path / "elsewhere")  # the layout honours a placed cache
    assert OpenAIBackend.from_config(run_cfg).cache.root == tmp_path / "elsewhere"

    async def caller():  # e.g. a notebook: the sync API still works
        return be.generate([fine(0)])

    [r] = asyncio.run(caller())
    assert r.ok and server.bodies[-1]["seed"] == 7
    assert len(list((tmp_path / "run" / "openai-cache").glob("*/*.json"))) == 1


def test_invalid_request_fails_alone(server, backend_for):
    bad = QARequest(request_id="bad", kind="fine", qtype="openai:fine", segments=(SEGS[0], SEGS[1]))
    res = backend_for(server).generate([bad, fine(2)])
    assert res[0].error.startswith("invalid request") and res[1].ok


# ------------------------------------------------------------------------------------------------
# end to end: `longcurate synth run --backend openai` against the fake server
# ------------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_cli_synth_with_openai_backend(server, tmp_path, monkeypatch, capsys):
    capsys.readouterr()
    from longcurate.cli import main

    monkeypatch.setenv(KEY_ENV, KEY)
    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(40):
            title, text = TEXTS[i % len(TEXTS)]
            paras = [f"{title} fact {i}.{k}: " + text.replace("\n", " ") + f" Record {i}-{k} was filed in {1800 + 7 * i + k}."
                     for k in range(6)]
            f.write(json.dumps({"id": f"d{i}", "title": f"{title} {i}", "text": "\n".join(paras)}) + "\n")
    out = tmp_path / "samples.jsonl"
    argv = ["synth", "run", "--backend", "openai", "--corpus", str(corpus), "--output", str(out), "--num-samples", "12",
            "--min-tokens", "600", "--max-tokens", "1200", "--seed", "1",
            f"output_dir={tmp_path / 'run'}", f"synth.openai.base_url={server.base_url}",
            "synth.openai.model=fake-model", f"synth.openai.api_key_env={KEY_ENV}",
            "synth.openai.timeout_s=5", "synth.openai.backoff_initial_s=0.01", "synth.openai.backoff_max_s=0.05"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    openai_rows = [r for r in rows if r["source"]["generator"].startswith("openai:")]
    assert openai_rows, "no sample came from the openai backend"
    for r in openai_rows:
        for g in r.get("gold", []):
            assert r["context"][g["char_start"]:g["char_end"]]
    sent = server.requests_received
    assert sent > 0
    first = out.read_bytes()
    out.unlink()
    assert main(argv) == 0  # the re-run answers from the cache: nothing sent, same file
    assert server.requests_received == sent
    assert out.read_bytes() == first
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert KEY not in p.read_text(encoding="utf-8", errors="replace")
    out_err = capsys.readouterr()
    assert KEY not in out_err.out + out_err.err


def test_each_attempt_carries_a_stable_idempotency_key(server, backend_for, tmp_path):
    """The same attempt of the same request sends the same Idempotency-Key (an endpoint that honours
    it charges a resent request once); a retry is a new attempt with its own key."""
    server.inject("500")
    backend_for(server, max_concurrency=1).generate([fine(0)])
    first, retry = server.idempotency_keys
    assert first and retry and first != retry and first.endswith("-0") and retry.endswith("-1")
    assert KEY not in first
    backend_for(server, cache_dir=str(tmp_path / "other-cache")).generate([fine(0)])  # a rerun without the cache
    assert server.idempotency_keys[-1] == first


def test_an_interrupted_run_says_what_was_in_flight(backend_for, caplog):
    """Ctrl-C cancels the requests in flight: the log says how many (their answers are lost: OpenAI's
    chat endpoint keeps none for a resent request), and nothing half-received is cached."""
    import asyncio

    with FakeOpenAIServer(api_key=KEY, delay_s=2.0) as srv:
        be = backend_for(srv, max_concurrency=2, timeout_s=5.0)

        async def interrupted():
            task = asyncio.ensure_future(be.agenerate([fine(i) for i in range(4)]))
            while srv.requests_received < 2:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(interrupted())
    assert be.endpoint.interrupted == 2
    assert "interrupted with 2 request(s) in flight" in caplog.text
    assert not list(be.cache.root.glob("*/*.json"))


def test_a_cached_non_answer_from_an_older_version_is_treated_as_absent(server, backend_for):
    """Older versions cached the last unusable reply as final; such an entry must not keep the sample
    pending for good: it is ignored, the request is sent, and the answer replaces it."""
    be = backend_for(server)
    [first] = be.generate([fine(0)])
    [entry] = list(be.cache.root.glob("*/*.json"))
    stored = json.loads(entry.read_text())
    entry.write_text(json.dumps({**stored, "content": "Sure! Here is a question", "finish_reason": "stop"}))
    sent = server.requests_received
    [again] = backend_for(server).generate([fine(0)])
    assert again.ok and again.question == first.question and server.requests_received == sent + 1
    assert json.loads(entry.read_text())["content"] == stored["content"]
