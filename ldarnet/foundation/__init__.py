"""The foundation every stage builds on, and which imports no stage.

Errors a user can fix (:mod:`errors`), atomic writes and JSON results (:mod:`atomic`),
checksums, the one CSV/TSV reader (:mod:`csv_table`) and the table writers
(:mod:`tables`), figure saving (:mod:`figures`), YAML loading with key checks
(:mod:`yaml_config`) and the run-directory lock (:mod:`runlock`). Nothing here knows what
a genome, a model or a task is; tests/test_architecture.py keeps it that way.
"""
