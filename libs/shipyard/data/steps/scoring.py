"""``QualityScore``: a per-document quality score from a character n-gram model of reference text.

The model (``char_lm.CharNgramModel``) is trained on the documents at ``reference_uris`` (read with the
ordinary input readers, so any supported format works), holding out every 10th document to measure
the reference perplexity ``ppl_ref`` of "good" text. A document's score is

    quality_score = min(1, ppl_ref / ppl(document))

so text as predictable as the reference scores ~1, text twice as surprising 0.5, and character soup
close to 0. The reference must be in the language(s) being scored: other scripts score ~0.

Trained models are cached per process, keyed by the reference URIs and model settings, so a worker
that processes many shards trains once.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator

from pydantic import Field, field_validator

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams
from shipyard.data.steps.char_lm import CharNgramModel
from shipyard.data.steps.readers import InputSpec, make_reader
from shipyard.errors import InvalidArgument
from shipyard.storage import normalize

__all__ = ["QualityScore", "ReferenceModel", "reference_model"]

_HOLDOUT_EVERY = 10


class ReferenceModel:
    """A trained model and the perplexity it gives held-out reference text."""

    def __init__(self, model: CharNgramModel, reference_perplexity: float) -> None:
        self.model = model
        self.reference_perplexity = reference_perplexity

    def score(self, text: str) -> tuple[float, float]:
        """(score in [0, 1], perplexity) of ``text``."""
        ppl = self.model.perplexity(text)
        if not math.isfinite(ppl) or ppl <= 0:
            return 0.0, ppl
        return min(1.0, self.reference_perplexity / ppl), ppl


_CACHE: dict[tuple[object, ...], ReferenceModel] = {}
_CACHE_LOCK = threading.Lock()


def reference_model(params: QualityScore.Params, ctx: ShardContext) -> ReferenceModel:
    """The model for ``params`` (trained on first use in this process, then reused)."""
    key = (tuple(params.reference_uris), params.order, params.buckets_log2, params.max_reference_chars)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            cached = _CACHE[key] = _train(params, ctx)
        return cached


def _reference_texts(params: QualityScore.Params, ctx: ShardContext) -> list[str]:
    texts: list[str] = []
    budget = params.max_reference_chars
    for i, uri in enumerate(params.reference_uris):
        reader = make_reader(InputSpec(uri=uri), field=f"reference_uris[{i}]")
        for shard in reader.shards(ctx.storage):
            for doc in reader.read(shard, ctx):
                texts.append(doc.text[:budget])
                budget -= len(texts[-1])
                if budget <= 0:
                    return texts
    return texts


def _train(params: QualityScore.Params, ctx: ShardContext) -> ReferenceModel:
    texts = _reference_texts(params, ctx)
    held_out = texts[::_HOLDOUT_EVERY] if len(texts) >= _HOLDOUT_EVERY else []
    train = [t for i, t in enumerate(texts) if i % _HOLDOUT_EVERY != 0] if held_out else texts
    if not train:
        raise InvalidArgument.field("reference_uris", "the reference corpus holds no text")
    model = CharNgramModel(order=params.order, buckets_log2=params.buckets_log2).train(train)
    if held_out:
        log_probs = [model.log_probs(t) for t in held_out]
        total = sum(len(lp) for lp in log_probs)
        ppl = math.exp(-sum(float(lp.sum()) for lp in log_probs) / total)
    else:
        # Too little text to hold any out: in-sample perplexity (optimistic, so scores come out lower).
        ppl = math.exp(-sum(float(model.log_probs(t).sum()) for t in train) / sum(len(t) for t in train))
    return ReferenceModel(model, ppl)


class QualityScore(PipelineStep):
    """Write ``metadata.quality_score`` (and ``perplexity``); drop below ``threshold``."""

    name = "quality_score"

    class Params(StepParams):
        reference_uris: list[str] = Field(min_length=1, description="files/directories of good text")
        threshold: float = Field(0.0, ge=0.0, le=1.0, description="drop documents scoring below this")
        order: int = Field(4, ge=1, le=8, description="n-gram order (characters)")
        buckets_log2: int = Field(20, ge=12, le=26, description="hash slots per order, as a power of two")
        max_reference_chars: int = Field(20_000_000, ge=1000, description="cap on reference text used")
        max_chars: int = Field(20_000, ge=100, description="score only this many leading characters")

        @field_validator("reference_uris")
        @classmethod
        def _uris(cls, v: list[str]) -> list[str]:
            out = []
            for uri in v:
                try:
                    out.append(normalize(uri))
                except InvalidArgument as exc:
                    raise ValueError(str(exc)) from exc
            return out

    params: Params

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        ref = reference_model(self.params, ctx)
        for doc in docs:
            self.stats.docs_in += 1
            score, ppl = ref.score(doc.text[: self.params.max_chars])
            doc.metadata["quality_score"] = round(score, 4)
            doc.metadata["perplexity"] = round(ppl, 3) if math.isfinite(ppl) else None
            if score < self.params.threshold:
                self.stats.drop("low_quality_score")
                continue
            self.stats.docs_out += 1
            yield doc
