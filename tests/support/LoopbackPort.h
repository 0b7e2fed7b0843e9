#pragma once

namespace fleetprobe::test
{

/// Finds TCP ports on 127.0.0.1 for servers the tests start.
class LoopbackPort
{
public:
    /// Binds 127.0.0.1:0, reads the port the kernel chose and closes the socket: a port that nothing listens
    /// on right now. Inside the tests' private network namespace nobody else takes it in between.
    static int findFree();
};

} // namespace fleetprobe::test
