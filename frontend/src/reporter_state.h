// The observation dictionary that report() writes into while a Reporter scope is active.
#pragma once
#include <map>
#include <string>

#include "kiln/links.h"

namespace kiln::detail {
using Observation = std::map<std::string, Variable>;
Observation*& current_observation();
}  // namespace kiln::detail
