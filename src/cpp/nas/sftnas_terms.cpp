// Differentiable SFTNAS hardware terms: see sftnas_terms.hpp for the formulas.
#include "nas/sftnas_terms.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

namespace harcore {

namespace {

constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;  // per-field bound, keeps every product exact
constexpr int64_t kMaxTotal = int64_t{1} << 40;       // bound on the flat mask / prob lengths

[[noreturn]] void fail(const std::string& msg) { throw GraphError("sftnas: " + msg); }

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_tail(const std::vector<SftnasTailTerm>& terms, const char* field) {
  for (size_t t = 0; t < terms.size(); ++t) {
    const SftnasTailTerm& term = terms[t];
    const std::pair<const char*, double> coefs[4] = {{"a", term.a}, {"b", term.b}, {"c", term.c}, {"d", term.d}};
    for (const auto& [name, v] : coefs) {
      if (!std::isfinite(v)) {
        fail(std::string(field) + "[" + std::to_string(t) + "]." + name + " must be finite, got " + num(v));
      }
    }
  }
}

double tail_value(const SftnasTailTerm& t, double bL, double c) { return t.a + t.b * bL + t.c * c + t.d * bL * c; }

// CMSIS-NN DSP scratch of one candidate conv (k x 1 over (time, sensor), b_prev -> B_j feature channels), as the
// cost model sizes it: a 1 -> 1 conv lowers to the depthwise `_opt` kernel (harcore.quant.lower.is_depthwise),
// whose int16 column holds k values; a 1x1 conv needs none; any other conv the generic im2col 4 * ceil4(k b).
double conv_scratch_bytes(double k, double b_prev, double b_j) {
  if (b_prev == 1.0 && b_j == 1.0) return 2.0 * k;
  return k == 1.0 ? 0.0 : 16.0 * std::ceil(k * b_prev / 4.0);
}

std::string candidate_name(const SftnasSpace& space, int64_t layer, int64_t j) {
  const auto& ks = space.layers()[layer].kernels;
  if (j < static_cast<int64_t>(ks.size())) {
    return "candidate " + std::to_string(j) + " (conv k=" + std::to_string(ks[j]) + ")";
  }
  return "candidate " + std::to_string(j) + " (identity)";
}

// Sum of a non-negative finite vector; on a bad entry, throws naming `what(index)`.
template <typename T, typename Describe>
double checked_sum(const T* x, int64_t n, Describe&& describe) {
  double s = 0.0;
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    s += v;
    ok &= (v >= 0.0);  // false for NaN and negatives
  }
  if (ok && std::isfinite(s)) return s;
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    if (std::isnan(v)) fail(describe(i) + " is NaN");
    if (v < 0.0) fail(describe(i) + " is negative (" + num(v) + ")");
    if (!std::isfinite(v)) fail(describe(i) + " is infinite");
  }
  fail(describe(0) + ": sum overflows");
}

}  // namespace

int64_t sftnas_num_stride2(int64_t s0) {
  if (s0 < 4) fail("s0 must be >= 4 for N = floor(log2(s0 / 4)) >= 0, got " + std::to_string(s0));
  int64_t n = 0;
  while ((int64_t{4} << (n + 1)) <= s0) ++n;  // largest n with 4 * 2^n <= s0
  return n;
}

SftnasSpace::SftnasSpace(int64_t c0, int64_t s0, std::vector<SftnasLayerSpec> layers,
                         std::vector<SftnasTailTerm> tail_mem, std::vector<SftnasTailTerm> tail_macs)
    : c0_(c0), s0_(s0), layers_(std::move(layers)), tail_mem_(std::move(tail_mem)), tail_macs_(std::move(tail_macs)) {
  if (c0_ < 1 || c0_ > kMaxDim) fail("space field c0 must be in [1, 2^31), got " + std::to_string(c0_));
  if (s0_ < 1 || s0_ > kMaxDim) fail("space field s0 must be in [1, 2^31), got " + std::to_string(s0_));
  if (layers_.empty()) fail("space field layers is empty: the stage needs at least one layer");
  check_tail(tail_mem_, "tail_mem");
  check_tail(tail_macs_, "tail_macs");

  const size_t L = layers_.size();
  lengths_.assign(L + 1, 0);
  conv_offsets_.assign(L + 1, 0);
  prob_offsets_.assign(L + 1, 0);
  lengths_[0] = s0_;
  for (size_t i = 0; i < L; ++i) {
    const SftnasLayerSpec& l = layers_[i];
    const std::string where = "layer " + std::to_string(i) + ": ";
    if (l.stride < 1 || l.stride > kMaxDim) fail(where + "stride must be >= 1, got " + std::to_string(l.stride));
    if (l.filters < 1 || l.filters > kMaxDim) {
      fail(where + "filters must be in [1, 2^31), got " + std::to_string(l.filters));
    }
    if (l.kernels.empty()) fail(where + "kernels is empty: every layer needs at least one conv candidate");
    for (size_t j = 0; j < l.kernels.size(); ++j) {
      const int64_t k = l.kernels[j];
      if (k < 1 || k > kMaxDim || k % 2 == 0) {
        fail(where + "kernels[" + std::to_string(j) + "] must be odd and >= 1 ('same' padding (k-1)/2), got " +
             std::to_string(k));
      }
      for (size_t q = 0; q < j; ++q) {
        if (l.kernels[q] == k) {
          fail(where + "kernels[" + std::to_string(j) + "] duplicates kernel " + std::to_string(k));
        }
      }
    }
    lengths_[i + 1] = (lengths_[i] + l.stride - 1) / l.stride;
    const int64_t n = static_cast<int64_t>(l.kernels.size());
    conv_offsets_[i + 1] = conv_offsets_[i] + n;
    prob_offsets_[i + 1] = prob_offsets_[i] + n + (l.stride == 1 ? 1 : 0);
    if (static_cast<double>(n) * static_cast<double>(l.filters) + static_cast<double>(n_masks_) >
        static_cast<double>(kMaxTotal)) {
      fail(where + "total mask length exceeds 2^40");
    }
    n_masks_ += n * l.filters;
  }
  n_convs_ = conv_offsets_[L];
  n_probs_ = prob_offsets_[L];
}

template <typename T>
SftnasValues sftnas_forward(const SftnasSpace& space, const T* b0, int64_t n_b0, const T* masks,
                            int64_t n_masks, const T* probs, int64_t n_probs, double scale,
                            double mem_limit, double* jac) {
  if (n_b0 != space.c0()) {
    fail("b0 has " + std::to_string(n_b0) + " entries, expected c0 = " + std::to_string(space.c0()));
  }
  if (n_masks != space.num_masks()) {
    fail("masks has " + std::to_string(n_masks) + " entries, expected " + std::to_string(space.num_masks()) +
         " (sum over layers of conv candidates x filters)");
  }
  if (n_probs != space.num_probs()) {
    fail("probs has " + std::to_string(n_probs) + " entries, expected " + std::to_string(space.num_probs()) +
         " (sum over layers of conv candidates, + 1 identity on stride-1 layers)");
  }
  if (!(scale > 0.0) || !std::isfinite(scale)) fail("scale must be positive and finite, got " + num(scale));
  // +inf is allowed: no memory limit, L_memory = 0 (a search without --sram)
  if (!(mem_limit > 0.0)) fail("mem_limit (L_Mem) must be positive (or +inf: no limit), got " + num(mem_limit));

  const auto& layers = space.layers();
  const auto& len = space.lengths();
  const auto& coff = space.conv_offsets();
  const auto& poff = space.prob_offsets();
  const int64_t L = space.num_layers();
  const int64_t nB = space.num_convs();

  // ---- sums of the masks (validated) ---------------------------------------------------------
  const double C = checked_sum(b0, n_b0, [](int64_t i) { return "b0[" + std::to_string(i) + "]"; });
  std::vector<double> B(static_cast<size_t>(coff.back()));
  {
    const T* m = masks;
    for (int64_t i = 0; i < L; ++i) {
      const int64_t F = layers[i].filters;
      const int64_t n = coff[i + 1] - coff[i];
      for (int64_t j = 0; j < n; ++j, m += F) {
        const int64_t base = m - masks;
        B[coff[i] + j] = checked_sum(m, F, [&](int64_t f) {
          return "masks[" + std::to_string(base + f) + "] (layer " + std::to_string(i) + ", " +
                 candidate_name(space, i, j) + ", filter " + std::to_string(f) + ")";
        });
      }
    }
  }
  for (int64_t i = 0; i < L; ++i) {
    for (int64_t q = poff[i]; q < poff[i + 1]; ++q) {
      const double v = static_cast<double>(probs[q]);
      if (!(v >= 0.0) || !std::isfinite(v)) {
        fail("probs[" + std::to_string(q) + "] (layer " + std::to_string(i) + ", " +
             candidate_name(space, i, q - poff[i]) + ") must be finite and >= 0, got " + num(v));
      }
    }
  }

  // ---- forward ------------------------------------------------------------------------------
  const double inv_s2 = 1.0 / (scale * scale);
  std::vector<double> bh(layers.size() + 1);
  std::vector<double> mem(layers.size());
  bh[0] = 1.0;  // F_0 = 1: the raw input has one feature per (time, sensor)
  double M = 0.0;
  double Lc = 0.0;
  for (int64_t i = 0; i < L; ++i) {
    const SftnasLayerSpec& l = layers[i];
    const double s_in = static_cast<double>(len[i]);
    const double s_out = static_cast<double>(len[i + 1]);
    const double bprev = bh[i];
    const double in_bytes = s_in * C * bprev;
    const int64_t n = coff[i + 1] - coff[i];
    const T* p = probs + poff[i];
    double b_next = 0.0;
    double m_i = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double pj = static_cast<double>(p[j]);
      const double Bj = B[coff[i] + j];
      const int64_t k = l.kernels[j];
      const double kd = static_cast<double>(k);
      const double macs = s_out * C * bprev * Bj * kd;
      M += pj * macs;
      Lc += pj * macs * macs * inv_s2;
      const double extra = conv_scratch_bytes(kd, bprev, Bj);
      m_i += pj * (in_bytes + s_out * C * Bj + extra);
      b_next += pj * Bj;
    }
    if (l.stride == 1) b_next += static_cast<double>(p[n]) * bprev;
    bh[i + 1] = b_next;
    mem[i] = m_i;
  }
  const double bL = bh[L];
  for (const SftnasTailTerm& t : space.tail_macs()) {
    const double m = tail_value(t, bL, C);
    M += m;
    Lc += m * m * inv_s2;
  }
  double pmem = -std::numeric_limits<double>::infinity();
  int64_t arg = -1;
  for (int64_t i = 0; i < L; ++i) {
    if (mem[i] > pmem) {
      pmem = mem[i];
      arg = i;
    }
  }
  const auto& tmem = space.tail_mem();
  for (size_t t = 0; t < tmem.size(); ++t) {
    const double m = tail_value(tmem[t], bL, C);
    if (m > pmem) {
      pmem = m;
      arg = L + static_cast<int64_t>(t);
    }
  }
  // The stage input buffer s0 c^0 is resident too. Any conv reading it already holds at least that much,
  // so this term only decides PMem when every layer is an identity and no tail term is larger; it comes
  // last so that ties give the gradient to the layers.
  const double s0 = static_cast<double>(space.s0());
  const int64_t input_term = L + static_cast<int64_t>(tmem.size());
  if (s0 * C > pmem) {
    pmem = s0 * C;
    arg = input_term;
  }
  const bool over = pmem > mem_limit;
  SftnasValues out;
  out.values[kSftnasMacs] = M;
  out.values[kSftnasComplexity] = Lc;
  out.values[kSftnasPMem] = pmem;
  out.values[kSftnasMemLoss] = over ? std::log(pmem / mem_limit) : 0.0;
  out.pmem_term = arg;

  // ---- reverse mode: rows M, L_c, PMem (L_mem = factor * PMem row) --------------------------
  const int64_t ncol = space.num_jac_columns();
  for (int64_t c = 0; c < 4 * ncol; ++c) jac[c] = 0.0;
  double* rows[3] = {jac + kSftnasMacs * ncol, jac + kSftnasComplexity * ncol, jac + kSftnasPMem * ncol};
  double* jM = rows[0];
  double* jC = rows[1];
  double* jP = rows[2];
  double abh[3] = {0.0, 0.0, 0.0};  // adjoints of b^_i (running, starts at b^_L)
  for (const SftnasTailTerm& t : space.tail_macs()) {
    const double d_bL = t.b + t.d * C;
    const double d_C = t.c + t.d * bL;
    const double w = 2.0 * tail_value(t, bL, C) * inv_s2;
    jM[0] += d_C;
    abh[0] += d_bL;
    jC[0] += w * d_C;
    abh[1] += w * d_bL;
  }
  if (arg == input_term) {
    jP[0] += s0;
  } else if (arg >= L) {
    const SftnasTailTerm& t = tmem[static_cast<size_t>(arg - L)];
    jP[0] += t.c + t.d * bL;
    abh[2] += t.b + t.d * C;
  }
  for (int64_t i = L - 1; i >= 0; --i) {
    const SftnasLayerSpec& l = layers[i];
    const double s_in = static_cast<double>(len[i]);
    const double s_out = static_cast<double>(len[i + 1]);
    const double bprev = bh[i];
    const double in_bytes = s_in * C * bprev;
    const int64_t n = coff[i + 1] - coff[i];
    const T* p = probs + poff[i];
    const bool peak = arg == i;
    double aprev[3] = {0.0, 0.0, 0.0};
    for (int64_t j = 0; j < n; ++j) {
      const double pj = static_cast<double>(p[j]);
      const double Bj = B[coff[i] + j];
      const int64_t k = l.kernels[j];
      const double kd = static_cast<double>(k);
      const int64_t cb = 1 + coff[i] + j;
      const int64_t cp = 1 + nB + poff[i] + j;
      const double macs = s_out * C * bprev * Bj * kd;
      const double dm_dB = s_out * C * bprev * kd;
      const double dm_dC = s_out * bprev * Bj * kd;
      const double dm_db = s_out * C * Bj * kd;
      // expected MACs
      jM[cp] += macs;
      jM[cb] += pj * dm_dB;
      jM[0] += pj * dm_dC;
      aprev[0] += pj * dm_db;
      // complexity
      const double w = 2.0 * pj * macs * inv_s2;
      jC[cp] += macs * macs * inv_s2;
      jC[cb] += w * dm_dB;
      jC[0] += w * dm_dC;
      aprev[1] += w * dm_db;
      // peak memory (only the arg-max layer)
      if (peak) {
        const double extra = conv_scratch_bytes(kd, bprev, Bj);
        jP[cp] += in_bytes + s_out * C * Bj + extra;
        jP[cb] += pj * s_out * C;
        jP[0] += pj * (s_in * bprev + s_out * Bj);
        const bool ceil4 = k != 1 && !(bprev == 1.0 && Bj == 1.0);  // the im2col scratch, not 0 or the depthwise's
        aprev[2] += pj * (s_in * C + (ceil4 ? 4.0 * kd : 0.0));  // straight-through ceil4
      }
      // b^_i = sum_j p_j B_j + p_id b^_{i-1}
      for (int o = 0; o < 3; ++o) {
        rows[o][cp] += abh[o] * Bj;
        rows[o][cb] += abh[o] * pj;
      }
    }
    if (l.stride == 1) {
      const double q = static_cast<double>(p[n]);
      const int64_t cp = 1 + nB + poff[i] + n;
      for (int o = 0; o < 3; ++o) {
        rows[o][cp] += abh[o] * bprev;
        aprev[o] += abh[o] * q;
      }
    }
    for (int o = 0; o < 3; ++o) abh[o] = aprev[o];
  }
  // abh now holds d/d b^_0; b^_0 = 1 is a constant.
  double* jL = jac + kSftnasMemLoss * ncol;
  if (over) {
    const double f = 1.0 / pmem;
    for (int64_t c = 0; c < ncol; ++c) jL[c] = f * jP[c];
  }
  return out;
}

template <typename T>
void sftnas_backward(const SftnasSpace& space, const double* jac, const double grad_out[4], T* g_b0,
                     T* g_masks, T* g_probs) {
  const int64_t ncol = space.num_jac_columns();
  const int64_t nB = space.num_convs();
  auto vjp = [&](int64_t c) {
    return grad_out[0] * jac[c] + grad_out[1] * jac[ncol + c] + grad_out[2] * jac[2 * ncol + c] +
           grad_out[3] * jac[3 * ncol + c];
  };
  const T gc = static_cast<T>(vjp(0));
  for (int64_t c = 0; c < space.c0(); ++c) g_b0[c] = gc;
  const auto& layers = space.layers();
  const auto& coff = space.conv_offsets();
  T* m = g_masks;
  for (int64_t i = 0; i < space.num_layers(); ++i) {
    const int64_t F = layers[i].filters;
    for (int64_t pair = coff[i]; pair < coff[i + 1]; ++pair, m += F) {
      const T g = static_cast<T>(vjp(1 + pair));
      for (int64_t f = 0; f < F; ++f) m[f] = g;
    }
  }
  for (int64_t q = 0; q < space.num_probs(); ++q) g_probs[q] = static_cast<T>(vjp(1 + nB + q));
}

template SftnasValues sftnas_forward<float>(const SftnasSpace&, const float*, int64_t, const float*, int64_t,
                                            const float*, int64_t, double, double, double*);
template SftnasValues sftnas_forward<double>(const SftnasSpace&, const double*, int64_t, const double*, int64_t,
                                             const double*, int64_t, double, double, double*);
template void sftnas_backward<float>(const SftnasSpace&, const double*, const double[4], float*, float*, float*);
template void sftnas_backward<double>(const SftnasSpace&, const double*, const double[4], double*, double*,
                                      double*);

}  // namespace harcore
