// XLA FFI handlers (typed API) for an unstructured-sparse linear layer on the CPU.
//
// Layout of one layer W (in x out, as flax stores kernels), K_max entries:
//   values  (K_max,)  f32  kept weights in CSR order by output unit; entries k >= row_ptr[out]
//                           are padding: never read, and their weight gradient is exactly 0.
//   row_ptr (out+1,)  s32  CSR by output unit: the kept inputs of unit j are entries
//                           [row_ptr[j], row_ptr[j+1]).
//   col_idx (K_max,)  s32  input unit of each entry.
//   t_ptr   (in+1,)   s32  the same weights in CSR order by input unit (the transpose) ...
//   t_row   (K_max,)  s32  ... with the output unit of each entry ...
//   t_perm  (K_max,)  s32  ... and its position in `values`.
// Activations are batch-major at the interface, as XLA holds them (x: B x in, y: B x out).
// The kernels work on feature-major copies (features x bpad, bpad = B rounded up to the vector
// width, zero padding lanes) which they write themselves; the forward pass and the input
// gradient return those copies (xt, dyt) so the weight gradient reuses them.
//
// Targets:
//   sparse_orl_linear_fwd  (values, row_ptr, col_idx, x)        -> (y, xt)
//       y[b, j] = sum_{k in row j} values[k] x[b, col_idx[k]]
//   sparse_orl_linear_dx   (values, t_ptr, t_row, t_perm, dy)   -> (dx, dyt)
//       dx[b, i] = sum_{k in t-row i} values[t_perm[k]] dy[b, t_row[k]]
//   sparse_orl_linear_dw   (row_ptr, col_idx, dyt, xt)          -> dv
//       dv[k] = sum_b dy[b, j_k] x[b, col_idx[k]] for k < row_ptr[out]; 0 for padding
// Index arrays are validated on every call (bounds and monotone pointers): a bad index is an
// error, never an out-of-bounds read.
// Every operand may carry the same number of leading batch dimensions (vmap with
// vmap_method="expand_dims"); a leading dimension of size 1 broadcasts. The handler loops over
// them itself, single-threaded (each JAX CPU device of the library is single-threaded).
#include <cstdint>
#include <string>
#include <tuple>

#include "sparse_linear_kernels.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum Isa : int32_t { kAuto = 0, kGeneric = 1, kAvx2 = 2, kAvx512 = 3 };

int32_t DetectIsa() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kAvx2;
#endif
  return kGeneric;
}

int32_t BestIsa() {
  static const int32_t best = DetectIsa();
  return best;
}

struct Kernels {
  void (*gather)(const SlGather&);
  void (*dots)(const SlDots&);
};

// The kernels of `requested` (kAuto: the best this CPU runs); false if the CPU lacks it.
bool SelectKernels(int32_t requested, Kernels* k) {
  const int32_t isa = requested == kAuto ? BestIsa() : requested;
  if (isa < kGeneric || isa > BestIsa()) return false;
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case kAvx512:
      *k = {sl_avx512::gather_rows, sl_avx512::row_dots};
      return true;
    case kAvx2:
      *k = {sl_avx2::gather_rows, sl_avx2::row_dots};
      return true;
#endif
    default:
      *k = {sl_generic::gather_rows, sl_generic::row_dots};
      return true;
  }
}

constexpr int kMaxLead = 8;

// Leading (vmapped) dimensions of the result, and how an operand broadcasts against them.
struct Lead {
  int n = 0;
  int64_t dims[kMaxLead] = {};
  int64_t count = 1;
};

struct Walk {
  int64_t stride[kMaxLead] = {};  // in instances; 0 where the operand broadcasts
  int64_t elems = 1;              // elements of one instance
};

ffi::Error MakeLead(ffi::Span<const int64_t> dims, int core, Lead* lead) {
  const int n = static_cast<int>(dims.size()) - core;
  if (n < 0 || n > kMaxLead) return ffi::Error::InvalidArgument("sparse_orl: bad result rank");
  lead->n = n;
  for (int d = 0; d < n; ++d) {
    lead->dims[d] = dims[d];
    lead->count *= dims[d];
  }
  return ffi::Error::Success();
}

ffi::Error MakeWalk(const char* name, ffi::Span<const int64_t> dims, int core, const Lead& lead,
                    Walk* walk) {
  if (static_cast<int>(dims.size()) != lead.n + core)
    return ffi::Error::InvalidArgument(std::string("sparse_orl: bad rank of ") + name);
  for (size_t d = lead.n; d < dims.size(); ++d) walk->elems *= dims[d];
  int64_t stride = 1;
  for (int d = lead.n - 1; d >= 0; --d) {
    if (dims[d] != lead.dims[d] && dims[d] != 1)
      return ffi::Error::InvalidArgument(std::string("sparse_orl: batch dims of ") + name);
    walk->stride[d] = dims[d] == 1 ? 0 : stride;
    stride *= dims[d];
  }
  return ffi::Error::Success();
}

// Element offset of instance `flat` (row-major over lead.dims) in an operand.
int64_t Offset(const Lead& lead, const Walk& walk, int64_t flat) {
  int64_t inst = 0;
  for (int d = lead.n - 1; d >= 0; --d) {
    inst += (flat % lead.dims[d]) * walk.stride[d];
    flat /= lead.dims[d];
  }
  return inst * walk.elems;
}

// ptr must be a CSR pointer over [0, kmax) and every used index must lie in [0, bound).
// Branch-free, so the compiler vectorizes it: it runs on every call.
bool ValidIndex(const int32_t* ptr, int64_t rows, const int32_t* idx, int64_t bound,
                int64_t kmax) {
  if (ptr[0] != 0 || ptr[rows] > kmax) return false;
  bool bad = false;
  for (int64_t r = 0; r < rows; ++r) bad |= ptr[r + 1] < ptr[r];
  const uint32_t limit = static_cast<uint32_t>(bound);
  for (int64_t k = 0; k < ptr[rows]; ++k) bad |= static_cast<uint32_t>(idx[k]) >= limit;
  return !bad;
}

ffi::Error BadIndex(const char* target) {
  return ffi::Error::InvalidArgument(std::string(target) +
                                     ": index arrays do not describe a valid sparse layer");
}

ffi::Error BadShapes(const char* target) {
  return ffi::Error::InvalidArgument(std::string(target) + ": inconsistent operand shapes");
}

int64_t Dim(ffi::Span<const int64_t> dims, int from_end) { return dims[dims.size() - from_end]; }

ffi::Error Forward(ffi::Buffer<ffi::F32> values, ffi::Buffer<ffi::S32> row_ptr,
                   ffi::Buffer<ffi::S32> col_idx, ffi::Buffer<ffi::F32> x,
                   ffi::ResultBuffer<ffi::F32> y, ffi::ResultBuffer<ffi::F32> xt, int32_t isa) {
  constexpr const char* kName = "sparse_orl_linear_fwd";
  Kernels kern;
  if (!SelectKernels(isa, &kern)) return ffi::Error::InvalidArgument("sparse_orl: isa not supported");
  Lead lead;
  Walk wv, wp, wc, wx, wy, wt;
  if (auto e = MakeLead(y->dimensions(), 2, &lead); e.failure()) return e;
  for (auto [name, dims, core, walk] :
       {std::tuple("values", values.dimensions(), 1, &wv),
        std::tuple("row_ptr", row_ptr.dimensions(), 1, &wp),
        std::tuple("col_idx", col_idx.dimensions(), 1, &wc),
        std::tuple("x", x.dimensions(), 2, &wx), std::tuple("y", y->dimensions(), 2, &wy),
        std::tuple("xt", xt->dimensions(), 2, &wt)}) {
    if (auto e = MakeWalk(name, dims, core, lead, walk); e.failure()) return e;
  }
  const int64_t batch = Dim(y->dimensions(), 2), out = Dim(y->dimensions(), 1);
  const int64_t in = Dim(x.dimensions(), 1), bpad = Dim(xt->dimensions(), 1);
  const int64_t kmax = wv.elems;
  if (wp.elems != out + 1 || wc.elems != kmax || Dim(x.dimensions(), 2) != batch ||
      Dim(xt->dimensions(), 2) != in || bpad != sl_padded_batch(batch))
    return BadShapes(kName);
  for (int64_t b = 0; b < lead.count; ++b) {
    const int32_t* ptr = row_ptr.typed_data() + Offset(lead, wp, b);
    const int32_t* idx = col_idx.typed_data() + Offset(lead, wc, b);
    if (!ValidIndex(ptr, out, idx, in, kmax)) return BadIndex(kName);
    kern.gather({out, in, batch, bpad, ptr, idx, nullptr,
                 values.typed_data() + Offset(lead, wv, b), x.typed_data() + Offset(lead, wx, b),
                 xt->typed_data() + Offset(lead, wt, b), y->typed_data() + Offset(lead, wy, b)});
  }
  return ffi::Error::Success();
}

ffi::Error InputGrad(ffi::Buffer<ffi::F32> values, ffi::Buffer<ffi::S32> t_ptr,
                     ffi::Buffer<ffi::S32> t_row, ffi::Buffer<ffi::S32> t_perm,
                     ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dx,
                     ffi::ResultBuffer<ffi::F32> dyt, int32_t isa) {
  constexpr const char* kName = "sparse_orl_linear_dx";
  Kernels kern;
  if (!SelectKernels(isa, &kern)) return ffi::Error::InvalidArgument("sparse_orl: isa not supported");
  Lead lead;
  Walk wv, wp, wr, wq, wdy, wdx, wt;
  if (auto e = MakeLead(dx->dimensions(), 2, &lead); e.failure()) return e;
  for (auto [name, dims, core, walk] :
       {std::tuple("values", values.dimensions(), 1, &wv),
        std::tuple("t_ptr", t_ptr.dimensions(), 1, &wp),
        std::tuple("t_row", t_row.dimensions(), 1, &wr),
        std::tuple("t_perm", t_perm.dimensions(), 1, &wq),
        std::tuple("dy", dy.dimensions(), 2, &wdy), std::tuple("dx", dx->dimensions(), 2, &wdx),
        std::tuple("dyt", dyt->dimensions(), 2, &wt)}) {
    if (auto e = MakeWalk(name, dims, core, lead, walk); e.failure()) return e;
  }
  const int64_t batch = Dim(dx->dimensions(), 2), in = Dim(dx->dimensions(), 1);
  const int64_t out = Dim(dy.dimensions(), 1), bpad = Dim(dyt->dimensions(), 1);
  const int64_t kmax = wv.elems;
  if (wp.elems != in + 1 || wr.elems != kmax || wq.elems != kmax ||
      Dim(dy.dimensions(), 2) != batch || Dim(dyt->dimensions(), 2) != out ||
      bpad != sl_padded_batch(batch))
    return BadShapes(kName);
  for (int64_t b = 0; b < lead.count; ++b) {
    const int32_t* ptr = t_ptr.typed_data() + Offset(lead, wp, b);
    const int32_t* row = t_row.typed_data() + Offset(lead, wr, b);
    const int32_t* perm = t_perm.typed_data() + Offset(lead, wq, b);
    if (!ValidIndex(ptr, in, row, out, kmax) || !ValidIndex(ptr, in, perm, kmax, kmax))
      return BadIndex(kName);
    kern.gather({in, out, batch, bpad, ptr, row, perm, values.typed_data() + Offset(lead, wv, b),
                 dy.typed_data() + Offset(lead, wdy, b), dyt->typed_data() + Offset(lead, wt, b),
                 dx->typed_data() + Offset(lead, wdx, b)});
  }
  return ffi::Error::Success();
}

ffi::Error WeightGrad(ffi::Buffer<ffi::S32> row_ptr, ffi::Buffer<ffi::S32> col_idx,
                      ffi::Buffer<ffi::F32> dyt, ffi::Buffer<ffi::F32> xt,
                      ffi::ResultBuffer<ffi::F32> dv, int32_t isa) {
  constexpr const char* kName = "sparse_orl_linear_dw";
  Kernels kern;
  if (!SelectKernels(isa, &kern)) return ffi::Error::InvalidArgument("sparse_orl: isa not supported");
  Lead lead;
  Walk wp, wc, wdy, wx, wdv;
  if (auto e = MakeLead(dv->dimensions(), 1, &lead); e.failure()) return e;
  for (auto [name, dims, core, walk] :
       {std::tuple("row_ptr", row_ptr.dimensions(), 1, &wp),
        std::tuple("col_idx", col_idx.dimensions(), 1, &wc),
        std::tuple("dyt", dyt.dimensions(), 2, &wdy), std::tuple("xt", xt.dimensions(), 2, &wx),
        std::tuple("dv", dv->dimensions(), 1, &wdv)}) {
    if (auto e = MakeWalk(name, dims, core, lead, walk); e.failure()) return e;
  }
  const int64_t kmax = wdv.elems, out = wp.elems - 1, bpad = Dim(dyt.dimensions(), 1);
  const int64_t in = Dim(xt.dimensions(), 2);
  if (wc.elems != kmax || Dim(dyt.dimensions(), 2) != out || Dim(xt.dimensions(), 1) != bpad)
    return BadShapes(kName);
  for (int64_t b = 0; b < lead.count; ++b) {
    const int32_t* ptr = row_ptr.typed_data() + Offset(lead, wp, b);
    const int32_t* idx = col_idx.typed_data() + Offset(lead, wc, b);
    if (!ValidIndex(ptr, out, idx, in, kmax)) return BadIndex(kName);
    kern.dots({out, bpad, kmax, ptr, idx, dyt.typed_data() + Offset(lead, wdy, b),
               xt.typed_data() + Offset(lead, wx, b), dv->typed_data() + Offset(lead, wdv, b)});
  }
  return ffi::Error::Success();
}

}  // namespace

// The library is built with hidden visibility; these are the symbols ctypes looks up.
#define SL_EXPORT extern "C" __attribute__((visibility("default")))
SL_EXPORT XLA_FFI_Error* sparse_orl_linear_fwd(XLA_FFI_CallFrame* call_frame);
SL_EXPORT XLA_FFI_Error* sparse_orl_linear_dx(XLA_FFI_CallFrame* call_frame);
SL_EXPORT XLA_FFI_Error* sparse_orl_linear_dw(XLA_FFI_CallFrame* call_frame);
SL_EXPORT int32_t sparse_orl_linear_best_isa();

XLA_FFI_DEFINE_HANDLER_SYMBOL(sparse_orl_linear_fwd, Forward,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // values
                                  .Arg<ffi::Buffer<ffi::S32>>()  // row_ptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // col_idx
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x (batch x in)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // y (batch x out)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // xt (in x bpad)
                                  .Attr<int32_t>("isa"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(sparse_orl_linear_dx, InputGrad,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // values
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_ptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_row
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_perm
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dy (batch x out)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx (batch x in)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dyt (out x bpad)
                                  .Attr<int32_t>("isa"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(sparse_orl_linear_dw, WeightGrad,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // row_ptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // col_idx
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dyt (out x bpad)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xt (in x bpad)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dv (K_max,)
                                  .Attr<int32_t>("isa"));

// The best instruction set this CPU runs: 1 generic, 2 AVX2+FMA, 3 AVX-512.
int32_t sparse_orl_linear_best_isa() {
  return BestIsa();
}
