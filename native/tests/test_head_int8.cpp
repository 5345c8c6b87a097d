// NQ_COMPUTE_INT8's block products of the fused head (loss/head_int8.h) on the int8 kernels against the plain
// loops, bit for bit: the same integers and the same epilogue whatever computes the sums. Fresh random operands
// (x, W, and softmax-like weights E' in [0, 1] with zeros and a block maximum), outputs NaN-filled first, tails
// around the kernels' 16/64-column tiles and 6-row panels, packed and unpacked W.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gemm/driver.h"
#include "loss/head_int8.h"

namespace {

using nq::gemm::Ukernel;

// The kernels this CPU can run (AVX2 int16 pairs; VNNI quads where present).
std::vector<const Ukernel*> kernels() {
  std::vector<const Ukernel*> k;
  if (nq::cpu::use(NQ_ISA_AVX2)) k.push_back(&nq::gemm::kUkI16Avx2);
  if (nq::cpu::use(NQ_ISA_AVX512_VNNI)) k.push_back(&nq::gemm::kUkU8S8Vnni);
  return k;
}

struct Bytes {
  std::vector<uint8_t> raw;
  uint8_t* p;
  explicit Bytes(int64_t n) : raw(size_t(n) + 64, 0xa5) { p = raw.data() + (64 - reinterpret_cast<uintptr_t>(raw.data()) % 64) % 64; }
};

struct Case {
  int64_t n, c, vb;
};

class HeadInt8 : public ::testing::TestWithParam<Case> {};

TEST_P(HeadInt8, BlockProductsOnEveryKernelEqualThePlainLoops) {
  const auto [n, c, vb] = GetParam();
  const auto ks = kernels();
  if (ks.empty()) GTEST_SKIP() << "no int8 kernel on this CPU";
  std::mt19937_64 rng(uint64_t(n * 1000 + c * 10 + vb));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> x(size_t(n * c)), w(size_t(vb * c)), e(size_t(n * vb));
  for (auto& v : x) v = nd(rng);
  for (auto& v : w) v = 0.3f * nd(rng);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t v = 0; v < vb; ++v) {  // softmax-like: one 1, spread small values, some exact zeros
      const float u = ud(rng);
      e[size_t(i * vb + v)] = v == (i * 7) % vb ? 1.0f : u < 0.1f ? 0.0f : std::exp(-12.0f * u);
    }
  Bytes plain(nq::loss::int8_block_plain_bytes(c)), xp(nq::loss::int8_x_bytes(nullptr, n, c));
  const nq::loss::Int8BlockOps ref_ops = nq::loss::int8_block_quantize(w.data(), vb, c, plain.p);
  const nq::loss::Int8X ref_x = nq::loss::int8_x_quantize(nullptr, x.data(), n, c, xp.p);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> ref_l(size_t(n * vb), nan), ref_u(size_t(n * c), nan);
  std::vector<int8_t> ref_qe(size_t(n * vb));
  std::vector<float> ref_se(static_cast<size_t>(n));
  std::vector<int32_t> ref_ce(static_cast<size_t>(n)), acc(static_cast<size_t>(n * c));
  nq::loss::int8_logits(nullptr, ref_x, n, c, ref_ops, vb, ref_l.data());
  for (int64_t i = 0; i < n; ++i) {
    ref_ce[size_t(i)] = nq::loss::int8_e_row(nullptr, &e[size_t(i * vb)], vb, &ref_qe[size_t(i * vb)], &ref_se[size_t(i)]);
    EXPECT_EQ(ref_ce[size_t(i)], 0) << "the plain loops add no offset";
  }
  nq::loss::int8_u_accumulate(nullptr, ref_qe.data(), ref_se.data(), ref_ce.data(), n, vb, c, ref_ops, true, acc.data(),
                              ref_u.data());
  std::vector<float> ref_u2 = ref_u;  // a second block on top of the first (first = false)
  nq::loss::int8_u_accumulate(nullptr, ref_qe.data(), ref_se.data(), ref_ce.data(), n, vb, c, ref_ops, false, acc.data(),
                              ref_u2.data());
  for (float v : ref_l) ASSERT_TRUE(std::isfinite(v)) << "every logit written";
  for (float v : ref_u2) ASSERT_TRUE(std::isfinite(v)) << "every U element written";

  for (const Ukernel* uk : ks) {
    SCOPED_TRACE(uk == &nq::gemm::kUkI16Avx2 ? "AVX2 int16" : "VNNI");
    Bytes kx(nq::loss::int8_x_bytes(uk, n, c)), packed(nq::loss::int8_block_packed_bytes(*uk, c)), scratch(nq::loss::int8_block_plain_bytes(c));
    const nq::loss::Int8X x8 = nq::loss::int8_x_quantize(uk, x.data(), n, c, kx.p);
    nq::loss::int8_block_pack(*uk, w.data(), vb, c, scratch.p, packed.p);
    const nq::loss::Int8BlockOps packed_ops = nq::loss::int8_block_packed_at(*uk, vb, c, packed.p);
    for (const auto* ops : {&ref_ops, &packed_ops}) {
      SCOPED_TRACE(ops == &ref_ops ? "unpacked" : "packed");
      std::vector<float> l(size_t(n * vb), nan), u(size_t(n * c), nan);
      nq::loss::int8_logits(uk, x8, n, c, *ops, vb, l.data());
      for (size_t i = 0; i < l.size(); ++i) ASSERT_EQ(l[i], ref_l[i]) << "logit " << i;
      std::vector<int8_t> qe(size_t(n * vb));
      std::vector<float> se(static_cast<size_t>(n));
      std::vector<int32_t> ce(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        ce[size_t(i)] = nq::loss::int8_e_row(uk, &e[size_t(i * vb)], vb, &qe[size_t(i * vb)], &se[size_t(i)]);
        ASSERT_EQ(se[size_t(i)], ref_se[size_t(i)]) << "row " << i;
      }
      ASSERT_EQ(qe, ref_qe);
      nq::loss::int8_u_accumulate(uk, qe.data(), se.data(), ce.data(), n, vb, c, *ops, true, acc.data(), u.data());
      for (size_t i = 0; i < u.size(); ++i) ASSERT_EQ(u[i], ref_u[i]) << "U element " << i;
      nq::loss::int8_u_accumulate(uk, qe.data(), se.data(), ce.data(), n, vb, c, *ops, false, acc.data(), u.data());
      for (size_t i = 0; i < u.size(); ++i) ASSERT_EQ(u[i], ref_u2[i]) << "U element " << i << " (accumulated)";
    }
  }
}

// A whole block, a partial one, rows and columns off the 6-row panels and 16/64-column tiles, odd c.
INSTANTIATE_TEST_SUITE_P(Shapes, HeadInt8,
                         ::testing::Values(Case{7, 64, 384}, Case{13, 96, 100}, Case{3, 37, 17}, Case{32, 130, 383},
                                           Case{1, 768, 384}),
                         [](const auto& i) {
                           return "n" + std::to_string(i.param.n) + "_c" + std::to_string(i.param.c) + "_vb" +
                                  std::to_string(i.param.vb);
                         });

}  // namespace
