"""Tables: TSV files written atomically (and Markdown renderings of them)."""

from __future__ import annotations

import csv
from pathlib import Path

from ldarnet.foundation.atomic import temp_path


def write_tsv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Rows of dicts as a tab-separated table with a header; floats to 6 significant digits."""
    path = Path(path)
    columns = columns or (list(rows[0]) if rows else [])
    tmp = temp_path(path)
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, delimiter="\t",
                                    lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                                 for k, v in row.items()})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``rows``."""
    columns = columns or (list(rows[0]) if rows else [])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
