// lode/plugin.hpp — loading a shared library that registers models (`lode --plugin`).
#pragma once

#include <string>

namespace lode {

/// dlopen()s `path` (RTLD_NOW | RTLD_GLOBAL: a plugin may rely on symbols of plugins loaded
/// before it), so that its LODE_REGISTER_MODEL registrations run, with registration errors
/// collected rather than thrown inside dlopen. Throws UsageError for an empty path, Error
/// naming the file and dlerror()'s reason when it cannot be loaded, or naming the file and
/// the refused registrations (another lode's ABI tag, a name registered twice).
void load_plugin(const std::string& path);

}  // namespace lode
