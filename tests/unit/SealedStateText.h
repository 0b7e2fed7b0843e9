#pragma once

#include <cstdint>
#include <string>

namespace fleetprobe::test
{

/// `body` of a state or profile file (everything up to and including "end N") with its checksum completed:
/// the FNV-1a of the body, as StateStore writes it. For tests that build or damage files by hand.
inline std::string sealedStateText(const std::string& body)
{
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : body)
        h = (h ^ c) * 1099511628211ull;
    return body + " " + std::to_string(h) + "\n";
}

} // namespace fleetprobe::test
