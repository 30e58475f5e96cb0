// The avx512 variant of the kernels (see sparse_linear_impl.inc); build flags set its instruction set.
#define SL_NS sl_avx512
#define SL_LANES 16
#define SL_MAX_VECS 16
#include "sparse_linear_impl.inc"
