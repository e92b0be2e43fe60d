"""The retrieval layer: the hybrid index (Chroma + BM25), fusion and ingestion.

``index`` (:class:`HybridIndex`, the facade) runs over ``chroma_store`` (the Chroma
collection and its error table, worded by ``chroma_errors``), ``chroma_client`` (the clients),
``chroma_files`` (a store's files checked before Chroma opens them), ``lock`` (one writer per
store), ``mirror`` (BM25 kept equal to Chroma), ``bm25`` and its ``snapshot`` file, ``records``
(ids and metadata of writes), ``writes`` (which records changed), ``verify`` and ``rebuild``
(every record reachable; repairs), ``search`` (planning, fusion and reranking steps),
``fusion`` (pure functions), ``hits`` (the result types) and ``redaction`` (URLs without
secrets). ``readers`` reads files into documents and ``chunking`` cuts them into records.

Importing this package is light; the modules that need chromadb are imported when asked for.
"""
