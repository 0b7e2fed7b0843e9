#pragma once

#include <string>
#include <utility>
#include <vector>

namespace fleetprobe::test
{

/// GET http://127.0.0.1:port + pathAndQuery (fleetprobe's --listen side, 30 s timeout): the status and the
/// body; status 0 and the error as the body when the connection or the request failed. Thread-safe.
std::pair<int, std::string> httpGet(int port, const std::string& pathAndQuery);

/// `/probe?name=value&...` with every value URL-encoded. Pure.
std::string probePath(const std::vector<std::pair<std::string, std::string>>& parameters);

} // namespace fleetprobe::test
