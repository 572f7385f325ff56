// libFuzzer target: kiln::KernelCache::decode_entry on any bytes. It must never
// read out of bounds or throw, and what it accepts must be exactly what
// encode_entry writes for that key and payload.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kiln/kernel_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The seed entries (corpus/cache_entry_fuzz) are stored under this key.
  static const std::string kKey = "kiln-fuzz-key";
  const kiln::KernelCacheEntry entry = kiln::KernelCache::decode_entry(data, size, kKey);
  if (entry.status != kiln::KernelCacheEntry::Status::valid) return 0;
  if (entry.payload_offset > size || entry.payload_size != size - entry.payload_offset) std::abort();
  const std::vector<uint8_t> payload(data + entry.payload_offset, data + size);
  const std::vector<uint8_t> encoded = kiln::KernelCache::encode_entry(kKey, payload);
  if (encoded != std::vector<uint8_t>(data, data + size)) std::abort();
  return 0;
}
