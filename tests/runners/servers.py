"""Loopback HTTP servers that speak the OpenAI and Anthropic protocols, for tests.

The OpenAI-compatible server answers from the tiny Llama (real log-probabilities);
both can inject faults: queued error statuses with Retry-After, malformed JSON,
latency (for every call, or queued for the next calls), always-failing "poison"
prompts, a required API key. They count calls, the largest number in flight, and
keep the time, headers and payload of every call.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ABC):
    """Common machinery: a threaded server on 127.0.0.1 and fault injection."""

    def __init__(self, *, latency: float = 0.0, api_key: str | None = None):
        self.latency = latency
        self.api_key = api_key
        self.faults: list[tuple[int, dict, str]] = []  # (status, headers, body), used in order
        self.malformed = 0
        self.delays: list[float] = []  # seconds to stall the next calls, used in order
        self.poison = "POISON"
        self.calls = 0
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen_headers: list[dict] = []
        self.payloads: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reset(self) -> None:
        """Forget faults and counts (between tests sharing one server)."""
        with self.lock:
            self.faults.clear()
            self.delays.clear()
            self.malformed = 0
            self.calls = 0
            self.times.clear()
            self.max_in_flight = 0
            self.latency = 0.0
            self.api_key = None
            self.seen_headers.clear()
            self.payloads.clear()

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, handler, status: int, body: str, headers: dict | None = None):
        data = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _authorised(self, handler) -> bool:
        return True

    def _handle(self, handler):
        with self.lock:
            self.calls += 1
            self.times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.seen_headers.append(dict(handler.headers))
            fault = self.faults.pop(0) if self.faults else None
            malformed = fault is None and self.malformed > 0
            self.malformed -= 1 if malformed else 0
            delay = self.delays.pop(0) if self.delays else self.latency
        try:
            length = int(handler.headers.get("Content-Length", 0))
            payload = json.loads(handler.rfile.read(length) or b"{}")
            with self.lock:
                self.payloads.append(payload)
            if delay:
                time.sleep(delay)
            if not self._authorised(handler):
                refusal = {"error": {"message": "Incorrect API key provided"}}
                reply = (401, json.dumps(refusal), None)
            elif fault:
                reply = (fault[0], fault[2], fault[1])
            elif malformed:
                reply = (200, '{"choices": [', None)
            elif self.poison in json.dumps(payload):
                reply = (500, json.dumps({"error": {"message": "poisoned"}}), None)
            else:
                answer = self.answer(handler.path, payload)
                status, body = answer if isinstance(answer, tuple) else (200, answer)
                reply = (status, json.dumps(body), None)
        finally:
            # Leave before replying: once the reply is written the client may send its next
            # request, which must not be counted as overlapping this one.
            with self.lock:
                self.in_flight -= 1
        # The client may have given up (a timeout test, or a killed worker).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(handler, *reply)

    @abstractmethod
    def answer(self, path: str, payload: dict) -> dict | tuple[int, dict]:
        """The protocol's answer to a request: a JSON body, or (status, body) for a refusal."""


class OpenAIServer(_Server):
    """``/v1/completions`` (with echo + logprobs) and ``/v1/chat/completions`` on the tiny model."""

    def __init__(self, model_path, **kwargs):
        from benchmark.runners.hf import HFRunner

        super().__init__(**kwargs)
        self.model = HFRunner(str(model_path))
        self.model_lock = threading.Lock()
        self.reject_zero_max_tokens = False  # as servers that insist on generating a token

    def reset(self) -> None:
        """Forget faults and counts, and accept ``max_tokens: 0`` again."""
        super().reset()
        self.reject_zero_max_tokens = False

    def _authorised(self, handler) -> bool:
        return (
            self.api_key is None or handler.headers.get("Authorization") == f"Bearer {self.api_key}"
        )

    def _prompt_logprobs(self, prompt: str, generate: int = 0) -> dict:
        import torch

        tok = self.model.tokenizer
        enc = tok(prompt, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        with self.model_lock, torch.inference_mode():
            logits = self.model.model(torch.tensor([ids])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        tokens, lps, offs = [], [], []
        for i, (start, end) in enumerate(offsets):
            if i == 0 and ids[0] == tok.bos_token_id:
                continue
            tokens.append(prompt[start:end])
            lps.append(float(logp[i - 1, ids[i]]))
            offs.append(start)
        if generate:  # echo plus one greedy token, which follows the prompt's text
            best = int(logp[-1].argmax())
            tokens.append(tok.decode([best]))
            lps.append(float(logp[-1, best]))
            offs.append(len(prompt))
        return {"tokens": tokens, "token_logprobs": lps, "text_offset": offs}

    def answer(self, path: str, payload: dict) -> dict | tuple[int, dict]:
        from benchmark.runners.base import SampleRequest

        n = payload.get("n", 1)
        if payload.get("max_tokens") == 0 and self.reject_zero_max_tokens:
            return 400, {"error": {"message": "max_tokens must be at least 1"}}
        if path == "/v1/completions" and payload.get("echo"):
            prompts = (
                payload["prompt"] if isinstance(payload["prompt"], list) else [payload["prompt"]]
            )
            choices = [
                {
                    "index": i,
                    "text": p,
                    "logprobs": self._prompt_logprobs(p, min(payload.get("max_tokens", 16), 1)),
                    "finish_reason": "length",
                }
                for i, p in enumerate(prompts)
            ]
            return {
                "choices": choices,
                "usage": {"prompt_tokens": sum(len(p) // 4 for p in prompts)},
            }
        chat = path == "/v1/chat/completions"
        prompt = payload["messages"][-1]["content"] if chat else payload["prompt"]
        request = SampleRequest(
            prompt=prompt,
            max_tokens=payload.get("max_tokens", 16),
            temperature=payload.get("temperature", 1.0),
            stop=tuple(payload.get("stop") or ()),
            seed=payload.get("seed"),
            chat=chat,
        )
        with self.model_lock:
            samples = self.model.sample([request], n)[0]
        choices = []
        for i, s in enumerate(samples):
            if chat:
                choices.append(
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": s.text},
                        "logprobs": {"content": [{"logprob": x} for x in s.token_logprobs]},
                        "finish_reason": s.finish_reason,
                    }
                )
            else:
                choices.append(
                    {
                        "index": i,
                        "text": s.text,
                        "logprobs": {"token_logprobs": s.token_logprobs},
                        "finish_reason": s.finish_reason,
                    }
                )
        usage = {
            "prompt_tokens": samples[0].prompt_tokens,
            "completion_tokens": sum(s.completion_tokens for s in samples),
        }
        return {"choices": choices, "usage": usage}


class AnthropicServer(_Server):
    """``/v1/messages``: answers ``reply`` (a fixed text) with usage counts."""

    def __init__(self, reply: str = "B", **kwargs):
        super().__init__(**kwargs)
        self.reply = reply

    def _authorised(self, handler) -> bool:
        return self.api_key is None or handler.headers.get("x-api-key") == self.api_key

    def answer(self, path: str, payload: dict) -> dict:
        prompt = payload["messages"][-1]["content"]
        return {
            "type": "message",
            "content": [{"type": "text", "text": self.reply}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": len(prompt) // 4, "output_tokens": 1},
        }
