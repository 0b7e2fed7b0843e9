#pragma once

#include "engine/StopSignal.h"

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <vector>

namespace fleetprobe
{

struct ProbeResult;

/// The failure of a target whose probe a stop request ended before it finished: `timeout`, "the probe was
/// stopped".
ProbeResult probeStopped();

/// The longest a wait of the network layer runs before it looks at a stop request again.
constexpr std::chrono::milliseconds stopCheckInterval{200};

/// Milliseconds for poll()/epoll_wait() to wait for `until` from `now`: rounded up, never negative, at most
/// stopCheckInterval. Pure.
int waitSliceMs(std::chrono::steady_clock::time_point until, std::chrono::steady_clock::time_point now);

/// The descriptors one batch loop waits on, each with its events and deadline, rebuilt by the loop for every
/// wait. Owns no descriptor; one thread uses it.
class PollSet
{
public:
    /// Forgets every descriptor.
    void clear();

    /// Waits on `fd` for `events` (POLLIN, POLLOUT) until `deadline`; entries keep the order they are added
    /// in.
    void add(int fd, short events, std::chrono::steady_clock::time_point deadline);

    /// Waits until a descriptor is ready, the nearest deadline passes or `stop` is requested (seen within
    /// stopCheckInterval). Returns false with errno set when poll() fails (EINTR is no failure).
    bool wait(const StopSignal& stop);

    /// What happened on the entry at `index` in the last wait (0: nothing).
    short events(std::size_t index) const { return _fds[index].revents; }

    /// The number of entries.
    std::size_t size() const { return _fds.size(); }

private:
    std::vector<pollfd> _fds;
    std::chrono::steady_clock::time_point _nearest{};
};

} // namespace fleetprobe
