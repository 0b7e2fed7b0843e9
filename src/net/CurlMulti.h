#pragma once

#include "net/CurlEasy.h"

#include <chrono>

namespace fleetprobe
{

/// Owns one libcurl multi handle (RAII): runs many transfers at once on the calling thread. Every CurlEasy
/// added must be destroyed (or removed) before this object. Not thread-safe: one thread uses it at a time.
class CurlMulti
{
public:
    /// One finished transfer: its easy handle and libcurl's result code.
    struct Done
    {
        CURL* easy = nullptr;
        CURLcode result = CURLE_OK;
    };

    /// Creates the handle; throws std::runtime_error when libcurl cannot. Transfers never share a connection
    /// (no multiplexing): each one opens its own, as a probe must.
    CurlMulti();

    /// Frees the handle. The easy handles added to it must already be gone.
    ~CurlMulti();

    CurlMulti(const CurlMulti&) = delete;
    CurlMulti& operator=(const CurlMulti&) = delete;

    /// Starts the transfer of `easy`; returns false when libcurl refuses it. `easy` is not owned.
    bool add(CurlEasy& easy);

    /// Stops a transfer added with add() (done or not); nothing happens when it is not added.
    void remove(CurlEasy& easy);

    /// Moves every transfer on as far as it can without waiting; returns the number still running.
    int perform();

    /// The next finished transfer since the last call; `easy` is nullptr when there is none.
    Done nextDone();

    /// Waits until a socket of a transfer is ready, a libcurl timer expires, or `timeout` passes.
    void wait(std::chrono::milliseconds timeout);

private:
    CURLM* _multi;
};

} // namespace fleetprobe
