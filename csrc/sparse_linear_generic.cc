// The generic variant of the kernels (see sparse_linear_impl.inc); build flags set its instruction set.
#define SL_NS sl_generic
#define SL_LANES 4
#define SL_MAX_VECS 12
#include "sparse_linear_impl.inc"
