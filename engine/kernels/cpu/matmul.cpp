#include "engine/kernels/cpu/matmul.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

#include "engine/core/int_math.h"
#include "engine/core/qdq.h"
#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/matmul_kernels.h"

namespace v4b {

namespace {

// From this many activation rows on, packing dequantised panels for the GEMM beats the GEMV
// kernels (benches/bench_matmul.cpp, 14336x4096 on Zen 4: at 16 rows GEMV 32/37/35% of the FMA
// peak for bf16/fp8/mxfp4 against GEMM 27/36/19%; at 32 rows GEMM 42/46/38% against 33/36/33%).
constexpr int64_t kGemmMinRows = 17;
// Weight rows a GEMV pass holds in L1 for all its groups of activation rows.
constexpr int64_t kGemvBlock = 16;

const MatmulKernels& kernels_for(CpuIsa isa) {
  switch (resolve_cpu_isa(isa)) {
    case CpuIsa::kAvx512: return matmul_kernels_avx512();
    case CpuIsa::kAvx2: return matmul_kernels_avx2();
    default: return matmul_kernels_generic();
  }
}

void validate(const WeightMatrix& w) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("matmul: " + why); };
  if (w.rows <= 0 || w.cols <= 0 || !w.data) fail("empty weight matrix");
  const bool scaled = w.layout == WeightLayout::kFp8Ue8m0 || w.layout == WeightLayout::kFp8F32 || w.layout == WeightLayout::kMxfp4;
  if (scaled && !w.scales) fail("quantised weights without scales");
  if (w.layout == WeightLayout::kMxfp4 && w.cols % 32) fail("mxfp4 weights need a multiple of 32 columns");
}

int64_t round_up(int64_t v, int64_t m) { return ceil_div(v, m) * m; }

// Exponent P so that activations times 2^P stay finite, and as large as 100 so products with raw
// E4M3 values (true value x 2^-120) land in the normal float range.
int fp8_prescale(const float* x, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (!(amax > 0) || !std::isfinite(amax)) return 100;
  int e = 0;
  std::frexp(amax, &e);  // amax < 2^e
  return std::clamp(126 - e, 0, 100);
}

}  // namespace

void bf16dot_activations(WeightLayout layout, const float* x, int64_t m, int64_t k, uint16_t* out) {
  for (int64_t i = 0; i < m * k; ++i) out[i] = float_to_bf16(x[i]).bits;
  if (layout != WeightLayout::kMxfp4) return;
  std::vector<uint16_t> group(64);
  for (int64_t g = 0; g < m * k; g += 64) {
    for (int j = 0; j < 16; ++j) {
      group[2 * j] = out[g + 4 * j];
      group[2 * j + 1] = out[g + 4 * j + 2];
      group[32 + 2 * j] = out[g + 4 * j + 1];
      group[32 + 2 * j + 1] = out[g + 4 * j + 3];
    }
    std::copy(group.begin(), group.end(), out + g);
  }
}

int64_t WeightMatrix::data_bytes() const {
  switch (layout) {
    case WeightLayout::kF32: return rows * cols * 4;
    case WeightLayout::kBf16: return rows * cols * 2;
    case WeightLayout::kFp8Ue8m0:
    case WeightLayout::kFp8F32: return rows * cols;
    case WeightLayout::kMxfp4: return rows * cols / 2;
  }
  return 0;
}

int64_t WeightMatrix::scale_bytes() const {
  const int64_t blocks = ((rows + 127) / 128) * ((cols + 127) / 128);
  switch (layout) {
    case WeightLayout::kFp8Ue8m0: return blocks;
    case WeightLayout::kFp8F32: return blocks * 4;
    case WeightLayout::kMxfp4: return rows * (cols / 32);
    default: return 0;
  }
}

namespace {

// x[0, n) rounded to BF16 (as floats) in buf.
const float* bf16_rounded(const float* x, int64_t n, std::vector<float>& buf) {
  buf.resize(n);
  for (int64_t i = 0; i < n; ++i) buf[i] = round_to_bf16(x[i]);
  return buf.data();
}

// A GEMV product's activations in the form its weight layout's kernel wants, and its groups of up
// to four activation rows. Built in place (the groups point into the buffers).
struct GemvPlan {
  GemvFn gemv = nullptr;
  std::vector<float> rounded, xa, xb;
  std::vector<uint16_t> xh;
  std::vector<GemvArgs> groups;

  void prepare(const KernelContext& ctx, const MatmulKernels& k, const float* x, int64_t m, const WeightMatrix& w, float* y) {
    const int64_t N = w.rows, K = w.cols;
    // With bf16_activations, quantised and BF16 weights meet BF16-rounded activations on every path
    // and ISA, so the BF16 dot-product kernels compute what the others do. Those kernels round the
    // activations as they lay them out (bf16dot_activations); the FP8 ones are rounded first all the
    // same, as they are pre-scaled before that layout is built.
    const bool fp8 = w.layout == WeightLayout::kFp8Ue8m0 || w.layout == WeightLayout::kFp8F32;
    const GemvFn dot = ctx.bf16_activations && resolve_cpu_isa(ctx.isa) == CpuIsa::kAvx512 ? gemv_bf16dot(w.layout, K) : nullptr;
    if (ctx.bf16_activations && w.layout != WeightLayout::kF32 && (fp8 || !dot)) {
      x = bf16_rounded(x, m * K, rounded);
    }
    gemv = k.gemv;
    const float* x0 = x;
    const float* x1 = nullptr;
    int64_t ldx = K;
    int prescale = 0;
    if (fp8) {
      prescale = fp8_prescale(x, m * K);
      const float f = std::ldexp(1.0f, prescale);
      xa.resize(m * K);
      for (int64_t i = 0; i < m * K; ++i) xa[i] = x[i] * f;
      x0 = xa.data();
    }
    if (dot) {
      xh.resize(m * K);
      bf16dot_activations(w.layout, x0, m, K, xh.data());
      gemv = dot;
    } else if (w.layout == WeightLayout::kMxfp4) {
      ldx = K / 2;
      xa.resize(m * ldx);
      xb.resize(m * ldx);
      for (int64_t i = 0; i < m * ldx; ++i) {
        xa[i] = x[2 * i];
        xb[i] = x[2 * i + 1];
      }
      x0 = xa.data();
      x1 = xb.data();
    }
    for (int64_t r0 = 0; r0 < m; r0 += 4)
      groups.push_back({&w, x0 + r0 * ldx, x1 ? x1 + r0 * ldx : nullptr, ldx, y + r0 * N, N,
                        static_cast<int>(std::min<int64_t>(4, m - r0)), prescale, xh.empty() ? nullptr : xh.data() + r0 * ldx});
  }

  // Output rows [n0, n1): each block of weight rows meets every group while it is still in L1, so
  // the weights stream from memory once however many activation rows there are.
  void run(int64_t n0, int64_t n1) const {
    for (int64_t b0 = n0; b0 < n1; b0 += kGemvBlock)
      for (const GemvArgs& g : groups) gemv(g, b0, std::min(n1, b0 + kGemvBlock));
  }
};

// Output columns per pool chunk of a GEMM, whole panels of `panel` columns: about four chunks per
// thread, or all columns at once below 2^17 multiply-adds, where waking the pool costs more than
// it saves.
int64_t gemm_grain(const ThreadPool& pool, int64_t m, int64_t N, int64_t K, int64_t panel) {
  if (m * N * K < (int64_t{1} << 17)) return N;
  return round_up(std::max<int64_t>(panel, N / (4 * pool.size())), panel);
}

// Packs the activations' row tiles over the pool (each tile of mr rows packs on its own):
// pack(t0, t1) packs tiles [t0, t1), at least 2^14 values per chunk.
template <class Pack>
void pack_tiles(ThreadPool& pool, int64_t m, int64_t mr, int64_t K, const Pack& pack) {
  pool.parallel_for(ceil_div(m, mr), std::max<int64_t>(1, (int64_t{1} << 14) / (mr * K)), pack);
}

// One x [m][K] rounded to BF16 and packed as gemm_bf16dot's activation tiles: a matmul_group keeps
// them for its other products of the same x (a layer's projections of one input).
struct Bf16Tiles {
  const float* x;
  int64_t m, K;
  std::vector<uint32_t> tiles;
};

// The BF16 dot-product GEMM (rounding x as it packs it, or taking its tiles from `packed`, where
// it also leaves them), where the build, the CPU and the shape allow it; false where they do not.
bool gemm_bf16dot(const KernelContext& ctx, ThreadPool& pool, const float* x, int64_t m, const WeightMatrix& w, float* y,
                  std::vector<Bf16Tiles>* packed = nullptr) {
  const Bf16WeightGemmFn dot = resolve_cpu_isa(ctx.isa) == CpuIsa::kAvx512 ? gemm_bf16_weights_dot(w.cols) : nullptr;
  if (!dot) return false;
  const int64_t N = w.rows, K = w.cols;
  std::vector<uint32_t> own;
  const uint32_t* apack = nullptr;
  for (size_t i = 0; packed && i < packed->size(); ++i)
    if (const Bf16Tiles& t = (*packed)[i]; t.x == x && t.m == m && t.K == K) apack = t.tiles.data();
  if (!apack) {
    own.resize(round_up(m, 8) * (K / 2));
    pack_tiles(pool, m, 8, K, [&](int64_t t0, int64_t t1) {
      pack_bf16_pairs(x + t0 * 8 * K, std::min(m, t1 * 8) - t0 * 8, K, own.data() + t0 * 8 * (K / 2));
    });
    apack = own.data();
    if (packed) apack = packed->emplace_back(Bf16Tiles{x, m, K, std::move(own)}).tiles.data();
  }
  const Bf16WeightGemmArgs args{&w, apack, m, y, N};
  pool.parallel_for(N, gemm_grain(pool, m, N, K, 32), [&](int64_t n0, int64_t n1) { dot(args, n0, n1); });
  return true;
}

// m >= kGemmMinRows: the BF16 dot-product GEMM for quantised and BF16 weights meeting BF16
// activations where it applies, else the packed FP32 GEMM.
void gemm(const KernelContext& ctx, const MatmulKernels& k, ThreadPool& pool, const float* x, int64_t m, const WeightMatrix& w,
          float* y, std::vector<Bf16Tiles>& packed) {
  if (ctx.bf16_activations && w.layout != WeightLayout::kF32 && gemm_bf16dot(ctx, pool, x, m, w, y, &packed)) return;
  const int64_t N = w.rows, K = w.cols;
  std::vector<float> rounded;
  if (ctx.bf16_activations && w.layout != WeightLayout::kF32) x = bf16_rounded(x, m * K, rounded);
  // Activations packed once here rather than by every chunk.
  std::vector<float> apack((m + k.gemm_mr - 1) / k.gemm_mr * k.gemm_mr * K);
  GemmArgs args{&w, x, K, y, N, m};
  pack_tiles(pool, m, k.gemm_mr, K, [&](int64_t t0, int64_t t1) {
    GemmArgs part = args;
    part.x = x + t0 * k.gemm_mr * K;
    part.m = std::min(m, t1 * k.gemm_mr) - t0 * k.gemm_mr;
    k.pack_a(part, apack.data() + t0 * k.gemm_mr * K);
  });
  args.apack = apack.data();
  pool.parallel_for(N, gemm_grain(pool, m, N, K, k.gemm_nr), [&](int64_t n0, int64_t n1) { k.gemm(args, n0, n1); });
}

// The products of matmul_group, its inputs and outputs as given.
void run_group(const KernelContext& ctx, std::span<const MatmulJob> jobs) {
  const MatmulKernels& k = kernels_for(ctx.isa);
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  std::vector<GemvPlan> plans(jobs.size());
  std::vector<Bf16Tiles> packed;  // GEMM activation tiles, one per distinct x
  struct Chunk {
    const GemvPlan* plan;
    int64_t n0, n1;
  };
  std::vector<Chunk> chunks;
  int64_t gemv_work = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    validate(*job.w);
    if (job.m <= 0) continue;
    if (ctx.counters) {
      const WeightMatrix& w = *job.w;
      ctx.counters->add(job.category, 2 * job.m * w.rows * w.cols, w.data_bytes() + w.scale_bytes() + 4 * job.m * (w.cols + w.rows));
    }
    if (job.m >= kGemmMinRows) {
      gemm(ctx, k, pool, job.x, job.m, *job.w, job.y, packed);
      continue;
    }
    plans[j].prepare(ctx, k, job.x, job.m, *job.w, job.y);
    const int64_t N = job.w->rows;
    // Two chunks per thread over the group, as long as that allows within 16 KB to 1 MB of weights:
    // fewer, longer streams through memory (a chunk's rows are contiguous) ran lone small products
    // 15-25% faster than eight chunks each and a decode step's 12 expert products 3-5% faster as
    // whole ones; a short, wide product (mHC's 24 rows) still splits evenly, and a large one (the
    // head) in 1 MB chunks balanced 5-10% better than in four.
    const int64_t per_job = ceil_div(2 * pool.size(), static_cast<int64_t>(jobs.size()));
    const int64_t row_bytes = std::max<int64_t>(1, (job.w->data_bytes() + job.w->scale_bytes()) / N);
    const int64_t grain = std::max(std::min(ceil_div(N, per_job), (int64_t{1} << 20) / row_bytes), ceil_div(16384, row_bytes));
    for (int64_t n0 = 0; n0 < N; n0 += grain) chunks.push_back({&plans[j], n0, std::min(N, n0 + grain)});
    gemv_work += job.m * N * job.w->cols;
  }
  // Every GEMV product's chunks in one pass over the pool (inline below the size where waking it
  // costs more than it saves: 32k multiply-adds, 128 KB of FP32 weights): small products keep both
  // cores streaming, without a dispatch and an uneven tail each.
  if (gemv_work < (int64_t{1} << 15)) {
    for (const Chunk& c : chunks) c.plan->run(c.n0, c.n1);
    return;
  }
  pool.parallel_for(static_cast<int64_t>(chunks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) chunks[i].plan->run(chunks[i].n0, chunks[i].n1);
  });
}


}  // namespace

void matmul_group(const KernelContext& ctx, std::span<const MatmulJob> jobs_in) {
  // act_quant inputs, each quantised once into a copy that its jobs then read.
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  std::vector<MatmulJob> quantised_jobs;
  std::vector<std::pair<const float*, std::vector<float>>> quantised;
  std::span<const MatmulJob> jobs = jobs_in;
  if (std::any_of(jobs_in.begin(), jobs_in.end(), [](const MatmulJob& j) { return j.act_quant; })) {
    quantised_jobs.assign(jobs_in.begin(), jobs_in.end());
    for (MatmulJob& j : quantised_jobs) {
      if (!j.act_quant || j.m <= 0) continue;
      auto it = std::find_if(quantised.begin(), quantised.end(), [&](const auto& q) { return q.first == j.x; });
      if (it == quantised.end()) {
        const int64_t K = j.w->cols;
        std::vector<float> copy(j.m * K);
        pool.parallel_for(j.m, std::max<int64_t>(1, 16384 / K), [&](int64_t r0, int64_t r1) {
          std::copy(j.x + r0 * K, j.x + r1 * K, copy.data() + r0 * K);
          act_qdq(copy.data() + r0 * K, r1 - r0, K);
        });
        quantised.emplace_back(j.x, std::move(copy));
        it = quantised.end() - 1;
      }
      j.x = it->second.data();
    }
    jobs = quantised_jobs;
  }
  run_group(ctx, jobs);
  for (const MatmulJob& j : jobs) {
    if (!j.bf16_out || j.m <= 0) continue;
    const int64_t N = j.w->rows;
    pool.parallel_for(j.m, std::max<int64_t>(1, 65536 / N), [&](int64_t r0, int64_t r1) { round_bf16(j.y + r0 * N, (r1 - r0) * N); });
  }
}

void matmul(const KernelContext& ctx, FlopCategory category, const float* x, int64_t m, const WeightMatrix& w, float* y) {
  const MatmulJob job{category, x, m, &w, y};
  matmul_group(ctx, {&job, 1});
}

void matmul_bf16_exact(const KernelContext& ctx, FlopCategory category, const float* x, int64_t m, const float* b, int64_t n,
                       int64_t k, float* y) {
  const WeightMatrix b_rows{WeightLayout::kF32, n, k, b, nullptr};
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  if (m < kGemmMinRows || !gemm_bf16dot(ctx, pool, x, m, b_rows, y)) return matmul(ctx, category, x, m, b_rows, y);
  if (ctx.counters && n > 0) ctx.counters->add(category, 2 * m * n * k, 4 * (n * k + m * (k + n)));
}

bool index_scores_bf16(const KernelContext& ctx, const float* q, int64_t nq, int64_t heads, const float* w, const float* keys,
                       int64_t n, int64_t k, float* scores, int64_t ld, bool bf16_steps) {
  const IndexPanelFn panel = resolve_cpu_isa(ctx.isa) == CpuIsa::kAvx512 ? index_panel_dot(heads, k) : nullptr;
  if (!panel) return false;
  std::vector<uint32_t> qpack(nq * heads * (k / 2));  // heads % 8 == 0: whole tiles
  pack_bf16_pairs(q, nq * heads, k, qpack.data());
  const WeightMatrix key_rows{WeightLayout::kF32, n, k, keys, nullptr};
  const IndexPanelArgs args{qpack.data(), nq, heads, w, &key_rows, scores, ld, bf16_steps};
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  pool.parallel_for((n + 31) / 32, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) panel(args, p * 32);
  });
  return true;
}

namespace {

// x[0..k) as integers within ±127 times 2^e (e from the lowest set bit of any value): writes the
// integers and returns e, or nullopt where they are not such (or not finite).
std::optional<int> as_int8(const float* x, int64_t k, int8_t* out) {
  int e = std::numeric_limits<int>::max();
  float amax = 0;
  for (int64_t i = 0; i < k; ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(x[i]) & 0x7FFFFFFFu;
    if (b == 0) continue;
    if (b >= 0x7F800000u) return std::nullopt;
    const int field = static_cast<int>(b >> 23);
    const uint32_t mant = (b & 0x7FFFFFu) | (field ? 0x800000u : 0u);  // value = mant x 2^(max(field, 1) - 150)
    e = std::min(e, std::max(field, 1) - 150 + std::countr_zero(mant));
    amax = std::max(amax, std::bit_cast<float>(b));
  }
  if (e == std::numeric_limits<int>::max()) e = 0;  // all zero
  if (std::ldexp(amax, -e) > 127.0f) return std::nullopt;
  const double unit = std::ldexp(1.0, -e);  // in double: 2^-e may exceed the float range
  for (int64_t i = 0; i < k; ++i) out[i] = static_cast<int8_t>(x[i] * unit);  // exact
  return e;
}

uint32_t four_bytes(const int8_t* v, int offset) {
  uint32_t d = 0;
  for (int j = 0; j < 4; ++j) d |= static_cast<uint32_t>(static_cast<uint8_t>(v[j] + offset)) << (8 * j);
  return d;
}

}  // namespace

void IndexKeysInt8::reset(int64_t k) {
  n_ = 0;
  k_ = k;
  usable_ = true;
  panels_.clear();
  scale_.clear();
}

void IndexKeysInt8::push_back(const float* row) {
  const int64_t kq = k_ / 4, key = n_++;
  if (!usable_) return;  // nothing will read the keys any more
  if (key % 32 == 0) {   // a new panel, its keys' integers 0 until set
    panels_.resize(panels_.size() + kq * 32, 0x80808080u);
    scale_.resize(scale_.size() + 32, 0.0f);
  }
  std::array<int8_t, kIndexMaxDim> v;
  const std::optional<int> e = as_int8(row, k_, v.data());
  if (!e) {
    usable_ = false;
    return;
  }
  scale_[key] = std::ldexp(1.0f, *e);
  uint32_t* dst = panels_.data() + (key / 32) * kq * 32 + key % 32;
  for (int64_t kk = 0; kk < kq; ++kk) dst[kk * 32] = four_bytes(v.data() + 4 * kk, 128);
}

bool index_int8_supported(const KernelContext& ctx, int64_t heads, int64_t k) {
  return resolve_cpu_isa(ctx.isa) == CpuIsa::kAvx512 && index_panel_int8(heads, k) != nullptr;
}

bool index_scores_int8(const KernelContext& ctx, const float* q, int64_t nq, int64_t heads, const float* w, const IndexKeysInt8& keys,
                       int64_t n, float* scores, int64_t ld, bool bf16_steps) {
  const int64_t k = keys.dim(), rows = nq * heads, kq = k / 4;
  if (!index_int8_supported(ctx, heads, k) || !keys.usable() || n > keys.size()) return false;
  // The query rows as integers, in tiles of 8 rows four bytes at a time (as pack_bf16_pairs lays pairs).
  std::vector<uint32_t> qpack(rows * kq);
  std::vector<int32_t> qcorr(rows);
  std::vector<float> wq(rows);
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  std::atomic<bool> ok = true;
  pool.parallel_for(rows, 64, [&](int64_t b, int64_t e) {
    std::vector<int8_t> v(k);
    for (int64_t r = b; r < e && ok; ++r) {
      const std::optional<int> ex = as_int8(q + r * k, k, v.data());
      if (!ex) {
        ok = false;
        return;
      }
      int32_t sum = 0;
      for (int8_t x : v) sum += x;
      qcorr[r] = 128 * sum;
      wq[r] = w[r] * std::ldexp(1.0f, *ex);
      for (int64_t kk = 0; kk < kq; ++kk) qpack[((r / 8) * kq + kk) * 8 + r % 8] = four_bytes(v.data() + 4 * kk, 0);
    }
  });
  if (!ok) return false;
  const IndexInt8Args args{qpack.data(), qcorr.data(), wq.data(), keys.panels(), keys.scales(), nq, heads, k, n, scores, ld, bf16_steps};
  const IndexInt8Fn panel = index_panel_int8(heads, k);
  pool.parallel_for((n + 31) / 32, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) panel(args, p);
  });
  return true;
}

void matmul(const KernelContext& ctx, FlopCategory category, const Bf16* x, int64_t m, const WeightMatrix& w, float* y) {
  std::vector<float> xf(m * w.cols);
  for (size_t i = 0; i < xf.size(); ++i) xf[i] = bf16_to_float(x[i]);
  matmul(ctx, category, xf.data(), m, w, y);
}

}  // namespace v4b
