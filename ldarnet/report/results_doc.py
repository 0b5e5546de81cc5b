"""Put a run's paper-vs-this table into docs/results.md (``make results-doc``).

docs/results.md explains the comparison in prose that does not change between runs; the
table itself is rendered by the workflow (results/tables/claims.md) and pasted between two
marker comments, so the document always shows numbers a run actually produced, never
numbers typed by hand. The header line of the pasted block says which scale and commit
produced them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ldarnet.foundation.atomic import write_text
from ldarnet.foundation.errors import InputError

START = "<!-- claims:start (make results-doc; do not edit by hand) -->"
END = "<!-- claims:end -->"


class ResultsDocError(InputError):
    """The document has no marker pair, or the table is missing."""


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def insert_table(doc: str, table_md: str, provenance: str) -> str:
    """``doc`` with the text between the markers replaced by ``provenance`` and the table."""
    if doc.count(START) != 1 or doc.count(END) != 1 or doc.index(START) > doc.index(END):
        raise ResultsDocError(f"the document needs exactly one {START!r} ... {END!r} pair")
    body = table_md.split("\n", 1)[1].lstrip("\n") if table_md.startswith("# ") else table_md
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{provenance}\n\n{body.rstrip()}\n{END}{tail}"


def update(doc_path: Path, claims_md: Path) -> None:
    """Rewrite ``doc_path`` atomically with the table of ``claims_md``."""
    if not claims_md.is_file():
        raise ResultsDocError(f"{claims_md} does not exist: run the workflow first "
                              "(`make demo`, or `snakemake results/tables/claims.tsv`)")
    provenance = (f"*Rendered from `{claims_md}` of commit {_commit(doc_path.parent)}; the "
                  "scale is named in the first note under the table.*")
    write_text(doc_path, insert_table(doc_path.read_text(), claims_md.read_text(), provenance))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("claims", type=Path, help="results/tables/claims.md")
    parser.add_argument("doc", type=Path, help="docs/results.md")
    args = parser.parse_args(argv)
    try:
        update(args.doc, args.claims)
    except (ResultsDocError, OSError) as err:
        print(f"results-doc: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.doc}: table from {args.claims}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
