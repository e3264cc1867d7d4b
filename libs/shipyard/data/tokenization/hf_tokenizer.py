"""Reading Hugging Face tokenizer directories (ours or a published one such as Mistral's) through ``Storage``.

A tokenizer directory holds ``tokenizer.json`` (the ``tokenizers`` model) plus ``tokenizer_config.json``
and ``special_tokens_map.json``, which name the BOS/EOS/UNK/PAD tokens; with those three files
``transformers.AutoTokenizer.from_pretrained(dir)`` loads it offline. ``tokenizer.json`` is parsed from
memory (``Tokenizer.from_str``), so a directory on S3 needs no temporary download.

The directory may live on a different backend than the job (a local published tokenizer used by a
job writing to S3): local paths are then read with ``LocalStorage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.storage.local import LocalStorage

try:
    from tokenizers import Tokenizer
except ImportError as exc:  # checked once at import so a spec using these steps fails before any work
    raise FailedPrecondition(
        "tokenizer steps need the 'tokenizers' package: pip install 'shipyard[data]'"
    ) from exc

__all__ = [
    "CONFIG_FILE",
    "SPECIAL_MAP_FILE",
    "TOKENIZER_FILE",
    "LoadedTokenizer",
    "SpecialTokens",
    "copy_tokenizer_dir",
    "load_hf_tokenizer",
    "load_tokenizer",
]

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_MAP_FILE = "special_tokens_map.json"


@dataclass(frozen=True)
class SpecialTokens:
    """The strings playing each special role (``None`` when the tokenizer has no such token)."""

    bos: str | None = None
    eos: str | None = None
    unk: str | None = None
    pad: str | None = None


@dataclass(frozen=True)
class LoadedTokenizer:
    """A tokenizer read from a directory, with its special tokens resolved to ids."""

    uri: str
    tokenizer: Tokenizer
    special: SpecialTokens
    model_type: str

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.tokenizer.token_to_id(token)

    def describe(self) -> dict[str, Any]:
        """What the dataset manifest records about the tokenizer (``TokenizerRef`` fields)."""
        return {
            "vocab_size": self.vocab_size,
            "type": self.model_type,
            "bos_id": self.token_id(self.special.bos),
            "eos_id": self.token_id(self.special.eos),
            "pad_id": self.token_id(self.special.pad),
            "unk_id": self.token_id(self.special.unk),
        }


def load_tokenizer(storage: Storage, dir_uri: str) -> Tokenizer:
    """The ``tokenizers.Tokenizer`` of the HF tokenizer directory at ``dir_uri``."""
    return load_hf_tokenizer(storage, dir_uri).tokenizer


def load_hf_tokenizer(storage: Storage, dir_uri: str, *, field: str = "tokenizer_uri") -> LoadedTokenizer:
    """Read and validate the tokenizer directory at ``dir_uri``; errors name ``field``."""
    source = _storage_for(storage, dir_uri, field)
    dir_uri = uris.normalize(dir_uri, field=field)
    try:
        text = source.read_text(uris.join(dir_uri, TOKENIZER_FILE))
    except NotFound as exc:
        raise NotFound(f"{field}: no {TOKENIZER_FILE} under {dir_uri} (not a tokenizer directory)") from exc
    try:
        tokenizer = Tokenizer.from_str(text)
        model_type = str(json.loads(text)["model"]["type"]).lower()
    except Exception as exc:  # the Rust parser raises a bare Exception with the serde message
        raise InvalidArgument.field(field, f"{dir_uri}/{TOKENIZER_FILE} is not a tokenizer: {exc}") from exc
    special = _read_special_tokens(source, dir_uri, field)
    for role, token in vars(special).items():
        if token is not None and tokenizer.token_to_id(token) is None:
            raise InvalidArgument.field(
                field, f"{dir_uri}: {role}_token {token!r} is not in the tokenizer's vocabulary"
            )
    return LoadedTokenizer(uri=dir_uri, tokenizer=tokenizer, special=special, model_type=model_type)


def copy_tokenizer_dir(storage: Storage, src_uri: str, dst_uri: str, *, field: str) -> LoadedTokenizer:
    """Validate the tokenizer at ``src_uri`` and copy every file of its directory to ``dst_uri``."""
    load_hf_tokenizer(storage, src_uri, field=field)
    source = _storage_for(storage, src_uri, field)
    src_root = uris.normalize(src_uri, field=field).rstrip("/") + "/"
    for obj in source.list(src_root):
        if not obj.uri.startswith(src_root):  # an S3 prefix listing may include siblings ("tok2/...")
            continue
        target = uris.join(dst_uri, obj.uri[len(src_root) :])
        with source.open_read(obj.uri) as fin, storage.open_write(target) as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
    return load_hf_tokenizer(storage, dst_uri, field=field)


def _storage_for(storage: Storage, uri: str, field: str) -> Storage:
    # A published tokenizer on local disk stays readable when the job's storage is S3 only; any other
    # combination is the job storage's to resolve (or reject with its own message).
    scheme = uris.parse(uri, field=field).scheme
    if scheme == "file" and storage.scheme not in ("file", "*"):
        return LocalStorage()
    return storage


def _read_special_tokens(storage: Storage, dir_uri: str, field: str) -> SpecialTokens:
    # tokenizer_config.json wins (transformers reads it first); special_tokens_map.json fills the gaps.
    found: dict[str, str | None] = {}
    for name in (CONFIG_FILE, SPECIAL_MAP_FILE):
        uri = uris.join(dir_uri, name)
        if not storage.exists(uri):
            continue
        try:
            config = json.loads(storage.read_text(uri))
        except ValueError as exc:
            raise InvalidArgument.field(field, f"{uri} is not valid JSON: {exc}") from exc
        for role in ("bos", "eos", "unk", "pad"):
            if role not in found and f"{role}_token" in config:
                found[role] = _token_content(config[f"{role}_token"])
    return SpecialTokens(**found)


def _token_content(value: Any) -> str | None:
    # Either a plain string or an AddedToken dict {"content": "<s>", "lstrip": false, ...}.
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None
