"""The documentation, run as a new user would: every ```python and ```bash block of README.md and
docs/*.md.

What stands in for the network and for the user's machine (the snippets themselves are run as
written):

- Models: a temporary Hugging Face hub cache (``HF_HUB_CACHE``) in the real layout
  (``models--owner--name/refs/main``, ``snapshots/<commit>/``) holds, under every Jina repo id an
  alias stands for, the all-MiniLM-L6-v2 weights (embedders) or the MiniLM cross-encoder
  (rerankers); under jina-embeddings-v3 and jina-reranker-v2 random checkpoints of their own
  architecture (hidden 256 for v3, so its documented dimensions exist). With
  ``HF_HUB_OFFLINE=1`` jinarag's loader finds them there, as it would find a model downloaded
  earlier.
- Files: each page runs in a fresh temporary directory holding a copy of cookbooks/, the
  first 20 Cranfield documents (and 2 queries judged on them) as tests/data/cranfield, so
  that `jinarag eval` and the cookbooks fit the test budget, and a docs/ folder of two short
  pages of this repository's docs, for the same reason. Files that are not in a checkout
  (notes.md, corpus.jsonl) are made only for the pages in USER_FILE_PAGES, which show the
  user's own files; every other page must run verbatim from a checkout. Nothing is written
  into the repository.
- Ports and absolute paths: a documented port (``--port 8080``, ``127.0.0.1:8000``) is replaced by
  a free one, and an absolute path (``/srv/chroma``) is moved under the temporary directory.

Python blocks of a page run in order in one interpreter (later snippets use earlier names).
Bash lines: `jinarag`, `python` and `curl` run with the .venv's executables; `chroma run` and
`jinarag serve` start before the page's other blocks, are waited for on 127.0.0.1 and stopped by
PID; `pip` lines are checked, not run (they must install from a checkout or a built wheel, with
extras that exist); `export X=Y` applies to the rest of its block; `./dev` lines are not run
(see NOT_RUN). The Haystack page runs on haystack-ai 2.x too, when .venv-haystack2 exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
HAYSTACK2_PYTHON = REPO / ".venv-haystack2" / "bin" / "python"
CRANFIELD = REPO / "tests" / "data" / "cranfield"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # the fake snapshot's revision
# The user's docs/ folder that `jinarag index docs/ ...` reads: two short pages of ours (all of
# docs/ took each page that indexes it half a minute of embedding, and grows with the docs).
USER_DOCS = ("late-chunking.md", "chroma.md")
# Pages whose commands name the user's own files (notes.md, corpus.jsonl), made for them only:
# the README and the other pages use files of the repository, and run as a checkout holds it.
USER_FILE_PAGES = frozenset({"ingestion.md"})

# Command prefixes the docs show that are not run here, and why.
NOT_RUN = {
    "./dev": "the project's own harness: it creates .venv and .venv-haystack2 and runs this very "
    "suite (`./dev test`), so it is what runs these tests, not something to run inside them",
}
SERVERS = (("chroma", "run"), ("jinarag", "serve"))
RUN = ("jinarag", "python", "curl")
OUTCOMES = {
    "run": "ran",
    "server": "started, answered on 127.0.0.1, stopped by PID",
    "pip": "checked by test_install_commands_use_a_checkout_or_a_wheel, not run",
    "not run": "not run",
    "export": "applied to the later lines of its block",
}
# `jinarag eval DATASET` without --store reads only the dataset (the same copy on every page)
# and keeps its index in memory: a second page showing the same line is not run again.
PURE_COMMANDS_RUN: dict[str, str] = {}  # the command line -> where it ran
PYTHON_TIMEOUT = 600
# Pages run this many at a time (see page_runs): a page's time goes mostly to starting
# single-threaded processes one after another, so a second page keeps the second core busy.
PAGES_AT_ONCE = 2
COMMAND_TIMEOUT = 300
SERVER_START_TIMEOUT = 180

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
DOTTED_NAME = re.compile(r"(?<![\w./-])jinarag(?:\.[A-Za-z_]\w*)+")
PORT = re.compile(
    r"(?<=--port )\d+\b|(?<=--port=)\d+\b|(?<=localhost:)\d+\b|(?<=127\.0\.0\.1:)\d+\b"
)
ABSOLUTE_PATH = re.compile(r"(?<=\s)/[\w.-]+(?:/[\w.-]+)*")


# ---------------------------------------------------------------------------------------------
# Reading the pages


@dataclass(frozen=True)
class Block:
    page: Path
    lang: str
    line: int  # line of the block's first code line in the page, from 1
    source: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


@dataclass
class Command:
    where: str
    text: str  # as written, continuation lines joined
    argv: list[str]
    exports: dict[str, str] = field(default_factory=dict)  # `export` lines above it in its block

    @property
    def kind(self) -> str:
        if self.argv[0] in NOT_RUN:
            return "not run"
        if self.argv[0] == "pip" or self.argv[:3] == ["python", "-m", "pip"]:
            return "pip"
        if self.argv[0] == "export":
            return "export"
        if tuple(self.argv[:2]) in SERVERS:
            return "server"
        if self.argv[0] in RUN:
            return "run"
        return "unknown"


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def blocks(page: Path, lang: str) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, lang, text.count("\n", 0, m.start(2)) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == lang
    ]


def commands(block: Block) -> list[Command]:
    """The block's command lines (continuations joined, comments dropped), with exports."""
    out: list[Command] = []
    exports: dict[str, str] = {}
    lines = block.source.splitlines()
    n = 0
    while n < len(lines):
        start, text = n, lines[n]
        while text.rstrip().endswith("\\") and n + 1 < len(lines):
            n += 1
            text = text.rstrip()[:-1] + " " + lines[n].strip()
        n += 1
        argv = shlex.split(text, comments=True)
        if not argv:
            continue
        command = Command(f"{page_id(block.page)}:{block.line + start}", text, argv, dict(exports))
        if command.kind == "export":
            for assignment in argv[1:]:
                name, _, value = assignment.partition("=")
                exports[name] = value
        out.append(command)
    return out


def prose(page: Path) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# The user's machine: a hub cache, a working directory, an environment


@pytest.fixture(scope="session")
def hub_cache(minilm_dir, minilm_reranker_dir, tmp_path_factory) -> Path:
    """A Hugging Face hub cache whose Jina snapshots hold MiniLM files (symlinks); the
    XLM-RoBERTa models (jina-embeddings-v3, jina-reranker-v2) hold random checkpoints of their
    own architecture and layout (tests/tiny_xlmr_checkpoints.py), so their tasks, dimensions and
    adapters work as documented."""
    from tiny_xlmr_checkpoints import build_reranker_v2, build_v3

    from jinarag.models.checkpoint import EMBEDDER_ALIASES, RERANKER_ALIASES

    own = tmp_path_factory.mktemp("xlmr")
    family = {
        EMBEDDER_ALIASES["v3"]: build_v3(own / "v3", hidden=256, heads=4, layers=2),
        RERANKER_ALIASES["reranker-v2"]: build_reranker_v2(own / "reranker-v2"),
    }
    hub = tmp_path_factory.mktemp("hf") / "hub"
    for aliases, minilm in (
        (EMBEDDER_ALIASES, minilm_dir),
        (RERANKER_ALIASES, minilm_reranker_dir),
    ):
        for repo_id in sorted(set(aliases.values())):
            source = family.get(repo_id, minilm)
            repo = hub / f"models--{repo_id.replace('/', '--')}"
            snapshot = repo / "snapshots" / COMMIT
            snapshot.mkdir(parents=True)
            (repo / "refs").mkdir()
            (repo / "refs" / "main").write_text(COMMIT, encoding="utf-8")
            for file in source.iterdir():
                if file.is_file():
                    (snapshot / file.name).symlink_to(file)
    return hub


def user_env(hub: Path, bin_dir: Path) -> dict[str, str]:
    """A new user's environment: offline, the test hub cache, no API keys, bin_dir on PATH."""
    dropped = ("OPENAI_", "HF_", "HUGGINGFACE_", "HAYSTACK_", "JINARAG_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        HF_HOME=str(hub.parent / "hf-home"),
        HF_HUB_CACHE=str(hub),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        HAYSTACK_TELEMETRY_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def cranfield_subset(target: Path, n_docs: int = 20, n_queries: int = 2) -> None:
    """The first n_docs Cranfield documents, and the first n_queries queries judged on them."""
    (target / "qrels").mkdir(parents=True)
    with (CRANFIELD / "corpus.jsonl").open(encoding="utf-8") as f:
        corpus = [line for line in f if line.strip()][:n_docs]
    ids = {json.loads(line)["_id"] for line in corpus}
    header, *rows = (CRANFIELD / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    rows = [row for row in rows if row.split("\t")[1] in ids]
    judged = list(dict.fromkeys(row.split("\t")[0] for row in rows))[:n_queries]
    with (CRANFIELD / "queries.jsonl").open(encoding="utf-8") as f:
        queries = [line for line in f if line.strip() and json.loads(line)["_id"] in judged]
    (target / "corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    (target / "queries.jsonl").write_text("".join(queries), encoding="utf-8")
    rows = [row for row in rows if row.split("\t")[0] in judged]
    (target / "qrels" / "test.tsv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def workdir(tmp_path: Path, user_files: bool = False) -> Path:
    """A fresh working directory with what the commands read (``user_files``: and the user's
    own notes.md and corpus.jsonl)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "docs").mkdir()
    for name in USER_DOCS:
        shutil.copy(REPO / "docs" / name, work / "docs" / name)
    shutil.copytree(
        REPO / "cookbooks", work / "cookbooks", ignore=shutil.ignore_patterns("__pycache__")
    )
    cranfield_subset(work / "tests" / "data" / "cranfield")
    if not user_files:
        return work
    # The user's own files that the index commands of USER_FILE_PAGES name.
    (work / "notes.md").write_text(
        "# Notes\n\nA propeller slipstream raises the lift of the wing behind it; the gain grows "
        "with the ratio of slipstream to free-stream velocity.\n",
        encoding="utf-8",
    )
    with (work / "tests" / "data" / "cranfield" / "corpus.jsonl").open(encoding="utf-8") as f:
        (work / "corpus.jsonl").write_text("".join(f.readlines()[:10]), encoding="utf-8")
    return work


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rewrite:
    """Documented ports become free ones; absolute paths move under the working directory."""

    def __init__(self, page: Path, work: Path) -> None:
        self.work = work
        self.ports = {port: str(free_port()) for port in PORT.findall(page.read_text("utf-8"))}

    def __call__(self, text: str, *, shell: bool) -> str:
        text = PORT.sub(lambda m: self.ports[m.group()], text)
        if shell:
            text = ABSOLUTE_PATH.sub(lambda m: str(self.work / "root" / m.group()[1:]), text)
        return text


# ---------------------------------------------------------------------------------------------
# Running


RUNNER = """\
import json, sys
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"<<<block {block['where']}>>>", flush=True)
    # Leading newlines keep the page's line numbers in tracebacks.
    code = compile("\\n" * (block["line"] - 1) + block["source"], block["file"], "exec")
    exec(code, namespace)
print("<<<done>>>", flush=True)
"""


def run_python_blocks(
    python: Path, page: Path, rewrite: Rewrite, env: dict[str, str], tmp_path: Path
) -> dict[str, str]:
    """Run the page's Python blocks in one interpreter; return each block's output."""
    page_blocks = blocks(page, "python")
    spec = [
        {
            "where": b.where,
            "file": str(b.page),
            "line": b.line,
            "source": rewrite(b.source, shell=False),
        }
        for b in page_blocks
    ]
    script, spec_file = tmp_path / "run_blocks.py", tmp_path / f"{python.parent.parent.name}.json"
    script.write_text(RUNNER, encoding="utf-8")
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    result = subprocess.run(
        [str(python), str(script), str(spec_file)],
        cwd=rewrite.work,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT,
    )
    parts = re.split(r"<<<block (\S+)>>>\n", result.stdout)
    outputs = dict(zip(parts[1::2], parts[2::2], strict=True))
    failed = list(outputs)[-1] if outputs else "(before the first block)"
    assert result.returncode == 0 and "<<<done>>>" in result.stdout, (
        f"{failed} failed with {python}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
    return outputs


class Server:
    """A long-running command from the docs, started on 127.0.0.1 and stopped by its PID."""

    def __init__(self, command: Command, text: str, work: Path, env: dict[str, str]) -> None:
        self.command = command
        port = re.search(r"--port[ =](\d+)", text)
        assert port, f"{command.where}: a server line needs --port: {command.text}"
        self.url = f"http://127.0.0.1:{port.group(1)}/"
        self.log = work.parent / f"server-{port.group(1)}.log"
        with self.log.open("wb") as log:
            # exec: the PID is the server's own, not a shell's.
            self.proc = subprocess.Popen(
                ["bash", "-c", f"exec {text}"],
                cwd=work,
                env={**env, **command.exports},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.command.where}: `{self.command.text}` exited:\n{self.tail()}")
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers, even if not at "/"
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"{self.command.where}: `{self.command.text}` did not answer:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def check_output(command: Command, out: str) -> None:
    """What the output of a command must show, beyond exiting with 0."""
    if command.argv[0] == "curl":
        answer = json.loads(out)
        assert "detail" not in answer, f"{command.where}: the server refused: {answer}"
    elif command.argv[:2] == ["jinarag", "search"]:
        assert out.strip() and "no results" not in out, f"{command.where}: {out}"
    elif command.argv[:2] == ["jinarag", "eval"]:
        assert "| hybrid rrf" in out, f"{command.where}: {out}"


def run_command(command: Command, text: str, work: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-c", text],
        cwd=work,
        env={**env, **command.exports},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{command.where}: `{command.text}` exited {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    check_output(command, result.stdout)


def do(command: Command, rewrite: Rewrite, env: dict[str, str]) -> str:
    """Run or check a command that is not a server; say what was done."""
    if command.kind != "run":
        why = f" ({NOT_RUN[command.argv[0]]})" if command.kind == "not run" else ""
        return OUTCOMES[command.kind] + why
    line = shlex.join(command.argv)
    if line in PURE_COMMANDS_RUN:
        return f"ran as {PURE_COMMANDS_RUN[line]}"
    start = time.monotonic()
    run_command(command, rewrite(command.text, shell=True), rewrite.work, env)
    if command.argv[:2] == ["jinarag", "eval"] and "--store" not in command.argv:
        PURE_COMMANDS_RUN[line] = command.where
    return f"ran ({time.monotonic() - start:.0f}s)"


def entries_written_into_repo(work: Path, seeded: set[str], before: set[str]) -> list[str]:
    """Top-level names the page created in its working directory that appeared in the repo."""
    created = {p.name for p in work.iterdir()} - seeded
    return sorted(name for name in created if name not in before and (REPO / name).exists())


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.mark.slow
def test_hub_cache_resolves_through_jinarag(hub_cache, tmp_path):
    """Each alias resolves, through jinarag's own loader, to its snapshot in the test cache."""
    code = """
import json
import jinarag
from jinarag.models.checkpoint import EMBEDDER_ALIASES, RERANKER_ALIASES, resolve_checkpoint
paths = {f"{kind}:{alias}": str(resolve_checkpoint(alias, kind=kind))
         for kind, aliases in (("embedder", EMBEDDER_ALIASES), ("reranker", RERANKER_ALIASES))
         for alias in aliases}
embedder = jinarag.Embedder.from_pretrained("small")
reranker = jinarag.Reranker.from_pretrained("turbo")
print(json.dumps({"paths": paths, "dim": embedder.dim,
                  "scores": reranker.score("wing lift", ["lift of a wing", "heat"]).tolist()}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=user_env(hub_cache, VENV_BIN),
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["dim"] == 384  # MiniLM, standing in for jina-embeddings-v2-small-en
    assert len(answer["scores"]) == 2
    for key, path in answer["paths"].items():
        snapshot = Path(path)
        assert snapshot.parent.name == "snapshots" and snapshot.name == COMMIT, (key, path)
        assert snapshot.is_relative_to(hub_cache), (key, path)


@pytest.fixture(scope="session")
def page_runs(request, hub_cache, tmp_path_factory) -> Iterator[dict[Path, Future]]:
    """The pages of the selected test_page_runs tests, started PAGES_AT_ONCE at a time when the
    first of those tests runs; each test waits for its own page (and fails with its error)."""
    pages = [
        item.callspec.params["page"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_page_runs"
    ]
    pool = ThreadPoolExecutor(PAGES_AT_ONCE, thread_name_prefix="page")
    try:
        yield {
            page: pool.submit(run_page, page, hub_cache, tmp_path_factory.mktemp(page.stem))
            for page in pages
        }
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_runs(page, page_runs):
    """Every Python and bash block of the page, as a new user would run it."""
    outcomes = page_runs[page].result()
    print("\n".join(f"{where}  {outcome}" for where, outcome in outcomes))


def run_page(page: Path, hub_cache: Path, tmp_path: Path) -> list[tuple[str, str]]:
    """Run the page's blocks in a fresh working directory under tmp_path; what was done where."""
    work = workdir(tmp_path, user_files=page.name in USER_FILE_PAGES)
    seeded = {p.name for p in work.iterdir()}
    before = {p.name for p in REPO.iterdir()}
    env = user_env(hub_cache, VENV_BIN)
    rewrite = Rewrite(page, work)
    page_commands = [c for b in blocks(page, "bash") for c in commands(b)]
    outcomes: list[tuple[str, str]] = []

    unknown = [f"{c.where}: {c.text}" for c in page_commands if c.kind == "unknown"]
    assert not unknown, f"commands this test does not know how to run: {unknown}"

    with page_servers(page_commands, rewrite, env):
        if blocks(page, "python"):
            start = time.monotonic()
            outputs = run_python_blocks(VENV_BIN / "python", page, rewrite, env, tmp_path)
            took = f"{time.monotonic() - start:.0f}s for the page's Python blocks"
            outcomes += [(where, f"ran ({took})") for where in outputs]
            check_python_outputs(page, outputs)
        for command in page_commands:
            outcomes.append((command.where, f"{do(command, rewrite, env)}: {command.text}"))

    assert not entries_written_into_repo(work, seeded, before)
    return outcomes


@contextmanager
def page_servers(page_commands: list[Command], rewrite: Rewrite, env: dict[str, str]):
    """The page's servers (`jinarag serve`, `chroma run`), started and answering, then stopped."""
    servers: list[Server] = []
    try:
        for command in page_commands:
            if command.kind == "server":
                text = rewrite(command.text, shell=True)
                servers.append(Server(command, text, rewrite.work, env))
        for server in servers:
            server.wait()
        yield servers
    finally:
        for server in servers:
            server.stop()


def check_python_outputs(page: Path, outputs: dict[str, str]) -> None:
    """Printed values the prose promises."""
    if page.name == "hybrid-search.md":
        quickstart = next(iter(outputs.values()))
        hits = [line for line in quickstart.splitlines() if line.strip()]
        assert len(hits) >= 2, quickstart
        # Both sources rank the hits with the query's words: the corpus is large enough for
        # Okapi's idf to be positive (over two documents it is zero, and `hit.bm25` None).
        assert sum(line.count("SourceScore(") == 2 for line in hits) >= 2, quickstart


@pytest.mark.slow
@pytest.mark.skipif(not HAYSTACK2_PYTHON.exists(), reason="no .venv-haystack2 (./dev env makes it)")
def test_haystack_page_runs_on_haystack2(hub_cache, tmp_path):
    """docs/haystack.md says the same code runs on haystack-ai 2.x: run its blocks there too."""
    page = REPO / "docs" / "haystack.md"
    work = workdir(tmp_path)
    env = user_env(hub_cache, HAYSTACK2_PYTHON.parent)
    version = subprocess.run(
        [str(HAYSTACK2_PYTHON), "-c", "import haystack.version as v; print(v.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert version.startswith("2."), version
    rewrite = Rewrite(page, work)
    # The page's servers are the .venv's (a server needs no Haystack, and the 2.x env has no
    # FastAPI); the Python blocks run on 2.x against them.
    page_commands = [c for b in blocks(page, "bash") for c in commands(b)]
    with page_servers(page_commands, rewrite, user_env(hub_cache, VENV_BIN)):
        outputs = run_python_blocks(HAYSTACK2_PYTHON, page, rewrite, env, tmp_path)
    print("\n".join(f"{where}  ran on haystack-ai {version.strip()}" for where in outputs))


def install_commands() -> Iterator[tuple[str, list[str]]]:
    """Every pip command of the docs: bash lines and inline code in the prose."""
    for page in PAGES:
        for block in blocks(page, "bash"):
            for command in commands(block):
                if command.kind == "pip":
                    yield command.where, command.argv
        for span in INLINE_CODE.findall(prose(page)):
            if re.match(r"(python -m )?pip (install|wheel)\b", span):
                yield f"{page_id(page)} (prose)", shlex.split(span)
            elif re.fullmatch(r"""['"]?jinarag\[[^\]]*\]['"]?""", span):  # `'jinarag[all]'`
                yield f"{page_id(page)} (prose)", ["pip", "install", *shlex.split(span)]


def test_install_commands_use_a_checkout_or_a_wheel():
    """jinarag is not on a package index: every pip line installs from the repository root (`.`)
    or from a wheel built there, with extras that pyproject.toml defines. Other packages named
    must be ones pyproject.toml declares."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = set(project["optional-dependencies"])
    wheel = f"jinarag-{project['version']}-py3-none-any.whl"
    declared = {
        re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")
        for reqs in [project["dependencies"], *project["optional-dependencies"].values()]
        for req in reqs
    }
    found = list(install_commands())
    assert found, "the docs show no install command"
    problems = []
    for where, argv in found:
        args = argv[argv.index("pip") + 1 :]
        targets, skip = [], False
        for arg in args[1:]:
            if skip:
                skip = False
            elif arg in ("-w", "--wheel-dir", "-r", "--requirement", "-c", "--constraint",
                         "-i", "--index-url", "--extra-index-url"):  # fmt: skip
                skip = True
            elif not arg.startswith("-"):
                targets.append(arg)
        if args[0] == "wheel" and targets != ["."]:
            problems.append(f"{where}: `pip wheel` builds from the checkout (`.`): {argv}")
        for target in targets:
            m = re.fullmatch(r"(?P<name>[^\[\]]+)(?:\[(?P<extras>[^\]]*)\])?", target)
            assert m, f"{where}: cannot read {target!r}"
            name, named = m["name"], {e.strip() for e in (m["extras"] or "").split(",") if e}
            if name in (".", "./") or name.endswith(".whl"):
                if name.endswith(".whl") and Path(name).name != wheel:
                    problems.append(f"{where}: pyproject.toml builds {wheel}, not {target}")
                if named - extras:
                    problems.append(f"{where}: no extra {sorted(named - extras)} in pyproject.toml")
            elif name.lower() == "jinarag":
                problems.append(f"{where}: jinarag is not on a package index: {' '.join(argv)}")
            elif name.lower().replace("_", "-") not in declared:
                problems.append(f"{where}: {name} is not declared in pyproject.toml")
    assert not problems, "\n".join(problems)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        try:
            for attribute in parts[n:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return False
        return True
    return False


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def test_names_in_the_prose_exist():
    """Every `jinarag.x.y` the prose names can be imported; every `python -m M` module exists."""
    missing = []
    for page in PAGES:
        for span in INLINE_CODE.findall(prose(page)):
            names = DOTTED_NAME.findall(span)
            missing += [f"{page_id(page)}: {name}" for name in names if not resolves(name)]
            for module in re.findall(r"python -m ([\w.]+)", span):
                if not module_exists(module):
                    missing.append(f"{page_id(page)}: python -m {module}")
    assert not missing, missing


def test_error_tree_names_every_error():
    """docs/core.md draws the exception tree: it names every error and warning jinarag defines."""
    import jinarag.errors

    text = (REPO / "docs" / "core.md").read_text(encoding="utf-8")
    section = text.split("## Errors", 1)[1]
    tree = FENCE.search(section)
    assert tree, "docs/core.md: no tree under ## Errors"
    missing = [name for name in jinarag.errors.__all__ if name not in tree.group(2).split()]
    assert not missing, f"docs/core.md's error tree lacks {missing}"
