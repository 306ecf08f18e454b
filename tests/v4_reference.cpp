#include "tests/v4_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numbers>

#include <nlohmann/json.hpp>

#include "engine/core/dtypes.h"
#include "engine/io/safetensors.h"

namespace v4b::test {

namespace ref_official {

double bf16(double x) { return bf16_to_float(float_to_bf16(static_cast<float>(x))); }

int scale_exponent(double amax, double qmax) {
  int e = 0;
  std::frexp(amax / qmax, &e);  // a first guess, then exact comparisons (ldexp is exact)
  while (std::ldexp(qmax, e - 1) >= amax) --e;
  while (std::ldexp(qmax, e) < amax) ++e;
  return e;
}

std::vector<double> act_quant(const std::vector<double>& x, int block) {
  std::vector<double> y(x.size());
  for (size_t b = 0; b < x.size(); b += block) {
    const size_t end = std::min(x.size(), b + block);
    double amax = 1e-4;
    for (size_t i = b; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
    const double s = std::ldexp(1.0, scale_exponent(amax, 448));
    for (size_t i = b; i < end; ++i) y[i] = e4m3_to_float(float_to_e4m3(static_cast<float>(std::clamp(x[i] / s, -448.0, 448.0)))) * s;
  }
  return y;
}

std::vector<double> head_rmsnorm_bf16(const std::vector<double>& q, double eps) {
  double sum = 0;
  for (double v : q) sum += bf16(v * v);         // square -> bf16, summed in FP32 (double here)
  const double mean = bf16(sum / q.size());     // mean -> bf16
  const double r = bf16(1 / std::sqrt(bf16(mean + eps)));  // + eps -> bf16, rsqrt -> bf16
  std::vector<double> y(q.size());
  for (size_t i = 0; i < q.size(); ++i) y[i] = bf16(q[i] * r);  // product -> bf16
  return y;
}

std::vector<double> sparse_attention(const std::vector<double>& q, const std::vector<const std::vector<double>*>& list, double sink,
                                     double scale) {
  const size_t D = q.size();
  double m = -INFINITY, sum = 0;
  std::vector<double> acc(D, 0.0);
  for (size_t b = 0; b < list.size(); b += 64) {
    const size_t end = std::min(list.size(), b + 64);
    std::vector<double> s(end - b, -INFINITY);
    double bmax = -INFINITY;
    for (size_t j = b; j < end; ++j) {
      if (!list[j]) continue;  // -1 entry
      double dot = 0;
      for (size_t k = 0; k < D; ++k) dot += q[k] * (*list[j])[k];
      s[j - b] = dot * scale;
      bmax = std::max(bmax, s[j - b]);
    }
    if (bmax == -INFINITY) continue;  // an all -1 block changes nothing (official lists never start with one)
    const double m2 = std::max(m, bmax), rescale = std::exp(m - m2);
    sum *= rescale;
    for (double& a : acc) a *= rescale;
    for (size_t j = b; j < end; ++j) {
      if (!list[j]) continue;
      const double p = std::exp(s[j - b] - m2);
      sum += p;                   // the running sum takes the FP32 probability
      const double pb = bf16(p);  // the PV product the BF16 one
      for (size_t k = 0; k < D; ++k) acc[k] += pb * (*list[j])[k];
    }
    m = m2;
  }
  sum += std::exp(sink - m);  // the sink: not scaled, not part of the max
  std::vector<double> out(D);
  for (size_t k = 0; k < D; ++k) out[k] = bf16(acc[k] / sum);
  return out;
}

std::vector<int64_t> topk(const std::vector<double>& scores, int64_t k) {
  std::vector<int64_t> idx(scores.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  idx.resize(std::min<size_t>(idx.size(), static_cast<size_t>(std::max<int64_t>(k, 0))));
  return idx;
}

}  // namespace ref_official

namespace {

using Vec = std::vector<double>;
struct Mat {
  int64_t rows = 0, cols = 0;
  Vec v;  // row-major
  DType dtype = DType::F32;  // as stored in the checkpoint (decides the official GEMM, §7.7 d)
  Vec mul(const Vec& x) const {
    Vec y(rows, 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) y[r] += v[r * cols + c] * x[c];
    return y;
  }
};

// Reads any tensor as doubles, dequantising FP8 (128x128 UE8M0 blocks) and packed FP4 (UE8M0 per 32).
class Ckpt {
 public:
  explicit Ckpt(const std::string& dir) : r_(dir) {}
  bool has(const std::string& n) const { return r_.find(n) != nullptr; }
  Vec vec(const std::string& n) const { return mat(n).v; }
  Mat mat(const std::string& n) const {
    const TensorInfo& t = r_.at(n);
    Mat m;
    m.rows = t.shape.size() == 2 ? t.shape[0] : 1;
    m.cols = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
    m.dtype = t.dtype;
    const uint8_t* d = t.data;
    const std::string base = n.size() > 7 && n.ends_with(".weight") ? n.substr(0, n.size() - 7) : n;
    switch (t.dtype) {
      case DType::F32:
        for (int64_t i = 0; i < m.rows * m.cols; ++i) {
          float f;
          std::memcpy(&f, d + 4 * i, 4);
          m.v.push_back(f);
        }
        break;
      case DType::BF16:
        for (int64_t i = 0; i < m.rows * m.cols; ++i) {
          uint16_t b;
          std::memcpy(&b, d + 2 * i, 2);
          m.v.push_back(bf16_to_float(Bf16{b}));
        }
        break;
      case DType::F8_E4M3: {
        const TensorInfo& s = r_.at(base + ".scale");
        const int64_t cb = (m.cols + 127) / 128;
        for (int64_t r = 0; r < m.rows; ++r)
          for (int64_t c = 0; c < m.cols; ++c)
            m.v.push_back(e4m3_to_float(d[r * m.cols + c]) * std::ldexp(1.0, s.data[(r / 128) * cb + c / 128] - 127));
        break;
      }
      case DType::I8: {
        const TensorInfo& s = r_.at(base + ".scale");
        m.cols *= 2;
        for (int64_t r = 0; r < m.rows; ++r)
          for (int64_t c = 0; c < m.cols; ++c) {
            const uint8_t byte = d[(r * m.cols + c) / 2];
            const uint8_t code = c % 2 ? byte >> 4 : byte & 0xF;
            m.v.push_back(e2m1_to_float(code) * std::ldexp(1.0, s.data[r * (m.cols / 32) + c / 32] - 127));
          }
        break;
      }
      default: throw std::runtime_error("reference: unexpected dtype for " + n);
    }
    return m;
  }
  std::vector<int64_t> i64(const std::string& n) const {
    const TensorInfo& t = r_.at(n);
    std::vector<int64_t> out(t.numel());
    std::memcpy(out.data(), t.data, out.size() * 8);
    return out;
  }

 private:
  CheckpointReader r_;
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

Vec rmsnorm(const Vec& x, const Vec* w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * (w ? (*w)[i] : 1.0);
  return y;
}

// Pair (x[off+2i], x[off+2i+1]) rotated by angle sign*pos*theta_i.
void rope(double* x, int64_t off, const Vec& theta, int64_t pos, double sign) {
  for (size_t i = 0; i < theta.size(); ++i) {
    const double a = sign * pos * theta[i], c = std::cos(a), s = std::sin(a);
    const double re = x[off + 2 * i], im = x[off + 2 * i + 1];
    x[off + 2 * i] = re * c - im * s;
    x[off + 2 * i + 1] = re * s + im * c;
  }
}

// The QDQ steps of spec §2.1.5-2.1.7: scale = 2^ceil(log2(amax / qmax)), the exponent found exactly.
double pow2_scale(double amax, double floor_, double qmax) {
  return std::ldexp(1.0, ref_official::scale_exponent(std::max(amax, floor_), qmax));
}
void fp8_qdq(double* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 64) {
    double amax = 0;
    for (int64_t i = b; i < std::min(n, b + 64); ++i) amax = std::max(amax, std::fabs(x[i]));
    const double s = pow2_scale(amax, 1e-4, 448);
    for (int64_t i = b; i < std::min(n, b + 64); ++i) x[i] = e4m3_to_float(float_to_e4m3(static_cast<float>(std::clamp(x[i] / s, -448.0, 448.0)))) * s;
  }
}
void fp4_qdq(double* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    double amax = 0;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const double s = pow2_scale(amax, 6 * std::ldexp(1.0, -126), 6);
    for (int64_t i = b; i < b + 32; ++i) x[i] = e2m1_to_float(float_to_e2m1(static_cast<float>(std::clamp(x[i] / s, -6.0, 6.0)))) * s;
  }
}
// Orthonormal Sylvester-order Walsh-Hadamard of 128, written as the matrix product.
void hadamard(double* x) {
  double y[128];
  for (int i = 0; i < 128; ++i) {
    double s = 0;
    for (int j = 0; j < 128; ++j) s += (__builtin_popcount(i & j) % 2 ? -1.0 : 1.0) * x[j];
    y[i] = s / std::sqrt(128.0);
  }
  std::copy(y, y + 128, x);
}

struct Compressor {
  Mat wkv, wgate;
  Vec ape, norm;
};

struct Layer {
  int ratio = 0;
  bool hash = false;
  Vec attn_norm, ffn_norm, q_norm, kv_norm, sink, hc_attn_base, hc_attn_scale, hc_ffn_base, hc_ffn_scale, gate_bias;
  Mat hc_attn_fn, hc_ffn_fn, wq_a, wq_b, wkv, wo_a, wo_b, gate, sw1, sw2, sw3, iwq_b, iwp;
  std::vector<Mat> w1, w2, w3;
  std::vector<int64_t> tid2eid;
  Compressor comp, icomp;
  Vec theta;
  // History (the reference keeps everything and recomputes).
  std::vector<Vec> raw_kv, comp_c, comp_z, icomp_c, icomp_z, crows, ikeys;
};

}  // namespace

std::vector<std::vector<double>> v4_reference_logits(const std::string& dir, const std::vector<int>& tokens, bool dense) {
  return v4_reference_logits(dir, tokens, dense, RefNumerics::kFp64);
}

std::vector<std::vector<double>> v4_reference_logits(const std::string& dir, const std::vector<int>& tokens, bool dense,
                                                     RefNumerics numerics) {
  using namespace ref_official;
  const bool off = numerics == RefNumerics::kOfficial;
  std::ifstream in(dir + "/config.json");
  const nlohmann::json cfg = nlohmann::json::parse(in);
  const Ckpt ck(dir);
  const int64_t d = cfg["hidden_size"], L = cfg["num_hidden_layers"], H = cfg["num_attention_heads"], D = cfg["head_dim"];
  const int64_t R = cfg["qk_rope_head_dim"], N = D - R, G = cfg["o_groups"], RO = cfg["o_lora_rank"], W = cfg["sliding_window"];
  const int64_t HI = cfg["index_n_heads"], DI = cfg["index_head_dim"], TOPK = cfg["index_topk"], NHC = cfg["hc_mult"];
  const int64_t E = cfg["n_routed_experts"], K = cfg["num_experts_per_tok"], SI = cfg["hc_sinkhorn_iters"];
  const double eps = cfg.value("rms_norm_eps", 1e-6), hc_eps = cfg.value("hc_eps", 1e-6), limit = cfg["swiglu_limit"];
  const double route_scale = cfg["routed_scaling_factor"];
  const int64_t n_hash = cfg["num_hash_layers"];

  // Frequencies (spec §2.1.3), computed here from the formula.
  auto thetas = [&](double base, bool yarn) {
    Vec t(R / 2);
    for (int64_t i = 0; i < R / 2; ++i) t[i] = std::pow(base, -2.0 * i / R);
    if (yarn) {
      const auto& rs = cfg["rope_scaling"];
      const double orig = rs["original_max_position_embeddings"], f = rs["factor"];
      const double lo = std::floor(R * std::log(orig / (double(rs["beta_fast"]) * 2 * std::numbers::pi)) / (2 * std::log(base)));
      const double hi = std::ceil(R * std::log(orig / (double(rs["beta_slow"]) * 2 * std::numbers::pi)) / (2 * std::log(base)));
      for (int64_t i = 0; i < R / 2; ++i) {
        const double ramp = std::clamp((i - std::max(lo, 0.0)) / (std::min(hi, double(R - 1)) - std::max(lo, 0.0)), 0.0, 1.0);
        t[i] = t[i] * (1 - ramp) + t[i] / f * ramp;
      }
    }
    return t;
  };

  std::vector<Layer> layers(L);
  for (int64_t l = 0; l < L; ++l) {
    Layer& y = layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    y.ratio = cfg["compress_ratios"][l];
    y.hash = l < n_hash;
    y.attn_norm = ck.vec(p + "attn_norm.weight");
    y.ffn_norm = ck.vec(p + "ffn_norm.weight");
    y.hc_attn_fn = ck.mat(p + "hc_attn_fn");
    y.hc_attn_base = ck.vec(p + "hc_attn_base");
    y.hc_attn_scale = ck.vec(p + "hc_attn_scale");
    y.hc_ffn_fn = ck.mat(p + "hc_ffn_fn");
    y.hc_ffn_base = ck.vec(p + "hc_ffn_base");
    y.hc_ffn_scale = ck.vec(p + "hc_ffn_scale");
    y.sink = ck.vec(p + "attn.attn_sink");
    y.wq_a = ck.mat(p + "attn.wq_a.weight");
    y.q_norm = ck.vec(p + "attn.q_norm.weight");
    y.wq_b = ck.mat(p + "attn.wq_b.weight");
    y.wkv = ck.mat(p + "attn.wkv.weight");
    y.kv_norm = ck.vec(p + "attn.kv_norm.weight");
    y.wo_a = ck.mat(p + "attn.wo_a.weight");
    y.wo_b = ck.mat(p + "attn.wo_b.weight");
    y.gate = ck.mat(p + "ffn.gate.weight");
    if (y.hash) y.tid2eid = ck.i64(p + "ffn.gate.tid2eid");
    else y.gate_bias = ck.vec(p + "ffn.gate.bias");
    y.sw1 = ck.mat(p + "ffn.shared_experts.w1.weight");
    y.sw2 = ck.mat(p + "ffn.shared_experts.w2.weight");
    y.sw3 = ck.mat(p + "ffn.shared_experts.w3.weight");
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = p + "ffn.experts." + std::to_string(e) + ".";
      y.w1.push_back(ck.mat(ep + "w1.weight"));
      y.w2.push_back(ck.mat(ep + "w2.weight"));
      y.w3.push_back(ck.mat(ep + "w3.weight"));
    }
    auto load_comp = [&](const std::string& cp) {
      return Compressor{ck.mat(cp + ".wkv.weight"), ck.mat(cp + ".wgate.weight"), ck.vec(cp + ".ape"), ck.vec(cp + ".norm.weight")};
    };
    if (y.ratio) y.comp = load_comp(p + "attn.compressor");
    if (y.ratio == 4) {
      y.icomp = load_comp(p + "attn.indexer.compressor");
      y.iwq_b = ck.mat(p + "attn.indexer.wq_b.weight");
      y.iwp = ck.mat(p + "attn.indexer.weights_proj.weight");
    }
    y.theta = y.ratio ? thetas(cfg["compress_rope_theta"], true) : thetas(cfg["rope_theta"], false);
  }
  const Mat embed = ck.mat("embed.weight"), head = ck.mat("head.weight"), hc_head_fn = ck.mat("hc_head_fn");
  const Vec norm = ck.vec("norm.weight"), hc_head_base = ck.vec("hc_head_base"), hc_head_scale = ck.vec("hc_head_scale");

  // Official numerics (spec §7.7): rnd() rounds to BF16 where the official code holds a BF16 tensor;
  // in FP64 mode it changes nothing.
  auto rnd = [&](Vec v) {
    if (off)
      for (double& e : v) e = bf16(e);
    return v;
  };
  // Linear layers (§7.7 d). Official: FP8 / FP4 weights quantise the input (act_quant) and give a
  // BF16 result, BF16 weights a BF16 result, FP32 weights an FP32 one. Named exceptions at the call
  // sites: the compressor wkv / wgate and the MoE gate are stored BF16 but run as FP32 linears
  // (§1.6), as does the head; wo_a (stored FP8) runs as a BF16 einsum without act_quant.
  enum class Gemm { kByDtype, kF32 };
  auto lin = [&](const Mat& w, const Vec& x, Gemm how = Gemm::kByDtype) {
    if (!off || how == Gemm::kF32) return w.mul(x);
    if (w.dtype == DType::BF16) return rnd(w.mul(x));
    if (w.dtype == DType::F8_E4M3 || w.dtype == DType::I8) return rnd(w.mul(act_quant(x)));
    return w.mul(x);  // F32 weights
  };
  // RMSNorm (§7.7 c): bf16(w * (x * rsqrt(mean(x²) + eps))).
  auto norm_ = [&](const Vec& x, const Vec* w) { return rnd(rmsnorm(x, w, eps)); };

  // mHC pre (spec §2.3.1-2.3.2) -> u, post, comb. Official: mixes and Sinkhorn in FP32, u = bf16(Σ pre_i X_i).
  auto hc_pre = [&](const std::vector<Vec>& X, const Mat& fn, const Vec& base, const Vec& scale, Vec& post, Vec& comb) {
    Vec flat;
    for (const Vec& s : X) flat.insert(flat.end(), s.begin(), s.end());
    double ss = 0;
    for (double v : flat) ss += v * v;
    const double r = 1 / std::sqrt(ss / flat.size() + eps);
    Vec mix = fn.mul(flat);
    for (double& v : mix) v *= r;
    Vec pre(NHC);
    post.assign(NHC, 0);
    comb.assign(NHC * NHC, 0);
    for (int64_t i = 0; i < NHC; ++i) pre[i] = sigmoid(mix[i] * scale[0] + base[i]) + hc_eps;
    for (int64_t j = 0; j < NHC; ++j) post[j] = 2 * sigmoid(mix[NHC + j] * scale[1] + base[NHC + j]);
    for (int64_t k = 0; k < NHC * NHC; ++k) comb[k] = mix[2 * NHC + k] * scale[2] + base[2 * NHC + k];
    for (int64_t i = 0; i < NHC; ++i) {  // row softmax + eps
      double mx = -1e300, s = 0;
      for (int64_t j = 0; j < NHC; ++j) mx = std::max(mx, comb[i * NHC + j]);
      for (int64_t j = 0; j < NHC; ++j) s += std::exp(comb[i * NHC + j] - mx);
      for (int64_t j = 0; j < NHC; ++j) comb[i * NHC + j] = std::exp(comb[i * NHC + j] - mx) / s + hc_eps;
    }
    auto cols = [&] {
      for (int64_t j = 0; j < NHC; ++j) {
        double s = 0;
        for (int64_t i = 0; i < NHC; ++i) s += comb[i * NHC + j];
        for (int64_t i = 0; i < NHC; ++i) comb[i * NHC + j] /= s + hc_eps;
      }
    };
    cols();
    for (int64_t it = 1; it < SI; ++it) {
      for (int64_t i = 0; i < NHC; ++i) {
        double s = 0;
        for (int64_t j = 0; j < NHC; ++j) s += comb[i * NHC + j];
        for (int64_t j = 0; j < NHC; ++j) comb[i * NHC + j] /= s + hc_eps;
      }
      cols();
    }
    Vec u(d, 0.0);
    for (int64_t i = 0; i < NHC; ++i)
      for (int64_t c = 0; c < d; ++c) u[c] += pre[i] * X[i][c];
    return rnd(u);
  };
  // mHC post (§2.3.3). Official: X'[k] = bf16(post_k·o + Σ_j comb[j,k]·X[j]).
  auto hc_post = [&](std::vector<Vec>& X, const Vec& o, const Vec& post, const Vec& comb) {
    std::vector<Vec> Y(NHC, Vec(d, 0.0));
    for (int64_t j = 0; j < NHC; ++j) {
      for (int64_t c = 0; c < d; ++c) {
        Y[j][c] = post[j] * o[c];
        for (int64_t i = 0; i < NHC; ++i) Y[j][c] += comb[i * NHC + j] * X[i][c];
      }
      Y[j] = rnd(Y[j]);
    }
    X = Y;
  };

  // Compressed row i of one compressor, pooled from the token history (spec §2.5). Official: the
  // pooled FP32 row -> bf16 -> norm (bf16) -> RoPE (bf16) -> FP8 QDQ, or Hadamard (bf16) -> FP4 QDQ.
  auto pool_row = [&](const Layer& y, const Compressor& cp, const std::vector<Vec>& cs, const std::vector<Vec>& zs, int64_t i,
                      int64_t width, bool index) {
    const int ratio = y.ratio;
    Vec row(width, 0.0);
    for (int64_t c = 0; c < width; ++c) {
      std::vector<std::pair<double, double>> slots;  // (score, value)
      if (ratio == 4) {
        for (int64_t t = 4 * i - 4; t < 4 * i; ++t)
          if (t >= 0) slots.push_back({zs[t][c] + cp.ape[(t % 4) * 2 * width + c], cs[t][c]});
        for (int64_t t = 4 * i; t < 4 * i + 4; ++t)
          slots.push_back({zs[t][width + c] + cp.ape[(t % 4) * 2 * width + width + c], cs[t][width + c]});
      } else {
        for (int64_t t = ratio * i; t < ratio * (i + 1); ++t) slots.push_back({zs[t][c] + cp.ape[(t % ratio) * width + c], cs[t][c]});
      }
      double mx = -1e300, num = 0, den = 0;
      for (auto [s, v] : slots) mx = std::max(mx, s);
      for (auto [s, v] : slots) {
        num += std::exp(s - mx) * v;
        den += std::exp(s - mx);
      }
      row[c] = num / den;
    }
    row = norm_(rnd(row), &cp.norm);
    rope(row.data(), width - R, y.theta, i * ratio, 1);
    row = rnd(row);
    if (index) {
      hadamard(row.data());
      row = rnd(row);
      fp4_qdq(row.data(), width);
    } else {
      fp8_qdq(row.data(), width - R);
    }
    return row;
  };

  std::vector<std::vector<double>> all_logits;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int tok = tokens[t];
    // Embedding (BF16 in the checkpoint) repeated into the mHC streams.
    std::vector<Vec> X(NHC, rnd(Vec(embed.v.begin() + tok * d, embed.v.begin() + (tok + 1) * d)));
    for (int64_t l = 0; l < L; ++l) {
      Layer& y = layers[l];
      Vec post, comb;
      Vec x = norm_(hc_pre(X, y.hc_attn_fn, y.hc_attn_base, y.hc_attn_scale, post, comb), &y.attn_norm);
      // Query and raw KV (spec §2.4).
      Vec cq = norm_(lin(y.wq_a, x), &y.q_norm);
      Vec q = lin(y.wq_b, cq);
      for (int64_t h = 0; h < H; ++h) {
        Vec qh(q.begin() + h * D, q.begin() + (h + 1) * D);
        qh = off ? head_rmsnorm_bf16(qh, eps) : rmsnorm(qh, nullptr, eps);  // official: BF16 arithmetic (§7.2)
        rope(qh.data(), N, y.theta, t, 1);
        qh = rnd(qh);
        std::copy(qh.begin(), qh.end(), q.begin() + h * D);
      }
      Vec kv = norm_(lin(y.wkv, x), &y.kv_norm);
      rope(kv.data(), N, y.theta, t, 1);
      kv = rnd(kv);
      fp8_qdq(kv.data(), N);
      y.raw_kv.push_back(kv);

      // The attention list: window entries chronologically, then compressed rows. A nullptr is an
      // official -1 entry: official numerics pad the window to W slots, always, as official decode
      // does (official prefill of T < W tokens pads to T instead: an ulp-level difference, §7.7).
      std::vector<const Vec*> entries;
      const int64_t first = dense ? 0 : std::max<int64_t>(0, int64_t(t) - W + 1);
      for (int64_t p = first; p <= int64_t(t); ++p) entries.push_back(&y.raw_kv[p]);
      if (off && !dense)
        while (int64_t(entries.size()) < W) entries.push_back(nullptr);
      if (!dense && y.ratio) {
        // Compressor projections are FP32 linears in both numerics.
        y.comp_c.push_back(lin(y.comp.wkv, x, Gemm::kF32));
        y.comp_z.push_back(lin(y.comp.wgate, x, Gemm::kF32));
        if ((t + 1) % y.ratio == 0) y.crows.push_back(pool_row(y, y.comp, y.comp_c, y.comp_z, (t + 1) / y.ratio - 1, D, false));
        if (y.ratio == 4) {
          y.icomp_c.push_back(lin(y.icomp.wkv, x, Gemm::kF32));
          y.icomp_z.push_back(lin(y.icomp.wgate, x, Gemm::kF32));
          if ((t + 1) % 4 == 0) y.ikeys.push_back(pool_row(y, y.icomp, y.icomp_c, y.icomp_z, (t + 1) / 4 - 1, DI, true));
          // Lightning indexer (spec §2.6; official §7.7 h).
          Vec qi = lin(y.iwq_b, cq);
          for (int64_t h = 0; h < HI; ++h) {
            double* qh = qi.data() + h * DI;
            rope(qh, DI - R, y.theta, t, 1);
            if (off)
              for (int64_t k = 0; k < DI; ++k) qh[k] = bf16(qh[k]);
            hadamard(qh);
            if (off)
              for (int64_t k = 0; k < DI; ++k) qh[k] = bf16(qh[k]);
            fp4_qdq(qh, DI);
          }
          Vec hw = lin(y.iwp, x);
          const double c = 1 / (std::sqrt(double(DI)) * std::sqrt(double(HI)));
          std::vector<double> score(y.ikeys.size(), 0.0);
          for (size_t s = 0; s < y.ikeys.size(); ++s) {
            for (int64_t h = 0; h < HI; ++h) {
              double dot = 0;
              for (int64_t k = 0; k < DI; ++k) dot += qi[h * DI + k] * y.ikeys[s][k];
              if (off) {  // BF16 scores (§7.1): each step rounds; w_h = bf16(bf16(weights_proj x) · fp32(c))
                score[s] += bf16(std::max(bf16(dot), 0.0) * bf16(hw[h] * static_cast<float>(c)));
              } else {
                score[s] += hw[h] / (std::sqrt(double(DI)) * std::sqrt(double(HI))) * std::max(dot, 0.0);
              }
            }
            if (off) score[s] = bf16(score[s]);
          }
          for (int64_t s : topk(score, TOPK)) entries.push_back(&y.crows[s]);  // top-k order
        } else {
          for (const Vec& r : y.crows) entries.push_back(&r);  // HCA: every visible row, ascending
        }
      }
      // Core attention with sink, inverse RoPE, grouped output (spec §2.4 steps 5-7).
      Vec o(H * D, 0.0);
      for (int64_t h = 0; h < H; ++h) {
        if (off) {  // the kernel's 64-entry online softmax (§7.3)
          const Vec qh(q.begin() + h * D, q.begin() + (h + 1) * D);
          const Vec oh = sparse_attention(qh, entries, y.sink[h], 1 / std::sqrt(double(D)));
          std::copy(oh.begin(), oh.end(), o.begin() + h * D);
        } else {
          std::vector<double> z;
          for (const Vec* e : entries) {
            double dot = 0;
            for (int64_t k = 0; k < D; ++k) dot += q[h * D + k] * (*e)[k];
            z.push_back(dot / std::sqrt(double(D)));
          }
          double mx = y.sink[h];
          for (double v : z) mx = std::max(mx, v);
          double den = std::exp(y.sink[h] - mx);
          for (double v : z) den += std::exp(v - mx);
          for (size_t j = 0; j < entries.size(); ++j)
            for (int64_t k = 0; k < D; ++k) o[h * D + k] += std::exp(z[j] - mx) / den * (*entries[j])[k];
        }
        rope(o.data() + h * D, N, y.theta, t, -1);
      }
      o = rnd(o);
      // wo_a per group: official dequantises it to BF16 and runs a BF16 einsum (no act_quant).
      Vec cat;
      const int64_t gin = H * D / G;
      for (int64_t g = 0; g < G; ++g) {
        Vec og(o.begin() + g * gin, o.begin() + (g + 1) * gin);
        for (int64_t r = 0; r < RO; ++r) {
          double s = 0;
          for (int64_t c = 0; c < gin; ++c) s += y.wo_a.v[(g * RO + r) * gin + c] * og[c];
          cat.push_back(s);
        }
      }
      hc_post(X, lin(y.wo_b, rnd(cat)), post, comb);

      // MoE (spec §2.8; official §7.7 l).
      x = norm_(hc_pre(X, y.hc_ffn_fn, y.hc_ffn_base, y.hc_ffn_scale, post, comb), &y.ffn_norm);
      Vec logit = lin(y.gate, x, Gemm::kF32), aff(E);
      for (int64_t e = 0; e < E; ++e) {
        const double sp = off && logit[e] > 20 ? logit[e] : std::log1p(std::exp(logit[e]));  // official softplus: linear above 20
        aff[e] = std::sqrt(sp);
      }
      std::vector<int64_t> chosen;
      if (y.hash) {
        for (int64_t k = 0; k < K; ++k) chosen.push_back(y.tid2eid[tok * K + k]);
      } else {
        std::vector<std::pair<double, int64_t>> sel;
        for (int64_t e = 0; e < E; ++e) sel.push_back({-(aff[e] + y.gate_bias[e]), e});
        std::sort(sel.begin(), sel.end());
        for (int64_t k = 0; k < K; ++k) chosen.push_back(sel[k].second);
      }
      double wsum = 0;
      for (int64_t e : chosen) wsum += aff[e];
      // SwiGLU with clamps; official: w1, w3 give BF16, silu(g)·u·weight in FP32 -> bf16 -> w2 (bf16).
      auto expert = [&](const Mat& w1, const Mat& w2, const Mat& w3, double weight) {
        Vec g = lin(w1, x), u = lin(w3, x);
        for (size_t i = 0; i < g.size(); ++i) {
          const double gi = std::min(g[i], limit), ui = std::clamp(u[i], -limit, limit);
          g[i] = gi / (1 + std::exp(-gi)) * ui * weight;
        }
        return lin(w2, rnd(g));
      };
      Vec f;
      if (off) {  // routed outputs summed in ascending expert id, then the shared expert, then bf16
        std::sort(chosen.begin(), chosen.end());
        f.assign(d, 0.0);
        for (int64_t e : chosen) {
          const Vec ye = expert(y.w1[e], y.w2[e], y.w3[e], aff[e] / wsum * route_scale);
          for (int64_t c = 0; c < d; ++c) f[c] += ye[c];
        }
        const Vec sh = expert(y.sw1, y.sw2, y.sw3, 1.0);
        for (int64_t c = 0; c < d; ++c) f[c] += sh[c];
        f = rnd(f);
      } else {
        f = expert(y.sw1, y.sw2, y.sw3, 1.0);
        for (int64_t e : chosen) {
          Vec ye = expert(y.w1[e], y.w2[e], y.w3[e], aff[e] / wsum * route_scale);
          for (int64_t c = 0; c < d; ++c) f[c] += ye[c];
        }
      }
      hc_post(X, f, post, comb);
    }
    // Head collapse, norm, logits (spec §2.3.4, §2.2). Official: h = bf16(Σ w_i X_i), norm (bf16),
    // logits in FP32 (unrounded).
    Vec flat;
    for (const Vec& s : X) flat.insert(flat.end(), s.begin(), s.end());
    double ss = 0;
    for (double v : flat) ss += v * v;
    const double r = 1 / std::sqrt(ss / flat.size() + eps);
    Vec mix = hc_head_fn.mul(flat), h(d, 0.0);
    for (int64_t i = 0; i < NHC; ++i) {
      const double w = sigmoid(mix[i] * r * hc_head_scale[0] + hc_head_base[i]) + hc_eps;
      for (int64_t c = 0; c < d; ++c) h[c] += w * X[i][c];
    }
    all_logits.push_back(lin(head, norm_(rnd(h), &norm), Gemm::kF32));
  }
  return all_logits;
}

}  // namespace v4b::test
