"""The openai runner against a real OpenAI-compatible server on loopback, with faults injected."""

import email.utils
import logging
import time

import pytest

from benchmark.runners import get_runner
from benchmark.runners.base import SampleRequest
from benchmark.runners.http import EndpointUnreachable, ProviderError
from tests.runners.cases import REQUESTS
from tests.runners.servers import OpenAIServer

CANARY = "sk-canary-7f3a9c1e-never-print-me"
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture(scope="module")
def shared_server(tiny_llama):
    with OpenAIServer(tiny_llama) as s:
        yield s


@pytest.fixture
def server(shared_server):
    shared_server.reset()
    yield shared_server
    shared_server.reset()


@pytest.fixture(scope="module")
def hf(tiny_llama):
    with get_runner("hf", model_path=str(tiny_llama)) as runner:
        yield runner


def openai(server, **kw):
    return get_runner("openai", **{"base_url": server.url, "model": "tiny", **FAST, **kw})


def test_scores_equal_the_hf_runner(server, hf):
    with openai(server, batch_size=4) as runner:
        got = runner.score(REQUESTS)
    want = hf.score(REQUESTS)
    for g, w in zip(got, want, strict=True):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-5)
        assert g.token_logprobs == pytest.approx(w.token_logprobs, abs=1e-5)
        assert g.tokens == w.tokens
    assert server.calls == 2  # 6 prompts in batches of 4
    assert [p["max_tokens"] for p in server.payloads] == [0, 0]
    assert all(p["echo"] is True and p["logprobs"] == 1 for p in server.payloads)


def test_a_server_that_refuses_max_tokens_0_is_asked_for_1(server, hf):
    server.reject_zero_max_tokens = True
    with openai(server) as runner:
        first = runner.score(REQUESTS[:2])
        second = runner.score(REQUESTS[2:4])
    assert [p["max_tokens"] for p in server.payloads] == [0, 1, 1]  # it remembers
    # The generated token lies past the prompt and is not counted.
    want = hf.score(REQUESTS[:4])
    assert [r.logprob for r in first + second] == pytest.approx([w.logprob for w in want], abs=1e-5)


def test_sampling_completions_and_chat(server):
    with openai(server) as runner:
        (samples,) = runner.sample([SampleRequest("You choose <<", max_tokens=4, seed=1)], n=3)
        (chat,) = runner.sample(
            [SampleRequest("Pick A or B.", max_tokens=3, seed=2, chat=True)], n=2
        )
    assert len(samples) == 3 and len(chat) == 2
    for s in samples + chat:
        assert len(s.token_logprobs) == s.completion_tokens <= 4
        assert s.finish_reason in {"stop", "length"}
    assert server.payloads[0]["n"] == 3 and server.payloads[0]["seed"] == 1
    assert server.payloads[1]["messages"] == [{"role": "user", "content": "Pick A or B."}]
    assert chat[0].prompt_tokens == 24  # "<s>user: Pick A or B.\nassistant:" on the server


def test_a_chat_endpoint_sends_every_request_as_a_chat(server):
    with openai(server, chat=True) as runner:
        runner.sample([SampleRequest("Pick A or B.", max_tokens=2, seed=2)], n=1)
    assert "messages" in server.payloads[0] and "prompt" not in server.payloads[0]


def test_429_waits_retry_after_then_succeeds_without_a_storm(server):
    server.faults = [(429, {"Retry-After": "1"}, '{"error": {"message": "slow down"}}')] * 2
    with openai(server) as runner:
        result = runner.score([REQUESTS[1]])
    assert result[0].logprob < 0
    assert server.calls == 3
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(g >= 0.95 for g in gaps)  # Retry-After honoured each time (a lower bound)


def test_retry_after_as_an_http_date_is_honoured(server):
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1 to 2 s away
    server.faults = [(503, {"Retry-After": when}, "busy")]
    with openai(server) as runner:
        runner.score([REQUESTS[1]])
    assert server.calls == 2
    assert server.times[1] - server.times[0] >= 0.9


def test_500s_and_malformed_json_are_retried(server):
    server.faults = [(500, {}, '{"error": {"message": "boom"}}'), (502, {}, "bad gateway")]
    server.malformed = 1
    with openai(server) as runner:
        assert runner.score([REQUESTS[0]])[0].logprob < 0
    assert server.calls == 4


def test_malformed_json_that_persists_is_a_clear_error(server):
    server.malformed = 3
    with openai(server, max_retries=2) as runner, pytest.raises(ProviderError) as info:
        runner.score([REQUESTS[0]])
    assert "unreadable JSON" in str(info.value) and info.value.status == 200
    assert server.calls == 3


def test_retries_run_out_with_the_last_error(server):
    server.faults = [(500, {}, '{"error": {"message": "still broken"}}')] * 3
    with (
        openai(server, max_retries=2) as runner,
        pytest.raises(ProviderError, match="still broken"),
    ):
        runner.score([REQUESTS[0]])
    assert server.calls == 3


def test_other_4xx_fail_at_once(server):
    server.faults = [(404, {}, '{"error": {"message": "The model tiny does not exist"}}')]
    with openai(server) as runner, pytest.raises(ProviderError) as info:
        runner.sample([SampleRequest("x")])
    assert info.value.status == 404
    assert "The model tiny does not exist" in str(info.value)
    assert server.calls == 1


def test_401_fails_at_once_with_the_server_message_and_hides_the_key(server, monkeypatch, caplog):
    server.api_key = "the-right-key"
    monkeypatch.setenv("GEPPETTO_KEY_TEST", CANARY)
    caplog.set_level(logging.DEBUG)
    with openai(server, api_key_env="GEPPETTO_KEY_TEST") as runner:
        with pytest.raises(ProviderError) as info:
            runner.score([REQUESTS[0]])
        assert info.value.status == 401
        assert "Incorrect API key provided" in str(info.value)
        assert server.calls == 1
        text = str(info.value) + repr(info.value) + repr(runner) + repr(vars(runner))
    assert server.seen_headers[-1]["Authorization"] == f"Bearer {CANARY}"  # it was sent
    assert CANARY not in text + caplog.text


def test_the_key_is_read_at_request_time_and_never_logged_on_retries(server, monkeypatch, caplog):
    server.api_key = CANARY
    server.faults = [(500, {}, '{"error": {"message": "boom"}}')]
    monkeypatch.delenv("GEPPETTO_KEY_TEST", raising=False)
    caplog.set_level(logging.DEBUG)
    with openai(server, api_key_env="GEPPETTO_KEY_TEST") as runner:
        with pytest.raises(ProviderError, match="GEPPETTO_KEY_TEST is not set"):
            runner.score([REQUESTS[0]])
        assert server.calls == 0
        monkeypatch.setenv("GEPPETTO_KEY_TEST", CANARY)  # set after the runner was built
        assert runner.score([REQUESTS[0]])[0].logprob < 0
    assert server.calls == 2
    assert "retrying" in caplog.text
    assert CANARY not in caplog.text


def test_a_timeout_is_retried_then_succeeds(server):
    server.delays = [1.0]  # the first call stalls past the client's timeout
    with openai(server, timeout=0.3) as runner:
        assert runner.score([REQUESTS[1]])[0].logprob < 0
    assert server.calls == 2


def test_a_timed_out_request_is_resent_with_twice_the_time(server):
    server.latency = 0.5  # every call: longer than the first timeout, shorter than the second
    with openai(server, timeout=0.3, seconds_per_1k_tokens=0, max_retries=1) as runner:
        assert runner.score([REQUESTS[1]])[0].logprob < 0
    assert server.calls == 2
    time.sleep(0.5)  # let the stalled handler finish before the next test resets the counts


def test_a_live_but_slow_server_is_never_called_unreachable(server):
    server.latency = 0.8
    with (
        openai(server, timeout=0.1, seconds_per_1k_tokens=0, max_retries=1) as runner,
        pytest.raises(ProviderError, match=r"did not answer within 0\.2 s") as info,
    ):
        runner.score([REQUESTS[0]])
    assert not isinstance(info.value, EndpointUnreachable)
    assert "up but slow" in str(info.value)
    assert server.calls == 2
    time.sleep(0.9)  # let the stalled handlers finish before the next test resets the counts


def test_the_timeout_grows_with_the_request(server):
    with openai(server, timeout=60, seconds_per_1k_tokens=10) as runner:
        # The case: a default batch of 16 transcripts of 1,500 tokens.
        assert runner.timeout_for(16 * 1500) == 60 + 240
    server.latency = 0.6
    prompts = [r.context + r.continuation for r in REQUESTS]
    tokens = sum(len(p) for p in prompts) // 4
    # 0.2 s for a small request, but this batch's tokens buy it more than the server needs.
    per_1k = 1000 * 0.8 / tokens
    with openai(server, timeout=0.2, seconds_per_1k_tokens=per_1k, batch_size=16) as runner:
        assert runner.timeout_for(tokens) == pytest.approx(1.0)
        assert len(runner.score(REQUESTS)) == len(REQUESTS)
    assert server.calls == 1  # answered on the first try: nothing resent


def test_a_base_url_ending_in_v1_works(server, hf):
    with openai(server, base_url=server.url + "/v1/") as runner:
        got = runner.score(REQUESTS[:2])
    want = hf.score(REQUESTS[:2])
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)
    assert server.calls == 1


def test_a_closed_port_is_unreachable(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = get_runner(
        "openai", base_url=f"http://127.0.0.1:{port}", model="tiny", max_retries=1, **FAST
    )
    with runner, pytest.raises(EndpointUnreachable, match="ConnectError") as info:
        runner.score([REQUESTS[0]])
    assert info.value.status is None


def test_concurrency_never_exceeds_the_limit(server):
    server.latency = 0.05
    with openai(server, max_concurrency=3, batch_size=1) as runner:
        results = runner.score(REQUESTS * 2)
    assert len(results) == 12
    assert server.calls == 12
    assert server.max_in_flight == 3  # reached, never passed


def test_the_rate_limiter_spaces_requests_to_the_server(server):
    with openai(server, requests_per_minute=600, batch_size=1, max_concurrency=8) as runner:
        runner.score(REQUESTS * 3)  # 18 requests at 10 a second, 10 saved up
    assert server.calls == 18
    # The last 8 had to wait for the bucket: at least ~0.8 s from first to last.
    assert server.times[-1] - server.times[0] >= 0.7
