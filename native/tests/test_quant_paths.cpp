// Dispatch paths the main quant tests do not reach: arbitrary sorted 8-bit codebooks
// (duplicates, ±0) and the non-temporal store path taken for large 64-byte aligned outputs.
#include <algorithm>
#include <cstring>

#include "test_quant_util.h"

namespace {

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
