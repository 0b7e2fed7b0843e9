// Stopping a burst. A burst of `count` echoes is `count` rounds, each on its own liboping objects (one per
// chunk of hosts) on its own thread that waits for its send time (start + round * interval_ms) and then
// blocks in ping_send() for up to the timeout. liboping has no way to cancel ping_send(), but it returns -1
// (EINTR) when a signal interrupts its select(). So on a stop request probe() wakes each round still running
// with SIGURG, aimed at its thread (pthread_kill) and repeated every 50 ms until the round is over, since one
// can land just before select(). The same wakes a round that outlives its timeout by a second on the
// monotonic clock: liboping's deadline is on the wall clock, which a step back would stretch. The SIGURG
// handler does nothing and is installed without SA_RESTART; SIGURG's default action is to be ignored, so a
// stray one elsewhere is harmless. A round not sent yet is not sent; a round interrupted while it waits keeps
// the replies it got; echoes are counted as sent only for rounds that were sent.

#include "scrapers/ping/PingScraper.h"

#include "config/Config.h"
#include "net/Resolver.h"
#include "scrapers/ping/PingObject.h"
#include "util/Log.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace fleetprobe
{
namespace
{

/// The target's burst settings (the defaults for a target made without any).
PingOptions optionsOf(const ProbeTarget& t)
{
    const PingOptions* o = t.settingsAs<PingOptions>();
    return o ? *o : PingOptions{};
}

/// The signal that interrupts a round's ping_send() on a stop request.
constexpr int wakeSignal = SIGURG;

void ignoreWakeSignal(int) {}

/// Installs the do-nothing handler of wakeSignal once per process, without SA_RESTART, and unblocks the
/// signal in the calling thread.
void acceptWakeSignal()
{
    static std::once_flag installed;
    std::call_once(installed,
                   []
                   {
                       struct sigaction action;
                       std::memset(&action, 0, sizeof action);
                       action.sa_handler = ignoreWakeSignal;
                       sigemptyset(&action.sa_mask);
                       ::sigaction(wakeSignal, &action, nullptr);
                   });
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, wakeSignal);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

/// Everything one address got in a cycle, over the rounds of its burst.
struct Tally
{
    int sent = 0;
    int received = 0;
    std::vector<double> rtts; ///< the trusted ones
    int hopLimit = -1;        ///< of the last reply
    FailureReason reason = FailureReason::None;
    std::string detail;
};

/// One round of one chunk: what it pings, when, and what came back.
struct Round
{
    std::unique_ptr<PingObject>* object = nullptr; ///< the kept object (made on the round's thread if null)
    const std::vector<std::string>* chunk = nullptr;
    const std::unordered_map<std::string, std::size_t>* slotOf = nullptr;
    PingOptions options;
    std::chrono::steady_clock::time_point sendAt;
    std::vector<std::pair<std::size_t, PingObject::Reply>> replies; ///< slot, reply
    std::vector<PingObject::AddFailure> failures;
    PingObject::SyncStats sync;
    PingObject::RoundOutcome outcome;
    bool unusable = false; ///< no object (no socket in the budget, or ping_construct failed)
    std::atomic<std::int64_t> sendingSince{0}; ///< steady-clock ns when ping_send began; 0: not in it
};

void runRound(Round& round, double timeoutSeconds, const StopSignal& stop)
{
    std::unique_ptr<PingObject>& object = *round.object;
    if (!object)
        object = std::make_unique<PingObject>(round.options.size, round.options.ttl);
    if (!object->valid())
    {
        round.unusable = true;
        return;
    }
    round.sync = object->sync(*round.chunk, round.failures);
    round.outcome = object->send(
        timeoutSeconds, round.sendAt, stop,
        [&](const PingObject::Reply& reply)
        {
            auto slot = round.slotOf->find(*reply.address);
            if (slot != round.slotOf->end())
                round.replies.emplace_back(slot->second, reply);
        },
        &round.sendingSince);
}

} // namespace

PingScraper::PingScraper() = default;
PingScraper::~PingScraper() = default;

std::vector<int> PingScraper::sockets() const
{
    std::vector<int> fds;
    for (const auto& [k, g] : _groups)
        for (const auto& chunkObjects : g.objects)
            for (const auto& object : chunkObjects)
                if (object)
                    for (int fd : {object->ipv4Socket(), object->ipv6Socket()})
                        if (fd >= 0)
                            fds.push_back(fd);
    return fds;
}

void PingScraper::takeOver(Scraper& previous)
{
    auto* other = dynamic_cast<PingScraper*>(&previous);
    if (!other || other == this)
        return;
    for (auto& [key, group] : other->_groups)
        if (!_groups.count(key))
            _groups.emplace(key, std::move(group));
    other->_groups.clear();
}

std::vector<ProbeResult> PingScraper::probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop)
{
    std::vector<ProbeResult> results(targets.size());
    if (targets.empty())
        return results;
    std::chrono::milliseconds timeout{0};
    for (const auto& t : targets)
        timeout = std::max(timeout, t.timeout);

    // Resolve each distinct host once.
    std::unordered_map<std::string, std::size_t> hostIndex;
    std::vector<ResolveRequest> requests;
    for (const auto& t : targets)
        if (hostIndex.emplace(t.host, requests.size()).second)
            requests.push_back(ResolveRequest{t.host, AF_UNSPEC});
    const auto resolved = Resolver::resolveAll(requests, timeout, &stop);
    std::vector<std::string> numeric(resolved.size());
    for (std::size_t i = 0; i < resolved.size(); ++i)
        if (resolved[i].ok)
            numeric[i] = resolved[i].numeric();

    // Targets with the same burst settings are pinged together, each distinct address once per round; each
    // address has a slot that tallies its replies.
    auto key = [](const PingOptions& o) { return std::make_tuple(o.count, o.intervalMs, o.size, o.ttl); };
    std::map<Key, PingOptions> optionsByKey;
    std::map<Key, std::unordered_map<std::string, std::size_t>> slotOf;
    std::map<Key, std::vector<std::string>> wanted;
    std::vector<Tally> tallies;
    for (const auto& t : targets)
    {
        const std::size_t h = hostIndex[t.host];
        if (!resolved[h].ok)
            continue;
        const PingOptions options = optionsOf(t);
        const Key k = key(options);
        optionsByKey[k] = options;
        if (slotOf[k].emplace(numeric[h], tallies.size()).second)
        {
            tallies.emplace_back();
            wanted[k].push_back(numeric[h]);
        }
    }

    // The kept objects follow the targets: settings no longer used go, hosts gone leave their chunk, new
    // hosts fill the chunks that have room, then new chunks.
    SyncStats stats;
    for (auto it = _groups.begin(); it != _groups.end();)
        if (wanted.count(it->first))
            ++it;
        else
            it = _groups.erase(it);
    for (auto& [k, addresses] : wanted)
    {
        Group& g = _groups[k];
        const auto& slots = slotOf[k];
        std::unordered_set<std::string> present;
        for (auto& chunk : g.chunks)
        {
            chunk.erase(std::remove_if(chunk.begin(), chunk.end(),
                                       [&](const std::string& a) { return !slots.count(a); }),
                        chunk.end());
            present.insert(chunk.begin(), chunk.end());
        }
        std::size_t fill = 0;
        for (const auto& a : addresses)
        {
            if (present.count(a))
                continue;
            while (fill < g.chunks.size() && g.chunks[fill].size() >= maxHostsPerObject)
                ++fill;
            if (fill == g.chunks.size())
                g.chunks.emplace_back();
            g.chunks[fill].push_back(a);
        }
        for (std::size_t c = g.chunks.size(); c-- > 0;)
            if (g.chunks[c].empty())
            {
                g.chunks.erase(g.chunks.begin() + static_cast<std::ptrdiff_t>(c));
                if (c < g.objects.size())
                    g.objects.erase(g.objects.begin() + static_cast<std::ptrdiff_t>(c));
            }
        g.objects.resize(g.chunks.size());
        for (auto& rounds : g.objects)
            rounds.resize(static_cast<std::size_t>(optionsByKey[k].count));
    }

    // Every round of every chunk on its own thread, sending at start + round * interval_ms and waiting up to
    // the timeout: a burst of `count` costs (count - 1) * interval + timeout, however many hosts are silent.
    const double timeoutSeconds = std::chrono::duration<double>(timeout).count();
    const auto start = std::chrono::steady_clock::now();
    std::size_t roundCount = 0;
    for (auto& [k, g] : _groups)
        roundCount += g.chunks.size() * static_cast<std::size_t>(optionsByKey[k].count);
    std::vector<Round> rounds(roundCount);
    std::size_t next = 0;
    for (auto& [k, g] : _groups)
    {
        const PingOptions& options = optionsByKey[k];
        for (int r = 0; r < options.count; ++r)
            for (std::size_t c = 0; c < g.chunks.size(); ++c)
            {
                Round& round = rounds[next++];
                round.object = &g.objects[c][static_cast<std::size_t>(r)];
                round.chunk = &g.chunks[c];
                round.slotOf = &slotOf[k];
                round.options = options;
                round.sendAt =
                    start + std::chrono::milliseconds(static_cast<long long>(r) * options.intervalMs);
            }
    }
    // This thread watches for a stop request and for rounds that outlive their timeout, and wakes them.
    std::mutex doneMutex;
    std::condition_variable doneCv;
    std::size_t running = rounds.size();
    std::vector<std::atomic<bool>> finished(rounds.size());
    std::vector<std::thread> threads;
    threads.reserve(rounds.size());
    for (std::size_t i = 0; i < rounds.size(); ++i)
        threads.emplace_back(
            [&, i]
            {
                acceptWakeSignal();
                runRound(rounds[i], timeoutSeconds, stop);
                finished[i] = true;
                std::lock_guard<std::mutex> lock(doneMutex);
                --running;
                doneCv.notify_all();
            });
    const auto overdue =
        std::chrono::duration_cast<std::chrono::nanoseconds>(timeout + std::chrono::seconds(1));
    {
        std::unique_lock<std::mutex> lock(doneMutex);
        while (running > 0)
        {
            const auto slice =
                stop.requested() ? std::chrono::milliseconds(50) : std::chrono::milliseconds(100);
            if (doneCv.wait_for(lock, slice, [&] { return running == 0; }))
                break;
            const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count();
            for (std::size_t i = 0; i < threads.size(); ++i)
            {
                if (finished[i])
                    continue;
                const std::int64_t since = rounds[i].sendingSince;
                if (stop.requested() || (since != 0 && now - since > overdue.count()))
                    pthread_kill(threads[i].native_handle(), wakeSignal);
            }
        }
    }
    for (auto& t : threads)
        t.join();

    // Tally every reply and every echo sent.
    for (auto& round : rounds)
    {
        stats.added += round.sync.added;
        stats.removed += round.sync.removed;
        stats.kept += round.sync.kept;
        stats.redrawn += round.sync.redrawn;
        if (round.unusable)
        {
            for (const auto& a : *round.chunk)
            {
                Tally& t = tallies[round.slotOf->at(a)];
                t.reason = FailureReason::Error;
                t.detail = "no socket free within 30 s (open-file limit), or ping_construct failed";
            }
            continue;
        }
        std::unordered_map<std::string, const PingObject::AddFailure*> failed;
        for (const auto& f : round.failures)
        {
            failed[f.address] = &f;
            Tally& t = tallies[round.slotOf->at(f.address)];
            t.reason = f.permission ? FailureReason::Permission : FailureReason::Error;
            t.detail = f.detail;
        }
        if (!round.outcome.error.empty() && log().debug())
            log().debug("ping: ping_send reported an error for some hosts: " + round.outcome.error);
        if (!round.outcome.sent)
            continue;
        for (const auto& a : *round.chunk)
            if (!failed.count(a))
                ++tallies[round.slotOf->at(a)].sent;
        for (const auto& [slot, reply] : round.replies)
        {
            Tally& t = tallies[slot];
            ++t.received;
            if (reply.rttTrusted)
                t.rtts.push_back(reply.rttSeconds);
            if (reply.hopLimit >= 0)
                t.hopLimit = reply.hopLimit;
        }
    }
    for (const auto& [k, g] : _groups)
        for (const auto& chunkObjects : g.objects)
            for (const auto& object : chunkObjects)
                if (object)
                    ++stats.objects;
    _lastSync = stats;
    if (log().debug())
        log().debug("ping: " + std::to_string(stats.objects) +
                    " liboping objects, host entries: " + std::to_string(stats.added) + " added, " +
                    std::to_string(stats.removed) + " removed, " + std::to_string(stats.kept) + " kept, " +
                    std::to_string(stats.redrawn) + " identifiers drawn again");

    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const std::size_t h = hostIndex[targets[i].host];
        if (!resolved[h].ok)
        {
            results[i] = ProbeResult::failure(FailureReason::Resolve, resolved[h].error);
            continue;
        }
        const PingOptions options = optionsOf(targets[i]);
        const Tally& t = tallies[slotOf[key(options)].at(numeric[h])];
        ProbeResult r;
        if (t.received > 0)
        {
            r.up = true;
            r.rttSamples = t.rtts;
            if (t.rtts.empty())
                r.rttMeasured = false; // replies came, but the wall clock stepped under every one of them
            else
            {
                double sum = 0;
                for (double v : t.rtts)
                    sum += v;
                r.rttSeconds = sum / static_cast<double>(t.rtts.size());
            }
            if (t.hopLimit >= 0)
                r.measurements.push_back({"ping_reply_hop_limit", {}, static_cast<double>(t.hopLimit)});
        }
        else
        {
            r.reason = t.reason == FailureReason::None ? FailureReason::Timeout : t.reason;
            r.detail = t.detail;
            if (t.sent == 0 && t.reason == FailureReason::None)
                r.detail = "stopped before the first echo";
        }
        // Packet counters for bursts; with one echo per cycle fleetprobe_probes_total and the failures say it
        // all.
        if (options.count > 1)
        {
            r.measurements.push_back({"ping_packets_sent_total", {}, static_cast<double>(t.sent)});
            r.measurements.push_back({"ping_packets_received_total", {}, static_cast<double>(t.received)});
        }
        results[i] = std::move(r);
    }
    return results;
}

} // namespace fleetprobe
