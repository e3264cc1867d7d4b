"""Names a pipeline spec may use for steps, mapped to their classes.

Classes are imported lazily (``module:Class``) so that validating a spec that does not use, say, HTML
extraction never imports trafilatura. Adding a step = writing its class and adding one line here.
"""

from __future__ import annotations

import difflib
import importlib

from shipyard.data.step import PipelineStep
from shipyard.errors import InvalidArgument

STEPS: dict[str, str] = {
    "html_extract": "shipyard.data.steps.extraction:HtmlExtract",
    "normalize": "shipyard.data.steps.normalize:Normalize",
    "language_id": "shipyard.data.steps.language:LanguageId",
    "gopher_repetition": "shipyard.data.steps.quality:GopherRepetitionFilter",
    "gopher_quality": "shipyard.data.steps.quality:GopherQualityFilter",
    "c4_lines": "shipyard.data.steps.quality:C4LineFilter",
    "length": "shipyard.data.steps.quality:LengthFilter",
    "quality_score": "shipyard.data.steps.scoring:QualityScore",
    "unsafe_content": "shipyard.data.steps.safety:UnsafeContentFilter",
    "pii_redact": "shipyard.data.steps.safety:PiiRedact",
    "exact_dedup": "shipyard.data.dedup.exact:ExactDedup",
    "minhash_dedup": "shipyard.data.dedup.minhash:MinHashDedup",
    "sentence_dedup": "shipyard.data.dedup.sentence:SentenceDedup",
    "train_tokenizer": "shipyard.data.tokenization.train:TrainTokenizer",
    "tokenize": "shipyard.data.tokenization.pack:Tokenize",
}


def step_class(name: str, *, field: str = "type") -> type[PipelineStep]:
    """The class registered under ``name``; unknown names raise ``InvalidArgument`` listing choices."""
    target = STEPS.get(name)
    if target is None:
        close = difflib.get_close_matches(name, STEPS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidArgument.field(
            field, f"unknown step {name!r}{hint}; valid steps: {', '.join(sorted(STEPS))}"
        )
    module_name, cls_name = target.split(":")
    cls: type[PipelineStep] = getattr(importlib.import_module(module_name), cls_name)
    return cls
