"""The parts of the GPU check, in the order they run (the issue's order: cheap and informative first)."""

from __future__ import annotations

from gpu import environment, generation, launch, scoring, training
from gpu.runner import Part

PARTS = [
    Part("environment", environment.run, "GPU, memory, versions; which attention implementations load and run"),
    Part("scoring", scoring.run_scoring, "scoring engine vs per-sample full-logit reference: throughput, MFU, "
                                         "memory, NLL difference"),
    Part("cam", scoring.run_cam, "CAM segment attention at full length: peak memory; equality with eager "
                                 "output_attentions on a slice"),
    Part("training", training.run_training, "naive vs sorted vs packed training: tokens/s, MFU, memory"),
    Part("packing", training.run_packing, "packed rows equal separate samples (logits, loss): sdpa, "
                                          "flex_attention, flash_attention_2"),
    Part("fsdp", launch.run_fsdp, "5 steps of `longcurate train fit` under torchrun with FSDP"),
    Part("deepspeed", launch.run_deepspeed, "5 steps of `longcurate train fit` under torchrun with DeepSpeed "
                                            "ZeRO-2"),
    Part("generation", generation.run, "hf backend: batched vs one-at-a-time greedy generation, tokens/s, "
                                       "equality"),
]
