#pragma once

#include "config/ConfigValue.h"

#include <string>

namespace fleetprobe
{

/// Parses YAML text (one document) into the same ConfigValue tree the JSON loader produces, so that every
/// config reader works on either format. Mappings become objects (keys in file order; a duplicate key is an
/// error), sequences arrays; plain scalars are resolved by the YAML 1.2 core schema (null, ~ or empty: null;
/// true/false: boolean; decimal, 0x and 0o integers: integer, saturated with integerOverflow() like
/// parseJson; floats including .inf and .nan: number; anything else: string); quoted scalars are always
/// strings. Aliases are expanded (bounded), nesting is limited to 256 levels. Text without a document is
/// null. Thread-safe (no shared state).
/// Throws std::runtime_error("line L, column C: <yaml-cpp message>") when it is not valid YAML.
ConfigValue parseYaml(const std::string& text);

} // namespace fleetprobe
