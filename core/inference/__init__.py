"""The inference layer: batching, :class:`Embedder`, :class:`Reranker` and the default models.

- :mod:`jinarag.inference.batching`: length-sorted, token-budgeted batches.
- :mod:`jinarag.inference.pretrained`: what Embedder and Reranker share (loading, running, saving).
- :mod:`jinarag.inference.embedder`, :mod:`jinarag.inference.reranker`: the two model kinds.
- :mod:`jinarag.inference.defaults`: the default Jina models and the offline MiniLM fallback.

Builds on :mod:`jinarag.models`; imports nothing from retrieval, evaluation, the CLI or the server.
"""
