#include "engine/kernels/cpu/ops.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>

#include "engine/core/thread_pool.h"
#include "engine/kernels/cpu/exp_approx.h"

namespace v4b {

namespace {

void count(const KernelContext& ctx, int64_t flops, int64_t bytes) {
  if (ctx.counters) ctx.counters->add(FlopCategory::kElementwise, flops, bytes);
}

template <class W>
void rms_norm_impl(const KernelContext& ctx, const float* x, const W* w, float eps, int64_t n, int64_t rows, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double ss = 0;  // double: the mean of squares of thousands of values loses nothing
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int64_t i = 0; i < n; ++i) {
      float wi = 1.0f;
      if constexpr (std::is_same_v<W, Bf16>) wi = w ? bf16_to_float(w[i]) : 1.0f;
      else wi = w ? w[i] : 1.0f;
      yr[i] = xr[i] * inv * wi;
    }
  }
  count(ctx, rows * n * (w ? 4 : 3), rows * n * 8 + (w ? n * static_cast<int64_t>(sizeof(W)) : 0));
}

}  // namespace

void rms_norm(const KernelContext& ctx, const float* x, const float* w, float eps, int64_t n, int64_t rows, float* y) {
  rms_norm_impl(ctx, x, w, eps, n, rows, y);
}
void rms_norm(const KernelContext& ctx, const float* x, const Bf16* w, float eps, int64_t n, int64_t rows, float* y) {
  rms_norm_impl(ctx, x, w, eps, n, rows, y);
}

RopeTable make_rope_table(int64_t rope_dims, double base, const YarnParams* yarn) {
  RopeTable t;
  t.rope_dims = rope_dims;
  const int64_t pairs = rope_dims / 2;
  for (int64_t i = 0; i < pairs; ++i) t.theta.push_back(std::pow(base, -2.0 * i / rope_dims));
  if (yarn && yarn->factor > 1 && yarn->original_max_position > 0) {
    // The pair index at which a frequency completes `rotations` turns over the original context.
    auto band = [&](double rotations) {
      return rope_dims * std::log(yarn->original_max_position / (rotations * 2 * std::numbers::pi)) / (2 * std::log(base));
    };
    t.yarn_low = std::max<int64_t>(0, static_cast<int64_t>(std::floor(band(yarn->beta_fast))));
    t.yarn_high = std::min<int64_t>(rope_dims - 1, static_cast<int64_t>(std::ceil(band(yarn->beta_slow))));
    for (int64_t i = 0; i < pairs; ++i) {
      const double span = t.yarn_high == t.yarn_low ? 0.001 : double(t.yarn_high - t.yarn_low);
      const double ramp = std::clamp((i - t.yarn_low) / span, 0.0, 1.0);
      t.theta[i] = t.theta[i] * (1 - ramp) + t.theta[i] / yarn->factor * ramp;
    }
  }
  return t;
}

namespace {

template <bool kInterleaved>
void rope_impl(const KernelContext& ctx, float* x, int64_t count_, int64_t stride, int64_t off, const RopeTable& t, int64_t pos,
               bool inverse) {
  const int64_t pairs = t.rope_dims / 2;
  std::vector<float> cs(pairs), sn(pairs);
  for (int64_t i = 0; i < pairs; ++i) {
    const double a = static_cast<double>(pos) * t.theta[i] * (inverse ? -1 : 1);
    cs[i] = static_cast<float>(std::cos(a));
    sn[i] = static_cast<float>(std::sin(a));
  }
  for (int64_t v = 0; v < count_; ++v) {
    float* p = x + v * stride + off;
    for (int64_t i = 0; i < pairs; ++i) {
      float& re = kInterleaved ? p[2 * i] : p[i];
      float& im = kInterleaved ? p[2 * i + 1] : p[i + pairs];
      const float a = re, b = im;
      re = a * cs[i] - b * sn[i];
      im = a * sn[i] + b * cs[i];
    }
  }
  count(ctx, count_ * pairs * 6, count_ * t.rope_dims * 8);
}

}  // namespace

void rope_interleaved(const KernelContext& ctx, float* x, int64_t n, int64_t stride, int64_t off, const RopeTable& t, int64_t pos,
                      bool inverse) {
  rope_impl<true>(ctx, x, n, stride, off, t, pos, inverse);
}

void rope_half(const KernelContext& ctx, float* x, int64_t n, int64_t stride, int64_t off, const RopeTable& t, int64_t pos,
               bool inverse) {
  rope_impl<false>(ctx, x, n, stride, off, t, pos, inverse);
}

void softmax_with_sink(const KernelContext& ctx, float* z, int64_t n, float sink) {
  float m = sink;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, z[i]);
  if (m == -std::numeric_limits<float>::infinity()) m = 0;  // empty or all -inf: avoid inf - inf
  double sum = std::isinf(sink) && sink < 0 ? 0.0 : std::exp(double(sink) - m);
  for (int64_t i = 0; i < n; ++i) {
    z[i] = std::exp(z[i] - m);
    sum += z[i];
  }
  const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
  for (int64_t i = 0; i < n; ++i) z[i] *= inv;
  count(ctx, n * 4, n * 8);
}

float sqrt_softplus(float x) {
  // softplus(x) = log(1 + e^x), written to stay finite for large |x|.
  const double sp = x > 20 ? double(x) : std::log1p(std::exp(double(x)));
  return static_cast<float>(std::sqrt(sp));
}

namespace {

// Built for each ISA and picked at load time: the loop vectorises (elementwise, no FMA contraction,
// so every clone gives the same bits). No clamp is a limit of +inf.
__attribute__((target_clones("avx512f", "avx2", "default"))) void swiglu_range(const float* g, const float* u, int64_t n, float lim,
                                                                                float* h) {
  for (int64_t i = 0; i < n; ++i) h[i] = silu_approx(std::min(g[i], lim)) * std::clamp(u[i], -lim, lim);
}

}  // namespace

void swiglu(const KernelContext& ctx, const float* g, const float* u, int64_t n, float limit, float* h) {
  const float lim = limit > 0 ? limit : std::numeric_limits<float>::infinity();
  ThreadPool& pool = ctx.pool ? *ctx.pool : default_pool();
  pool.parallel_for(n, 16384, [&](int64_t b, int64_t e) { swiglu_range(g + b, u + b, e - b, lim, h + b); });
  count(ctx, n * 6, n * 12);
}

namespace {

std::vector<float> affinities(const float* logits, int64_t n, RouterScoring s) {
  std::vector<float> a(n);
  switch (s) {
    case RouterScoring::kSqrtSoftplus:
      for (int64_t i = 0; i < n; ++i) a[i] = sqrt_softplus(logits[i]);
      break;
    case RouterScoring::kSigmoid:
      for (int64_t i = 0; i < n; ++i) a[i] = 1.0f / (1.0f + std::exp(-logits[i]));
      break;
    case RouterScoring::kSoftmax:
      std::copy(logits, logits + n, a.begin());
      softmax_with_sink({}, a.data(), n, -std::numeric_limits<float>::infinity());
      break;
  }
  return a;
}

Route weigh(const std::vector<float>& a, std::vector<int32_t> ids, const RouteParams& p) {
  std::sort(ids.begin(), ids.end());
  Route r;
  r.experts = ids;
  double sum = 0;
  for (int32_t e : ids) sum += a[e];
  for (int32_t e : ids) {
    const double w = p.normalize && sum > 0 ? a[e] / sum : a[e];
    r.weights.push_back(static_cast<float>(w * p.scale));
  }
  return r;
}

}  // namespace

Route route_experts(const KernelContext& ctx, const float* logits, int64_t n, const float* bias, const RouteParams& p) {
  const std::vector<float> a = affinities(logits, n, p.scoring);
  std::vector<float> sel(a);
  if (bias)
    for (int64_t i = 0; i < n; ++i) sel[i] += bias[i];
  if (p.n_group > 1) {
    // Group-limited routing (V3): rank groups by the sum of their two best biased scores.
    const int64_t per = n / p.n_group;
    std::vector<float> group_score(p.n_group);
    for (int g = 0; g < p.n_group; ++g) {
      auto best = top_k({}, sel.data() + g * per, per, 2);
      for (int32_t i : best) group_score[g] += sel[g * per + i];
    }
    const auto keep = top_k({}, group_score.data(), p.n_group, p.topk_group);
    std::vector<bool> kept(p.n_group, false);
    for (int32_t g : keep) kept[g] = true;
    for (int64_t i = 0; i < n; ++i)
      if (!kept[i / per]) sel[i] = -std::numeric_limits<float>::infinity();
  }
  count(ctx, n * 6, n * 8);
  return weigh(a, top_k({}, sel.data(), n, p.top_k), p);
}

Route route_fixed(const KernelContext& ctx, const float* logits, int64_t n, std::span<const int64_t> experts, const RouteParams& p) {
  const std::vector<float> a = affinities(logits, n, p.scoring);
  std::vector<int32_t> ids;
  for (int64_t e : experts) ids.push_back(static_cast<int32_t>(e));
  count(ctx, n * 4, n * 4);
  return weigh(a, ids, p);
}

void sinkhorn(const KernelContext& ctx, float* c, int64_t n, int64_t iters, float eps) {
  auto rows = [&](bool softmax) {
    for (int64_t i = 0; i < n; ++i) {
      float* r = c + i * n;
      if (softmax) {
        softmax_with_sink({}, r, n, -std::numeric_limits<float>::infinity());
        for (int64_t j = 0; j < n; ++j) r[j] += eps;
      } else {
        float s = 0;
        for (int64_t j = 0; j < n; ++j) s += r[j];
        for (int64_t j = 0; j < n; ++j) r[j] /= s + eps;
      }
    }
  };
  auto cols = [&] {
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int64_t i = 0; i < n; ++i) s += c[i * n + j];
      for (int64_t i = 0; i < n; ++i) c[i * n + j] /= s + eps;
    }
  };
  rows(true);
  cols();
  for (int64_t it = 1; it < iters; ++it) {
    rows(false);
    cols();
  }
  count(ctx, iters * n * n * 4, n * n * 8);
}

std::vector<int32_t> top_k(const KernelContext& ctx, const float* v, int64_t n, int64_t k, TopKOrder order) {
  k = std::clamp<int64_t>(k, 0, n);
  std::vector<int32_t> idx;
  if (k == n) {
    idx.resize(n);
    std::iota(idx.begin(), idx.end(), 0);
  } else if (k > 0) {
    // Floats as unsigned keys in the same order (-0 as +0, since they tie), and back.
    auto order_key = [](float f) {
      const uint32_t b = std::bit_cast<uint32_t>(f == 0.0f ? 0.0f : f);
      return b & 0x80000000u ? ~b : b | 0x80000000u;
    };
    auto from_order_key = [](uint32_t key) { return std::bit_cast<float>(key & 0x80000000u ? key & 0x7fffffffu : ~key); };
    // One sweep keeps the candidates at or above a threshold, which a sample of the values puts a
    // little below the k-th largest (everything, when the input is short or the sample misleads).
    // The k-th largest candidate then fixes the cut, and a sweep of the candidates in index order
    // takes those above it and, of those equal to it, the lowest indices.
    thread_local std::vector<float> cv;
    thread_local std::vector<int32_t> ci;
    if (static_cast<int64_t>(cv.size()) < n) {
      cv.resize(n);
      ci.resize(n);
    }
    constexpr float kAll = -std::numeric_limits<float>::infinity();
    auto sweep = [&](float thr) {  // branch-free: every slot written, the count moves on for a keeper
      int64_t m = 0;
      for (int64_t i = 0; i < n; ++i) {
        cv[m] = v[i];
        ci[m] = static_cast<int32_t>(i);
        m += v[i] >= thr;
      }
      return m;
    };
    float thr = kAll;
    constexpr int64_t kSample = 256;
    if (n >= 8 * kSample) {
      float sample[kSample];
      for (int64_t j = 0; j < kSample; ++j) sample[j] = std::isnan(v[j * n / kSample]) ? kAll : v[j * n / kSample];
      // Twice the sample's expected count above the cut, and some: below the cut but for a rare sample.
      const int64_t rank = std::min(kSample - 1, 2 * kSample * k / n + 16);
      std::nth_element(sample, sample + rank, sample + kSample, std::greater<>());
      thr = sample[rank];
    }
    int64_t m = sweep(thr);
    if (m < k && thr != kAll) m = sweep(kAll);
    idx.reserve(k);
    if (m < k) {  // the rest are NaNs, which rank below every number
      idx.assign(ci.begin(), ci.begin() + m);
      for (int32_t i = 0; i < n && static_cast<int64_t>(idx.size()) < k; ++i)
        if (std::isnan(v[i])) idx.push_back(i);
      std::sort(idx.begin(), idx.end());
    } else {
      // The cut is the k-th largest candidate: the largest key K with at least k keys >= K, found
      // by bisection over the keys, each step a count that vectorises.
      auto at_least = [&](uint32_t key) {
        const float x = from_order_key(key);
        int64_t c = 0;
        for (int64_t j = 0; j < m; ++j) c += cv[j] >= x;
        return c;
      };
      uint32_t lo = order_key(*std::min_element(cv.begin(), cv.begin() + m)), hi = order_key(*std::max_element(cv.begin(), cv.begin() + m));
      while (lo < hi) {  // at_least(lo) >= k always; find the largest such key
        const uint32_t mid = lo + (hi - lo + 1) / 2;
        if (at_least(mid) >= k) lo = mid;
        else hi = mid - 1;
      }
      const float cut = from_order_key(lo);
      int64_t ties = k - (lo == UINT32_MAX ? 0 : at_least(lo + 1));
      idx.resize(k + 1);  // the last slot takes the writes of those left out once k are in
      int64_t w = 0;
      for (int64_t j = 0; j < m; ++j) {  // branch-free: those above the cut, and the first ties at it
        const bool tie = cv[j] == cut, take = cv[j] > cut || (tie && ties > 0);
        idx[std::min(w, k)] = ci[j];
        w += take;
        ties -= tie && take;
      }
      idx.resize(k);
    }
    if (order == TopKOrder::kByValue)  // idx is in index order, so ties stay lowest index first
      std::stable_sort(idx.begin(), idx.end(), [v](int32_t a, int32_t b) {
        return !std::isnan(v[a]) && (std::isnan(v[b]) || v[a] > v[b]);
      });
  }
  count(ctx, n, n * 4);
  return idx;
}

}  // namespace v4b
