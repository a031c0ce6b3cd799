"""A fake OpenAI-compatible LLM provider served over real HTTP on ``127.0.0.1``.

:class:`FakeProvider` runs a threaded HTTP/1.1 server (real sockets, keep-alive, an ephemeral port) that
answers the OpenAI chat-completions protocol, streaming included, with deterministic replies. It is meant
for recording cassettes without a network and for testing code that talks to any OpenAI-compatible
provider::

    with FakeProvider({"天气": "今天晴天。"}, api_key="sk-test") as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test")
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "天气怎么样"}])

Routes (any path prefix is accepted, so ``/api/paas/v4`` or ``/compatible-mode/v1`` base URLs work):

* ``POST …/chat/completions``: ``chat.completion`` or, with ``"stream": true``, an SSE stream of
  ``chat.completion.chunk`` events sent with chunked transfer encoding, one flushed chunk per event.
* ``POST …/embeddings``: deterministic vectors, see :func:`embed_text`; ``encoding_format`` ``float``
  (default) and ``base64`` (little-endian float32, what the openai SDK asks for by default).
* ``GET …/models`` and ``GET …/models/<id>``: the configured ``model``.
* anything else: 404 in the OpenAI error envelope.

Determinism: ``created`` is always :data:`CREATED`; no ``Date`` header is sent; the completion id is
``chatcmpl-fake-<h>-<n>`` and tool-call ids are ``call_fake_<i>_<h>_<n>``, where ``<h>`` is the first 16
hex digits of the SHA-256 of the request JSON (canonical form: sorted keys, compact) and ``<n>`` counts how
many times this server has seen that same request (1 for the first time), ``<i>`` is the tool call's index.
Token usage is :func:`count_tokens` (one token per two characters, rounded up) applied to each message's
text (prompt) and to the reply text or the tool calls' names plus arguments (completion).

Other dialects and provider families: ``FakeProvider(dialect="dashscope" | "ernie" | "anthropic" |
"gemini")`` serves that provider's native API on its real paths, and ``FakeProvider(quirks={"zhipu"})``
(or ``deepseek``, ``moonshot``, ``minimax``, ``spark``, ``hunyuan``, ``qwen-compat``) keeps the OpenAI
protocol with that family's deviations: stream framing, usage placement, error envelopes, moderation.
Reply directives such as ``{"content_filter": True}`` and ``{"error": "rate_limit"}`` and the canned errors
of :meth:`FakeProvider.error_body` are described in :mod:`pytest_llmport.fake`, which holds the server
(:mod:`pytest_llmport.fake.server`) and one module per dialect; this module is the public entry point.
:meth:`FakeProvider.cut_next` breaks a response part way (connection closed or reset mid-body or
mid-stream, or a stalled server), to record and replay what clients do when a provider drops them.
"""

from __future__ import annotations

from .fake.common import CREATED, ReceivedRequest, Replies, Reply, count_tokens
from .fake.openai import EMBEDDING_DIMENSIONS, embed_text
from .fake.server import CUT_HOW, FakeProvider

__all__ = [
    "CREATED",
    "CUT_HOW",
    "EMBEDDING_DIMENSIONS",
    "FakeProvider",
    "ReceivedRequest",
    "Replies",
    "Reply",
    "count_tokens",
    "embed_text",
]
