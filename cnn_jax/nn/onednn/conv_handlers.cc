// 2-D convolution (forward, input gradient, weight gradient) as XLA FFI custom calls on oneDNN.
//
// Layouts are the ones flax.linen.Conv uses: activations NHWC, kernels HWIO (H, W, C/groups, O),
// float32, row-major (XLA:CPU's default layout). Activations are handed to oneDNN in place
// (format nhwc); kernels are described by explicit strides and reordered into the layout the
// chosen implementation wants ("any"), which is cheap: kernels are small.
//
// oneDNN: https://oneapi-src.github.io/oneDNN/dev_guide_convolution.html (padding_l/padding_r,
// dilation counted from 0, groups as a leading weights dimension; algorithm::convolution_direct,
// never Winograd, so results stay within float32 rounding of XLA's).
// XLA FFI: https://docs.jax.dev/en/latest/ffi.html (handlers, attributes, XLA_FFI_DEFINE_HANDLER).
//
// Threads: each call is split along the batch into chunks run as tasks on XLA's intra-op pool
// (ffi::ThreadPool), each chunk on single-threaded oneDNN, and the handler returns a future
// (asynchronous FFI): no OpenMP team competes with XLA's threads for the cores, and no pool
// thread blocks waiting for another. Kernel gradients of the chunks are summed in chunk order,
// so results do not depend on scheduling. Primitives are built once per shape and kept
// (`CachedPlan`); each execution has its own scratchpad (scratchpad_mode::user).

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Dims = memory::dims;

namespace {

enum class Op { kForward, kBackwardData, kBackwardWeights };

// One convolution: NHWC input [n, ih, iw, c], HWIO kernel [kh, kw, c / g, o], NHWC output.
struct Geometry {
  int64_t n, ih, iw, c, kh, kw, o, oh, ow, g;
  Dims strides, dilates, pad_l, pad_r;  // dilates: oneDNN's, kernel dilation - 1

  auto Key(Op op) const {
    return std::make_tuple(static_cast<int>(op), std::vector<int64_t>{n, ih, iw, c, kh, kw, o, oh,
                                                                      ow, g},
                           strides, dilates, pad_l, pad_r);
  }
};

memory::desc ActivationDesc(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc);
}

// The HWIO kernel as oneDNN's (g,) o, i, h, w dims with the strides of the row-major HWIO buffer.
memory::desc KernelDesc(const Geometry& s) {
  const int64_t ci = s.c / s.g, co = s.o / s.g;
  const int64_t sw = ci * s.o, sh = s.kw * sw;
  if (s.g == 1) return memory::desc({s.o, ci, s.kh, s.kw}, memory::data_type::f32, {1, s.o, sh, sw});
  return memory::desc({s.g, co, ci, s.kh, s.kw}, memory::data_type::f32, {co, 1, s.o, sh, sw});
}

memory::desc AnyKernelDesc(const Geometry& s) {
  const int64_t ci = s.c / s.g, co = s.o / s.g;
  Dims dims = s.g == 1 ? Dims{s.o, ci, s.kh, s.kw} : Dims{s.g, co, ci, s.kh, s.kw};
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& s) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      ActivationDesc(s.n, s.c, s.ih, s.iw), AnyKernelDesc(s), ActivationDesc(s.n, s.o, s.oh, s.ow),
      s.strides, s.dilates, s.pad_l, s.pad_r, UserScratchpad());
}

// A built primitive, the kernel layout it wants, and the reorder to or from the HWIO buffer
// (absent when the layouts already agree).
struct Plan {
  dnnl::primitive conv;
  memory::desc kernel;  // the primitive's kernel (or kernel-gradient) layout
  memory::desc scratch;
  std::unique_ptr<dnnl::reorder> kernel_reorder;
};

std::unique_ptr<dnnl::reorder> MaybeReorder(const memory::desc& from, const memory::desc& to) {
  if (from == to) return nullptr;
  return std::make_unique<dnnl::reorder>(
      dnnl::reorder::primitive_desc(Engine(), from, Engine(), to));
}

std::unique_ptr<Plan> MakePlan(const Geometry& s, Op op) {
  auto plan = std::make_unique<Plan>();
  auto fwd = ForwardDesc(s);
  const memory::desc user = KernelDesc(s);
  if (op == Op::kForward) {
    plan->conv = dnnl::convolution_forward(fwd);
    plan->kernel = fwd.weights_desc();
    plan->scratch = fwd.scratchpad_desc();
    plan->kernel_reorder = MaybeReorder(user, plan->kernel);
  } else if (op == Op::kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, ActivationDesc(s.n, s.c, s.ih, s.iw),
        AnyKernelDesc(s), ActivationDesc(s.n, s.o, s.oh, s.ow), s.strides, s.dilates, s.pad_l,
        s.pad_r, fwd, UserScratchpad());
    plan->conv = dnnl::convolution_backward_data(pd);
    plan->kernel = pd.weights_desc();
    plan->scratch = pd.scratchpad_desc();
    plan->kernel_reorder = MaybeReorder(user, plan->kernel);
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, ActivationDesc(s.n, s.c, s.ih, s.iw),
        AnyKernelDesc(s), ActivationDesc(s.n, s.o, s.oh, s.ow), s.strides, s.dilates, s.pad_l,
        s.pad_r, fwd, UserScratchpad());
    plan->conv = dnnl::convolution_backward_weights(pd);
    plan->kernel = pd.diff_weights_desc();
    plan->scratch = pd.scratchpad_desc();
    plan->kernel_reorder = MaybeReorder(plan->kernel, user);
  }
  return plan;
}

// Plans by geometry, built on first use and kept for the process (one per layer shape).
const Plan& CachedPlan(const Geometry& s, Op op) {
  static std::mutex mutex;
  static std::map<decltype(s.Key(op)), std::unique_ptr<Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = plans[s.Key(op)];
  if (!slot) slot = MakePlan(s, op);
  return *slot;
}

ffi::Error Check(ffi::Span<const int64_t> v, const char* name) {
  if (v.size() != 2) return ffi::Error::InvalidArgument(std::string(name) + ": need 2 values");
  return ffi::Error::Success();
}

// The geometry from NHWC input / HWIO kernel / NHWC output dims and the window attributes.
ffi::ErrorOr<Geometry> MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> k,
                                    ffi::Span<const int64_t> y, ffi::Span<const int64_t> strides,
                                    ffi::Span<const int64_t> pad_lo,
                                    ffi::Span<const int64_t> pad_hi,
                                    ffi::Span<const int64_t> dilation, int64_t groups) {
  for (auto [v, name] : {std::pair{strides, "strides"}, {pad_lo, "padding_lo"},
                         {pad_hi, "padding_hi"}, {dilation, "dilation"}}) {
    if (auto e = Check(v, name); e.failure()) return ffi::Unexpected(e);
  }
  if (x.size() != 4 || k.size() != 4 || y.size() != 4) {
    return ffi::Unexpected(ffi::Error::InvalidArgument("need rank-4 NHWC/HWIO/NHWC buffers"));
  }
  Geometry s{x[0], x[1], x[2], x[3], k[0], k[1], k[3], y[1], y[2], groups,
             Dims{strides[0], strides[1]}, Dims{dilation[0] - 1, dilation[1] - 1},
             Dims{pad_lo[0], pad_lo[1]}, Dims{pad_hi[0], pad_hi[1]}};
  if (groups < 1 || s.c % groups || s.o % groups || k[2] * groups != s.c || y[0] != s.n ||
      y[3] != s.o) {
    return ffi::Unexpected(ffi::Error::InvalidArgument("inconsistent convolution shapes"));
  }
  return s;
}

// Runs `op` on the NHWC input-side buffer `x` (x, or dx to write), the HWIO `kernel` (or dkernel
// to write) and the NHWC output-side buffer `y` (y to write, or dy).
ffi::Error Execute(const Geometry& s, Op op, float* x, float* kernel, float* y) {
  try {
    const Plan& plan = CachedPlan(s, op);
    dnnl::stream stream(Engine());
    memory user_kernel(KernelDesc(s), Engine(), kernel);
    memory prim_kernel = user_kernel;
    std::unique_ptr<char[]> kernel_buffer;
    if (plan.kernel_reorder) {
      kernel_buffer.reset(new char[plan.kernel.get_size()]);
      prim_kernel = memory(plan.kernel, Engine(), kernel_buffer.get());
      if (op != Op::kBackwardWeights) plan.kernel_reorder->execute(stream, user_kernel, prim_kernel);
    }
    std::unique_ptr<char[]> scratch(new char[std::max<size_t>(1, plan.scratch.get_size())]);
    memory scratchpad(plan.scratch, Engine(), scratch.get());
    memory src(ActivationDesc(s.n, s.c, s.ih, s.iw), Engine(), x);
    memory dst(ActivationDesc(s.n, s.o, s.oh, s.ow), Engine(), y);
    std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, scratchpad}};
    if (op == Op::kForward) {
      args.insert({{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, prim_kernel}, {DNNL_ARG_DST, dst}});
    } else if (op == Op::kBackwardData) {
      args.insert({{DNNL_ARG_DIFF_SRC, src}, {DNNL_ARG_WEIGHTS, prim_kernel},
                   {DNNL_ARG_DIFF_DST, dst}});
    } else {
      args.insert({{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_WEIGHTS, prim_kernel},
                   {DNNL_ARG_DIFF_DST, dst}});
    }
    plan.conv.execute(stream, args);
    if (op == Op::kBackwardWeights && plan.kernel_reorder) {
      plan.kernel_reorder->execute(stream, prim_kernel, user_kernel);
    }
    stream.wait();
  } catch (const std::exception& e) {  // dnnl::error, std::bad_alloc: an error, not a crash
    return ffi::Error::Internal(std::string("oneDNN convolution: ") + e.what());
  }
  return ffi::Error::Success();
}

// Batch rows per chunk below which a call is not split further.
constexpr int64_t kMinRowsPerChunk = 4;

// One call split into batch chunks that run as tasks on XLA's intra-op thread pool, each on
// single-threaded oneDNN: the cores are shared by XLA's own threads only (no OpenMP team
// spinning beside them), and a call never blocks a pool thread waiting for another.
struct Launch {
  Geometry s;
  Op op;
  float *x, *kernel, *y;
  std::vector<int64_t> bounds;  // chunk i: batch rows [bounds[i], bounds[i + 1])
  std::vector<std::unique_ptr<float[]>> partials;  // kernel gradients of chunks 1.. (summed)
  std::atomic<int64_t> remaining{0};
  std::mutex mutex;
  std::optional<ffi::Error> error;
  ffi::Promise promise;
};

int64_t KernelSize(const Geometry& s) { return s.kh * s.kw * (s.c / s.g) * s.o; }

// The kernel gradient is the sum of the chunks' (in chunk order: deterministic).
void Finish(Launch& l) {
  if (l.error) return l.promise.SetError(*l.error);
  const int64_t size = KernelSize(l.s);
  for (const auto& partial : l.partials) {
    for (int64_t i = 0; i < size; ++i) l.kernel[i] += partial[i];
  }
  l.promise.SetAvailable();
}

void RunChunk(const std::shared_ptr<Launch>& l, size_t i) {
  omp_set_num_threads(1);  // oneDNN (OpenMP runtime) on this thread alone
  Geometry s = l->s;
  const int64_t begin = l->bounds[i];
  s.n = l->bounds[i + 1] - begin;
  float* kernel = (l->op == Op::kBackwardWeights && i > 0) ? l->partials[i - 1].get() : l->kernel;
  ffi::Error e = Execute(s, l->op, l->x + begin * s.ih * s.iw * s.c, kernel,
                         l->y + begin * s.oh * s.ow * s.o);
  if (e.failure()) {
    std::lock_guard<std::mutex> lock(l->mutex);
    if (!l->error) l->error = e;
  }
  if (l->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish(*l);
}

ffi::Future Run(ffi::ThreadPool pool, const ffi::ErrorOr<Geometry>& s, Op op, float* x,
                float* kernel, float* y) {
  ffi::Promise promise;
  ffi::Future future(promise);
  if (s.has_error()) {
    promise.SetError(s.error());
    return future;
  }
  const int64_t threads = std::max<int64_t>(1, pool.num_threads());
  const int64_t chunks = std::clamp<int64_t>(s->n / kMinRowsPerChunk, 1, threads);
  auto l = std::shared_ptr<Launch>(new Launch{*s, op, x, kernel, y});
  l->promise = std::move(promise);
  for (int64_t i = 0; i <= chunks; ++i) l->bounds.push_back(s->n * i / chunks);
  if (op == Op::kBackwardWeights) {
    for (int64_t i = 1; i < chunks; ++i) l->partials.emplace_back(new float[KernelSize(*s)]);
  }
  l->remaining = chunks;
  for (int64_t i = 1; i < chunks; ++i) pool.Schedule([l, i] { RunChunk(l, i); });
  RunChunk(l, 0);
  return future;
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Out = ffi::ResultBuffer<ffi::F32>;
using Ints = ffi::Span<const int64_t>;

// y = conv(x, kernel).
ffi::Future Forward(ffi::ThreadPool pool, F32 x, F32 kernel, F32Out y, Ints strides,
                    Ints pad_lo, Ints pad_hi, Ints dilation, int64_t groups) {
  auto s = MakeGeometry(x.dimensions(), kernel.dimensions(), y->dimensions(), strides, pad_lo,
                        pad_hi, dilation, groups);
  return Run(pool, s, Op::kForward, x.typed_data(), kernel.typed_data(), y->typed_data());
}

// dx = d conv(x, kernel) / dx applied to dy (the transposed convolution of dy).
ffi::Future BackwardData(ffi::ThreadPool pool, F32 dy, F32 kernel, F32Out dx, Ints strides,
                         Ints pad_lo, Ints pad_hi, Ints dilation, int64_t groups) {
  auto s = MakeGeometry(dx->dimensions(), kernel.dimensions(), dy.dimensions(), strides, pad_lo,
                        pad_hi, dilation, groups);
  return Run(pool, s, Op::kBackwardData, dx->typed_data(), kernel.typed_data(), dy.typed_data());
}

// dkernel = d conv(x, kernel) / dkernel applied to dy.
ffi::Future BackwardWeights(ffi::ThreadPool pool, F32 x, F32 dy, F32Out dkernel, Ints strides,
                            Ints pad_lo, Ints pad_hi, Ints dilation, int64_t groups) {
  auto s = MakeGeometry(x.dimensions(), dkernel->dimensions(), dy.dimensions(), strides, pad_lo,
                        pad_hi, dilation, groups);
  return Run(pool, s, Op::kBackwardWeights, x.typed_data(), dkernel->typed_data(),
             dy.typed_data());
}

// All three run on XLA's thread pool, take two float32 buffers, return one, and carry the same
// window attributes.
auto Binding() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<F32>()
      .Arg<F32>()
      .Ret<F32>()
      .Attr<Ints>("strides")
      .Attr<Ints>("padding_lo")
      .Attr<Ints>("padding_hi")
      .Attr<Ints>("dilation")
      .Attr<int64_t>("groups");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnJaxOnednnConvForward, Forward, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnJaxOnednnConvBackwardData, BackwardData, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(CnnJaxOnednnConvBackwardWeights, BackwardWeights, Binding());

// The oneDNN version this library runs against, for the loader's one-line report.
extern "C" const char* CnnJaxOnednnVersion() {
  static std::string text = [] {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch);
  }();
  return text.c_str();
}
