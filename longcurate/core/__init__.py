"""Shared plumbing every stage uses: records, JSONL I/O, config, model loading, prompts."""
