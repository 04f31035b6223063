"""Every size and time limit of the GPU check in one place: the full check (about 6 minutes on one H100,
8 at most) and the smoke (the same code at tiny sizes, on the CPU, inside the test suite)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Random-weight Llama shapes (timing and memory do not depend on the values of the weights).
SHAPES: dict[str, dict[str, int]] = {
    "llama-2-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32),
    # TinyLlama-1.1B's shape: the "~1B Llama" of the training and generation parts.
    "llama-1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                     num_attention_heads=32, num_key_value_heads=4),
    "small": dict(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4),
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2),
}

PART_NAMES = ("environment", "scoring", "cam", "training", "packing", "fsdp", "deepspeed", "generation")


@dataclass(frozen=True)
class Sizes:
    """What each part runs on. Lengths are tokens; limits are seconds of wall time per part."""

    score_shape: str = "llama-2-7b"
    score_samples: int = 8
    score_lengths: tuple[int, int] = (16384, 32768)
    score_batch_tokens: int = 65536
    cam_shape: str = "llama-2-7b"
    cam_tokens: int = 32768
    cam_slice: int = 2048
    segment_tokens: int = 128
    train_shape: str = "llama-1b"
    train_samples: int = 24
    train_lengths: tuple[int, int] = (1024, 16384)
    train_row: int = 16384  # packed row = the longest sample
    train_micro: int = 2  # samples (naive, sorted) or packed rows per micro-batch
    pack_shape: str = "small"
    pack_lengths: tuple[int, int] = (256, 3072)
    pack_row: int = 8192
    launch_shape: str = "small"
    launch_samples: int = 48
    launch_lengths: tuple[int, int] = (256, 2048)
    launch_steps: int = 5
    gen_shape: str = "llama-1b"
    gen_prompts: int = 8
    gen_lengths: tuple[int, int] = (7168, 8192)
    gen_new: int = 64
    gen_equal_new: int = 16  # new tokens of the fp32 equality run
    # FlexAttention in the environment part too (the smoke leaves it to the packing part: compiling it
    # for the CPU costs ~20 s of the smoke's 2 minutes each time).
    env_flex: bool = True
    # DeepSpeed on a CPU first compiles its shared-memory communication op (about 2 minutes here).
    deepspeed_on_cpu: bool = True
    budget_s: float = 470.0  # the whole check; a part gets at most what is left
    limits: dict[str, float] = field(default_factory=lambda: {
        # FlexAttention's first compile for the GPU (environment, packing) can take most of a minute.
        "environment": 90, "scoring": 150, "cam": 90, "training": 150, "packing": 120, "fsdp": 90,
        "deepspeed": 120, "generation": 90})


FULL = Sizes()

SMOKE = replace(
    FULL,
    score_shape="tiny", score_samples=3, score_lengths=(96, 192), score_batch_tokens=512,
    cam_shape="tiny", cam_tokens=384, cam_slice=160, segment_tokens=16,
    train_shape="tiny", train_samples=8, train_lengths=(16, 128), train_row=128,
    pack_shape="tiny", pack_lengths=(8, 48), pack_row=128,
    launch_shape="tiny", launch_samples=16, launch_lengths=(8, 48),
    gen_shape="tiny", gen_prompts=4, gen_lengths=(40, 64), gen_new=8, gen_equal_new=8, env_flex=False,
    deepspeed_on_cpu=False,
    budget_s=240.0,
    limits={name: 90.0 for name in PART_NAMES},
)
