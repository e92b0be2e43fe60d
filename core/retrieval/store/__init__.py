"""The Chroma side of a store: the collection and its paging and hashes (``collection``),
clients (``client``), the store's files checked before Chroma opens them (``files``), Chroma's
errors worded as ours (``errors``), one writer per store (``lock``) and URLs shown without
their secrets (``redaction``)."""
