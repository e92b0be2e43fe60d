"""Ingestion: files into documents (``readers``), token chunks (``chunking``), late chunks
(``late``), files as sources and the catalog of what a store holds of them (``sources``), one
indexing run (``run``) and its executors: in this process (``run.LocalExecutor``) or on Ray
Data (``ray_executor``)."""
