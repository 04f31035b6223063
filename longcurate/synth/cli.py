"""`longcurate synth run` (make IN2 samples) and `longcurate synth report FILE` (describe a samples file).

    longcurate synth run --num-samples 200 --min-tokens 1024 --max-tokens 4096
    longcurate synth run --config configs/demo.yaml --heldout-samples 40
    longcurate synth run --config configs/demo.yaml --corpus data/my_corpus.jsonl synth.corpus.text_field=body
    longcurate synth run --config configs/paper-7b.yaml --retry-failed
    longcurate synth report runs/default/samples.jsonl
    longcurate synth report --config configs/demo.yaml       # the run's samples file
"""

from __future__ import annotations

import argparse

from longcurate.core.cli import add_config_args, add_flag, add_switch, resolve_config


def _cmd_run(args: argparse.Namespace) -> int:
    from longcurate.core.runner import raise_if_incomplete
    from longcurate.synth.stage import run_stage

    raise_if_incomplete(run_stage(resolve_config(args), progress=not args.no_progress), "synth")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from longcurate.synth.report import report

    print(report(args.file or resolve_config(args).layout().samples))
    return 0


def register(sub) -> None:
    p = sub.add_parser("synth", help="synthesize IN2 long-context QA samples (corpus -> segments -> QA -> contexts)",
                       description="Synthesize IN2 samples, or describe a samples file.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _register_run(verbs)
    r = verbs.add_parser("report", help="describe a samples file",
                         description="Counts by kind and generator, length deciles and histogram, "
                                     "gold-position histogram.")
    r.add_argument("file", metavar="FILE", nargs="?", default=None,
                   help="a samples .jsonl written by longcurate synth run (default: the run's, "
                        "<output_dir>/samples.jsonl or synth.output)")
    add_config_args(r)
    r.set_defaults(func=_cmd_report)


def _register_run(verbs) -> None:
    p = verbs.add_parser(
        "run", help="write the samples (resumable: a re-run continues, or does nothing)",
        description="Synthesize IN2 samples: questions over one ~128-token segment, or (multi-hop) over several "
                    "segments of one document, placed at random positions in long contexts of unrelated filler. "
                    "Resumable: a re-run continues (or does nothing); samples the endpoint could not answer stay "
                    "pending for the next run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every config key can be set as KEY=VALUE, e.g. synth.corpus.text_field=body "
               "synth.short_fraction=0.1 synth.fine_types=[cloze,topic] synth.multihop_source=cross "
               "synth.corpus.max_doc_tokens=8192. "
               "Describe the result with: longcurate synth report FILE")
    add_config_args(p)
    add_flag(p, "--corpus", "synth.corpus.path", "wiki-summaries (bundled), a .jsonl/.json/.parquet/.txt file, "
             "a folder of them, a saved HF dataset, or a Hub dataset id (with allow_download=true)", metavar="PATH")
    add_flag(p, "--output", "synth.output", "samples file (default <output_dir>/samples.jsonl)", metavar="PATH")
    add_flag(p, "--num-samples", "synth.num_samples", "how many samples", type=int, metavar="N")
    add_flag(p, "--heldout-samples", "synth.heldout_samples", "also write N held-out samples from the corpus's "
             "eval part (<output_dir>/heldout.jsonl, for eval)", type=int, metavar="N")
    add_flag(p, "--min-tokens", "synth.min_tokens", "shortest target length (tokens)", type=int, metavar="A")
    add_flag(p, "--max-tokens", "synth.max_tokens", "longest target length (tokens)", type=int, metavar="B")
    add_flag(p, "--backend", "synth.backend", "QA generator", choices=["template", "openai"])
    add_flag(p, "--model", "model", "target model whose tokenizer measures lengths (HF id, folder, .gguf or alias)",
             metavar="NAME_OR_PATH")
    add_flag(p, "--seed", "seed", "random seed", type=int, metavar="S")
    add_switch(p, "--retry-failed", "synth.retry_failed", "also redo the samples the endpoint refused (HTTP 4xx "
               "other than 429) in an earlier run, even when that run finished")
    p.set_defaults(func=_cmd_run)
