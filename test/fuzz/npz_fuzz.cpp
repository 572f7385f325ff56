// libFuzzer target: kiln::npz::read_bytes (an .npz archive) and decode_npy (one
// .npy array) on any bytes. Corrupt input must be a kiln::Error; anything else
// (a crash, a sanitizer report, another exception) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kiln/npz.h"

namespace {

// An array read back must survive kiln's own encoding unchanged.
void check_round_trip(const kiln::Array& a) {
  kiln::Array back = kiln::npz::decode_npy(kiln::npz::encode_npy(a), "round trip");
  if (back.shape() != a.shape() || back.dtype() != a.dtype() || back.nbytes() != a.nbytes() ||
      (a.nbytes() && std::memcmp(back.raw_data(), a.raw_data(), a.nbytes()) != 0))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    for (const auto& [key, a] : kiln::npz::read_bytes(data, size, "fuzz input")) check_round_trip(a);
  } catch (const kiln::Error&) {
  }
  try {
    check_round_trip(kiln::npz::decode_npy(std::string(reinterpret_cast<const char*>(data), size),
                                           "fuzz input"));
  } catch (const kiln::Error&) {
  }
  return 0;
}
