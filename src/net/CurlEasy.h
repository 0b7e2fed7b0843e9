#pragma once

#include <curl/curl.h>

namespace fleetprobe
{

/// Owns one libcurl easy handle (RAII): the one curl wrapper of fleetprobe, used by the http scraper (with
/// CurlMulti) and by the push clients (one handle reused across pushes, curl_easy_reset between them, so the
/// connection is kept alive). The only public header besides CurlMulti.h that names a curl type: others hold
/// a CurlEasy through a forward declaration. When a CurlMulti holds it, the destructor first removes it from
/// that multi handle, so a CurlEasy must be destroyed before the CurlMulti it was added to. Not thread-safe:
/// one thread uses it at a time (libcurl's rule for easy handles).
class CurlEasy
{
public:
    /// Creates the handle; throws std::runtime_error when libcurl cannot (out of memory).
    CurlEasy();

    /// Removes the handle from its multi handle (if any), then frees it.
    ~CurlEasy();

    CurlEasy(const CurlEasy&) = delete;
    CurlEasy& operator=(const CurlEasy&) = delete;

    /// The handle, for curl_easy_setopt and curl_easy_getinfo. Owned by this object.
    CURL* get() const { return _easy; }

    /// The `Date` header of the last answer `easy` received, in seconds since the Unix epoch (whole seconds,
    /// as HTTP dates are); 0 when there was none or it could not be read. Call after a transfer, on the
    /// thread that owns the handle.
    static double answerDateUnix(CURL* easy);

private:
    friend class CurlMulti;
    CURL* _easy;
    CURLM* _multi = nullptr; ///< the multi handle that holds this one, or nullptr
};

} // namespace fleetprobe
