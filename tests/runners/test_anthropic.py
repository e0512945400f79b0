"""The anthropic runner against a loopback server speaking the Messages API."""

import logging

import pytest

from benchmark.runners import get_runner
from benchmark.runners.base import CapabilityError, SampleRequest, ScoreRequest, require
from benchmark.runners.http import ProviderError
from tests.runners.servers import AnthropicServer

CANARY = "sk-ant-canary-51d0-never-print-me"
FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("GEPPETTO_KEY_TEST_ANTHROPIC", CANARY)
    with AnthropicServer(reply="B", api_key=CANARY) as s:
        yield s


def claude(server, **kw):
    return get_runner(
        "anthropic",
        model="claude-test",
        base_url=server.url,
        api_key_env="GEPPETTO_KEY_TEST_ANTHROPIC",
        **{**FAST, **kw},
    )


def test_sampling_sends_the_messages_shape(server):
    with claude(server, max_tokens=8) as runner:
        out = runner.sample(
            [
                SampleRequest("Pick A or B.", max_tokens=2, stop=("\n",)),
                SampleRequest("Again?", max_tokens=50),
            ],
            n=2,
        )
    assert [[s.text for s in samples] for samples in out] == [["B", "B"], ["B", "B"]]
    assert out[0][0].finish_reason == "end_turn"
    assert out[0][0].prompt_tokens == len("Pick A or B.") // 4 and out[0][0].completion_tokens == 1
    assert server.calls == 4  # no `n` in the API: one request per sample
    first = next(p for p in server.payloads if p["messages"][0]["content"] == "Pick A or B.")
    assert first == {
        "model": "claude-test",
        "max_tokens": 2,
        "temperature": 1.0,
        "messages": [{"role": "user", "content": "Pick A or B."}],
        "stop_sequences": ["\n"],
    }
    again = next(p for p in server.payloads if p["messages"][0]["content"] == "Again?")
    assert again["max_tokens"] == 8  # capped by the runner's max_tokens
    headers = server.seen_headers[-1]
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] == CANARY


def test_529_overloaded_and_429_are_retried(server):
    server.faults = [
        (
            529,
            {},
            '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
        ),
        (429, {"Retry-After": "0"}, '{"type": "error", "error": {"message": "rate limited"}}'),
    ]
    with claude(server) as runner:
        (samples,) = runner.sample([SampleRequest("Pick A or B.")], n=1)
    assert samples[0].text == "B"
    assert server.calls == 3


def test_a_wrong_key_fails_at_once_without_showing_the_key(server, monkeypatch, caplog):
    server.api_key = "the-right-key"
    caplog.set_level(logging.DEBUG)
    with claude(server) as runner, pytest.raises(ProviderError) as info:
        runner.sample([SampleRequest("Pick A or B.")])
    assert info.value.status == 401 and server.calls == 1
    assert CANARY not in str(info.value) + repr(runner) + caplog.text


def test_score_is_refused(server):
    with claude(server) as runner:
        assert runner.capabilities == frozenset({"sample", "chat"})
        with pytest.raises(CapabilityError, match="the anthropic runner cannot score"):
            runner.score([ScoreRequest("a", "b")])
        with pytest.raises(CapabilityError, match="cannot token_logprobs"):
            require(runner, "token_logprobs")
    assert server.calls == 0
