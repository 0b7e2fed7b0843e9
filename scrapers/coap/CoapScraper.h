#pragma once

#include "engine/ScraperDescriptor.h"

#include <optional>
#include <string>

namespace fleetprobe
{

/// A job's `coap` section: what one CoAP target asks its device.
struct CoapConfig : ScraperSettings
{
    bool secure = false;                  ///< `scheme` coaps: DTLS with a pre-shared key
    int port = 5683;                      ///< 5683, or 5684 for coaps, unless given
    std::optional<std::string> path;      ///< a GET of this path; without it a CoAP ping
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout
    std::string pskIdentity;              ///< coaps: the PSK identity
    std::string pskKey;                   ///< coaps: the key, read from `psk.key_file` at load time
};

/// The `coap` scraper's registration: `jobs[].coap`, one target per job, the `/probe` module `coap`.
ScraperDescriptor coapScraperDescriptor();

/// True when the linked libcoap can do DTLS with a pre-shared key (`coaps`).
bool coapDtlsSupported();

/// `coap`: a CoAP ping (an empty Confirmable message, answered by a Reset) or a Confirmable GET of a path
/// (up on a 2.xx answer) to every target of a cycle at once. Plain `coap` is framed here over non-blocking
/// UDP sockets of the network layer in one poll loop; `coaps` goes through one libcoap context with a DTLS
/// session per target. Retransmits per RFC 7252 within each target's timeout. One instance per config;
/// probe() is called by one thread at a time.
class CoapScraper : public Scraper
{
public:
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;
};

namespace coap
{

/// RFC 7252 section 4.8: the first retransmission after ACK_TIMEOUT (2 s) times a random factor in
/// [1, ACK_RANDOM_FACTOR (1.5)], doubling after each, at most MAX_RETRANSMIT (4) times.
constexpr double ackTimeoutSeconds = 2.0;
constexpr double ackRandomFactor = 1.5;
constexpr int maxRetransmit = 4;

} // namespace coap

} // namespace fleetprobe
