// report(): observations recorded into the active observation dictionary.
#include "reporter_state.h"

namespace kiln {

namespace detail {
Observation*& current_observation() {
  static Observation* current = nullptr;
  return current;
}
}  // namespace detail

void report(const std::string& name, const Variable& value) {
  if (auto* obs = detail::current_observation()) (*obs)[name] = value;
}

}  // namespace kiln
