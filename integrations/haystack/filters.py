"""Haystack's filter syntax as the Chroma `where` filter a `jinarag.HybridIndex` takes.

A Haystack filter is a comparison, `{"field": "meta.year", "operator": ">=", "value": 1960}`,
or a logical one, `{"operator": "AND", "conditions": [...]}`. The comparisons `==`, `!=`,
`>`, `>=`, `<`, `<=`, `in`, `not in` become Chroma's `$eq` ... `$nin` on the field without its
`meta.` prefix; `AND` and `OR` become `$and` and `$or` (one condition alone stands for
itself); `NOT` (true when not all of its conditions are) is pushed down to the comparisons
(De Morgan: `==` becomes `!=`, `>` becomes `<=`, `in` becomes `not in`, ...), since Chroma has
no negation of its own. Chroma's `$ne` and `$nin` match a record without the field, as
Haystack's own stores do; its `$gt`, `$gte`, `$lt`, `$lte` do not, so `NOT` over `>` leaves
out records without the field.

A dict without Haystack's `operator` key is taken as a Chroma `where` already
(`{"year": {"$gte": 1960}}`) and passed on as it is. Anything else (a Document field other
than `meta`, an unknown operator, a comparison without a value) is an `InputError` naming it.

Example:
    >>> to_where({"field": "meta.year", "operator": ">=", "value": 1960})
    {'year': {'$gte': 1960}}
"""

from __future__ import annotations

from typing import Any

from jinarag.errors import InputError
from jinarag.validation import check_instance

COMPARISONS = {
    "==": "$eq",
    "!=": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "in": "$in",
    "not in": "$nin",
}
NEGATED = {"==": "!=", "!=": "==", ">": "<=", ">=": "<", "<": ">=", "<=": ">", "in": "not in"}
NEGATED["not in"] = "in"
LOGICAL = ("AND", "OR", "NOT")
# Document fields that are not metadata: Chroma's where reads metadata only.
DOCUMENT_FIELDS = ("id", "content", "blob", "embedding", "sparse_embedding", "score")
_HINT = "e.g. {'field': 'meta.year', 'operator': '>=', 'value': 1960}"


def is_haystack_filter(filters: Any) -> bool:
    """Whether `filters` is in Haystack's syntax (else it is taken as a Chroma `where`)."""
    return (
        isinstance(filters, dict)
        and "operator" in filters
        and ("field" in filters or "conditions" in filters)
    )


def to_where(filters: dict[str, Any] | None, name: str = "filters") -> dict[str, Any] | None:
    """The Chroma `where` for `filters` (Haystack's syntax, or a Chroma `where` as it is)."""
    if filters is None:
        return None
    check_instance(name, filters, dict, f"pass a Haystack filter, {_HINT}")
    if not is_haystack_filter(filters):
        return filters
    return _where(filters, name, negate=False)


def _where(node: Any, name: str, *, negate: bool) -> dict[str, Any]:
    check_instance(name, node, dict, f"pass a Haystack filter, {_HINT}")
    operator = node.get("operator")
    if "conditions" in node:
        return _logical(node, name, operator, negate)
    if "field" not in node:
        raise InputError(
            f"{name} has neither 'field' nor 'conditions' (its keys: {', '.join(map(repr, node))})"
            f"; pass a comparison, {_HINT}, or {{'operator': 'AND', 'conditions': [...]}}"
        )
    return _comparison(node, name, operator, negate)


def _logical(node: dict[str, Any], name: str, operator: Any, negate: bool) -> dict[str, Any]:
    if operator not in LOGICAL:
        raise InputError(
            f"{name} has operator={operator!r} with conditions; use one of {', '.join(LOGICAL)}"
        )
    conditions = node["conditions"]
    if not isinstance(conditions, list) or not conditions:
        raise InputError(
            f"{name}['conditions'] must be a non-empty list of filters, got {conditions!r:.60}"
        )
    if operator == "NOT":  # not all of them: the negation of their AND
        operator, negate = "AND", not negate
    if negate:  # De Morgan
        operator = "OR" if operator == "AND" else "AND"
    parts = [
        _where(item, f"{name}['conditions'][{index}]", negate=negate)
        for index, item in enumerate(conditions)
    ]
    return parts[0] if len(parts) == 1 else {f"${operator.lower()}": parts}


def _comparison(node: dict[str, Any], name: str, operator: Any, negate: bool) -> dict[str, Any]:
    field = node["field"]
    check_instance(f"{name}['field']", field, str, "pass a metadata field as 'meta.<name>'")
    key = field.removeprefix("meta.")
    if field in DOCUMENT_FIELDS or not key:
        raise InputError(
            f"{name} filters on field {field!r}, which a Chroma where cannot read (it reads "
            "the metadata only); filter on a metadata field, 'meta.<name>'"
        )
    if operator not in COMPARISONS:
        raise InputError(
            f"{name} has operator={operator!r} on field {field!r}; use one of "
            f"{', '.join(COMPARISONS)} (or AND, OR, NOT with 'conditions')"
        )
    if "value" not in node or node["value"] is None:
        raise InputError(
            f"{name} (field {field!r}) has no value; Chroma's where cannot compare with None: "
            "give a str, int, float or bool value"
        )
    value = node["value"]
    if operator in ("in", "not in") and not isinstance(value, list):
        raise InputError(
            f"{name} (field {field!r}, operator {operator!r}) must have a list value, got "
            f"{type(value).__name__} {value!r:.60}"
        )
    return {key: {COMPARISONS[NEGATED[operator] if negate else operator]: value}}
