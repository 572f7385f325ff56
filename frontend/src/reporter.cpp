// report(): observations recorded into the active observation dictionary; kiln::Reporter scopes.
#include "reporter_state.h"

#include "kiln/training.h"

namespace kiln {

namespace detail {
Observation*& current_observation() {
  thread_local Observation* current = nullptr;  // per thread: each thread's Trainer reports apart
  return current;
}
std::string& current_observer() {
  thread_local std::string observer;
  return observer;
}
}  // namespace detail

void report(const std::string& name, const Variable& value) {
  if (auto* obs = detail::current_observation()) {
    const std::string& observer = detail::current_observer();
    (*obs)[observer.empty() ? name : observer + "/" + name] = value;
  }
}

void report(const std::string& name, double value) {
  if (detail::current_observation()) report(name, Variable(Array::scalar<double>(value), false));
}

void report(const Observation& values) {
  for (const auto& [name, value] : values) report(name, value);
}

Reporter::Scope::Scope(Observation* observation, bool set_observation, std::optional<std::string> observer) {
  if (set_observation) {
    prev_observation_ = detail::current_observation();
    detail::current_observation() = observation;
    restore_observation_ = true;
  }
  if (observer) {
    prev_observer_ = detail::current_observer();
    detail::current_observer() = *observer;
    restore_observer_ = true;
  }
}

Reporter::Scope::~Scope() {
  if (!active_) return;
  if (restore_observation_) detail::current_observation() = prev_observation_;
  if (restore_observer_) detail::current_observer() = prev_observer_;
}

Reporter::Scope::Scope(Scope&& other) noexcept
    : prev_observation_(other.prev_observation_),
      prev_observer_(std::move(other.prev_observer_)),
      restore_observation_(other.restore_observation_),
      restore_observer_(other.restore_observer_),
      active_(other.active_) {
  other.active_ = false;
}

Reporter::Scope Reporter::scope(Observation& observation) {
  // A new dictionary starts with no observer prefix (like a fresh chainer.Reporter).
  return Scope(&observation, true, std::string());
}

Reporter::Scope Reporter::observe(const std::string& observer) { return Scope(nullptr, false, observer); }

Observation* Reporter::current_observation() { return detail::current_observation(); }
const std::string& Reporter::current_observer() { return detail::current_observer(); }

}  // namespace kiln
