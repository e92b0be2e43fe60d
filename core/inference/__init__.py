"""The inference layer: the pipeline every model call takes, :class:`Embedder`,
:class:`Reranker` and the default models.

- :mod:`jinarag.inference.pipeline`: tokenise → schedule → encode → pool, one implementation,
  over the :class:`~jinarag.inference.pipeline.RunSpec` a model builds.
- :mod:`jinarag.inference.batching`: scheduling by token budget, padded or packed rows.
- :mod:`jinarag.inference.heads`: pooling heads over token-level states.
- :mod:`jinarag.inference.threads`, :mod:`jinarag.inference.allocator`: the CPU thread policy;
  the allocator setting the CLI and server processes use.
- :mod:`jinarag.inference.late_chunking`: the windows and chunk spans of late chunking.
- :mod:`jinarag.inference.pretrained`: what Embedder and Reranker share (loading, running, saving).
- :mod:`jinarag.inference.api`: the public methods local and remote models share.
- :mod:`jinarag.inference.embedder`, :mod:`jinarag.inference.reranker`: the two model kinds.
- :mod:`jinarag.inference.remote`: the same methods, answered by a ``jinarag serve`` server.
- :mod:`jinarag.inference.resolve`: one factory for a local model (a path, an alias, a Hub id)
  or a remote one (``base_url``), and the adapters' ``load_or_use``.
- :mod:`jinarag.inference.protocols`: what the server asks of a model (``TokenEmbedder``,
  ``PairScorer``).
- :mod:`jinarag.inference.defaults`: the default Jina models and the offline MiniLM fallback.

Builds on :mod:`jinarag.models`; imports nothing from retrieval, evaluation, the CLI or the server.
"""
