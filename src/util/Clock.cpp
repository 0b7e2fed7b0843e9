#include "util/Clock.h"

#include <ctime>
#include <fstream>

namespace fleetprobe
{
namespace
{

double seconds(clockid_t id)
{
    timespec ts{};
    ::clock_gettime(id, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class SystemClock : public TimeSource
{
public:
    SystemClock()
    {
        std::ifstream in("/proc/sys/kernel/random/boot_id");
        std::getline(in, _bootId);
        if (_bootId.empty())
            _bootId = "unknown";
    }

    double wallUnix() const override { return seconds(CLOCK_REALTIME); }
    double bootSeconds() const override { return seconds(CLOCK_BOOTTIME); }
    std::string bootId() const override { return _bootId; }

private:
    std::string _bootId; ///< read once: it cannot change while the process runs
};

} // namespace

const TimeSource& TimeSource::system()
{
    static const SystemClock clock;
    return clock;
}

} // namespace fleetprobe
