"""Trained runs out of a workdir: the compact file format (:mod:`~sparse_orl.export.codec`), one run as a
deployable file (:func:`export_run`), and the size accounting of Table 1 (:mod:`~sparse_orl.export.sizes`).
The numpy-only loader is :mod:`sparse_orl.deploy`."""
from sparse_orl.export.codec import (FORMAT_VERSION, INDEX_CODECS, MAGIC, VALUE_DTYPES, decode_compact, encode_compact,
                                     load_compact, save_compact)
from sparse_orl.export.policy import acting_networks, export_run
from sparse_orl.export.sizes import (COO_BYTES_PER_DENSE_ELEMENT, COO_BYTES_PER_KEPT_WEIGHT, TORCH_FILE_OVERHEAD,
                                     TORCH_SPARSE_TENSOR_OVERHEAD, dense_nbytes, size_table, torch_coo_nbytes)

__all__ = ["COO_BYTES_PER_DENSE_ELEMENT", "COO_BYTES_PER_KEPT_WEIGHT", "FORMAT_VERSION", "INDEX_CODECS", "MAGIC",
           "TORCH_FILE_OVERHEAD", "TORCH_SPARSE_TENSOR_OVERHEAD", "VALUE_DTYPES", "acting_networks", "decode_compact",
           "dense_nbytes", "encode_compact", "export_run", "load_compact", "save_compact", "size_table",
           "torch_coo_nbytes"]
