"""The keyword side: the BM25 index (``bm25``), its tokenizer (``tokenizer``) and its
snapshot file (``snapshot``)."""
