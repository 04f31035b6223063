"""longcurate: curate long-context instruction data (IN2 synthesis, GATEAU selection, SFT, evaluation)."""

__version__ = "0.1.0"
