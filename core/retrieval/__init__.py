"""The retrieval layer: the hybrid index (Chroma + BM25), fusion and ingestion.

``index`` (:class:`HybridIndex`, the facade) runs over ``chroma_store`` (the Chroma client and
collection), ``mirror`` (BM25 kept equal to Chroma), ``bm25`` and its ``snapshot`` file,
``records`` (ids and metadata of writes), ``search`` (planning, fusion and reranking steps),
``fusion`` (pure functions) and ``hits`` (the result types). ``readers`` reads files into
documents and ``chunking`` cuts them into records.

Importing this package is light; only ``index``, ``chroma_store`` and ``mirror`` need chromadb,
and they are imported when asked for.
"""
