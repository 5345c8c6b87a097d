// Cephes expf's constants, shared by the vector exp kernels (cpu/exp_avx512.h, the AVX2 attention exp,
// the GELU lanes): e^x = 2^n e^r with n = round(x log2 e), r = x - n ln2 in two steps (ln2 = kLn2Hi +
// kLn2Lo; kLn2Hi has 9 significant bits, so n kLn2Hi is exact for |n| < 2^15), then
// e^r ~ 1 + r + r^2 (kExpPoly[0] r^5 + ... + kExpPoly[5]) on |r| <= ln2 / 2 (~1 ulp).
#pragma once

namespace nq::cpu {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace nq::cpu
