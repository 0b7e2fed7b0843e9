#include "scrapers/tcp_echo/RtoEstimator.h"

#include <algorithm>
#include <cmath>

namespace fleetprobe
{

double RtoEstimator::clamp(double seconds)
{
    return std::min(maxSeconds, std::max(minSeconds, seconds));
}

void RtoEstimator::addSample(double rttSeconds)
{
    const double r = std::isfinite(rttSeconds) ? std::max(0.0, rttSeconds) : maxSeconds;
    if (!_hasSample)
    {
        _srtt = r;
        _rttvar = r / 2;
        _hasSample = true;
    }
    else
    {
        _rttvar = 0.75 * _rttvar + 0.25 * std::fabs(_srtt - r);
        _srtt = 0.875 * _srtt + 0.125 * r;
    }
    _rto = clamp(_srtt + 4 * _rttvar);
}

void RtoEstimator::backoff()
{
    _rto = clamp(2 * _rto);
}

} // namespace fleetprobe
