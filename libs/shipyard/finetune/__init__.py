"""Finetuning data: formats, chat templates, assistant-only labels, packing, validation split.

A pure core (no Ray, no gRPC, no torch at import time): the trainer calls ``load_finetune_data`` to turn a
dataset URI into tokenized train/validation examples, then ``pack`` and ``collate`` to build batches.

    data = load_finetune_data(storage, "s3://b/chat.jsonl", tokenizer, max_len=1024)
    rows = pack(data.train, seq_len=1024)
    batch = collate(rows[:8], pad_id=tokenizer.pad_token_id)   # model(**batch) keeps examples apart
"""

from __future__ import annotations

from shipyard.finetune.dataset import (
    BadRecord,
    BadRecordPolicy,
    DataReport,
    FinetuneData,
    load_finetune_data,
    read_records,
)
from shipyard.finetune.encode import IGNORE_INDEX, EncodedExample, encode_conversation, encode_text
from shipyard.finetune.formats import (
    Conversation,
    DataFormat,
    InvalidRecord,
    Message,
    PlainText,
    PreferencePair,
    detect_format,
    parse_record,
)
from shipyard.finetune.packing import PackedRow, collate, pack
from shipyard.finetune.preference import EncodedPair, encode_pair
from shipyard.finetune.templates import (
    BUNDLED_TEMPLATES,
    ChatTemplate,
    missing_control_tokens,
    resolve_template,
)

__all__ = [
    "BUNDLED_TEMPLATES",
    "IGNORE_INDEX",
    "BadRecord",
    "BadRecordPolicy",
    "ChatTemplate",
    "Conversation",
    "DataFormat",
    "DataReport",
    "EncodedExample",
    "EncodedPair",
    "FinetuneData",
    "InvalidRecord",
    "Message",
    "PackedRow",
    "PlainText",
    "PreferencePair",
    "collate",
    "detect_format",
    "encode_conversation",
    "encode_pair",
    "encode_text",
    "load_finetune_data",
    "missing_control_tokens",
    "pack",
    "parse_record",
    "read_records",
    "resolve_template",
]
