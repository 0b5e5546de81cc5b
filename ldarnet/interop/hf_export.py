"""Export a trained (or imported) model as a HuggingFace-style directory with a model card.

The directory holds ``model.safetensors``, ``config.json`` and ``README.md``:

* ``config.json`` keeps the ``model_config`` entry that :func:`load_pretrained` reads
  (so the export is itself a loadable model directory) and adds the Hub's conventional
  ``architectures``/``model_type`` fields and the parameter count; everything else the
  source ``config.json`` recorded (training config, data identity, provenance of an
  imported release checkpoint) is carried over unchanged.
* ``README.md`` is a model card: YAML front matter (license, tags, library) and a body
  stating what the model is, its size, what it was trained on (read from the source
  ``config.json``), an optional evaluation table, how to load it, and the citation.

It is not a ``transformers`` model: loading goes through this package. The weights are
loaded and re-saved (not copied byte for byte), so an export always passes the same
checks as ``load_pretrained``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ldarnet import __version__
from ldarnet.foundation.errors import MissingInputError
from ldarnet.foundation.tables import markdown_table
from ldarnet.interop.errors import InteropError
from ldarnet.interop.outdir import atomic_directory, check_target
from ldarnet.model.config import ModelConfig
from ldarnet.model.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_pretrained, resolve_weights
from ldarnet.model.summary import model_summary
from ldarnet.model.weights import save_model_file

CARD_NAME = "README.md"
TAGS = ("dna", "genomics", "language-model", "masked-language-modeling")
PAPER_TITLE = ("DNA Adaptive Representation Network with Learnable Tokenization for Genomic "
               "Modeling")
RELEASE_URL = "https://github.com/darlednik/ICML-LDARNet"


def read_source_config(weights: Path) -> dict[str, Any]:
    """The whole ``config.json`` beside ``weights`` (validated by ``load_pretrained`` first)."""
    return json.loads((weights.parent / CONFIG_NAME).read_text())


def render_eval_table(path: str | Path) -> str:
    """Markdown for the card: a ``.tsv``/``.csv`` rendered as a table, a ``.md`` pasted."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"evaluation table {path} does not exist; pass a .tsv or .md "
                                "written by the workflow (e.g. results/tables/nt_summary.tsv)")
    text = path.read_text()
    if path.suffix.lower() == ".md":
        # Nest the table's own headings under the card's "Evaluation" section.
        return "\n".join("##" + line if line.startswith("#") else line
                         for line in text.strip().splitlines()) + "\n"
    if path.suffix.lower() not in (".tsv", ".csv", ".txt"):
        raise InteropError(f"evaluation table {path}: unknown format {path.suffix!r}; pass a "
                           ".tsv, .csv or .md file")
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    rows = list(reader)
    if not reader.fieldnames or not rows:
        raise InteropError(f"evaluation table {path} has no header or no rows; pass a table "
                           "written by the workflow (results/tables/*.tsv)")
    return markdown_table(rows, list(reader.fieldnames))


def _fmt(n: int) -> str:
    return f"{n:,}"


def _training_section(source: dict[str, Any]) -> str:
    """What the source ``config.json`` says about training data and budget."""
    lines: list[str] = []
    if "source" in source and isinstance(source["source"], dict):  # ldarnet import-checkpoint
        src = source["source"]
        lines.append(
            f"Converted with `ldarnet import-checkpoint` from the authors' released checkpoint "
            f"`{src.get('file')}` (sha256 `{src.get('sha256')}`, release step/epoch "
            f"{src.get('release_step')}). The release pretrained on hg38 windows of 4,096 bp "
            "plus a multispecies collection (spec section 3.1; exact data not published)."
        )
        args = src.get("release_args")
        if isinstance(args, dict) and args:
            # argument names of the release's pretrain.py (spec 3.5)
            keys = ("model_size", "epochs", "batch_size", "accum_steps", "lr", "seq_len",
                    "num_bytes_per_token", "alpha_ratio", "max_steps")
            shown = {k: args[k] for k in keys if k in args}
            if shown:
                lines.append("Release pretraining arguments: " + ", ".join(
                    f"`{k}={v}`" for k, v in shown.items()) + ".")
        return "\n\n".join(lines) + "\n"
    train = source.get("train_config")
    summary = source.get("summary") if isinstance(source.get("summary"), dict) else {}
    data = source.get("data") if isinstance(source.get("data"), dict) else {}
    if not isinstance(train, dict):
        return "The source `config.json` records no training information.\n"
    rows = [
        ("objective", f"masked-LM (15 % masking) + {train.get('alpha_ratio')} x ratio loss"),
        ("optimizer steps", summary.get("steps", train.get("steps"))),
        ("tokens seen", _fmt(summary["tokens"]) if isinstance(summary.get("tokens"), int)
         else train.get("tokens")),
        ("sequence length", train.get("seq_len")),
        ("effective batch", train.get("effective_batch")),
        ("peak learning rate", train.get("lr")),
        ("seed", source.get("seed")),
        ("GPUs / processes", summary.get("world_size")),
    ]
    if data:
        rows.append(("genome (md5 of the source FASTA)", f"`{data.get('source_fasta_md5')}`"))
        rows.append(("window", data.get("window")))
        for split, info in (data.get("splits") or {}).items():
            if isinstance(info, dict):
                contigs = ", ".join(info.get("contigs") or []) or "?"
                rows.append((f"{split} split", f"{_fmt(int(info.get('windows', 0)))} windows, "
                             f"{_fmt(int(info.get('bases', 0)))} bp ({contigs})"))
    validation = summary.get("validation") or {}
    for key in ("val_mlm", "val_accuracy", "val_density"):
        if key in validation:
            rows.append((key.replace("_", " "), f"{float(validation[key]):.4f}"))
    table = [{"item": k, "value": v} for k, v in rows if v is not None]
    return markdown_table(table, ["item", "value"])


def model_card(cfg: ModelConfig, counts: dict[str, Any], source: dict[str, Any],
               eval_markdown: str | None, license_id: str, repo_name: str) -> str:
    """The README.md text of an export."""
    total = counts["parameters"]
    layout = cfg.arch_layout
    front = "\n".join(["---", f"license: {license_id}", "library_name: ldarnet", "tags:",
                       *[f"- {t}" for t in TAGS], "pipeline_tag: fill-mask", "---"])
    arms = {"learned": "learned (the router decides; LDARNet)",
            "fixed_grid": f"fixed grid, one boundary every {cfg.routing.grid_stride} bp "
                          "(ablation arm)",
            "random": f"random, probability 1/{cfg.routing.grid_stride} (ablation arm)"}
    size = [
        {"item": "parameters", "value": f"{_fmt(total)} ({total / 1e6:.2f}M; outer stage "
                                        f"{_fmt(counts['parameters_outer'])}, backbone "
                                        f"{_fmt(counts['parameters_backbone'])})"},
        {"item": "layout", "value": f"`{json.dumps(layout)}` (encoder, backbone, decoder)"},
        {"item": "widths d_model", "value": ", ".join(map(str, cfg.d_model))},
        {"item": "boundaries", "value": arms.get(cfg.routing.boundaries, cfg.routing.boundaries)},
        {"item": "ratio-loss target N", "value": ", ".join(f"{v:g}"
                                                         for v in cfg.routing.target_ratio)},
        {"item": "vocabulary", "value": "A C G T N [MASK] [PAD] (one token per base)"},
        {"item": "reverse padding", "value": cfg.reverse_padding},
    ]
    evaluation = eval_markdown or ("No evaluation table was supplied to `ldarnet export-hf` "
                                   "(`--eval-table`).\n")
    return f"""{front}

# {cfg.name}

An LDARNet DNA language model: a one-stage H-Net-style hierarchical masked language model
over single nucleotides with learned, dynamic tokenization. An encoder (BiMamba-2 and
one sliding-window attention layer) reads every base, a router places boundaries
where adjacent representations differ, a wider BiMamba-2 + SwiGLU backbone processes
the ~N-fold compressed sequence, and a decoder expands it back to one output per base.
Trained and exported with the `ldarnet` package (version {__version__}).

## Model

{markdown_table(size, ["item", "value"])}
## Training

{_training_section(source)}
## Evaluation

{evaluation}
## How to use

```python
import torch
from ldarnet.model.pretrained import load_pretrained
from ldarnet.data.batch import collate
from ldarnet.model.pooling import masked_mean

model = load_pretrained("{repo_name}")            # this directory; .to("cuda") for a GPU
input_ids, mask = collate(["ACGTTGCAAGGCTTATAAAAGGC", "GATTACA"])
with torch.inference_mode():
    out = model(input_ids, mask)
logits = out.logits                                # (batch, length, 7) masked-LM logits
embedding = masked_mean(out.hidden_states, mask)   # (batch, {cfg.d_model[0]}) per sequence
```

From the command line: `ldarnet embed {repo_name} sequences.fa embeddings.parquet`
(per-sequence embeddings) and `ldarnet segment --model {repo_name} ...` (boundaries).
The model is not a `transformers` model; it needs the `ldarnet` package.

## Limitations

A research model: it predicts masked bases and gives sequence representations for
fine-tuning; it makes no clinical or functional claims. Boundary positions are
unsupervised and depend on the training data and budget recorded above.

## Citation

LDARNet: "{PAPER_TITLE}", ICML. Authors' release: {RELEASE_URL}.

```bibtex
@inproceedings{{ldarnet,
  title     = {{{PAPER_TITLE}}},
  booktitle = {{International Conference on Machine Learning (ICML)}},
  note      = {{{RELEASE_URL}}}
}}
```
"""


def export_hf(
    model_path: str | Path,
    outdir: str | Path,
    eval_table: str | Path | None = None,
    license_id: str = "mit",
    force: bool = False,
) -> dict[str, Any]:
    """Write the HuggingFace-style directory ``outdir`` for the model at ``model_path``.

    Returns the written ``config.json`` contents.
    """
    outdir = Path(outdir)
    check_target(outdir, force)
    eval_markdown = render_eval_table(eval_table) if eval_table is not None else None
    weights = resolve_weights(model_path)
    model = load_pretrained(model_path)
    source = read_source_config(weights)
    cfg = model.config
    counts = model_summary(cfg)
    config = {
        **{k: v for k, v in source.items() if k != "model_config"},
        "architectures": ["LDARNet"],
        "model_type": "ldarnet",
        "library_name": "ldarnet",
        "ldarnet_version": __version__,
        "num_parameters": counts["parameters"],
        "model_config": cfg.to_dict(),
    }
    card = model_card(cfg, counts, source, eval_markdown, license_id, outdir.name)
    with atomic_directory(outdir, force=force) as tmp:
        save_model_file(model, tmp / WEIGHTS_NAME)
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / CARD_NAME).write_text(card)
    return config
