#pragma once

#include <string>

namespace fleetprobe
{

/// The message of the errno value `err`, like std::strerror but safe on any thread (strerror_r).
std::string errnoText(int err);

} // namespace fleetprobe
