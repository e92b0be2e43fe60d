"""The keyword side: the BM25 index and its tokenizer (``bm25``) and its snapshot file
(``snapshot``)."""
