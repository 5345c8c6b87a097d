// Scalar reference attention: per query row, scores in key order, softmax with the row max
// subtracted, then the weighted sums; the backward recomputes P from lse.
#include <cmath>
#include <vector>

#include "attention/attention.h"

namespace nq::attention {

namespace {

float dot(const float* a, const float* b, int64_t d) {
  float acc = 0.0f;
  for (int64_t i = 0; i < d; ++i) acc += a[i] * b[i];
  return acc;
}

}  // namespace

void forward_ref(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                 float* lse) {
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads;
  std::vector<float> p(size_t(s.kv_len));  // one row of scores, then probabilities
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.q_heads; ++h)
      for (int64_t t = 0; t < s.q_len; ++t) {
        const int64_t n = visible(s, t), kh = h / group;
        const float* qt = q + q_at(s, b, t, h);
        float max = -INFINITY, sum = 0.0f;
        for (int64_t j = 0; j < n; ++j) max = std::fmax(max, p[j] = s.scale * dot(qt, k + k_at(s, b, j, kh), d));
        for (int64_t j = 0; j < n; ++j) sum += p[j] = std::exp(p[j] - max);
        float* ot = o + o_at(s, b, t, h);
        for (int64_t i = 0; i < d; ++i) {
          float acc = 0.0f;
          for (int64_t j = 0; j < n; ++j) acc += p[j] * v[v_at(s, b, j, kh) + i];
          ot[i] = acc / sum;
        }
        if (lse != nullptr) lse[lse_at(s, b, h, t)] = max + std::log(sum);
      }
}

// Per query row: P_j = exp(scale q.k_j - lse), dP_j = do . v_j, dS_j = scale P_j (dP_j - sum_i P_i dP_i);
// dq += sum_j dS_j k_j, dk_j += dS_j q, dv_j += P_j do.
void backward_ref(const nq_attention_shape& s, const float* q, const float* k, const float* v, const float* d_o,
                  const float* lse, float* dq, float* dk, float* dv) {
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads;
  std::vector<float> p(size_t(s.kv_len)), ds(size_t(s.kv_len));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.q_heads; ++h)
      for (int64_t t = 0; t < s.q_len; ++t) {
        const int64_t n = visible(s, t), kh = h / group;
        const float* qt = q + q_at(s, b, t, h);
        const float* gt = d_o + o_at(s, b, t, h);
        const float l = lse[lse_at(s, b, h, t)];
        float delta = 0.0f;
        for (int64_t j = 0; j < n; ++j) {
          p[j] = std::exp(s.scale * dot(qt, k + k_at(s, b, j, kh), d) - l);
          ds[j] = dot(gt, v + v_at(s, b, j, kh), d);
          delta += p[j] * ds[j];
        }
        for (int64_t j = 0; j < n; ++j) ds[j] = s.scale * (p[j] * (ds[j] - delta));
        for (int64_t j = 0; j < n; ++j) {
          if (dq != nullptr) {
            float* dqt = dq + q_at(s, b, t, h);
            for (int64_t i = 0; i < d; ++i) dqt[i] += ds[j] * k[k_at(s, b, j, kh) + i];
          }
          if (dk != nullptr) {
            float* dkj = dk + k_at(s, b, j, kh);
            for (int64_t i = 0; i < d; ++i) dkj[i] += ds[j] * qt[i];
          }
          if (dv != nullptr) {
            float* dvj = dv + v_at(s, b, j, kh);
            for (int64_t i = 0; i < d; ++i) dvj[i] += p[j] * gt[i];
          }
        }
      }
}

}  // namespace nq::attention
