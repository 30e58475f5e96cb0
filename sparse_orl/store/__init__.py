"""What a job keeps on disk: atomic files, checkpoints and final params, the workdir's identity and locks,
metric logs, and ``summary.json`` (one typed schema, :mod:`sparse_orl.store.summary`)."""
