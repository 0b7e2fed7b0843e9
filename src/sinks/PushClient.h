#pragma once

#include "config/Config.h"
#include "metrics/MetricFamily.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetprobe
{

class CurlEasy;

/// A request body produced piece by piece on demand, so that a large fleet's text is never held whole: each
/// pass (push attempt) calls the opener again and pulls pieces of about `pieceBytes` until the producer says
/// it is done. Fixed text is the one-piece case. Copyable; a pass is used by one thread.
class Body
{
public:
    /// Appends the next piece to `piece` (which the caller has cleared) and returns true, or returns false
    /// when the body is complete.
    using Producer = std::function<bool(std::string& piece)>;

    /// A fixed text.
    explicit Body(std::string text);

    /// A body made on demand; `open` starts a new pass (a fresh producer) each time it is called.
    explicit Body(std::function<Producer()> open) : _open(std::move(open)) {}

    /// Starts a pass over the pieces.
    Producer open() const { return _open(); }

    /// The size when known in advance (fixed text); a produced body is sent with chunked transfer encoding.
    std::optional<std::size_t> knownSize() const { return _size; }

    /// The whole text of one pass (tests, small bodies).
    std::string joined() const;

    /// The same body gzip'd (one gzip member), produced piece by piece as well; same content type.
    Body gzipped() const;

    /// The media type of the body (the `Content-Type` of a push); the text format 0.0.4 unless set.
    const std::string& contentType() const { return _contentType; }

    /// Sets the media type of the body.
    void setContentType(std::string type) { _contentType = std::move(type); }

    /// The content type of the Prometheus text format 0.0.4.
    static constexpr const char* textContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// The size a producer aims at for each piece.
    static constexpr std::size_t pieceBytes = std::size_t{256} * 1024;

private:
    std::function<Producer()> _open;
    std::optional<std::size_t> _size;
    std::string _contentType = textContentType;
};

/// A predicate polled during a transfer; when it returns true the transfer is aborted (a transport error).
/// Empty: never.
using AbortCheck = std::function<bool()>;

/// How one push ended.
struct PushOutcome
{
    enum class Result
    {
        Ok,
        Http4xx,
        Http5xx,
        Transport
    };
    Result result = Result::Transport;
    long httpStatus = 0; ///< 0 when no HTTP answer came
    std::string message; ///< curl's error text or the start of the server's answer
    bool local = false;  ///< failed on this side (the body could not be produced): sending again cannot help
    double serverDateUnix = 0; ///< the answer's HTTP `Date` (whole seconds); 0 when none came
    std::uint64_t bytesSent =
        0; ///< request bytes put on the wire: headers and (compressed) body, as curl sent

    bool ok() const { return result == Result::Ok; }
    /// `ok`, `http_4xx`, `http_5xx` or `transport`.
    const char* resultName() const;
};

/// Carries one group's exposition text to where it is kept (a Pushgateway). One instance per config; not
/// thread-safe.
class PushTransport
{
public:
    virtual ~PushTransport() = default;

    /// Replaces the group at `groupPath` (`/metrics/job/...`) with `body`. Returns within `timeout`, or soon
    /// after `abort` says so. A body whose producer throws is a failed push (`local`), not an exception.
    virtual PushOutcome put(const std::string& groupPath, const Body& body, std::chrono::milliseconds timeout,
                            const AbortCheck& abort) = 0;
};

/// Pushes to a Prometheus Pushgateway with HTTP PUT. Connect and total timeouts are always set; no exception
/// leaves a curl callback (a failing body producer aborts the transfer). One instance per thread.
class PushgatewayClient : public PushTransport
{
public:
    /// Call curl_global_init once in the process before constructing any client.
    explicit PushgatewayClient(PushTarget target,
                               std::chrono::milliseconds connectTimeout = std::chrono::seconds(5));
    ~PushgatewayClient() override;

    PushOutcome put(const std::string& groupPath, const Body& body, std::chrono::milliseconds timeout,
                    const AbortCheck& abort) override;

private:
    PushTarget _target;
    std::chrono::milliseconds _connectTimeout;
    std::unique_ptr<CurlEasy> _curl; ///< reused across transfers, so the connection is kept alive
};

/// Percent-encodes every byte but RFC 3986's unreserved characters (a query parameter's name or value). Pure.
std::string percentEncode(const std::string& text);

/// Carries a cycle's timestamped samples to an import API that keeps history (VictoriaMetrics). One instance
/// per config; not thread-safe.
class ImportTransport
{
public:
    virtual ~ImportTransport() = default;

    /// Sends `gzipText` (gzip'd exposition text, every sample with its timestamp); the server adds
    /// `extraLabels` to every sample. Returns within `timeout`, or soon after `abort` says so.
    virtual PushOutcome import(const std::string& gzipText, const Labels& extraLabels,
                               std::chrono::milliseconds timeout, const AbortCheck& abort) = 0;

    /// The body of one replay request from the payloads of spooled cycles, oldest first. By default their
    /// concatenation (gzip members make one gzip stream). May throw std::runtime_error on a bad payload.
    virtual std::string joinBatch(const std::vector<std::string>& payloads) const
    {
        std::string body;
        for (const auto& p : payloads)
            body += p;
        return body;
    }

    /// True when the receiver refused the body for good: sending it again cannot help, so it is dropped
    /// (and counted) instead of kept. By default never (VictoriaMetrics: a 4xx says nothing against the
    /// data).
    virtual bool refusedForGood(const PushOutcome& outcome) const
    {
        (void)outcome;
        return false;
    }

    /// True when a failed request may succeed if sent again soon (transport errors, 5xx, 429).
    virtual bool retryable(const PushOutcome& outcome) const
    {
        return !outcome.ok() && !outcome.local && !refusedForGood(outcome);
    }
};

/// POSTs to VictoriaMetrics' `<base>/api/v1/import/prometheus?extra_label=...` with `Content-Encoding: gzip`
/// (single-node, vmagent and a cluster's vminsert prefix alike). Basic auth or a bearer token. Connect and
/// total timeouts are always set. One instance per thread.
class VictoriaMetricsClient : public ImportTransport
{
public:
    /// Call curl_global_init once in the process before constructing any client.
    explicit VictoriaMetricsClient(ImportTarget target,
                                   std::chrono::milliseconds connectTimeout = std::chrono::seconds(5));
    ~VictoriaMetricsClient() override;

    PushOutcome import(const std::string& gzipText, const Labels& extraLabels,
                       std::chrono::milliseconds timeout, const AbortCheck& abort) override;

    /// The request URL for `extraLabels` (each `extra_label=name=value`, percent-encoded).
    std::string urlFor(const Labels& extraLabels) const;

private:
    ImportTarget _target;
    std::chrono::milliseconds _connectTimeout;
    std::unique_ptr<CurlEasy> _curl; ///< reused across transfers, so the connection is kept alive
};

/// POSTs Prometheus remote write 1.0 requests (a snappy'd protobuf WriteRequest) to the receiver's URL as
/// given (e.g. `http://127.0.0.1:9090/api/v1/write`), with `Content-Encoding: snappy`,
/// `Content-Type: application/x-protobuf` and `X-Prometheus-Remote-Write-Version: 0.1.0`; basic auth or a
/// bearer token. A 4xx other than 429 is refused for good. The labels are in the body: `extraLabels` is not
/// used. One instance per thread.
class RemoteWriteClient : public ImportTransport
{
public:
    /// Call curl_global_init once in the process before constructing any client. `target.url` is the whole
    /// endpoint URL.
    explicit RemoteWriteClient(ImportTarget target,
                               std::chrono::milliseconds connectTimeout = std::chrono::seconds(5));
    ~RemoteWriteClient() override;

    PushOutcome import(const std::string& body, const Labels& extraLabels, std::chrono::milliseconds timeout,
                       const AbortCheck& abort) override;

    /// The spooled requests merged into one (RemoteWriteEncoder::merge).
    std::string joinBatch(const std::vector<std::string>& payloads) const override;

    /// A 4xx other than 429 Too Many Requests.
    bool refusedForGood(const PushOutcome& outcome) const override;

private:
    ImportTarget _target;
    std::chrono::milliseconds _connectTimeout;
    std::unique_ptr<CurlEasy> _curl;
};

} // namespace fleetprobe
