#include "util/TrueClock.h"

#include "util/Clock.h"
#include "util/ErrnoText.h"

#include <sys/timex.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace fleetprobe
{
namespace
{

const char* const header = "fleetprobe-clock 1";
constexpr std::size_t keptBoots = 8;

std::string number(const std::optional<double>& v)
{
    if (!v)
        return "-";
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", *v);
    return text;
}

std::optional<double> parseNumber(const std::string& text)
{
    if (text == "-")
        return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v))
        return std::nullopt;
    return v;
}

} // namespace

TrueClock::TrueClock(const TimeSource& clock) : _clock(clock), _bootId(clock.bootId()) {}

TrueClock& TrueClock::process()
{
    static TrueClock clock(TimeSource::system());
    return clock;
}

KernelClockSync TrueClock::kernelSync()
{
    // As node_exporter's timex collector: modes 0 only reads; TIME_ERROR or STA_UNSYNC is unsynchronized;
    // maxerror is in microseconds.
    timex tx{};
    const int state = ::adjtimex(&tx);
    KernelClockSync k;
    k.synchronized = state != -1 && state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
    k.maxErrorSeconds = state == -1 ? 0 : static_cast<double>(tx.maxerror) / 1e6;
    return k;
}

void TrueClock::observeDate(double dateUnix)
{
    if (dateUnix <= 0)
        return;
    const double wall = _clock.wallUnix();
    const double boot = _clock.bootSeconds();
    std::lock_guard<std::mutex> lock(_mutex);
    // The Date is cut to the second and was written before the answer came: the receiver's time now lies in
    // [Date, Date + 1 s + the transfer], so the offset in [lo, hi]. An offset already known within that is
    // kept (each Date narrows nothing but moves nothing: stamps never jitter back and forth); one outside is
    // moved to the nearest edge. The first: the local clock's own, when it lies within, else the middle.
    const double lo = dateUnix - boot;
    const double hi = dateUnix + 1 + answerSlackSeconds - boot;
    double offset = wall - boot;
    if (_trueMinusBoot)
        offset = *_trueMinusBoot;
    else if (offset < lo || offset > hi)
        offset = (lo + hi) / 2;
    offset = std::min(std::max(offset, lo), hi);
    if (!_trueMinusBoot || *_trueMinusBoot != offset)
        _dirty = true;
    _trueMinusBoot = offset;
}

TrueClock::Stamp TrueClock::stamp()
{
    Stamp s;
    s.wallUnix = _clock.wallUnix();
    s.bootSeconds = _clock.bootSeconds();
    const KernelClockSync kernel = kernelSync();
    std::lock_guard<std::mutex> lock(_mutex);
    s.bootId = _bootId;
    const double wallMinusBoot = s.wallUnix - s.bootSeconds;
    if (_lastWallMinusBoot && std::abs(wallMinusBoot - *_lastWallMinusBoot) > stepSeconds)
        ++_steps;
    if (!_lastWallMinusBoot || std::abs(wallMinusBoot - *_lastWallMinusBoot) > 0.1)
        _dirty = true;
    _lastWallMinusBoot = wallMinusBoot;
    if (_trueMinusBoot)
    {
        const double truth = s.bootSeconds + *_trueMinusBoot;
        s.trueUnix = std::abs(truth - s.wallUnix) <= agreeSeconds ? s.wallUnix : truth;
        s.confirmed = true;
    }
    else
    {
        s.trueUnix = s.wallUnix;
        s.confirmed = kernel.synchronized;
    }
    return s;
}

std::optional<double> TrueClock::trueTimeOf(double stampUnix, double bootSeconds, const std::string& bootId,
                                            bool confirmed) const
{
    std::lock_guard<std::mutex> lock(_mutex);
    if (bootId.empty())
        return stampUnix; // a record of before boot stamps: its stamp is all there is
    std::optional<double> offset;
    if (bootId == _bootId)
        offset = _trueMinusBoot;
    else if (const auto it = _earlierBoots.find(bootId); it != _earlierBoots.end())
        offset = it->second;
    if (offset)
    {
        const double truth = bootSeconds + *offset;
        return std::abs(truth - stampUnix) <= agreeSeconds ? stampUnix : truth;
    }
    if (confirmed || bootId == _bootId)
        return stampUnix; // this boot's truth is not known yet: the stamp is the best there is
    return std::nullopt;
}

bool TrueClock::knowsTrueTime() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _trueMinusBoot.has_value();
}

double TrueClock::skewSeconds() const
{
    const double wall = _clock.wallUnix();
    const double boot = _clock.bootSeconds();
    std::lock_guard<std::mutex> lock(_mutex);
    return _trueMinusBoot ? boot + *_trueMinusBoot - wall : 0;
}

std::optional<double> TrueClock::trueNow() const
{
    const double boot = _clock.bootSeconds();
    std::lock_guard<std::mutex> lock(_mutex);
    if (!_trueMinusBoot)
        return std::nullopt;
    return boot + *_trueMinusBoot;
}

std::uint64_t TrueClock::steps() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    return _steps;
}

std::string TrueClock::encode() const
{
    std::lock_guard<std::mutex> lock(_mutex);
    std::string out = std::string(header) + "\nboot " + _bootId + " " + number(_trueMinusBoot) + " " +
                      number(_lastWallMinusBoot) + " " + std::to_string(_steps) + "\n";
    for (const auto& [id, offset] : _earlierBoots)
        out += "earlier " + id + " " + number(offset) + "\n";
    return out;
}

void TrueClock::decode(const std::string& text)
{
    std::istringstream in(text);
    std::string line;
    if (!std::getline(in, line) || line != header)
        return;
    std::lock_guard<std::mutex> lock(_mutex);
    while (std::getline(in, line))
    {
        std::istringstream fields(line);
        std::string kind, id, a, b, c;
        fields >> kind >> id >> a;
        if (kind == "boot" && (fields >> b >> c))
        {
            _steps = std::strtoull(c.c_str(), nullptr, 10);
            const auto offset = parseNumber(a);
            if (id == _bootId)
            {
                if (!_trueMinusBoot)
                    _trueMinusBoot = offset;
                _lastWallMinusBoot = parseNumber(b);
            }
            else if (offset)
                _earlierBoots[id] = *offset; // the boot before this one
        }
        else if (kind == "earlier" && id != _bootId)
            if (const auto offset = parseNumber(a))
                _earlierBoots[id] = *offset;
    }
    while (_earlierBoots.size() > keptBoots)
        _earlierBoots.erase(_earlierBoots.begin()); // any: boot ids have no order; a few are enough
}

std::string TrueClock::load(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        return errno == ENOENT ? std::string() : path + ": " + errnoText(errno);
    std::stringstream text;
    text << in.rdbuf();
    decode(text.str());
    return {};
}

std::string TrueClock::save(const std::string& path)
{
    {
        std::lock_guard<std::mutex> lock(_mutex);
        if (!_dirty)
            return {};
        _dirty = false;
    }
    const auto failed = [this](std::string why)
    {
        std::lock_guard<std::mutex> lock(_mutex);
        _dirty = true;
        return why;
    };
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << encode();
        if (!out.flush())
        {
            std::remove(tmp.c_str());
            return failed(tmp + ": cannot write");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
    {
        const int err = errno;
        std::remove(tmp.c_str());
        return failed(path + ": " + errnoText(err));
    }
    return {};
}

} // namespace fleetprobe
