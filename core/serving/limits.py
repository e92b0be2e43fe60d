"""How much work one request may ask of the server, and the errors that refuse the rest.

Every limit is checked before the work it bounds: the body size before the JSON is parsed, the
number of inputs before any text is read, the length of each text before it is tokenised, and
the tokens of the whole request before the model runs. This module imports nothing heavy, so
the command line can show the defaults in ``jinarag serve --help``.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinarag.errors import InputError
from jinarag.validation import positive_int

__all__ = [
    "DEFAULT_CHARS_PER_TOKEN",
    "DEFAULT_CPU_PASS_TOKENS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_INPUTS",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_REQUEST_TOKENS",
    "DEFAULT_MAX_WAIT_MS",
    "DEFAULT_REQUEST_TIMEOUT",
    "RequestTooLargeError",
    "ServerLimits",
]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_INPUTS = 2048  # Jina's hosted API takes at most 2048 inputs per request too
# A token of English is about 4 characters; 16 leaves room for long words, numbers and
# whitespace, so cutting at 16 × max_length characters almost never changes what the model sees.
DEFAULT_CHARS_PER_TOKEN = 16
DEFAULT_MAX_REQUEST_TOKENS = 262_144
# Batching: how long a request may wait for others to share its engine call, how many may
# wait per model before the server answers 503, and when a request is given up (504).
DEFAULT_MAX_WAIT_MS = 2.0
DEFAULT_MAX_QUEUE = 1024
DEFAULT_REQUEST_TIMEOUT = 300.0
# Tokens of one forward pass on a CPU (rows × row length, padding included). Merged requests
# mix lengths more than one sorted corpus does, and passes of 1-2k tokens measured fastest
# (benchmarks/README.md, server_load). A pass is also the unit after which a given-up request
# stops the work. A GPU runs passes of the model's whole max_batch_tokens.
DEFAULT_CPU_PASS_TOKENS = 2048


class RequestTooLargeError(InputError):
    """A request asks for more work than the server's limits allow (HTTP 413); the message
    names the amount, the limit and the ``jinarag serve`` flag that raises it."""


@dataclass(frozen=True)
class ServerLimits:
    """The limits of one server; see docs/server.md.

    Attributes:
        max_body_bytes: bytes of a request body (``--max-body-bytes``).
        max_inputs: texts in ``input`` or ``documents`` (``--max-inputs``).
        chars_per_token: a text is cut to ``chars_per_token × max_length`` characters before it
            is tokenised, since the model reads at most ``max_length`` tokens of it anyway
            (``--chars-per-token``).
        max_request_tokens: tokens the model reads for one request, each text counted after its
            cut to ``max_length`` (``--max-request-tokens``).
        cpu_pass_tokens: tokens of one forward pass on a CPU, padding included (at most the
            model's ``max_batch_tokens``); a keyword of ``create_app``, not a flag.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_inputs: int = DEFAULT_MAX_INPUTS
    chars_per_token: int = DEFAULT_CHARS_PER_TOKEN
    max_request_tokens: int = DEFAULT_MAX_REQUEST_TOKENS
    cpu_pass_tokens: int = DEFAULT_CPU_PASS_TOKENS

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_inputs",
            "chars_per_token",
            "max_request_tokens",
            "cpu_pass_tokens",
        ):
            positive_int(name, getattr(self, name))

    def body_too_large(self, size: int, *, declared: bool) -> RequestTooLargeError:
        """The error for a body of ``size`` bytes (``declared``: by its Content-Length; else
        counted while it streamed in, and cut off there)."""
        amount = f"{size} bytes" if declared else f"more than {size - 1} bytes"
        return RequestTooLargeError(
            f"the request body has {amount}, more than this server's limit of "
            f"{self.max_body_bytes} bytes; send fewer or shorter texts per request, or start the "
            "server with a larger --max-body-bytes"
        )

    def check_count(self, field: str, count: int) -> None:
        """RequestTooLargeError when ``count`` texts are more than ``max_inputs``."""
        if count > self.max_inputs:
            raise RequestTooLargeError(
                f"{field} has {count} texts, more than this server's limit of {self.max_inputs} "
                f"per request; split them into requests of at most {self.max_inputs}, or start "
                f"the server with --max-inputs {count}"
            )

    def max_chars(self, max_length: int) -> int:
        """The characters of one text that are tokenised for a model of ``max_length``."""
        return self.chars_per_token * max_length

    def cut(self, field: str, texts: list[str], max_length: int, *, truncate: bool) -> list[str]:
        """``texts`` each cut to :meth:`max_chars` characters; with ``truncate=False`` a longer
        text is an InputError instead (such a text cannot fit ``max_length`` tokens but in
        pathological cases, and tokenising all of it is the cost this limit avoids)."""
        limit = self.max_chars(max_length)
        if not truncate:
            for index, text in enumerate(texts):
                if len(text) > limit:
                    raise InputError(
                        f"{field}[{index}] has {len(text)} characters, more than the "
                        f"{limit} this server tokenises for max_length={max_length} tokens "
                        f"({self.chars_per_token} per token); with truncate=false it is refused: "
                        "shorten or split it, or send truncate=true to have it cut"
                    )
            return texts
        return [text[:limit] if len(text) > limit else text for text in texts]

    def tokens_too_large(
        self, tokens: int, max_length: int, *, complete: bool
    ) -> RequestTooLargeError:
        """The error for a request whose model input is ``tokens`` tokens (``complete``: all
        of it counted; else counting stopped once it passed the limit)."""
        amount = f"{tokens} tokens" if complete else f"more than {tokens} tokens"
        return RequestTooLargeError(
            f"the request has {amount} (each text counted up to max_length={max_length}), more "
            f"than this server's limit of {self.max_request_tokens} per request; send fewer or "
            "shorter texts per request, or start the server with a larger --max-request-tokens"
        )
