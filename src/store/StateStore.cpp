// State file format, one record per line, fields separated by one space, numbers in their shortest
// round-trip text:
//
//   fleetprobe-state 3
//   buckets <bound>...
//   self <cycles> <overruns> <push failures> <last push success> <push outcomes>...
//   import <import outcomes>... <last import success> <spool dropped> <spool replayed>    (optional)
//   idrop [<reason>=<dropped>]...                     (optional: the import's drops by reason)
//   save <failed state saves>                                                             (optional)
//   rw <url> <request outcomes>... <last success> <replayed> [<reason>=<dropped>]...      (one per receiver)
//   s <series key> <probes> <rtt sum> <rtt count> <last seen> <last up + 1> <state changes> <last rtt>
//     <bucket count> <bucket>... [<reason>=<failures>]...
//   c <series key> <measurement key> <value>
//   end <series count> <fnv1a of everything before the checksum>
//
// The online profiles of a config are in a file of their own, `<prom_id as base64url>.profile`:
//
//   fleetprobe-profile 1
//   zone <zone name> <half-life seconds>
//   d <device> <first cycle> <last cycle> <last online + 1> <cycles since probe> <cycles skipped>
//   h <hour of week> <online weight> <weight> <probes> <weeks> <last cycle>     (the device's cells with
//   data) end <device count> <fnv1a of everything before the checksum>
//
// Keys are base64url. A series key is MetricsBuilder::seriesKey (device, scraper, target labels, each
// length-prefixed); one with an empty device part (`0:4:ping`, MetricsBuilder::aggregateKey), which no job
// can have, is the per-config fleetprobe_rtt_seconds of that scraper: only its rtt sum, rtt count and buckets
// mean anything. A version without per-config histograms reads it as a series no longer configured and drops
// it. Failure counters are stored by reason name (`timeout=3`), only the non-zero ones, so the order of the
// FailureReason enum is not part of the format. A reason this version does not know (a file written by a
// newer one) is ignored: it cannot be exported, and the rest of the series still loads.
//
// Versions 1 (0.1.0 before `mismatch`) and 2 (0.1.0) wrote the failure counters as fixed positions after
// `probes`, in the enum order of 0.1.0: timeout refused unreachable resolve permission error [mismatch].
// They are read by that order's names, never by today's enum positions.

#include "store/StateStore.h"

#include "engine/Scraper.h"
#include "metrics/GroupingKey.h"
#include "util/ErrnoText.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_set>

namespace fleetprobe
{
namespace
{

const char* const magic = "fleetprobe-state 3";
const char* const magicV2 = "fleetprobe-state 2"; // 0.1.0: failure counters by position
const char* const magicV1 = "fleetprobe-state 1"; // before the `mismatch` reason and measurement counters
const char* const profileMagic = "fleetprobe-profile 1";

/// The failure counters of versions 1 and 2, in their order on the line (version 1 has the first six).
const char* const legacyReasonOrder[] = {"timeout",    "refused", "unreachable", "resolve",
                                         "permission", "error",   "mismatch"};

/// The reason called `name`, or None for a name this version does not know.
FailureReason reasonNamed(const std::string& name)
{
    for (FailureReason r : allFailureReasons())
        if (name == failureReasonName(r))
            return r;
    return FailureReason::None;
}

bool startsWithLine(const std::string& text, const char* line)
{
    const std::size_t n = std::strlen(line);
    return text.size() > n && text.compare(0, n, line) == 0 && text[n] == '\n';
}

std::uint64_t fnv1a(const char* data, std::size_t size)
{
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < size; ++i)
    {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 1099511628211ull;
    }
    return h;
}

void put(std::string& out, double v)
{
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out += ' ';
    out.append(buf, r.ptr);
}

/// A float in its shortest form (read back as a double, it converts to the same float).
void put(std::string& out, float v)
{
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out += ' ';
    out.append(buf, r.ptr);
}

void put(std::string& out, std::uint64_t v)
{
    out += ' ';
    out += std::to_string(v);
}

/// Reads whitespace-separated fields of one line.
class Fields
{
public:
    Fields(const std::string& line, std::size_t lineNo) : _line(line), _lineNo(lineNo) {}

    std::string word()
    {
        while (_pos < _line.size() && _line[_pos] == ' ')
            ++_pos;
        std::size_t start = _pos;
        while (_pos < _line.size() && _line[_pos] != ' ')
            ++_pos;
        if (start == _pos)
            fail("a field is missing");
        return _line.substr(start, _pos - start);
    }

    std::uint64_t u64()
    {
        std::string w = word();
        std::uint64_t v = 0;
        auto r = std::from_chars(w.data(), w.data() + w.size(), v);
        if (r.ec != std::errc() || r.ptr != w.data() + w.size())
            fail("not a count: " + w);
        return v;
    }

    double f64()
    {
        std::string w = word();
        double v = 0;
        auto r = std::from_chars(w.data(), w.data() + w.size(), v);
        if (r.ec != std::errc() || r.ptr != w.data() + w.size() || !std::isfinite(v))
            fail("not a number: " + w);
        return v;
    }

    /// A `name=count` field.
    std::pair<std::string, std::uint64_t> namedCount()
    {
        const std::string w = word();
        const std::size_t eq = w.find('=');
        if (eq == std::string::npos || eq == 0)
            fail("not a name=count field: " + w);
        std::uint64_t v = 0;
        auto r = std::from_chars(w.data() + eq + 1, w.data() + w.size(), v);
        if (eq + 1 == w.size() || r.ec != std::errc() || r.ptr != w.data() + w.size())
            fail("not a count: " + w);
        return {w.substr(0, eq), v};
    }

    bool more()
    {
        while (_pos < _line.size() && _line[_pos] == ' ')
            ++_pos;
        return _pos < _line.size();
    }

    [[noreturn]] void fail(const std::string& why) const
    {
        throw std::runtime_error("line " + std::to_string(_lineNo) + ": " + why);
    }

private:
    const std::string& _line;
    std::size_t _lineNo;
    std::size_t _pos = 0;
};

std::string base64UrlDecode(const std::string& in)
{
    try
    {
        return GroupingKey::base64UrlDecode(in);
    }
    catch (const std::invalid_argument&)
    {
        throw std::runtime_error("bad series key encoding");
    }
}

/// The lines of text[0, end), one at a time, without copying the whole text.
class LineReader
{
public:
    LineReader(const std::string& text, std::size_t end) : _text(text), _end(std::min(end, text.size())) {}

    /// The next line (without its newline) into `line`; false at the end.
    bool next(std::string& line)
    {
        if (_pos >= _end)
            return false;
        std::size_t nl = _text.find('\n', _pos);
        if (nl == std::string::npos || nl > _end)
            nl = _end;
        line.assign(_text, _pos, nl - _pos);
        _pos = nl + 1;
        return true;
    }

private:
    const std::string& _text;
    std::size_t _end;
    std::size_t _pos = 0;
};

/// Checks the `end` line's checksum; returns the position of the newline before it.
std::size_t checkSum(const std::string& text)
{
    const std::size_t endPos = text.rfind("\nend ");
    if (endPos == std::string::npos || text.empty() || text.back() != '\n')
        throw std::runtime_error("truncated (no end line)");
    const std::string endLine = text.substr(endPos + 1, text.size() - endPos - 2);
    Fields f(endLine, 0);
    f.word();
    f.u64();
    const std::uint64_t sum = f.u64();
    const std::size_t bodyLen = endPos + 1 + endLine.rfind(' ');
    if (fnv1a(text.data(), bodyLen) != sum)
        throw std::runtime_error("checksum mismatch");
    return endPos;
}

} // namespace

const char* StateStore::defaultDirectory()
{
    return "/var/lib/fleetprobe";
}

StateStore::StateStore(std::string directory) : _directory(std::move(directory))
{
    std::error_code ec;
    std::filesystem::create_directories(_directory, ec);
    if (ec)
        throw std::runtime_error(_directory + ": cannot create the state directory: " + ec.message());
    const std::string lockPath = _directory + "/fleetprobe.lock";
    _lockFd = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (_lockFd < 0)
        throw std::runtime_error(lockPath + ": cannot open the state lock: " + errnoText(errno));
    if (::flock(_lockFd, LOCK_EX | LOCK_NB) != 0)
    {
        const int err = errno;
        char pid[32] = {0};
        ssize_t n = ::pread(_lockFd, pid, sizeof pid - 1, 0);
        ::close(_lockFd);
        _lockFd = -1;
        if (err == EWOULDBLOCK)
            throw StateLockedError(
                _directory + ": the state directory is in use by another fleetprobe process" +
                (n > 0 ? std::string(" (pid ") + std::string(pid, std::strcspn(pid, "\n")) + ")"
                       : std::string()));
        throw std::runtime_error(lockPath + ": cannot lock: " + errnoText(err));
    }
    const std::string self = std::to_string(::getpid()) + "\n";
    if (::ftruncate(_lockFd, 0) == 0)
        (void)!::pwrite(_lockFd, self.data(), self.size(), 0);
    removeStaleTemporaries();
}

StateStore::~StateStore()
{
    if (_lockFd >= 0)
        ::close(_lockFd); // releases the flock
}

std::string StateStore::pathFor(const std::string& promId) const
{
    return _directory + "/" + GroupingKey::base64Url(promId) + ".state";
}

std::string StateStore::encode(const PersistedState& state)
{
    return encode(state.rttBuckets, state.self,
                  [&state](const auto& visit)
                  {
                      for (const auto& [key, stats] : state.series)
                          visit(key, stats);
                  });
}

std::string StateStore::encode(const std::vector<double>& rttBuckets, const SelfStats& self,
                               const SeriesSource& series)
{
    std::string out = magic;
    out += "\nbuckets";
    for (double b : rttBuckets)
        put(out, b);
    const SelfStats& s = self;
    out += "\nself";
    put(out, s.cycles);
    put(out, s.overruns);
    put(out, s.pushFailures);
    put(out, s.lastPushSuccessUnix);
    for (auto n : s.pushOutcomes)
        put(out, n);
    out += '\n';
    std::uint64_t importDropped = 0;
    for (const auto& [reason, n] : s.spoolDropped)
        importDropped += n;
    if (s.lastImportSuccessUnix > 0 || importDropped > 0 || s.spoolReplayedSamples > 0 ||
        s.importOutcomes != decltype(s.importOutcomes){})
    {
        // Written only by a process with the VictoriaMetrics sink, so older versions still read other files.
        out += "import";
        for (auto n : s.importOutcomes)
            put(out, n);
        put(out, s.lastImportSuccessUnix);
        put(out, importDropped); // the total, as versions before the reasons read it
        put(out, s.spoolReplayedSamples);
        out += '\n';
    }
    if (importDropped > 0)
    {
        // The same by reason; written only after a drop, so older versions still read the other files.
        out += "idrop";
        for (const auto& [reason, n] : s.spoolDropped)
            if (n > 0)
                out += ' ' + reason + '=' + std::to_string(n);
        out += '\n';
    }
    if (s.stateSaveFailures > 0)
    {
        // Written only after a failed save, so older versions still read the files of a healthy disk.
        out += "save";
        put(out, s.stateSaveFailures);
        out += '\n';
    }
    for (const ReceiverStats& r : s.remoteWrite)
    {
        // Written only by a process with --remote-write.
        out += "rw " + GroupingKey::base64Url(r.url);
        for (auto n : r.outcomes)
            put(out, n);
        put(out, r.lastSuccessUnix);
        put(out, r.replayedSamples);
        for (const auto& [reason, n] : r.droppedSamples)
            if (n > 0)
                out += ' ' + reason + '=' + std::to_string(n);
        out += '\n';
    }
    std::size_t count = 0;
    series(
        [&out, &count](const std::string& key, const SeriesStats& st)
        {
            ++count;
            out += "s ";
            out += GroupingKey::base64Url(key);
            put(out, st.probes);
            put(out, st.rttSum);
            put(out, st.rttCount);
            put(out, st.lastSeenUnix);
            const int lastUpCode = st.lastUp + 1;
            put(out, static_cast<std::uint64_t>(lastUpCode));
            put(out, st.stateChanges);
            put(out, st.lastRttSeconds);
            put(out, static_cast<std::uint64_t>(st.bucketCounts.size()));
            for (auto c : st.bucketCounts)
                put(out, c);
            for (FailureReason r : allFailureReasons())
                if (const auto n = st.failures[static_cast<std::size_t>(r)])
                {
                    out += ' ';
                    out += failureReasonName(r);
                    out += '=';
                    out += std::to_string(n);
                }
            out += '\n';
            for (const auto& [measure, value] : st.counters)
            {
                out += "c " + GroupingKey::base64Url(key) + " " + GroupingKey::base64Url(measure);
                put(out, value);
                out += '\n';
            }
        });
    out += "end " + std::to_string(count);
    const std::uint64_t sum = fnv1a(out.data(), out.size());
    out += ' ' + std::to_string(sum) + '\n';
    return out;
}

PersistedState StateStore::decode(const std::string& text)
{
    const std::size_t endPos = text.rfind("\nend ");
    const bool v1 = startsWithLine(text, magicV1);
    const bool v2 = startsWithLine(text, magicV2);
    if (!v1 && !v2 && !startsWithLine(text, magic))
        throw std::runtime_error("not a fleetprobe state file (bad header)");
    const std::size_t legacyFailureFields = v1 ? 6 : v2 ? 7 : 0;
    checkSum(text);
    PersistedState state;
    LineReader in(text, endPos + 1);
    std::string line;
    std::size_t lineNo = 0;
    std::size_t count = 0;
    while (in.next(line))
    {
        ++lineNo;
        if (lineNo == 1)
            continue;
        Fields f(line, lineNo);
        const std::string kind = f.word();
        if (kind == "buckets")
        {
            while (f.more())
                state.rttBuckets.push_back(f.f64());
        }
        else if (kind == "self")
        {
            SelfStats& s = state.self;
            s.cycles = f.u64();
            s.overruns = f.u64();
            s.pushFailures = f.u64();
            s.lastPushSuccessUnix = f.f64();
            for (auto& n : s.pushOutcomes)
                n = f.u64();
        }
        else if (kind == "import" && !v1)
        {
            SelfStats& s = state.self;
            for (auto& n : s.importOutcomes)
                n = f.u64();
            s.lastImportSuccessUnix = f.f64();
            const std::uint64_t dropped = f.u64();
            if (dropped > 0 && s.spoolDropped.empty())
                s.spoolDropped["spool_full"] = dropped; // a file from before the reasons: the cap's drops
            s.spoolReplayedSamples = f.u64();
        }
        else if (kind == "idrop" && !v1 && !v2)
        {
            state.self.spoolDropped.clear(); // the total of the import line, by reason
            while (f.more())
            {
                const auto [reason, n] = f.namedCount();
                state.self.spoolDropped[reason] = n;
            }
        }
        else if (kind == "save" && !v1 && !v2)
            state.self.stateSaveFailures = f.u64();
        else if (kind == "rw" && !v1 && !v2)
        {
            ReceiverStats r;
            r.url = base64UrlDecode(f.word());
            for (auto& n : r.outcomes)
                n = f.u64();
            r.lastSuccessUnix = f.f64();
            r.replayedSamples = f.u64();
            while (f.more())
            {
                const auto [reason, n] = f.namedCount();
                r.droppedSamples[reason] = n;
            }
            state.self.remoteWrite.push_back(std::move(r));
        }
        else if (kind == "s")
        {
            const std::string key = base64UrlDecode(f.word());
            SeriesStats st;
            st.probes = f.u64();
            for (std::size_t i = 0; i < legacyFailureFields; ++i)
                st.failures[static_cast<std::size_t>(reasonNamed(legacyReasonOrder[i]))] = f.u64();
            st.rttSum = f.f64();
            st.rttCount = f.u64();
            st.lastSeenUnix = f.f64();
            const auto up = f.u64();
            if (up > 2)
                f.fail("bad last state");
            st.lastUp = static_cast<int>(up) - 1;
            st.stateChanges = f.u64();
            st.lastRttSeconds = f.f64();
            const auto nb = f.u64();
            if (nb > 1024)
                f.fail("too many buckets");
            for (std::uint64_t b = 0; b < nb; ++b)
                st.bucketCounts.push_back(f.u64());
            std::set<std::string> named;
            while (legacyFailureFields == 0 && f.more())
            {
                const auto [name, n] = f.namedCount();
                if (!named.insert(name).second)
                    f.fail("reason " + name + " twice");
                const FailureReason r = reasonNamed(name);
                if (r != FailureReason::None) // else a newer version's reason: ignored
                    st.failures[static_cast<std::size_t>(r)] = n;
            }
            state.series[key] = std::move(st);
            ++count;
        }
        else if (kind == "c" && !v1)
        {
            auto it = state.series.find(base64UrlDecode(f.word()));
            if (it == state.series.end())
                f.fail("counter of an unknown series");
            const std::string measure = base64UrlDecode(f.word());
            it->second.counters[measure] = f.f64();
        }
        else
            f.fail("unknown record \"" + kind + "\"");
        if (f.more())
            f.fail("extra fields");
    }
    if (count != state.series.size())
        throw std::runtime_error("duplicate series");
    return state;
}

template <class T>
std::optional<T> StateStore::loadFile(const std::string& path,
                                      const std::function<T(const std::string&)>& decoder,
                                      std::string& problem, const char* lost) const
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        if (errno == ENOENT)
            return std::nullopt;
        problem = path + ": cannot read the state file: " + errnoText(errno);
    }
    else
    {
        // Read at once into one string of the file's size (a stringstream would hold it twice).
        std::string text;
        in.seekg(0, std::ios::end);
        const std::streamoff size = in.tellg();
        in.seekg(0, std::ios::beg);
        if (size > 0)
        {
            text.resize(static_cast<std::size_t>(size));
            in.read(text.data(), size);
            text.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
        }
        try
        {
            return decoder(text);
        }
        catch (const std::exception& e)
        {
            problem = path + ": corrupt state file (" + e.what() + ")";
        }
    }
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string aside = path + ".corrupt-" + std::to_string(now);
    if (::rename(path.c_str(), aside.c_str()) == 0)
        problem += "; moved aside to " + aside + ", " + lost;
    else
        problem += "; could not move it aside (" + std::string(errnoText(errno)) + "), " + lost;
    return std::nullopt;
}

std::optional<PersistedState> StateStore::load(const std::string& promId, std::string& problem) const
{
    return loadFile<PersistedState>(pathFor(promId), &StateStore::decode, problem,
                                    "counters start from zero");
}

void StateStore::save(const std::string& promId, const PersistedState& state) const
{
    save(promId, state.rttBuckets, state.self,
         [&state](const auto& visit)
         {
             for (const auto& [key, stats] : state.series)
                 visit(key, stats);
         });
}

void StateStore::save(const std::string& promId, const std::vector<double>& rttBuckets, const SelfStats& self,
                      const SeriesSource& series) const
{
    writeFile(pathFor(promId), encode(rttBuckets, self, series));
}

std::string StateStore::profilePathFor(const std::string& promId) const
{
    return _directory + "/" + GroupingKey::base64Url(promId) + ".profile";
}

std::optional<PersistedProfiles> StateStore::loadProfiles(const std::string& promId,
                                                          std::string& problem) const
{
    return loadFile<PersistedProfiles>(profilePathFor(promId), &StateStore::decodeProfiles, problem,
                                       "profiles start empty");
}

void StateStore::saveProfiles(const std::string& promId, const PersistedProfiles& profiles) const
{
    writeFile(profilePathFor(promId), encodeProfiles(profiles));
}

void StateStore::saveProfiles(const std::string& promId, const ProfilesView& profiles) const
{
    writeFile(profilePathFor(promId), encodeProfiles(profiles));
}

std::string StateStore::encodeProfiles(const PersistedProfiles& profiles)
{
    ProfilesView view;
    view.zone = profiles.zone;
    view.halfLifeSeconds = profiles.halfLifeSeconds;
    view.devices.reserve(profiles.devices.size());
    for (const auto& [device, p] : profiles.devices)
        view.devices.emplace_back(&device, &p);
    return encodeProfiles(view);
}

std::string StateStore::encodeProfiles(const ProfilesView& profiles)
{
    std::string out = profileMagic;
    out += "\nzone " + GroupingKey::base64Url(profiles.zone);
    put(out, profiles.halfLifeSeconds);
    out += '\n';
    for (const auto& [devicePtr, profilePtr] : profiles.devices)
    {
        const std::string& device = *devicePtr;
        const OnlineProfile& p = *profilePtr;
        out += "d " + GroupingKey::base64Url(device);
        put(out, p.firstUnix);
        put(out, p.lastUnix);
        const int lastOnlineCode = p.lastOnline + 1;
        put(out, static_cast<std::uint64_t>(lastOnlineCode));
        put(out, static_cast<std::uint64_t>(p.sinceProbe));
        put(out, p.skipped);
        out += '\n';
        for (std::size_t h = 0; h < p.cells.size(); ++h)
        {
            const ProfileCell& c = p.cells[h];
            if (c.probes == 0)
                continue;
            out += "h";
            put(out, static_cast<std::uint64_t>(h));
            put(out, c.online);
            put(out, c.weight);
            put(out, static_cast<std::uint64_t>(c.probes));
            put(out, static_cast<std::uint64_t>(c.weeks));
            put(out, static_cast<std::uint64_t>(c.updatedUnix));
            out += '\n';
        }
    }
    out += "end " + std::to_string(profiles.devices.size());
    const std::uint64_t sum = fnv1a(out.data(), out.size());
    out += ' ' + std::to_string(sum) + '\n';
    return out;
}

StateStore::ProfilesHeader StateStore::decodeProfilesInto(const std::string& text, const ProfileSlot& slot)
{
    if (!startsWithLine(text, profileMagic))
        throw std::runtime_error("not a fleetprobe profile file (bad header)");
    const std::size_t endPos = checkSum(text);
    ProfilesHeader profiles;
    std::unordered_set<std::string> seen;
    OnlineProfile scratch; // the devices `slot` does not take are read into it
    LineReader in(text, endPos + 1);
    std::string line;
    std::size_t lineNo = 0;
    OnlineProfile* device = nullptr;
    while (in.next(line))
    {
        if (++lineNo == 1)
            continue;
        Fields f(line, lineNo);
        const std::string kind = f.word();
        if (kind == "zone")
        {
            profiles.zone = base64UrlDecode(f.word());
            profiles.halfLifeSeconds = f.f64();
        }
        else if (kind == "d")
        {
            std::string name = base64UrlDecode(f.word());
            OnlineProfile* target = slot(profiles.zone, name);
            if (!seen.insert(std::move(name)).second)
                throw std::runtime_error("duplicate device");
            if (!target)
            {
                scratch = OnlineProfile{};
                target = &scratch;
            }
            OnlineProfile& p = *target;
            p.firstUnix = f.f64();
            p.lastUnix = f.f64();
            const auto online = f.u64();
            if (online > 2)
                f.fail("bad last state");
            p.lastOnline = static_cast<int>(online) - 1;
            p.sinceProbe = static_cast<std::uint32_t>(std::min<std::uint64_t>(f.u64(), UINT32_MAX));
            p.skipped = f.u64();
            device = &p;
        }
        else if (kind == "h" && device)
        {
            const auto h = f.u64();
            if (h >= device->cells.size())
                f.fail("hour out of range");
            ProfileCell& c = device->cells[h];
            const double online = f.f64();
            const double weight = f.f64();
            c.probes = static_cast<std::uint32_t>(std::min<std::uint64_t>(f.u64(), UINT32_MAX));
            c.weeks = static_cast<std::uint32_t>(std::min<std::uint64_t>(f.u64(), UINT32_MAX));
            const double updated = f.f64();
            if (!(online >= 0) || !(weight >= 0) || online > weight * (1 + 1e-9))
                f.fail("bad weights");
            c.online = static_cast<float>(online);
            c.weight = static_cast<float>(std::min(weight, 3.0e38));
            c.online = std::min(c.online, c.weight);
            c.updatedUnix = ProfileCell::wholeSeconds(updated);
        }
        else
            f.fail("unknown record \"" + kind + "\"");
        if (f.more())
            f.fail("extra fields");
    }
    profiles.devices = seen.size();
    return profiles;
}

PersistedProfiles StateStore::decodeProfiles(const std::string& text)
{
    PersistedProfiles profiles;
    const ProfilesHeader header =
        decodeProfilesInto(text, [&profiles](const std::string&, const std::string& device)
                           { return &profiles.devices[device]; });
    profiles.zone = header.zone;
    profiles.halfLifeSeconds = header.halfLifeSeconds;
    return profiles;
}

std::optional<StateStore::ProfilesHeader>
StateStore::loadProfilesInto(const std::string& promId, const ProfileSlot& slot, std::string& problem) const
{
    return loadFile<ProfilesHeader>(
        profilePathFor(promId), [&slot](const std::string& text) { return decodeProfilesInto(text, slot); },
        problem, "profiles start empty");
}

void StateStore::writeFile(const std::string& path, const std::string& text) const
{
    const std::string tmp = path + ".tmp";
    // Any failure removes the temporary file: a full disk leaves the previous state file as it was and
    // nothing else.
    const auto fail = [&tmp](int fd, const std::string& what, int err)
    {
        if (fd >= 0)
            ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(tmp + ": " + what + ": " + errnoText(err));
    };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(-1, "cannot write the state file", errno);
    std::size_t done = 0;
    while (done < text.size())
    {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail(fd, "cannot write the state file", n == 0 ? ENOSPC : errno);
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0)
        fail(fd, "fsync failed", errno);
    if (::close(fd) != 0)
        fail(-1, "cannot write the state file", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0)
    {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": cannot replace the state file: " + errnoText(err));
    }
    int dfd = ::open(_directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
    {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void StateStore::removeStaleTemporaries() const
{
    // Only called with the directory's lock held: no other process is writing one of these.
    try
    {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(_directory, ec))
        {
            const std::string name = entry.path().filename().string();
            const auto endsWith = [&name](const std::string& suffix)
            {
                return name.size() > suffix.size() &&
                       name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
            };
            if (endsWith(".state.tmp") || endsWith(".profile.tmp"))
                std::filesystem::remove(entry.path(), ec);
        }
    }
    catch (const std::filesystem::filesystem_error&)
    {
        // Left for the next start; a stale temporary file is never read.
    }
}

} // namespace fleetprobe
