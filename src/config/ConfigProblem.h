#pragma once

#include <string>
#include <vector>

namespace fleetprobe
{

/// One problem of a config: where it is and what is wrong, as data, so that `--check`, a reload and `/probe`
/// can each say it their own way. Plain data.
struct ConfigProblem
{
    std::string file;    ///< the file (or "/probe"); may be empty
    std::string path;    ///< the JSON path (`jobs[3].ports[0].port`); empty for the file as a whole
    std::string message; ///< what is wrong, naming the value

    /// `<file>: <path>: <message>`, leaving out what is empty: the form `--check` prints.
    std::string text() const
    {
        std::string out = file.empty() ? std::string() : file + ": ";
        if (!path.empty())
            out += path + ": ";
        return out + message;
    }
};

/// Every problem found, in the order found.
using ConfigProblems = std::vector<ConfigProblem>;

} // namespace fleetprobe
