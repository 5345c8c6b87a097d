// Dispatch paths the main quant tests do not reach: arbitrary sorted 8-bit codebooks
// (duplicates, ±0) and the non-temporal store path taken for large 64-byte aligned outputs.
#include <algorithm>
#include <cfloat>
#include <cstring>
#include <memory>

#include "quant/quant.h"
#include "test_quant_util.h"

namespace {

// Inputs probing every decision of `code`, at least kCode8BucketMinElements long (so the AVX-512
// path searches with the bucket table when the code fits): blocks of 256 that start with 1.0
// (absmax 1, so x * (1 / absmax) == x) holding each midpoint and its negation +-3 ulps, the codes,
// +-0 and denormals; then normal data at several scales, an all-zero block, a block with a
// denormal absmax (1 / absmax overflows: x * inf is +-inf or NaN) and a partial last block.
std::vector<float> probe_inputs(const float* code, uint32_t seed) {
  auto t = std::make_unique<nq::quant::Code8>();
  nq::quant::code8_init(code, t.get());
  std::vector<float> probes = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, -1e-40f, FLT_MIN, -FLT_MIN, 1.0f, -1.0f};
  for (int i = 0; i < 256; ++i) probes.push_back(code[i]);
  for (int i = 0; i < 255; ++i)
    for (float m : {t->mid[i], -t->mid[i]}) {
      float up = m, down = m;
      probes.push_back(m);
      for (int d = 0; d < 3; ++d) {
        probes.push_back(up = std::nextafter(up, 2.0f));
        probes.push_back(down = std::nextafter(down, -2.0f));
      }
    }
  std::vector<float> x;
  for (float p : probes) {
    if (x.size() % 256 == 0) x.push_back(1.0f);
    if (std::fabs(p) <= 1.0f) x.push_back(p);
  }
  x.resize((x.size() + 255) / 256 * 256, 0.5f);
  for (uint32_t b = 0; x.size() < size_t(nq::quant::kCode8BucketMinElements); ++b) {
    const std::vector<float> r = qt::randn(256, seed + b, b % 3 == 0 ? 1e-3f : (b % 3 == 1 ? 1.0f : 1e3f));
    x.insert(x.end(), r.begin(), r.end());
  }
  x.insert(x.end(), 256, 0.0f);
  for (int i = 0; i < 256; ++i) x.push_back(i % 4 == 0 ? 0.0f : (i % 4 == 1 ? -0.0f : (i % 2 ? -1e-41f : 3e-42f)));
  const std::vector<float> tail = qt::randn(77, seed);
  x.insert(x.end(), tail.begin(), tail.end());
  return x;
}

// blockwise-8 codes and absmax of x under `isa` into outputs pre-filled with `poison`.
void quantize8(nq_isa isa, const std::vector<float>& x, const float* code, uint8_t poison, std::vector<uint8_t>& q,
               std::vector<float>& absmax) {
  qt::IsaScope scope(isa);
  q.assign(x.size(), poison);
  absmax = qt::nan_filled((x.size() + 255) / 256);
  ASSERT_EQ(nq_blockwise8_quantize(x.data(), x.size(), 256, code, q.data(), absmax.data()), NQ_OK)
      << nq_last_error_message();
}

// A 64-byte aligned native buffer filled with `fill` bytes (different fills per run prove
// that every output byte was written when the runs compare equal).
template <class T>
struct AlignedBuffer {
  T* p = nullptr;
  int64_t n;
  AlignedBuffer(int64_t count, int fill) : n(count) {
    void* raw = nullptr;
    EXPECT_EQ(nq_buffer_alloc(static_cast<uint64_t>(count) * sizeof(T), &raw), NQ_OK);
    p = static_cast<T*>(raw);
    std::memset(p, fill, count * sizeof(T));
  }
  ~AlignedBuffer() { nq_buffer_free(p); }
  bool operator==(const AlignedBuffer& o) const { return n == o.n && std::memcmp(p, o.p, n * sizeof(T)) == 0; }
};

}  // namespace

TEST(Blockwise8, RandomSortedCodebooksAreByteIdenticalOnEveryIsa) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<float> code = qt::randu(256, 100 + trial, -1.5f, 1.5f);
    if (trial % 3 == 0)
      for (int i = 0; i < 256; i += 3) code[i] = code[(i * 7) % 256];  // duplicate entries
    if (trial % 5 == 0)
      for (int i = 0; i < 40; ++i) code[i] = 0.0f, code[i + 40] = -0.0f;  // signed zeros
    std::sort(code.begin(), code.end());
    const int64_t n = 1000 + rng() % 70000;
    const int32_t blocksize = 64 << (rng() % 4);
    std::vector<float> x = qt::randn(n, 200 + trial);
    for (int64_t i = 0; i < n; i += 7) x[i] = 0.0f;  // exact zeros hit the ±0 codes

    std::vector<uint8_t> ref(n, 0x00);
    std::vector<float> ref_absmax((n + blocksize - 1) / blocksize);
    {
      qt::IsaScope scope(NQ_ISA_SCALAR);
      ASSERT_EQ(nq_blockwise8_quantize(x.data(), n, blocksize, code.data(), ref.data(), ref_absmax.data()), NQ_OK);
    }
    for (nq_isa isa : qt::isas()) {
      qt::IsaScope scope(isa);
      std::vector<uint8_t> q(n, 0xff);
      std::vector<float> absmax(ref_absmax.size());
      ASSERT_EQ(nq_blockwise8_quantize(x.data(), n, blocksize, code.data(), q.data(), absmax.data()), NQ_OK);
      EXPECT_EQ(q, ref) << "trial " << trial << " isa " << isa << " blocksize " << blocksize;
      EXPECT_EQ(absmax, ref_absmax);
    }
  }
}

TEST(Blockwise8, BucketSearchIsByteIdenticalOnEveryIsa) {
  // Codes the bucket table takes (bnb's dynamic maps; jittered log grids like them: two-sided,
  // one-sided, lopsided, narrower than the inputs so the key clamps, with a -0/+0 pair, spanning
  // 1e-30..1e30) and codes it refuses (uniform random: midpoints too close; a code three times
  // over; infinite midpoints), each on inputs probing every decision. Refused codes take the
  // midpoint search.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u01(0.0f, 1.0f);
  // `count` magnitudes log-spaced over [10^lo, 10^hi], each jittered by up to 30% of a step
  auto grid = [&](int count, float lo, float hi, float sign, std::vector<float>& out) {
    for (int i = 0; i < count; ++i)
      out.push_back(sign * std::pow(10.0f, lo + (hi - lo) * (i + 0.5f + 0.6f * (u01(rng) - 0.5f)) / count));
  };
  int fitted = 0, refused = 0;
  for (int trial = 0; trial < 26; ++trial) {
    const int kind = trial < 24 ? trial % 8 : 8;
    std::vector<float> code;
    switch (kind) {
      case 8: code.resize(256), nq_dynamic_map_create(trial - 24, code.data()); break;  // bnb's maps
      case 1: grid(256, -7, 0, 1, code); break;
      case 2: grid(200, -7, 0, -1, code), grid(56, -3, 0, 1, code); break;
      case 5: grid(128, -30, 30, -1, code), grid(128, -30, 30, 1, code); break;
      case 6: code = qt::randu(256, 400 + trial, -1.5f, 1.5f); break;
      default: grid(128, -7, 0, -1, code), grid(128, -7, 0, 1, code);
    }
    std::sort(code.begin(), code.end());
    if (kind == 3)
      for (float& c : code) c *= 0.25f;
    if (kind == 4) code[127] = -0.0f, code[128] = 0.0f;
    if (kind == 7) code[0] = code[1] = -FLT_MAX, code[254] = code[255] = FLT_MAX;
    if (trial == 16) code[100] = code[102], code[101] = code[102];  // two equal midpoints
    auto t = std::make_unique<nq::quant::Code8>();
    nq::quant::code8_init(code.data(), t.get());
    (nq::quant::code8_buckets_init(t.get()) ? fitted : refused)++;

    const std::vector<float> x = probe_inputs(code.data(), 300 + trial);
    const int64_t n = x.size();
    std::vector<uint8_t> ref, q;
    std::vector<float> ref_absmax, absmax;
    quantize8(NQ_ISA_SCALAR, x, code.data(), 0x00, ref, ref_absmax);
    // the same search after a shift: double quantization of x as if it were absmax values
    std::vector<uint8_t> ref_dq(n);
    std::vector<float> ref_dq_absmax(ref_absmax.size());
    float ref_offset = 0.0f;
    {
      qt::IsaScope scope(NQ_ISA_SCALAR);
      ASSERT_EQ(nq_absmax_compress(x.data(), n, 256, code.data(), ref_dq.data(), ref_dq_absmax.data(), &ref_offset),
                NQ_OK);
    }
    for (nq_isa isa : qt::isas())
      for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {
        quantize8(isa, x, code.data(), poison, q, absmax);
        const int64_t i = std::mismatch(q.begin(), q.end(), ref.begin()).first - q.begin();
        ASSERT_EQ(i, n) << "trial " << trial << " isa " << isa << " x " << x[i] << " code " << int(q[i])
                        << " reference " << int(ref[i]);
        ASSERT_EQ(std::memcmp(absmax.data(), ref_absmax.data(), absmax.size() * 4), 0) << "trial " << trial;
        qt::IsaScope scope(isa);
        std::fill(q.begin(), q.end(), poison);
        std::fill(absmax.begin(), absmax.end(), NAN);
        float offset = NAN;
        ASSERT_EQ(nq_absmax_compress(x.data(), n, 256, code.data(), q.data(), absmax.data(), &offset), NQ_OK);
        EXPECT_TRUE(q == ref_dq && offset == ref_offset) << "double quantization, trial " << trial << " isa " << isa;
        ASSERT_EQ(std::memcmp(absmax.data(), ref_dq_absmax.data(), absmax.size() * 4), 0) << "trial " << trial;
      }
  }
  EXPECT_EQ(fitted, 19);  // kinds 0-5 and 8, but trial 16's repeated midpoint
  EXPECT_EQ(refused, 7);
}

TEST(QuantStreaming, LargeAlignedOutputsAreByteIdenticalToReference) {
  // 9 Mi elements + a partial block: code outputs pass the 8 MiB streaming-store threshold.
  const int64_t n = (int64_t(9) << 20) + 64 * 3 + 2;
  const int64_t blocks8 = (n + 255) / 256, blocks4 = (n + 63) / 64;
  std::vector<float> xv = qt::randn(n, 3);
  AlignedBuffer<float> x(n, 0);
  std::memcpy(x.p, xv.data(), n * sizeof(float));
  float code[256];
  ASSERT_EQ(nq_dynamic_map_create(1, code), NQ_OK);

  struct Outputs {
    AlignedBuffer<uint8_t> q8, q4;
    AlignedBuffer<float> absmax8, absmax4, y8, y4;
    AlignedBuffer<uint16_t> y4_bf16;
    Outputs(int64_t n, int64_t b8, int64_t b4, int fill)
        : q8(n, fill), q4(n / 2, fill), absmax8(b8, fill), absmax4(b4, fill), y8(n, fill), y4(n, fill),
          y4_bf16(n, fill) {}
  };
  auto run = [&](nq_isa isa, Outputs& o) {
    qt::IsaScope scope(isa);
    ASSERT_EQ(nq_blockwise8_quantize(x.p, n, 256, code, o.q8.p, o.absmax8.p), NQ_OK);
    ASSERT_EQ(nq_blockwise8_dequantize(o.q8.p, o.absmax8.p, n, 256, code, o.y8.p), NQ_OK);
    ASSERT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.p, n, 64, o.q4.p, o.absmax4.p), NQ_OK);
    ASSERT_EQ(nq_quant4_dequantize(NQ_QUANT4_NF4, o.q4.p, o.absmax4.p, n, 64, o.y4.p), NQ_OK);
    ASSERT_EQ(nq_quant4_dequantize_bf16(NQ_QUANT4_NF4, o.q4.p, o.absmax4.p, n, 64, o.y4_bf16.p), NQ_OK);
  };
  Outputs ref(n, blocks8, blocks4, 0x00);
  run(NQ_ISA_SCALAR, ref);
  for (nq_isa isa : qt::isas()) {
    if (isa == NQ_ISA_SCALAR) continue;
    Outputs got(n, blocks8, blocks4, 0xff);
    run(isa, got);
    EXPECT_TRUE(got.q8 == ref.q8) << "blockwise8 codes, isa " << isa;
    EXPECT_TRUE(got.absmax8 == ref.absmax8) << "blockwise8 absmax, isa " << isa;
    EXPECT_TRUE(got.y8 == ref.y8) << "blockwise8 dequant, isa " << isa;
    EXPECT_TRUE(got.q4 == ref.q4) << "nf4 codes, isa " << isa;
    EXPECT_TRUE(got.absmax4 == ref.absmax4) << "nf4 absmax, isa " << isa;
    EXPECT_TRUE(got.y4 == ref.y4) << "nf4 dequant fp32, isa " << isa;
    EXPECT_TRUE(got.y4_bf16 == ref.y4_bf16) << "nf4 dequant bf16, isa " << isa;
  }
}
