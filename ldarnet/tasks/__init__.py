"""What a downstream task is and where its data comes from (spec section 4, "Tasks").

The registry of the 27 tasks (:mod:`registry`), their sources - official files pinned on
the HuggingFace Hub and Zenodo (:mod:`remote_sources`), local copies and proxies
(:mod:`source_config`, :mod:`sources`), tasks derived from GENCODE (:mod:`derived`) - and
the prepared train/test files every protocol step reads (:mod:`task_data`,
:mod:`task_split`). How a model is fine-tuned and scored on them is
:mod:`ldarnet.evaluation`.
"""
