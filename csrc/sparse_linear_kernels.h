// Single-instance sparse linear kernels (one layer, one batch; no vmapped dimensions).
//
// The kernels compute on feature-major copies of the activations: row f holds feature f for the
// whole batch, so each kept weight touches whole contiguous rows, and the work vectorizes over
// the batch (an AXPY or a dot product per kept weight). Rows are padded to a multiple of the
// vector width so every vector access is aligned to the row start and needs no masking.
//
// This header holds plain structs and declarations: it is included by translation units
// compiled with different instruction-set flags, and an inline function with external linkage
// defined here would be emitted once per flag set and merged by the linker, possibly running
// AVX-512 code on a CPU without it.
#ifndef SPARSE_ORL_CSRC_SPARSE_LINEAR_KERNELS_H_
#define SPARSE_ORL_CSRC_SPARSE_LINEAR_KERNELS_H_

#include <cstdint>

// bpad: the batch rounded up to the vector width the kernels use for it (16, 8 or 4 floats;
// no padding below 4). Feature-major copies are (features x bpad), padding lanes hold zeros.
// Static: each translation unit has its own copy.
static inline int64_t sl_padded_batch(int64_t batch) {
  const int64_t q = batch >= 16 ? 16 : batch >= 8 ? 8 : batch >= 4 ? 4 : 1;
  return (batch + q - 1) / q * q;
}

// Sparse product with batch-major input and output:
//   dst[b, r] = sum_{k in [ptr[r], ptr[r+1])} w_k * src[b, idx[k]]   for r < rows, b < batch,
// where w_k = val[perm[k]] when perm is given, else val[k]. Also writes src_t, the
// feature-major copy of src (cols x bpad, zero padding lanes) the weight gradient needs.
// Forward pass: ptr/idx = CSR by output unit, src = x (batch x in), dst = y (batch x out).
// Input gradient: ptr/idx = CSR by input unit, perm maps to the forward order,
// src = dy (batch x out), dst = dx (batch x in).
struct SlGather {
  int64_t rows;
  int64_t cols;
  int64_t batch;
  int64_t bpad;  // sl_padded_batch(batch)
  const int32_t* ptr;
  const int32_t* idx;
  const int32_t* perm;  // may be null
  const float* val;
  const float* src;
  float* src_t;
  float* dst;
};

// dv[k] = sum_b dyt[r, b] * xt[idx[k], b]  for k in [ptr[r], ptr[r+1]), r < rows;
// dv[k] = 0 for k in [ptr[rows], kmax) (padding entries). dyt (rows x bpad) and xt
// (cols x bpad) are the feature-major copies SlGather writes.
struct SlDots {
  int64_t rows;
  int64_t bpad;
  int64_t kmax;
  const int32_t* ptr;
  const int32_t* idx;
  const float* dyt;
  const float* xt;
  float* dv;
};

#define SL_DECLARE_ISA(ns)              \
  namespace ns {                        \
  void gather_rows(const SlGather& a);  \
  void row_dots(const SlDots& a);       \
  }

SL_DECLARE_ISA(sl_generic)
#if defined(__x86_64__) || defined(_M_X64)
SL_DECLARE_ISA(sl_avx2)
SL_DECLARE_ISA(sl_avx512)
#endif

#undef SL_DECLARE_ISA

#endif  // SPARSE_ORL_CSRC_SPARSE_LINEAR_KERNELS_H_
