"""The formats a task's data can come in, declared once.

A task source (config/evaluation/*.yaml, or a remote suite of remote.yaml) names a
``format``; this table says which keys that format needs and accepts, what kind of data
it is by default (``official`` benchmark files, a ``proxy`` copy, a task ``derived`` from
GENCODE, a genome ``slice``) and, for the formats the workflow can download, which reader
settings a remote suite may pass on. The reader of each format is in
:mod:`ldarnet.tasks.sources` (``LOADERS``, tested to cover exactly this table), so adding
a format is one entry here and one loader there. This module imports nothing heavy: the
workflow reads it while Snakemake parses the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("official", "proxy", "derived", "slice")
COMMON_KEYS = ("format", "kind", "note")


@dataclass(frozen=True)
class SourceFormat:
    """Keys of one format, its default kind and (if downloadable) its remote settings.

    ``required`` of a downloadable format are its file roles: a remote suite maps each
    role to a path template, and the downloaded files fill those keys.
    """

    required: tuple[str, ...]
    optional: tuple[str, ...]
    default_kind: str
    remote_settings: tuple[str, ...] | None = None  # None: not a format remote.yaml can use

    @property
    def downloadable(self) -> bool:
        return self.remote_settings is not None


FORMATS: dict[str, SourceFormat] = {
    "parquet": SourceFormat(
        ("train", "test"),
        ("sequence_column", "label_column", "task_column", "task_name", "expected_counts",
         "remote", "hub"),
        "official",
        remote_settings=("sequence_column", "label_column", "task_column", "expected_counts")),
    "gb_archive": SourceFormat(("archive",), ("expected_counts", "remote"), "official",
                               remote_settings=("expected_counts",)),
    "csv": SourceFormat(("train", "test"), (), "proxy"),
    "fasta_classes": SourceFormat(("train", "test"), (), "proxy"),
    "gb_slice": SourceFormat(("csv",), (), "slice"),
    "gb_intervals": SourceFormat(("intervals", "fasta"), ("contigs_only", "region_map"),
                                 "official"),
    "derived_splice": SourceFormat(("exons", "fasta", "site"),
                                   ("window", "test_fraction", "min_distance"), "derived"),
    "derived_promoter": SourceFormat(
        ("fasta",),
        ("exons", "transcripts", "upstream", "downstream", "exclusion", "tss_spacing",
         "test_fraction"),
        "derived"),
}
DOWNLOADABLE = tuple(name for name, fmt in FORMATS.items() if fmt.downloadable)
