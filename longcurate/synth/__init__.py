"""synth: IN2-style long-context QA data (FILM): corpus -> segments -> QA -> long contexts."""
