#include "ModbusServers.h"

#include "FleetprobeFixture.h"
#include "WaitCondition.h"

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fleetprobe::test
{

const std::string& ModbusServers::python()
{
    static const std::string path = "/usr/bin/python3";
    return path;
}

ModbusServers::ModbusServers(const std::vector<ModbusServerSpec>& specs) : _dir("fleetprobe-modbus")
{
    const auto list = [](const std::vector<int>& v)
    {
        std::string out = "[";
        for (std::size_t k = 0; k < v.size(); ++k)
            out += (k ? ", " : "") + std::to_string(v[k]);
        return out + "]";
    };
    std::ostringstream json;
    json << "[";
    for (std::size_t i = 0; i < specs.size(); ++i)
    {
        const auto& s = specs[i];
        json << (i ? ", " : "") << R"({"address": ")" << s.address << R"(", "port": )" << s.port
             << R"(, "unit": )" << s.unit << R"(, "framing": ")" << s.framing << R"(", "holding": )"
             << list(s.holding.empty() ? std::vector<int>{0} : s.holding) << R"(, "input": )"
             << list(s.input.empty() ? std::vector<int>{0} : s.input) << "}";
    }
    json << "]";
    const std::string spec = _dir.writeFile("spec.json", json.str());
    const std::string ready = _dir.file("ready");
    const std::vector<std::string> argv = {
        python(), FleetprobeFixture::sourceDir() + "/tests/tools/modbus-server.py", spec, ready};
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
    _process = std::make_unique<ChildProcess>(argv);
    const bool up = WaitCondition::until([&] { return !_process->running() || std::ifstream(ready).good(); },
                                         std::chrono::milliseconds(20000));
    if (!up || !_process->running())
        throw std::runtime_error("modbus-server.py did not start: " + _process->stderrText());
}

} // namespace fleetprobe::test
