"""Retrieval quality on judged data: the BEIR reader, metrics, the eval runner and tuning.

Importing this package is light (no chromadb, no torch): the index and the models are imported
by the functions that need them.

Example:
    >>> from jinarag.evaluation import build_index, evaluate, format_table, load_beir
    >>> dataset = load_beir("tests/data/cranfield")
    >>> print(format_table(evaluate(build_index(dataset, embedder), dataset)))
"""

from __future__ import annotations

from jinarag.evaluation.beir import Dataset, load_beir
from jinarag.evaluation.chart import svg_chart
from jinarag.evaluation.metrics import ndcg_at_k, recall_at_k
from jinarag.evaluation.runner import (
    QUERY_SETS,
    Config,
    Row,
    build_index,
    default_configs,
    evaluate,
    format_table,
    select_queries,
)
from jinarag.evaluation.tuning import (
    CANDIDATES_GRID,
    RRF_K_GRID,
    WEIGHT_GRID,
    SweepResult,
    format_sweep,
    single_sources,
    source_lists,
    sweep,
    sweep_worst_case,
)

__all__ = [
    "CANDIDATES_GRID",
    "QUERY_SETS",
    "RRF_K_GRID",
    "WEIGHT_GRID",
    "Config",
    "Dataset",
    "Row",
    "SweepResult",
    "build_index",
    "default_configs",
    "evaluate",
    "format_sweep",
    "format_table",
    "load_beir",
    "ndcg_at_k",
    "recall_at_k",
    "select_queries",
    "single_sources",
    "source_lists",
    "sweep",
    "svg_chart",
    "sweep_worst_case",
]
