#pragma once

namespace fleetprobe
{

/// The retransmission timeout of RFC 6298 (section 2), used by the `tcp_echo` scraper to decide when an echo
/// frame is lost: the first RTT sample R sets SRTT = R and RTTVAR = R/2; each later sample updates
/// RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|, then SRTT = 7/8·SRTT + 1/8·R; RTO = SRTT + 4·RTTVAR clamped to
/// [minSeconds, maxSeconds]. A timeout doubles the RTO (clamped) until the next sample recomputes it.
/// Plain value type; not thread-safe.
class RtoEstimator
{
public:
    /// The lower bound of the RTO, seconds.
    static constexpr double minSeconds = 0.1;
    /// The upper bound of the RTO, seconds.
    static constexpr double maxSeconds = 3.0;
    /// The RTO before the first sample (RFC 6298: 1 s).
    static constexpr double initialSeconds = 1.0;

    /// Takes one round-trip time sample (seconds, >= 0; a negative value is taken as 0) and recomputes the
    /// RTO.
    void addSample(double rttSeconds);

    /// Doubles the RTO after a timeout (clamped to maxSeconds). The next sample recomputes it from SRTT and
    /// RTTVAR.
    void backoff();

    /// The current RTO, seconds.
    double rtoSeconds() const { return _rto; }

    /// The smoothed RTT, seconds (0 before the first sample).
    double srttSeconds() const { return _srtt; }

    /// The RTT variation, seconds (0 before the first sample).
    double rttvarSeconds() const { return _rttvar; }

    /// True once a sample was taken.
    bool hasSample() const { return _hasSample; }

private:
    static double clamp(double seconds);

    bool _hasSample = false;
    double _srtt = 0;
    double _rttvar = 0;
    double _rto = initialSeconds;
};

} // namespace fleetprobe
