"""Per-sequence embeddings of a FASTA file: the mean of the final hidden state over each record.

The representation is the decoder output (after its final RMSNorm, width ``d_model[0]``)
averaged over the record's valid positions, computed by the same pooling function the
fine-tuning classifier uses (:func:`ldarnet.model.pooling.masked_mean`), so an
embedding is exactly what a downstream head would see.

Records are sorted by length and embedded in batches (little padding, the longest batch
first so that an out-of-memory error comes at once); with the package's default
padding-exact reverse scan a record's embedding does not depend on what it is batched
with. Each record is embedded whole, so memory grows with the longest record: tile
chromosome-scale records before embedding them.

Output formats (written atomically):

* Parquet: columns ``name`` (string), ``length`` (int64, bases) and ``embedding``
  (fixed-size list of float32, width D), one row per record in FASTA order. A single
  list column keeps the file self-describing whatever D is; ``np.stack(df.embedding)``
  gives the matrix. The schema metadata key ``ldarnet`` holds model path, pooling, D.
* ``.npy``: a float32 matrix (records × D) in FASTA order, plus ``<stem>.names.txt``
  beside it (one record name per line, same order).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldarnet.data.batch import collate
from ldarnet.data.fasta import iter_records
from ldarnet.foundation.atomic import remove, temp_path
from ldarnet.interop.errors import InteropError
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pooling import masked_mean

FORMATS = ("parquet", "npy")


def read_dna_records(path: str | Path) -> list[tuple[str, str]]:
    """``(name, sequence)`` of every record, in file order, read by the one FASTA reader.

    Its policy refuses, with file and line: a file with no records, a record without
    sequence, a duplicated name (the outputs are keyed by name), and a character that is
    not an IUPAC nucleotide code (e.g. protein, RNA or a gap symbol).
    """
    return [(record.name, record.sequence) for record in iter_records(path)]


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; asking for CUDA without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InteropError("--device cuda: no CUDA device is available here; use --device cpu "
                           "or --device auto")
    if device not in ("cpu", "cuda"):
        raise InteropError(f"--device {device!r}: choose auto, cpu or cuda")
    return torch.device(device)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, the longest batch first."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


@torch.inference_mode()
def embed_sequences(
    model: LDARNet,
    sequences: Sequence[str],
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Mean-pooled final hidden states, float32 (len(sequences), d_model[0]), input order."""
    if batch_size < 1:
        raise InteropError(f"--batch-size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    model.eval()
    result = np.zeros((len(sequences), model.config.d_model[0]), dtype=np.float32)
    for batch in length_batches([len(s) for s in sequences], batch_size):
        input_ids, mask = collate([sequences[i] for i in batch])
        input_ids, mask = input_ids.to(device), mask.to(device)
        pooled = masked_mean(model(input_ids, mask).hidden_states, mask)
        result[batch] = pooled.float().cpu().numpy()
        if progress is not None:
            progress(int(mask.sum()))
    return result


def output_format(out: Path, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given, else from the file suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InteropError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = out.suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InteropError(f"cannot tell the format of {out} from its suffix; name it .parquet or "
                       ".npy, or pass --format parquet|npy")


def names_path(out: Path) -> Path:
    """The sidecar of a ``.npy`` output: ``emb.npy`` → ``emb.names.txt``."""
    return out.with_name((out.stem if out.suffix.lower() == ".npy" else out.name) + ".names.txt")


def write_parquet(out: Path, names: list[str], lengths: list[int], matrix: np.ndarray,
                  metadata: dict[str, Any]) -> None:
    """One row per record: name, length, embedding (fixed-size float32 list), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = matrix.shape[1]
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    table = pa.table({
        "name": pa.array(names, type=pa.string()),
        "length": pa.array(lengths, type=pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
    }).replace_schema_metadata({"ldarnet": json.dumps(metadata)})
    tmp = temp_path(out)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        remove([tmp])
        raise


def write_npy(out: Path, names: list[str], matrix: np.ndarray) -> Path:
    """The float32 matrix and its ``.names.txt`` sidecar, both complete or neither."""
    sidecar = names_path(out)
    tmp_names, tmp_npy = temp_path(sidecar), temp_path(out)
    try:
        tmp_names.write_text("".join(f"{n}\n" for n in names))
        with open(tmp_npy, "wb") as fh:  # a file handle: np.save would append .npy to a name
            np.save(fh, np.ascontiguousarray(matrix, dtype=np.float32))
        os.replace(tmp_names, sidecar)
        os.replace(tmp_npy, out)
    except BaseException:
        remove([tmp_names, tmp_npy])
        raise
    return sidecar


def embed_fasta(
    model_path: str | Path,
    fasta: str | Path,
    out: str | Path,
    batch_size: int = 8,
    device: str = "auto",
    fmt: str | None = None,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Embed every record of ``fasta`` with the model at ``model_path``; write ``out``.

    ``show_progress`` None = a progress bar on stderr when it is a terminal.
    Returns a summary (records, dimension, device, files written).
    """
    from tqdm import tqdm

    from ldarnet.model.pretrained import load_pretrained

    out = Path(out)
    kind = output_format(out, fmt)
    if not out.parent.is_dir():
        raise InteropError(f"output directory {out.parent} does not exist; create it first")
    if batch_size < 1:
        raise InteropError(f"--batch-size must be >= 1, got {batch_size}")
    target = resolve_device(device)
    records = read_dna_records(fasta)
    model = load_pretrained(model_path, device=target)
    if model.config.reverse_padding == "release":
        print(f"embed: warning: {model_path} uses reverse_padding='release' (the release's "
              "padding leak, spec 1.4): embeddings depend slightly on batch composition; use "
              "--batch-size 1 for batch-independent results", file=sys.stderr)
    names = [name for name, _ in records]
    sequences = [seq for _, seq in records]
    lengths = [len(s) for s in sequences]
    disable = None if show_progress is None else not show_progress
    with tqdm(total=sum(lengths), unit="bp", unit_scale=True, desc="embed", file=sys.stderr,
              disable=disable) as bar:
        matrix = embed_sequences(model, sequences, batch_size, progress=bar.update)
    metadata = {"model": str(model_path), "pooling": "mean of the final hidden state over "
                "valid positions", "dim": int(matrix.shape[1]), "records": len(names)}
    files = [str(out)]
    if kind == "parquet":
        write_parquet(out, names, lengths, matrix, metadata)
    else:
        files.append(str(write_npy(out, names, matrix)))
    return {"records": len(names), "dim": int(matrix.shape[1]), "bases": sum(lengths),
            "device": str(target), "format": kind, "files": files}
