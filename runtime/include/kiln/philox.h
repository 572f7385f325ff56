// Philox-4x32-10, the counter-based RNG behind kiln.rng_uniform on every backend
// (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC11; the
// Random123 library's philox4x32_R with R = 10). The interpreter calls this
// header; -kiln-lower-to-linalg emits the same rounds in arith.
#pragma once
#include <array>
#include <cstdint>

namespace kiln::philox {

// Philox-4x32-10 of a 128-bit counter and a 64-bit key, word for word
// Random123's philox4x32(ctr, key): ten rounds, the key bumped after each.
inline std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * ctr[0];
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
    key[0] += 0x9E3779B9u;
    key[1] += 0xBB67AE85u;
  }
  return ctr;
}

// What kiln.rng_uniform draws from: the first 32-bit word of Philox-4x32-10 for
// key (low, high 32 bits of `seed`) and counter (low, high 32 bits of `counter`, 0, 0).
inline uint32_t random_u32(uint64_t seed, uint64_t counter) {
  return philox4x32_10({static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u},
                       {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)})[0];
}

// Uniform in [0, 1) with 24 random bits (exact in float32 and float64).
inline double uniform(uint64_t seed, uint64_t counter) {
  return static_cast<double>(random_u32(seed, counter) >> 8) * (1.0 / 16777216.0);
}

}  // namespace kiln::philox
