"""The paged forward pass of a Llama-family decoder (Llama, Mistral, Qwen2) over one engine step.

All chunks' tokens are flattened into one ragged batch, so embeddings, norms, projections and the MLP
run once for every sequence together; only attention is per sequence. Attention reads K/V from the
paged cache by slot: a prefill chunk that starts at position 0 attends over its own fresh K/V with a
causal mask; a chunk that continues a cached prefix (chunked prefill, prefix-cache hit) gathers its
prefix from the cache with an offset causal mask; all one-token chunks (decode, the hot path) attend
together over the ``DecodeKVView`` (each sequence's K/V contiguous in a row, so only the new token is
copied per step), by two batched matmuls; int8 caches, or a view over its memory cap, gather the padded
contexts from the paged cache instead.

Numerics follow the HF modules: we call the model's own RMSNorm, rotary embedding, activation and
linear modules (quantized or not), so fp32 greedy output matches ``generate()`` token for token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from shipyard.engine.batch import ModelInput
from shipyard.engine.kv_cache import DecodeKVView, DecodeLayout, PagedKVCache
from shipyard.engine.lora import LoraSet
from shipyard.errors import InvalidArgument

__all__ = ["DecodeChunks", "PagedDecoder", "StepPlan", "plan_step"]


@dataclass(frozen=True)
class PrefillSpan:
    begin: int  # rows [begin, end) of the flattened batch
    end: int
    read_slots: torch.Tensor | None  # [start_pos + n] cache slots; None = attend over the fresh K/V only
    mask: torch.Tensor | None  # [n, start_pos + n] causal mask offset by start_pos


@dataclass(frozen=True)
class DecodeChunks:
    """The step's one-token chunks: their rows of the batch, and what locates their context."""

    rows: torch.Tensor  # [B] rows of the flattened batch
    seq_ids: list[int]
    block_tables: list[list[int]]
    lengths: list[int]  # context lengths, the new token included


@dataclass(frozen=True)
class StepPlan:
    """Index tensors of one step, built once and shared by every layer."""

    token_ids: torch.Tensor  # [T]
    positions: torch.Tensor  # [T]
    write_slots: torch.Tensor  # [T]
    prefills: list[PrefillSpan]
    decodes: DecodeChunks | None  # the one-token chunks, attended together
    logit_rows: torch.Tensor  # [n] last rows of the chunks with needs_logits, every row of all_logits ones
    lora_groups: dict[str, torch.Tensor | None]  # adapter -> its rows (None = every row)


def plan_step(
    batch: ModelInput,
    *,
    block_size: int,
    num_blocks: int,
    vocab_size: int,
    max_model_len: int,
    device: torch.device,
) -> StepPlan:
    """Validate ``batch`` against the cache and model, and build its index tensors on ``device``."""
    if not batch.chunks:
        raise InvalidArgument.field("chunks", "a step needs at least one chunk")
    ids: list[int] = []
    positions: list[int] = []
    write_slots: list[int] = []
    prefills: list[PrefillSpan] = []
    decode_rows: list[int] = []
    decode_ids: list[int] = []
    decode_tables: list[list[int]] = []
    decode_lengths: list[int] = []
    logit_rows: list[int] = []
    adapter_rows: dict[str | None, list[int]] = {}
    for index, chunk in enumerate(batch.chunks):
        n, start, table = len(chunk.token_ids), chunk.start_pos, chunk.block_table
        end_pos = start + n
        _check_chunk(index, table, n, start, end_pos, block_size, num_blocks, max_model_len)
        begin = len(ids)
        ids.extend(chunk.token_ids)
        positions.extend(range(start, end_pos))
        if n == 1:  # the hot path: plain ints, no per-sequence tensors
            write_slots.append(table[start // block_size] * block_size + start % block_size)
            decode_rows.append(begin)
            decode_ids.append(chunk.seq_id)
            decode_tables.append(table)
            decode_lengths.append(end_pos)
        else:
            context = torch.arange(end_pos)
            slots = torch.tensor(table, dtype=torch.long)[context // block_size] * block_size
            slots += context % block_size
            write_slots.extend(slots[start:].tolist())
            if start == 0:
                prefills.append(PrefillSpan(begin, begin + n, None, None))
            else:
                mask = context[None, :] <= context[start:, None]
                prefills.append(PrefillSpan(begin, begin + n, slots.to(device), mask.to(device)))
        if chunk.all_logits:
            logit_rows.extend(range(begin, begin + n))
        elif chunk.needs_logits:
            logit_rows.append(begin + n - 1)
        adapter_rows.setdefault(chunk.adapter, []).extend(range(begin, begin + n))
    token_ids = torch.tensor(ids, dtype=torch.long)
    if int(token_ids.min()) < 0 or int(token_ids.max()) >= vocab_size:
        raise InvalidArgument.field("chunks.token_ids", f"token ids must be in [0, {vocab_size})")
    groups = {
        name: None if len(rows) == len(ids) else torch.tensor(rows, device=device)
        for name, rows in adapter_rows.items()
        if name is not None
    }
    decodes = None
    if decode_rows:
        drows = torch.tensor(decode_rows, dtype=torch.long, device=device)
        decodes = DecodeChunks(drows, decode_ids, decode_tables, decode_lengths)
    return StepPlan(
        token_ids=token_ids.to(device),
        positions=torch.tensor(positions, dtype=torch.long, device=device),
        write_slots=torch.tensor(write_slots, dtype=torch.long, device=device),
        prefills=prefills,
        decodes=decodes,
        logit_rows=torch.tensor(logit_rows, dtype=torch.long, device=device),
        lora_groups=groups,
    )


def _check_chunk(
    index: int,
    table: list[int],
    n: int,
    start: int,
    end_pos: int,
    block_size: int,
    num_blocks: int,
    max_len: int,
) -> None:
    where = f"chunks[{index}]"
    if n == 0 or start < 0:
        raise InvalidArgument.field(where, "a chunk needs at least one token and start_pos >= 0")
    if end_pos > max_len:
        raise InvalidArgument.field(where, f"reaches position {end_pos}, beyond max_model_len {max_len}")
    if len(table) * block_size < end_pos:
        raise InvalidArgument.field(
            f"{where}.block_table", f"{len(table)} blocks of {block_size} cannot hold {end_pos} positions"
        )
    if table and (min(table) < 0 or max(table) >= num_blocks):
        raise InvalidArgument.field(f"{where}.block_table", f"block ids must be in [0, {num_blocks})")


def _gather_layout(decodes: DecodeChunks, block_size: int, device: torch.device) -> _GatherLayout:
    """Context slots of the one-token chunks, padded to the longest; pads repeat a sequence's last slot."""
    tables, lengths = decodes.block_tables, decodes.lengths
    width = max(len(t) for t in tables)
    padded = torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.long)
    length = torch.tensor(lengths, dtype=torch.long)[:, None]
    grid = torch.arange(max(lengths))[None, :]
    clamped = torch.minimum(grid, length - 1)
    slots = padded.gather(1, clamped // block_size) * block_size + clamped % block_size
    mask = (grid < length)[:, None, None, :]
    return _GatherLayout(slots.to(device), mask.to(device))


@dataclass(frozen=True)
class _GatherLayout:
    """Decode context read from the paged cache itself (int8 caches, or a view over its memory cap)."""

    slots: torch.Tensor  # [B, L]
    mask: torch.Tensor  # [B, 1, 1, L] True where a key is inside the sequence


class PagedDecoder:
    """A HF Llama-family ``*ForCausalLM``'s modules, run over the paged cache (see module doc)."""

    def __init__(
        self, model: torch.nn.Module, cache: PagedKVCache, loras: LoraSet, *, max_num_seqs: int | None = None
    ) -> None:
        config = model.config
        self.model, self.cache, self.loras = model, cache, loras
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.scaling = self.head_dim**-0.5
        # The view may take as much memory as the paged cache beside it, never more.
        self.view = None if cache.int8 else DecodeKVView(cache, max_bytes=cache.nbytes, max_rows=max_num_seqs)

    @torch.inference_mode()
    def forward(self, plan: StepPlan) -> torch.Tensor:
        """float32 logits ``[len(plan.logit_rows), vocab]``."""
        layout = self._decode_layout(plan)
        try:
            return self._forward(plan, layout)
        except BaseException:
            if self.view is not None:
                self.view.reset()  # rows may be half written
            raise

    def _decode_layout(self, plan: StepPlan) -> DecodeLayout | _GatherLayout | None:
        decodes = plan.decodes
        if decodes is None:
            if self.view is not None:
                self.view.reset()  # nothing decodes: every row would be dropped anyway
            return None
        if self.view is not None:
            layout = self.view.prepare(decodes.seq_ids, decodes.block_tables, decodes.lengths)
            if layout is not None:
                return layout
        return _gather_layout(decodes, self.cache.block_size, plan.token_ids.device)

    def _forward(self, plan: StepPlan, layout: DecodeLayout | _GatherLayout | None) -> torch.Tensor:
        base = self.model.model
        hidden = base.embed_tokens(plan.token_ids)
        cos, sin = base.rotary_emb(hidden[None], plan.positions[None])
        cos, sin = cos[0], sin[0]
        tokens = hidden.shape[0]
        for index, layer in enumerate(base.layers):
            attn, mlp = layer.self_attn, layer.mlp
            x = layer.input_layernorm(hidden)
            q = self._proj(index, "q_proj", attn.q_proj, x, plan).view(tokens, self.num_heads, self.head_dim)
            k = self._proj(index, "k_proj", attn.k_proj, x, plan).view(
                tokens, self.num_kv_heads, self.head_dim
            )
            v = self._proj(index, "v_proj", attn.v_proj, x, plan).view(
                tokens, self.num_kv_heads, self.head_dim
            )
            q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
            self.cache.write(index, plan.write_slots, k, v)
            context = self._attention(index, plan, layout, q, k, v).view(tokens, -1)
            hidden = hidden + self._proj(index, "o_proj", attn.o_proj, context, plan)
            x = layer.post_attention_layernorm(hidden)
            gate = self._proj(index, "gate_proj", mlp.gate_proj, x, plan)
            up = self._proj(index, "up_proj", mlp.up_proj, x, plan)
            hidden = hidden + self._proj(index, "down_proj", mlp.down_proj, mlp.act_fn(gate) * up, plan)
        last = base.norm(hidden[plan.logit_rows])
        return self.model.lm_head(last).float()

    def _proj(
        self, layer: int, name: str, module: torch.nn.Module, x: torch.Tensor, plan: StepPlan
    ) -> torch.Tensor:
        out = module(x)
        return self.loras.apply(layer, name, x, out, plan.lora_groups) if plan.lora_groups else out

    def _attention(
        self,
        layer: int,
        plan: StepPlan,
        layout: DecodeLayout | _GatherLayout | None,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
    ) -> torch.Tensor:
        if plan.decodes is not None and len(plan.decodes.rows) == q.shape[0]:
            return self._decode_attention(layer, layout, q, k, v)  # a pure decode step
        out = torch.empty_like(q)
        for span in plan.prefills:
            query = q[span.begin : span.end].transpose(0, 1)[None]
            if span.read_slots is None:
                key, value = k[span.begin : span.end], v[span.begin : span.end]
            else:
                key, value = self.cache.read(layer, span.read_slots)
            attended = F.scaled_dot_product_attention(
                query,
                key.transpose(0, 1)[None],
                value.transpose(0, 1)[None],
                attn_mask=span.mask,
                is_causal=span.mask is None,
                scale=self.scaling,
                enable_gqa=True,
            )
            out[span.begin : span.end] = attended[0].transpose(0, 1)
        if plan.decodes is not None:
            rows = plan.decodes.rows
            out[rows] = self._decode_attention(layer, layout, q[rows], k[rows], v[rows])
        return out

    def _decode_attention(
        self,
        layer: int,
        layout: DecodeLayout | _GatherLayout | None,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
    ) -> torch.Tensor:
        """``[B, heads, head_dim]`` attention output of the one-token chunks' queries ``q``."""
        if isinstance(layout, _GatherLayout):
            key, value = self.cache.read(layer, layout.slots)
            attended = F.scaled_dot_product_attention(
                q[:, :, None, :],
                key.transpose(1, 2),
                value.transpose(1, 2),
                attn_mask=layout.mask,
                scale=self.scaling,
                enable_gqa=True,
            )
            return attended[:, :, 0, :]
        assert isinstance(layout, DecodeLayout) and self.view is not None
        self.view.write(layer, layout, k, v)
        key, value = self.view.keys_values(layer, layout)
        batch, group = q.shape[0], self.num_heads // self.num_kv_heads
        # Query heads sharing a KV head (HF's repeat_kv order) become that head's query rows, so
        # grouped-query attention needs no copy of the keys per query head; plain matmuls over the
        # view's strided rows beat SDPA's kernel for so few queries (measured on CPU).
        grouped = q.view(batch, self.num_kv_heads, group, self.head_dim)
        if not layout.in_order:
            scattered = q.new_zeros(layout.num_rows, self.num_kv_heads, group, self.head_dim)
            scattered[layout.rows] = grouped
            grouped = scattered
        scores = torch.matmul(grouped, key.transpose(-1, -2))
        scores.mul_(self.scaling).add_(layout.bias)
        attended = torch.matmul(scores.softmax(dim=-1), value)
        if not layout.in_order:
            attended = attended[layout.rows]
        return attended.reshape(batch, self.num_heads, self.head_dim)
