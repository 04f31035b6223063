"""train: mixtures, tokenization, sorted batching / packing, long-context SFT."""
