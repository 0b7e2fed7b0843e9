#pragma once

#include "engine/ScraperDescriptor.h"
#include "scrapers/common/TlsClient.h"

#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

/// One step of a `query_response` dialog (blackbox_exporter's): wait for a line matching `expect`, then send
/// `send` plus LF, where `${1}`.. are the groups of that match.
struct QueryStep
{
    std::optional<std::string> expect; ///< ECMAScript regex a line of the answer must match
    std::optional<std::string> send;   ///< sent after the expect (if any), with ${n} substituted
    bool startTls = false; ///< then a TLS handshake (STARTTLS); the rest of the dialog runs over TLS
};

/// One socket a `port` job probes (an entry of `jobs[].ports`): the settings of one port target.
struct PortConfig : ScraperSettings
{
    int port = 0;                         ///< 0 for unix sockets
    std::string protocol = "tcp";         ///< tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixgram, unixpacket
    std::string path;                     ///< unix socket path
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout for this socket
    std::string send;                  ///< bytes sent after connecting (the UDP datagram; empty by default)
    std::optional<std::string> expect; ///< ECMAScript regex the first answer must match
    bool silenceOk = false;            ///< udp: no answer within the timeout counts as up
    bool tcpInfo = false;              ///< tcp: report the kernel's TCP_INFO of the connection
    std::vector<QueryStep> queryResponse; ///< stream sockets: a dialog instead of send/expect; up when done
    bool tls = false;                     ///< tcp: a TLS handshake after the connect; the rest runs over it
    TlsClientConfig tlsConfig;            ///< with `tls` or a `starttls` step: how the server is verified
    std::string sourceAddress; ///< IP literal the socket is bound to before it connects; empty: any
};

/// The `port` scraper's settings of one job: its sockets, in config order.
struct PortSettings : ScraperSettings
{
    std::vector<std::shared_ptr<const PortConfig>> ports;
};

/// The `port` scraper's registration: `jobs[].ports` (and the older `tcp_info` name in `metrics`, now the
/// `tcp_info` option of a port), one target per socket, its `/probe` module.
ScraperDescriptor portScraperDescriptor();

/// `port`: opens every configured socket of every job at once, like `nc -z`, with non-blocking connects
/// in one poll loop. tcp/tcp4/tcp6: up when the connect completes. udp/udp4/udp6: the `send` datagram (empty
/// by default) is sent; a reply is up, an ICMP port unreachable is `refused`, silence is `timeout` (or up
/// without RTT with `silence_ok`). unix/unixpacket: a connect to a path; unixgram: a connect and the
/// datagram. With `expect` the first answer must match the regex (else `mismatch`). With `tls` a tcp socket
/// does a TLS handshake (OpenSSL, non-blocking, in the same loop) before its send/expect or dialog, and
/// reports what the server presented (tls_* measurements); a failed handshake is `error`. Sockets are taken
/// from the process's SocketBudget, so a large config waits instead of meeting EMFILE. One instance per
/// config; probe() is called by one thread at a time.
class PortScraper : public Scraper
{
public:
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;
};

} // namespace fleetprobe
