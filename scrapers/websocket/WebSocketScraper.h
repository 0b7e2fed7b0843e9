#pragma once

#include "engine/ScraperDescriptor.h"

#include <Poco/Net/Context.h>

#include <map>
#include <optional>
#include <string>
#include <utility>

namespace fleetprobe
{

/// `jobs[].websocket`: one WebSocket opening handshake per cycle.
struct WebSocketConfig : ScraperSettings
{
    std::string url; ///< ws:// or wss://
    bool tlsVerify = true;
    std::string caFile;
    std::optional<double> timeoutSeconds;
};

/// The `websocket` scraper's registration: `jobs[].websocket`, one target per job, its `/probe` module.
ScraperDescriptor webSocketScraperDescriptor();

/// `websocket`: one WebSocket opening handshake per device and cycle with Poco's WebSocket client (Net and
/// NetSSL), then a clean close: handshake time, HTTP status of the upgrade answer, certificate expiry for
/// `wss://`. Host names are looked up first, for all targets at once (within the timeout). Then the calling
/// thread connects every target at once in one poll loop, and hands each connection to one of at most
/// `maxThreads` handshake threads (TLS, upgrade request and answer, close), so devices that do not answer
/// cost one timeout together. Every socket operation is bounded by what is left of the target's timeout.
/// Up when the server answers 101 and the WebSocket is established; any other answer is `mismatch`. TLS
/// verification (chain and host name) is on unless `tls_verify` is false.
/// One instance per config; probe() is called by one thread at a time.
class WebSocketScraper : public Scraper
{
public:
    /// Handshakes run at once at most; more connected targets wait for a free thread (that wait does not
    /// count against their timeout).
    static constexpr std::size_t maxThreads = 128;

    /// Runs every target's handshake; returns within about the name lookup time plus the largest target
    /// timeout, plus the time connected targets wait for a handshake thread.
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

    /// Test hook: `hook` runs at the start of every certificate verification callback (on a handshake
    /// thread) and may throw, to show that no exception leaves OpenSSL's callback. nullptr: none.
    /// Thread-safe.
    static void setVerifyHookForTesting(void (*hook)());

private:
    /// The TLS client context for (tls_verify, ca_file), made on first use and kept for later cycles.
    /// Throws Poco::Exception when the CA file cannot be loaded (then nothing is kept).
    Poco::Net::Context::Ptr context(bool verify, const std::string& caFile);

    std::map<std::pair<bool, std::string>, Poco::Net::Context::Ptr> _contexts; ///< used by probe() only
};

} // namespace fleetprobe
