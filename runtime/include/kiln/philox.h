// Philox-4x32-10, the counter-based RNG behind kiln.rng_uniform on every backend.
#pragma once
#include <cstdint>

namespace kiln::philox {

// The first 32-bit word of Philox-4x32-10 for key `seed` and counter `counter`.
inline uint32_t random_u32(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// Uniform in [0, 1) with 24 random bits (exact in float32 and float64).
inline double uniform(uint64_t seed, uint64_t counter) {
  return static_cast<double>(random_u32(seed, counter) >> 8) * (1.0 / 16777216.0);
}

}  // namespace kiln::philox
