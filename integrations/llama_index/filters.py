"""LlamaIndex's `MetadataFilters` as the Chroma `where` filter a `jinarag.HybridIndex` takes.

The same translation as llama-index-vector-stores-chroma's: each `MetadataFilter` becomes
`{key: {"$op": value}}`, a `MetadataFilters` of several becomes `{"$and": [...]}` or
`{"$or": [...]}` (one alone stands for itself), nested `MetadataFilters` nest. Operators and
conditions Chroma's `where` cannot say (`any`, `all`, `text_match`, `contains`, `is_empty`,
the `not` condition) are an `InputError` naming them.

Example:
    >>> from llama_index.core.vector_stores import MetadataFilter, MetadataFilters
    >>> to_where(MetadataFilters(filters=[MetadataFilter(key="year", value=1960, operator=">=")]))
    {'year': {'$gte': 1960}}
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from jinarag.errors import InputError
from jinarag.validation import check_instance

OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}
CONDITIONS = {FilterCondition.AND: "$and", FilterCondition.OR: "$or"}


def to_where(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """The Chroma `where` for `filters` (None, or no filters at all: None)."""
    if filters is None:
        return None
    check_instance(
        "filters",
        filters,
        MetadataFilters,
        "pass llama_index's MetadataFilters(filters=[MetadataFilter(key=..., value=...)])",
    )
    return _where(filters, "filters")


def combined(where: dict[str, Any] | None, filters: dict[str, Any] | None) -> Any:
    """`where` and the `where` of `filters`, both applied (either may be None)."""
    parts = [part for part in (where, filters) if part is not None]
    return parts[0] if len(parts) == 1 else {"$and": parts} if parts else None


def _where(filters: MetadataFilters, name: str) -> dict[str, Any] | None:
    condition = filters.condition if filters.condition is not None else FilterCondition.AND
    if condition not in CONDITIONS:
        raise InputError(
            f"{name} has condition={condition.value!r}, which a Chroma where filter cannot "
            "express; use 'and' or 'or' (for 'not', negate each filter: '!=' or 'nin')"
        )
    parts = []
    for index, item in enumerate(filters.filters):
        where = f"{name}.filters[{index}]"
        if isinstance(item, MetadataFilters):
            part = _where(item, where)
            if part is not None:
                parts.append(part)
        else:
            check_instance(where, item, MetadataFilter, "pass a MetadataFilter or MetadataFilters")
            parts.append({item.key: {_operator(item, where): item.value}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {CONDITIONS[condition]: parts}


def _operator(item: MetadataFilter, name: str) -> str:
    operator = item.operator if item.operator is not None else FilterOperator.EQ
    if operator not in OPERATORS:
        raise InputError(
            f"{name} (key {item.key!r}) has operator={operator.value!r}, which a Chroma where "
            f"filter cannot express; use one of {', '.join(o.value for o in OPERATORS)}"
        )
    return OPERATORS[operator]
