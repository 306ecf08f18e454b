#include "engine/synth/synth.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "engine/core/dtypes.h"
#include "common/hashing.h"
#include "common/errors.h"
#include "common/host.h"
#include "engine/io/safetensors.h"
#include "engine/models/presets.h"
#include "engine/models/tensor_inventory.h"
#include "engine/synth/probe.h"

namespace v4b {

namespace {

// SplitMix64 seeded per tensor from (seed, name): the same tensor gets the same values whatever
// else the model holds.
struct Rng : SplitMix64 {
  explicit Rng(uint64_t seed) : SplitMix64{seed} {}
  float normal() {
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
  }
};

uint64_t hash_name(uint64_t seed, const std::string& name) { return fnv1a(name, kFnv1aOffset ^ seed); }

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Standard deviation of a weight: 1/sqrt(fan_in), times residual_scale on the projections that
// write back into the residual / mHC streams.
float weight_sd(const std::string& name, int64_t fan_in, float residual_scale) {
  float sd = 1.0f / std::sqrt(static_cast<float>(fan_in));
  if (contains(name, "wo_b") || contains(name, ".w2") || contains(name, "o_proj") || contains(name, "down_proj")) sd *= residual_scale;
  if (contains(name, "embed")) sd = 1.0f;
  return sd;
}

struct Buffer {
  TensorSpec spec;
  std::vector<uint8_t> bytes;
};

void fill_float(const Buffer& b, Rng& rng, std::vector<uint8_t>& out, float sd, float mean) {
  const int64_t n = numel(b.spec.shape);
  out.resize(n * dtype_size(b.spec.dtype));
  for (int64_t i = 0; i < n; ++i) {
    const float v = mean + sd * (sd > 0 ? rng.normal() : 0.0f);
    if (b.spec.dtype == DType::F32) std::memcpy(out.data() + 4 * i, &v, 4);
    else {
      const uint16_t h = float_to_bf16(v).bits;
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
}

// FP8 E4M3 with a power-of-two UE8M0 (or FP32) scale per 128x128 block.
void fill_fp8(Rng& rng, int64_t rows, int64_t cols, float sd, std::vector<uint8_t>& w, std::vector<uint8_t>& s, DType scale_t) {
  std::vector<float> v(rows * cols);
  for (auto& x : v) x = sd * rng.normal();
  w.resize(rows * cols);
  const int64_t rb = (rows + 127) / 128, cb = (cols + 127) / 128;
  s.resize(rb * cb * dtype_size(scale_t));
  for (int64_t bi = 0; bi < rb; ++bi)
    for (int64_t bj = 0; bj < cb; ++bj) {
      float amax = 0;
      for (int64_t r = bi * 128; r < std::min(rows, bi * 128 + 128); ++r)
        for (int64_t c = bj * 128; c < std::min(cols, bj * 128 + 128); ++c) amax = std::max(amax, std::fabs(v[r * cols + c]));
      const int e = pow2_ceil_exponent(std::max(amax, 1e-30f) / kE4m3Max);
      if (scale_t == DType::F32) {
        const float f = std::ldexp(1.0f, e);
        std::memcpy(s.data() + 4 * (bi * cb + bj), &f, 4);
      } else {
        s[bi * cb + bj] = ue8m0_from_exponent(e);
      }
      for (int64_t r = bi * 128; r < std::min(rows, bi * 128 + 128); ++r)
        for (int64_t c = bj * 128; c < std::min(cols, bj * 128 + 128); ++c) w[r * cols + c] = float_to_e4m3(std::ldexp(v[r * cols + c], -e));
    }
}

// MXFP4: E2M1 codes two per byte (low nibble first), UE8M0 scale per 32 inputs.
void fill_fp4(Rng& rng, int64_t rows, int64_t cols, float sd, std::vector<uint8_t>& w, std::vector<uint8_t>& s) {
  w.assign(rows * cols / 2, 0);
  s.resize(rows * cols / 32);
  float v[32];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols / 32; ++b) {
      float amax = 0;
      for (float& x : v) amax = std::max(amax, std::fabs(x = sd * rng.normal()));
      const int e = pow2_ceil_exponent(std::max(amax, 1e-30f) / kE2m1Max);
      s[r * (cols / 32) + b] = ue8m0_from_exponent(e);
      for (int i = 0; i < 32; i += 2) {
        const uint8_t lo = float_to_e2m1(std::ldexp(v[i], -e)), hi = float_to_e2m1(std::ldexp(v[i + 1], -e));
        w[(r * cols + b * 32 + i) / 2] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
}

// Seeded random values for every tensor, in their stored formats.
// residual_scale: config key "synthetic_residual_scale" (default 0.2). Smaller residual branches
// make a model less chaotic under FP8 activation quantisation (spec §7.6), for comparing arithmetics.
std::map<std::string, std::vector<uint8_t>> random_tensor_bytes(const ModelConfig& m, const std::vector<TensorSpec>& specs,
                                                                uint64_t seed, float residual_scale) {
  std::map<std::string, const TensorSpec*> by_name;
  for (const auto& s : specs) by_name[s.name] = &s;
  std::map<std::string, std::vector<uint8_t>> data;
  for (const TensorSpec& s : specs) {
    if (is_scale_tensor(s.name)) continue;  // written with its weight
    Rng rng{hash_name(seed, s.name)};
    std::vector<uint8_t>& out = data[s.name];
    const std::string& n = s.name;
    const std::string base = ends_with(n, ".weight") ? n.substr(0, n.size() - 7) : n;
    const std::string scale_name = m.is_v4() ? base + ".scale" : n + "_scale_inv";
    if (s.dtype == DType::F8_E4M3) {
      const TensorSpec* sc = by_name.at(scale_name);
      fill_fp8(rng, s.shape[0], s.shape[1], weight_sd(n, s.shape[1], residual_scale), out, data[scale_name], sc->dtype);
    } else if (s.dtype == DType::I8) {
      const int64_t cols = s.shape[1] * 2;
      fill_fp4(rng, s.shape[0], cols, weight_sd(n, cols, residual_scale), out, data[scale_name]);
    } else if (s.dtype == DType::I64) {  // tid2eid: distinct experts per token
      const int64_t rows = s.shape[0], k = s.shape[1];
      out.resize(rows * k * 8);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<int64_t> pick;
        while (static_cast<int64_t>(pick.size()) < k) {
          const int64_t e = static_cast<int64_t>(rng.next() % m.n_routed_experts);
          if (std::find(pick.begin(), pick.end(), e) == pick.end()) pick.push_back(e);
        }
        std::memcpy(out.data() + r * k * 8, pick.data(), k * 8);
      }
    } else {
      Buffer b{s, {}};
      if (contains(n, "norm")) fill_float(b, rng, out, 0.0f, 1.0f);  // norm weights (and V3.2 k_norm bias: 1 is harmless)
      else if (ends_with(n, "_base") || contains(n, "attn_sink") || ends_with(n, "gate.bias") || ends_with(n, "correction_bias"))
        fill_float(b, rng, out, 0.0f, 0.0f);
      else if (ends_with(n, "_scale")) fill_float(b, rng, out, 0.0f, 0.5f);   // mHC mixing scales
      else if (contains(n, "hc_") && ends_with(n, "_fn")) fill_float(b, rng, out, 0.05f, 0.0f);
      else if (ends_with(n, ".ape")) fill_float(b, rng, out, 0.5f, 0.0f);
      else if (s.shape.size() == 2) fill_float(b, rng, out, weight_sd(n, s.shape[1], residual_scale), 0.0f);
      else fill_float(b, rng, out, 0.02f, 0.0f);
    }
  }
  return data;
}

}  // namespace

void write_synthetic_checkpoint(const nlohmann::json& config, const std::string& dir, uint64_t seed) {
  namespace fs = std::filesystem;
  const ModelConfig m = parse_model_config(config, dir);
  const std::vector<TensorSpec> specs = expected_tensors(m, /*include_mtp=*/true);
  const float residual_scale = config.value("synthetic_residual_scale", 0.2f);
  if (!(residual_scale > 0.0f && residual_scale <= 1.0f)) throw UsageError("synthetic_residual_scale must be in (0, 1]");
  const auto data = is_probe_config(config) ? probe_tensor_bytes(m, specs) : random_tensor_bytes(m, specs, seed, residual_scale);

  std::vector<TensorToWrite> tensors;
  for (const TensorSpec& s : specs) {
    const auto& bytes = data.at(s.name);
    tensors.push_back({s.name, s.dtype, s.shape, {bytes.data(), bytes.size()}});
  }
  // Write into a sibling temp dir, then rename: a crash never leaves a half-written checkpoint.
  const fs::path final_dir(dir), tmp = fs::path(dir + ".tmp-" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_safetensors((tmp / "model.safetensors").string(), tensors, {{"format", "pt"}, {"synthetic_seed", std::to_string(seed)}});
  std::ofstream(tmp / "config.json") << config.dump(2) << "\n";
  fs::remove_all(final_dir);
  if (final_dir.has_parent_path()) fs::create_directories(final_dir.parent_path());
  fs::rename(tmp, final_dir);
}

std::string synthetic_model_dir(const std::string& preset, uint64_t seed) {
  namespace fs = std::filesystem;
  const nlohmann::json config = preset_config_json(preset);
  if (!config.value("synthetic", false))
    throw UsageError(fmt::format("'{}' has published shapes only; the engine runs synthetic presets or checkpoint directories", preset));
  const fs::path cache = fs::path(ceilings_cache_path()).parent_path() / "models" / fmt::format("{}-seed{}", preset, seed);
  // A cached copy is reused only if it was made from this exact config.
  if (fs::exists(cache / "config.json") && fs::exists(cache / "model.safetensors")) {
    std::ifstream in(cache / "config.json");
    if (nlohmann::json::parse(in, nullptr, false) == config) return cache.string();
  }
  write_synthetic_checkpoint(config, cache.string(), seed);
  return cache.string();
}

}  // namespace v4b
