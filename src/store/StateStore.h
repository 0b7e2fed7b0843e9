#pragma once

#include "metrics/MetricsBuilder.h"
#include "profile/OnlineProfile.h"

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fleetprobe
{

/// What survives a restart for one config: the self counters and every series' cumulative statistics,
/// keyed by series key (MetricsBuilder::seriesKey). Plain data.
struct PersistedState
{
    std::vector<double> rttBuckets; ///< the bounds the histogram counts were made with
    SelfStats self;
    std::map<std::string, SeriesStats> series;
};

/// Thrown when another process holds the state directory's lock.
class StateLockedError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// Keeps one state file per config in a directory, written atomically (temp file, fsync, rename, fsync of the
/// directory) so that a kill at any instant leaves the old or the new file, never a torn one; each file ends
/// with a checksum. The directory is locked (flock on `fleetprobe.lock`) for the life of the store. A failed
/// save (a full disk) removes its temporary file and leaves the previous state file untouched; temporary
/// files a crash left behind are removed when the store is opened.
/// load and save of different configs may run concurrently; the same config from one thread at a time.
class StateStore
{
public:
    /// Creates the directory if needed and takes its lock. Throws StateLockedError when another process holds
    /// it, std::runtime_error when the directory cannot be used.
    explicit StateStore(std::string directory);
    ~StateStore();
    StateStore(const StateStore&) = delete;
    StateStore& operator=(const StateStore&) = delete;

    /// The file that holds a config's state.
    std::string pathFor(const std::string& promId) const;

    /// Reads a config's state. No file: nothing. A corrupt or unreadable file is renamed to
    /// `<file>.corrupt-<unix time>`, `problem` says so, and nothing is returned.
    std::optional<PersistedState> load(const std::string& promId, std::string& problem) const;

    /// Writes a config's state atomically. Throws std::runtime_error on an I/O error, naming the file and the
    /// reason (e.g. "No space left on device"); the previous file is then still in place.
    void save(const std::string& promId, const PersistedState& state) const;

    /// Hands every series to persist, one at a time, to `visit` (key, statistics): a state is written without
    /// a copy of the whole of it.
    using SeriesSource = std::function<void(
        const std::function<void(const std::string& key, const SeriesStats& stats)>& visit)>;

    /// save() of a state given as its parts; `series` is called once.
    void save(const std::string& promId, const std::vector<double>& rttBuckets, const SelfStats& self,
              const SeriesSource& series) const;

    /// The text form of a state (exposed for tests and the fuzzer).
    static std::string encode(const PersistedState& state);

    /// encode() of a state given as its parts; `series` is called once.
    static std::string encode(const std::vector<double>& rttBuckets, const SelfStats& self,
                              const SeriesSource& series);

    /// Parses the text form; throws std::runtime_error with the reason when it is not a complete, valid
    /// state.
    static PersistedState decode(const std::string& text);

    /// The file that holds a config's online profiles (next to its state file, a format of its own, so that
    /// state files stay readable by versions without profiles).
    std::string profilePathFor(const std::string& promId) const;

    /// Reads a config's online profiles, as load() reads its state (a corrupt file is moved aside).
    std::optional<PersistedProfiles> loadProfiles(const std::string& promId, std::string& problem) const;

    /// What a profile file says besides the profiles themselves. Plain data.
    struct ProfilesHeader
    {
        std::string zone;           ///< the time zone the hours are in
        double halfLifeSeconds = 0; ///< the half-life they were weighted with
        std::size_t devices = 0;    ///< the devices in the file
    };

    /// Where a profile file's device goes, given the file's zone and the device's name; null: not kept.
    using ProfileSlot = std::function<OnlineProfile*(const std::string& zone, const std::string& device)>;

    /// Reads a config's online profiles in place, each device into what `slot` gives for it (a large fleet's
    /// profiles are then not held twice), as loadProfiles() does otherwise. Nothing when there is no file or
    /// it is corrupt (`problem` says why; the slots may then hold part of it).
    std::optional<ProfilesHeader> loadProfilesInto(const std::string& promId, const ProfileSlot& slot,
                                                   std::string& problem) const;

    /// Parses the text form of profiles into `slot`'s profiles; throws std::runtime_error when it is not
    /// complete and valid (the slots may then hold part of it).
    static ProfilesHeader decodeProfilesInto(const std::string& text, const ProfileSlot& slot);

    /// Writes a config's online profiles atomically. Throws std::runtime_error on an I/O error.
    void saveProfiles(const std::string& promId, const PersistedProfiles& profiles) const;
    /// The same, from a view of the profiles in memory (no copy of them).
    void saveProfiles(const std::string& promId, const ProfilesView& profiles) const;

    /// The text form of profiles (exposed for tests).
    static std::string encodeProfiles(const PersistedProfiles& profiles);
    /// The text form of the profiles a view shows, devices in the view's order (by name).
    static std::string encodeProfiles(const ProfilesView& profiles);

    /// Parses the text form of profiles; throws std::runtime_error when it is not complete and valid.
    static PersistedProfiles decodeProfiles(const std::string& text);

    /// The directory this store keeps its files in.
    const std::string& directory() const { return _directory; }

    /// The default directory: /var/lib/fleetprobe.
    static const char* defaultDirectory();

private:
    void removeStaleTemporaries() const;
    template <class T>
    std::optional<T> loadFile(const std::string& path, const std::function<T(const std::string&)>& decoder,
                              std::string& problem, const char* lost) const;
    void writeFile(const std::string& path, const std::string& text) const;

    std::string _directory;
    int _lockFd = -1;
};

} // namespace fleetprobe
