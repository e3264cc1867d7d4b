"""A tiny, randomly initialised Llama saved as an HF directory, for backend tests (no Ray, no hub).

The tokenizer is trained by the ingest pipeline's own ``train_bpe_tokenizer`` on a slice of Tiny
Shakespeare, and the model comes from the ``llama-tiny`` preset shrunk to 2 layers of width 64, so the
directory looks exactly like what the training service exports, and loads in well under a second.
"""

from __future__ import annotations

import pathlib

from shipyard.data.tokenization.train import TrainTokenizerParams, save_hf_tokenizer, train_bpe_tokenizer
from shipyard.storage import LocalStorage, from_local_path
from shipyard.training.presets import build_config, get_preset

TINY_OVERRIDES = {
    "hiddenSize": 64,
    "numHiddenLayers": 2,
    "numAttentionHeads": 4,
    "numKeyValueHeads": 2,
    "intermediateSize": 128,
}


def build_tiny_model(shared_data: pathlib.Path, out: pathlib.Path, *, seq_len: int = 256) -> pathlib.Path:
    """Write a tokenizer + tiny Llama into ``out`` (a directory ``from_pretrained`` loads) and return it."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    text = (shared_data / "corpus/tinyshakespeare/input.txt").read_text()[:60_000]
    params = TrainTokenizerParams(vocab_size=400, model_max_length=seq_len)
    tokenizer = train_bpe_tokenizer(text.split("\n\n"), params)
    save_hf_tokenizer(tokenizer, LocalStorage(), from_local_path(out), params)
    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    config = build_config(
        get_preset("llama-tiny"),
        vocab_size=hf_tok.vocab_size,
        seq_len=seq_len,
        bos_id=hf_tok.bos_token_id,
        eos_id=hf_tok.eos_token_id,
        pad_id=hf_tok.pad_token_id,
        overrides=TINY_OVERRIDES,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    return out
