"""The Chroma side of a store: the collection and its record hashes (``collection``), reading
it in batches (``paging``), clients (``client``), the store's files checked before Chroma opens
them (``files``), Chroma's errors matched and worded as ours (``errors``), one writer per store
(``lock``) and URLs shown without their secrets (``redaction``)."""
