"""``train_tokenizer``: train a byte-level BPE tokenizer on the job's documents (or adopt an existing one).

A global step. ``collect`` writes a bounded sample of each shard's text (its first ``sample_bytes``
bytes, whole documents separated by newlines) to the shard's scratch directory; ``reduce`` streams every
shard's sample, in shard order, into the ``tokenizers`` BPE trainer and saves the result in Hugging Face
format; ``apply`` passes documents through. Training is deterministic: the same samples give a
byte-identical ``tokenizer.json``. With ``from_uri`` nothing is trained: ``reduce`` validates that
tokenizer directory and copies it into the dataset so the dataset is self-contained.

``train_bpe_tokenizer`` and ``save_hf_tokenizer`` are usable outside a pipeline.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, GlobalStep, ShardContext, StepParams
from shipyard.data.tokenization.hf_tokenizer import (
    CONFIG_FILE,
    SPECIAL_MAP_FILE,
    TOKENIZER_FILE,
    Tokenizer,
    copy_tokenizer_dir,
    load_hf_tokenizer,
)
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = ["TrainTokenizer", "TrainTokenizerParams", "save_hf_tokenizer", "train_bpe_tokenizer"]

SAMPLE_FILE = "tokenizer-sample.txt"
BYTE_ALPHABET = 256
# transformers' "no limit" value (VERY_LARGE_INTEGER), written when the model's context is not known.
NO_MAX_LENGTH = int(1e30)
_CANCEL_CHECK_EVERY = 1000
_READ_CHUNK = 1 << 20


class TrainTokenizerParams(StepParams):
    """Parameters of ``train_tokenizer``."""

    special_tokens: list[str] = Field(
        default_factory=lambda: ["<s>", "</s>", "<unk>", "<pad>"],
        description="Tokens given the first ids, in this order, and never split or merged.",
    )
    vocab_size: int = Field(8000, le=1_000_000, description="Target vocabulary size, specials included.")
    min_frequency: int = Field(2, ge=1, description="A pair must occur this often to be merged.")
    bos_token: str | None = Field("<s>", description="Beginning-of-sequence token (one of special_tokens).")
    eos_token: str | None = Field("</s>", description="End-of-sequence token, put between documents.")
    unk_token: str | None = Field("<unk>", description="Unknown token (byte-level BPE never needs it).")
    pad_token: str | None = Field("<pad>", description="Padding token for finetuning batches.")
    model: Literal["bpe"] = Field("bpe", description="Tokenizer model: byte-level BPE.")
    sample_bytes: int = Field(
        16_000_000, ge=1, le=1 << 34, description="Most bytes of text each shard contributes to training."
    )
    model_max_length: int | None = Field(None, ge=1, description="Context length recorded in the config.")
    output: str | None = Field(None, description="Where to save the tokenizer; default <output>/tokenizer.")
    from_uri: str | None = Field(None, description="Use this HF tokenizer directory instead of training.")

    @field_validator("special_tokens")
    @classmethod
    def _unique_tokens(cls, tokens: list[str]) -> list[str]:
        if any(not t for t in tokens):
            raise ValueError("special tokens must be non-empty strings")
        duplicates = sorted({t for t in tokens if tokens.count(t) > 1})
        if duplicates:
            raise ValueError(f"duplicate special tokens: {duplicates}")
        return tokens

    @field_validator("vocab_size")
    @classmethod
    def _room_for_merges(cls, vocab_size: int, info: ValidationInfo) -> int:
        specials = len(info.data.get("special_tokens", []))
        least = BYTE_ALPHABET + specials + 1
        if vocab_size < least:
            raise ValueError(
                f"must be at least {least} (256 byte tokens + {specials} special tokens + 1 merge)"
            )
        return vocab_size

    @field_validator("bos_token", "eos_token", "unk_token", "pad_token")
    @classmethod
    def _is_special(cls, token: str | None, info: ValidationInfo) -> str | None:
        specials = info.data.get("special_tokens", [])
        if token is not None and token not in specials:
            raise ValueError(f"{token!r} must be one of special_tokens {specials}")
        return token


def train_bpe_tokenizer(texts: Iterable[str], params: TrainTokenizerParams) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts`` (consumed lazily, never all in memory)."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    # No normalizer and add_prefix_space=False: decode(encode(text)) gives back text byte for byte.
    tokenizer = Tokenizer(models.BPE(unk_token=params.unk_token))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        special_tokens=list(params.special_tokens),
        # Every byte is in the vocabulary even if the sample never shows it, so nothing is ever unknown.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def save_hf_tokenizer(
    tokenizer: Tokenizer, storage: Storage, dir_uri: str, params: TrainTokenizerParams
) -> None:
    """Write ``tokenizer`` as an HF directory that ``AutoTokenizer.from_pretrained`` loads offline."""
    roles = {
        "bos_token": params.bos_token,
        "eos_token": params.eos_token,
        "unk_token": params.unk_token,
        "pad_token": params.pad_token,
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **roles,
        "model_max_length": params.model_max_length or NO_MAX_LENGTH,
        # Cleanup would rewrite " ," to "," on decode and break the round trip.
        "clean_up_tokenization_spaces": False,
        "add_bos_token": False,
        "add_eos_token": False,
    }
    special_map = {role: token for role, token in roles.items() if token is not None}
    storage.write_text(uris.join(dir_uri, TOKENIZER_FILE), tokenizer.to_str(pretty=True))
    storage.write_text(uris.join(dir_uri, CONFIG_FILE), json.dumps(config, indent=2) + "\n")
    storage.write_text(uris.join(dir_uri, SPECIAL_MAP_FILE), json.dumps(special_map, indent=2) + "\n")


class TrainTokenizer(GlobalStep):
    """Train (or adopt) the dataset's tokenizer; declares output ``tokenizer`` with its vocabulary size."""

    name = "train_tokenizer"
    Params = TrainTokenizerParams
    params: TrainTokenizerParams

    def collect(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        if self.params.from_uri is not None:
            yield from docs
            return
        budget = self.params.sample_bytes
        with ctx.storage.open_write(uris.join(ctx.scratch_uri, SAMPLE_FILE)) as f:
            for n, doc in enumerate(docs):
                if n % _CANCEL_CHECK_EVERY == 0:
                    ctx.check_cancelled()
                room = budget - 1  # every document is followed by a newline, inside the budget
                if room > 0 and doc.text:
                    data = doc.text.encode("utf-8")
                    if len(data) > room:
                        # Cut at the budget; errors="ignore" drops a character split in the middle.
                        data = data[:room].decode("utf-8", errors="ignore").encode("utf-8")
                    f.write(data + b"\n")
                    budget -= len(data) + 1
                    self.stats.extra["tokenizer_sample_bytes"] += len(data)
                yield doc

    def reduce(self, ctx: GlobalContext) -> None:
        out = self.params.output or uris.join(ctx.output_uri, "tokenizer")
        if self.params.from_uri is not None:
            loaded = copy_tokenizer_dir(ctx.storage, self.params.from_uri, out, field="from_uri")
        else:
            texts = _iter_samples(ctx.storage, ctx.shard_scratch_uris, ctx)
            tokenizer = train_bpe_tokenizer(texts, self.params)
            save_hf_tokenizer(tokenizer, ctx.storage, out, self.params)
            loaded = load_hf_tokenizer(ctx.storage, out, field="output")
        ctx.add_output("tokenizer", loaded.uri, loaded.describe())

    def apply(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        for doc in docs:
            self.stats.docs_in += 1
            self.stats.docs_out += 1
            yield doc


def _iter_samples(storage: Storage, scratch_uris: list[str], ctx: GlobalContext) -> Iterator[str]:
    for scratch in scratch_uris:
        ctx.check_cancelled()
        with storage.open_read(uris.join(scratch, SAMPLE_FILE)) as raw:
            # Decoded by hand, not with TextIOWrapper: an S3 body is not a buffered stream, and "\r\n"
            # must reach the trainer as written. Chunks end at a newline so no word is cut in two.
            decoder = codecs.getincrementaldecoder("utf-8")()
            carry = ""
            while chunk := raw.read(_READ_CHUNK):
                text = carry + decoder.decode(chunk)
                cut = text.rfind("\n") + 1
                if cut:
                    yield text[:cut]
                carry = text[cut:]
            carry += decoder.decode(b"", final=True)
            if carry:
                yield carry
