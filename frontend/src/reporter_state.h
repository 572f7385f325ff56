// The observation dictionary that report() writes into while a Reporter scope is active,
// and the current observer name (report("loss") writes "<observer>/loss").
#pragma once
#include <map>
#include <string>

#include "kiln/links.h"

namespace kiln::detail {
using Observation = std::map<std::string, Variable>;
Observation*& current_observation();
std::string& current_observer();
}  // namespace kiln::detail
