"""Writing records: the one record layout (``layout``), ids and metadata checked or made
(``records``), which records of a write changed (``plan``), the one
:class:`~jinarag.retrieval.write.writer.Writer` every write path goes through (``writer``),
BM25 kept equal to Chroma (``mirror``), and the checks and repairs (``verify``, ``rebuild``)."""
