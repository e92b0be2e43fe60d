"""URLs shown without their secrets, for the store's messages: :mod:`jinarag.redaction` (a leaf
every layer uses, the remote models and the server included), under the name the store's
modules have always imported it by."""

from __future__ import annotations

from jinarag.redaction import redact, redact_url, url_secrets

__all__ = ["redact", "redact_url", "url_secrets"]
