"""The data ingest core: documents flow through pipeline steps (datatrove style), no gRPC inside.

``document``      the record that flows
``step``          the ``PipelineStep`` contract, its counters, and the per-shard context
``steps/``        readers, extraction, normalization, language id, filters, scoring, safety, writers
``dedup/``        exact, MinHash-LSH and sentence-level deduplication (global steps)
``tokenization/`` tokenizer training, tokenization and packing into token shards + the dataset manifest
``spec``          the typed pipeline spec (YAML/JSON) and its validation
``executor/``     running a spec over shards: local processes or Ray, resumable
"""
