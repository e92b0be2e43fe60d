"""Tokenization with the `tokenizers` library, and truncation that never cuts a query.

Texts are encoded without special tokens, cut to fit, and only then given the tokenizer's own
template (``[CLS] a [SEP] b [SEP]`` for WordPiece, ``<s> a </s></s> b </s>`` for byte-level
BPE), so a pair is always cut on the document side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Encoding, Tokenizer, models, normalizers, pre_tokenizers, processors

from jinarag.errors import CheckpointError, InputError
from jinarag.models.config import read_json_object

__all__ = ["Encoded", "TextTokenizer"]

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


@dataclass(frozen=True)
class Encoded:
    """Token ids ready for the model, and which inputs had to be truncated."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    truncated: list[int]  # indices of the inputs that were cut

    def __len__(self) -> int:
        return len(self.input_ids)


class TextTokenizer:
    """A checkpoint's tokenizer: ``tokenizer.json``, or ``vocab.txt`` for WordPiece-only ones."""

    def __init__(self, tokenizer: Tokenizer, pad_token_id: int = 0) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.pad_token_id = pad_token_id
        self._special_single = tokenizer.num_special_tokens_to_add(False)
        self._special_pair = tokenizer.num_special_tokens_to_add(True)
        self._specials: tuple[list[int], list[int]] | None = None

    @classmethod
    def from_dir(
        cls, directory: Path, *, pad_token_id: int = 0, vocab_size: int | None = None
    ) -> TextTokenizer:
        """The tokenizer of a checkpoint directory. With ``vocab_size`` (the model's embedding
        rows), a tokenizer whose ids do not all fit is a CheckpointError, not an IndexError in
        the first batch that meets a high id."""
        tokenizer_json = directory / "tokenizer.json"
        vocab_txt = directory / "vocab.txt"
        try:
            if tokenizer_json.is_file():
                tokenizer = Tokenizer.from_file(str(tokenizer_json))
            elif vocab_txt.is_file():
                tokenizer = _wordpiece_from_vocab(directory)
            else:
                raise CheckpointError(
                    f"{directory} has no tokenizer: expected tokenizer.json (or vocab.txt for a "
                    "WordPiece model). Copy the tokenizer files next to config.json."
                )
        except CheckpointError:
            raise
        except Exception as exc:  # tokenizers raises plain Exception for a bad file
            raise CheckpointError(
                f"The tokenizer in {directory} cannot be read ({exc}); copy or download "
                "tokenizer.json again."
            ) from exc
        if vocab_size is not None:
            ids = tokenizer.get_vocab(with_added_tokens=True).values()
            highest = max(ids, default=-1)
            if highest >= vocab_size:
                raise CheckpointError(
                    f"The tokenizer in {directory} has token ids up to {highest}, but config.json "
                    f"says vocab_size={vocab_size}: the tokenizer belongs to another model. Copy "
                    "the tokenizer files that came with these weights."
                )
        return cls(tokenizer, pad_token_id)

    def save(self, directory: Path) -> None:
        self.tokenizer.save(str(directory / "tokenizer.json"))

    # -- single texts ---------------------------------------------------------------------

    def encode(
        self, texts: Sequence[str], *, max_length: int, truncate: bool = True, offset: int = 0
    ) -> Encoded:
        """Encode texts, cutting each to ``max_length`` tokens (special tokens included).
        ``offset``: the index of ``texts[0]`` in the caller's list, for error messages."""
        budget = max_length - self._special_single
        raw = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        truncated = []
        for index, encoding in enumerate(raw):
            if len(encoding.ids) > budget:
                if not truncate:
                    raise InputError(
                        f"texts[{offset + index}] has "
                        f"{len(encoding.ids) + self._special_single} tokens, "
                        f"more than max_length={max_length}. Pass truncate=True to cut it, "
                        "split it into chunks, or raise max_length."
                    )
                encoding.truncate(budget)
                truncated.append(index)
        return self._finish([self.tokenizer.post_process(e) for e in raw], truncated)

    # -- (query, document) pairs ----------------------------------------------------------

    def encode_pairs(
        self, query: str, documents: Sequence[str], *, max_length: int, truncate: bool = True
    ) -> Encoded:
        """Encode (query, document) pairs for one query; see :meth:`encode_pair_list`."""
        return self.encode_pair_list(
            [(query, document) for document in documents], max_length=max_length, truncate=truncate
        )

    def encode_pair_list(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        max_length: int,
        truncate: bool = True,
        offset: int = 0,
    ) -> Encoded:
        """Encode (query, document) pairs, any number of queries, with the pair template.

        Only documents are cut. A query that leaves no room for any document token is an
        InputError: cutting the query would silently change what is being asked. Each
        distinct query is tokenised once.
        """
        queries: dict[str, Encoding] = {}
        for query, _ in pairs:
            if query not in queries:
                queries[query] = self.tokenizer.encode(query, add_special_tokens=False)
        for query, encoding in queries.items():
            if max_length - self._special_pair - len(encoding.ids) < 1:
                raise InputError(
                    f"The query {query[:60]!r} has {len(encoding.ids)} tokens, which leaves no "
                    f"room for the document within max_length={max_length}. Shorten the query "
                    "or raise max_length."
                )
        raw = self.tokenizer.encode_batch(
            [document for _, document in pairs], add_special_tokens=False
        )
        truncated = []
        encoded: list[Encoding] = []
        for index, ((query, _), encoding) in enumerate(zip(pairs, raw, strict=True)):
            query_encoding = queries[query]
            budget = max_length - self._special_pair - len(query_encoding.ids)
            if len(encoding.ids) > budget:
                if not truncate:
                    raise InputError(
                        f"documents[{offset + index}] with the query has more than max_length="
                        f"{max_length} tokens. Pass truncate=True to cut the document, or "
                        "split it into chunks."
                    )
                encoding.truncate(budget)
                truncated.append(index)
            encoded.append(self.tokenizer.post_process(query_encoding, encoding))
        return self._finish(encoded, truncated)

    # -- offsets for chunking -------------------------------------------------------------

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (no special tokens), for chunking."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def ids_and_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids of ``text`` (no special tokens) and each token's character span."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), list(encoding.offsets)

    def single_specials(self) -> tuple[list[int], list[int]]:
        """The ids the single-text template puts before and after a text (``[CLS]``, ``[SEP]``
        for WordPiece; ``<s>``, ``</s>`` for byte-level BPE)."""
        if self._specials is None:
            encoding = self.tokenizer.encode("", add_special_tokens=True)
            ids, types = list(encoding.ids), list(encoding.special_tokens_mask)
            split = len(ids) // 2 if all(types) else 0
            self._specials = (ids[:split], ids[split:])
        return self._specials

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` including the special tokens the model adds."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids) + self._special_single

    @staticmethod
    def _finish(encodings: list[Encoding], truncated: list[int]) -> Encoded:
        return Encoded(
            input_ids=[e.ids for e in encodings],
            token_type_ids=[e.type_ids for e in encodings],
            truncated=truncated,
        )


def _wordpiece_from_vocab(directory: Path) -> Tokenizer:
    """A BERT WordPiece tokenizer from ``vocab.txt`` (lower-casing per tokenizer_config.json)."""
    config_path = directory / "tokenizer_config.json"
    config = read_json_object(config_path) if config_path.is_file() else {}
    lowercase = config.get("do_lower_case")
    if lowercase is None:
        lowercase = True
    elif not isinstance(lowercase, bool):
        raise CheckpointError(
            f"{config_path}: do_lower_case={lowercase!r} must be true or false (a JSON "
            "boolean, not a string); restore the file from the original checkpoint (copy or "
            "download it again)."
        )
    vocab = models.WordPiece.read_file(str(directory / "vocab.txt"))
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer
