#pragma once

#include "engine/ScraperDescriptor.h"

#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// `jobs[].http`: one HTTP(S) request per cycle.
struct HttpConfig : ScraperSettings
{
    std::string url;
    std::string method = "GET";    ///< GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH (no request body)
    std::vector<int> acceptStatus; ///< accepted status codes; empty: any 2xx
    std::vector<std::pair<std::string, std::string>> headers; ///< request headers, in config order
    bool followRedirects = false;                             ///< follow up to maxRedirects Location answers
    std::vector<std::string> versions; ///< accepted HTTP versions (`HTTP/1.1`, `HTTP/2.0`); empty: any
    std::vector<std::string> failIfBodyMatches;    ///< ECMAScript regexes the body must not match
    std::vector<std::string> failIfBodyNotMatches; ///< ECMAScript regexes the body must match
    bool tlsVerify = true;                         ///< verify the server certificate and name
    std::string caFile;                            ///< extra CA bundle (PEM); empty: the system's
    std::string sourceAddress;                     ///< IP literal the request leaves from; empty: any
    std::optional<double> timeoutSeconds;          ///< overrides conf.timeout
};

/// The `http` scraper's registration: `jobs[].http`, one target per job, its `/probe` module.
ScraperDescriptor httpScraperDescriptor();

/// `http`: one HTTP(S) request per device and cycle through libcurl: status, phase timings, what the server's
/// TLS presented (certificate expiry over the whole chain, version; from OpenSSL's session of the last
/// request). All requests of a cycle run at once on the calling thread (libcurl's multi interface, one easy
/// handle and one fresh connection per target, no redirects followed, no proxy). Up when the status is
/// accepted (`jobs[].http.status`, default any 2xx); an answer with another status is `mismatch`.
/// With `follow_redirects` up to maxRedirects redirects are followed (the timings and status are then those
/// summed over the chain and of the last answer). A body regex is checked on the first maxBodyBytes of the
/// body; a failed check is `mismatch` with `fleetprobe_http_failed_due_to_regex` 1.
/// One instance per config; probe() is called by one thread at a time.
class HttpScraper : public Scraper
{
public:
    /// Redirects followed at most (blackbox_exporter's and Go's limit).
    static constexpr long maxRedirects = 10;
    /// Bytes of a body kept for the body regexes.
    static constexpr std::size_t maxBodyBytes = 1 << 20;

    /// Sends every target's request at once; returns within about the largest target timeout.
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

    /// libcurl's cumulative times of one transfer, in seconds from its start; 0 for a point not reached.
    struct Timings
    {
        double nameLookup = 0;    ///< CURLINFO_NAMELOOKUP_TIME_T
        double connect = 0;       ///< CURLINFO_CONNECT_TIME_T
        double appConnect = 0;    ///< CURLINFO_APPCONNECT_TIME_T (TLS handshake done; 0 for http)
        double startTransfer = 0; ///< CURLINFO_STARTTRANSFER_TIME_T (first byte of the answer)
        double total = 0;         ///< CURLINFO_TOTAL_TIME_T
    };

    /// The `http_duration_seconds{phase}` measurements of a transfer, as blackbox_exporter splits them:
    /// resolve, connect, tls (0 for plain http), first_byte (from the end of connect/TLS to the first byte)
    /// and total. A phase that was not reached is left out; `total` only when an answer came (`answered`).
    static std::vector<Measurement> phaseDurations(const Timings& timings, bool https, bool answered);

    /// True when `status` is in `accepted`, or for an empty list when it is 2xx.
    static bool statusAccepted(long status, const std::vector<int>& accepted);
};

} // namespace fleetprobe
