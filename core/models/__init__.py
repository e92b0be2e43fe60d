"""The model layer: the BERT-family encoder, its checkpoints and its tokenizer.

- :mod:`jinarag.models.encoder`: JinaBERT v2 and classic BERT in one file, top to bottom.
- :mod:`jinarag.models.config`: ``config.json`` read and checked field by field.
- :mod:`jinarag.models.checkpoint`: finding a checkpoint (directory, cache, Hub) and loading it.
- :mod:`jinarag.models.placement`: the device and dtype, resolved against this machine.
- :mod:`jinarag.models.tokenization`: the `tokenizers` tokenizer and truncation rules.

Imports nothing above it (no inference, retrieval, CLI or server code).
"""
