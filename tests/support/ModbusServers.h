#pragma once

#include "ChildProcess.h"
#include "TempDir.h"

#include <memory>
#include <string>
#include <vector>

namespace fleetprobe::test
{

/// One Modbus server of ModbusServers: where it listens, its unit id, framing and registers.
struct ModbusServerSpec
{
    std::string address; ///< a loopback address
    int port = 502;
    int unit = 1;
    std::string framing = "tcp"; ///< `tcp` (Modbus/TCP) or `rtu` (RTU frames over TCP)
    std::vector<int> holding;    ///< holding registers from address 0 ({0} when empty)
    std::vector<int> input;      ///< input registers from address 0 ({0} when empty)
};

/// Modbus servers no one here wrote: pymodbus (Debian python3-pymodbus, under Debian's /usr/bin/python3) run
/// by tests/tools/modbus-server.py, one per spec. The constructor returns once all listen (throws
/// std::runtime_error when they do not); the destructor stops them. Not thread-safe.
class ModbusServers
{
public:
    explicit ModbusServers(const std::vector<ModbusServerSpec>& specs);

    /// Debian's python3, which has python3-pymodbus (another python3 on PATH may not).
    static const std::string& python();

private:
    TempDir _dir;
    std::unique_ptr<ChildProcess> _process;
};

} // namespace fleetprobe::test
