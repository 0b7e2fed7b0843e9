#include "metrics/MetricsBuilder.h"

#include "metrics/SelfMetrics.h"
#include "metrics/TextSerializer.h"
#include "profile/OnlineProfile.h"
#include "store/StateStore.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

namespace fleetprobe
{
namespace
{

/// Length-prefixed parts (`3:abc5:de:fg`): unambiguous whatever bytes a device name holds.
std::string joinParts(const std::vector<std::string>& parts)
{
    std::string out;
    for (const auto& part : parts)
    {
        out += std::to_string(part.size());
        out += ':';
        out += part;
    }
    return out;
}

std::vector<std::string> splitParts(const std::string& text)
{
    std::vector<std::string> parts;
    std::size_t pos = 0;
    while (pos < text.size())
    {
        const std::size_t colon = text.find(':', pos);
        if (colon == std::string::npos || colon == pos || colon - pos > 9)
            throw std::runtime_error("malformed key");
        std::size_t length = 0;
        for (std::size_t i = pos; i < colon; ++i)
        {
            if (text[i] < '0' || text[i] > '9')
                throw std::runtime_error("malformed key");
            length = length * 10 + static_cast<std::size_t>(text[i] - '0');
        }
        if (colon + 1 + length > text.size())
            throw std::runtime_error("malformed key");
        parts.push_back(text.substr(colon + 1, length));
        pos = colon + 1 + length;
    }
    return parts;
}

/// Adds or replaces a label; later sources (job labels) override earlier ones (conf labels).
void setLabel(Labels& labels, const std::string& name, const std::string& value)
{
    for (auto& l : labels)
        if (l.first == name)
        {
            l.second = value;
            return;
        }
    labels.emplace_back(name, value);
}

} // namespace

const std::vector<const char*>& droppedReasons()
{
    static const std::vector<const char*> reasons = {"spool_full", "no_spool", "spool_error", "rejected",
                                                     "too_old",    "future",   "unsynced"};
    return reasons;
}

MetricsBuilder::MetricsBuilder(const DeviceClassConfig& config, const MeasurementCatalog& measurements)
    : _measurements(measurements), _buckets(config.rttBuckets), _histogram(config.rttHistogram),
      _valueDevDown(config.valueDevDown), _confLabels(config.labels)
{
    std::unordered_set<std::string> names;
    std::vector<bool> repeated;
    repeated.reserve(config.jobs.size());
    for (const auto& job : config.jobs)
        repeated.push_back(!names.insert(job.name).second);
    // Two jobs of one name (PingExporter accepts that) are told apart by their address only, so such a config
    // keeps it on every series.
    _addressOnSeries = config.addressLabel == AddressLabel::Series || names.size() < config.jobs.size();
    for (std::size_t j = 0; j < config.jobs.size(); ++j)
    {
        const auto& job = config.jobs[j];
        // A job name repeated with another ip keys its series by name and ip, so that the two keep their own
        // counters across restarts; the first of a name keeps the plain key.
        _jobKeyNames.push_back(repeated[j] ? job.name + "\x1f" + job.address : job.name);
        _jobNames.push_back(job.name);
        _jobLabels.push_back(job.labels);
        _jobAddresses.push_back(job.address);
        Labels labels = {{"device", job.name}};
        if (_addressOnSeries)
            labels.emplace_back("address", job.address);
        else
            _jobInfoText.push_back(std::make_shared<const std::string>(
                TextSerializer::renderLabels({{"device", job.name}, {"address", job.address}})));
        Labels extra = _confLabels;
        for (const auto& l : job.labels)
            setLabel(extra, l.first, l.second);
        labels.insert(labels.end(), extra.begin(), extra.end());
        _jobLabelText.push_back(std::make_shared<const std::string>(TextSerializer::renderLabels(labels)));
        _jobHosts.push_back(job.host);
        _jobProfileLabels.push_back(job.profileLabels);
    }
    _jobsInFile = config.jobsInFile > 0 ? config.jobsInFile : config.jobs.size();
}

std::size_t MetricsBuilder::addSeries(std::size_t jobIndex, const std::string& scraper,
                                      const Labels& targetLabels)
{
    Series s;
    s.jobIndex = jobIndex;
    s.scraper = scraper;
    s.key = seriesKey(_jobKeyNames.at(jobIndex), scraper, targetLabels);
    s.targetLabels = targetLabels;
    Labels labels = {{"device", _jobNames.at(jobIndex)}};
    if (_addressOnSeries)
        labels.emplace_back("address", _jobAddresses.at(jobIndex));
    labels.emplace_back("scraper", scraper);
    for (const auto& l : targetLabels)
        labels.push_back(l);
    Labels extra = _confLabels;
    for (const auto& l : _jobLabels.at(jobIndex))
        setLabel(extra, l.first, l.second);
    for (const auto& l : extra)
        labels.push_back(l);
    s.labelText = std::make_shared<const std::string>(TextSerializer::renderLabels(labels));
    s.stats.bucketCounts.assign(_buckets.size(), 0);
    s.aggregate = aggregateOf(scraper);
    _aggregates[s.aggregate].configured = true;
    _series.push_back(std::move(s));
    return _series.size() - 1;
}

std::size_t MetricsBuilder::aggregateOf(const std::string& scraper)
{
    for (std::size_t i = 0; i < _aggregates.size(); ++i)
        if (_aggregates[i].scraper == scraper)
            return i;
    Aggregate a;
    a.scraper = scraper;
    Labels labels = {{"scraper", scraper}};
    labels.insert(labels.end(), _confLabels.begin(), _confLabels.end());
    a.labelText = std::make_shared<const std::string>(TextSerializer::renderLabels(labels));
    a.stats.bucketCounts.assign(_buckets.size(), 0);
    _aggregates.push_back(std::move(a));
    return _aggregates.size() - 1;
}

std::string MetricsBuilder::aggregateKey(const std::string& scraper)
{
    return seriesKey("", scraper, {});
}

bool MetricsBuilder::isAggregateKey(const std::string& key)
{
    return key.compare(0, 2, "0:") == 0;
}

const SeriesStats* MetricsBuilder::aggregateStats(const std::string& scraper) const
{
    for (const auto& a : _aggregates)
        if (a.scraper == scraper && a.configured)
            return &a.stats;
    return nullptr;
}

std::string MetricsBuilder::seriesKey(const std::string& device, const std::string& scraper,
                                      const Labels& targetLabels)
{
    std::vector<std::string> parts = {device, scraper};
    for (const auto& l : targetLabels)
    {
        parts.push_back(l.first);
        parts.push_back(l.second);
    }
    return joinParts(parts);
}

std::string MetricsBuilder::measurementKey(const std::string& key, const Labels& labels)
{
    std::vector<std::string> parts = {key};
    for (const auto& l : labels)
    {
        parts.push_back(l.first);
        parts.push_back(l.second);
    }
    return joinParts(parts);
}

std::pair<std::string, Labels> MetricsBuilder::splitMeasurementKey(const std::string& encoded)
{
    std::vector<std::string> parts = splitParts(encoded);
    if (parts.empty() || parts.size() % 2 != 1)
        throw std::runtime_error("malformed measurement key");
    Labels labels;
    for (std::size_t i = 1; i + 1 < parts.size(); i += 2)
        labels.emplace_back(parts[i], parts[i + 1]);
    return {parts[0], labels};
}

PersistedState MetricsBuilder::exportState() const
{
    PersistedState state;
    state.rttBuckets = _buckets;
    state.self = _self;
    for (const auto& s : _series)
        state.series[s.key] = s.stats;
    for (const auto& a : _aggregates)
        state.series[aggregateKey(a.scraper)] = a.stats;
    return state;
}

void MetricsBuilder::forEachSeries(
    const std::function<void(const std::string& key, const SeriesStats& stats)>& visit) const
{
    for (const auto& s : _series)
        visit(s.key, s.stats);
    for (const auto& a : _aggregates)
        visit(aggregateKey(a.scraper), a.stats);
}

std::size_t MetricsBuilder::importState(const PersistedState& state)
{
    const bool sameBuckets = state.rttBuckets == _buckets;
    std::size_t restored = 0;
    for (auto& s : _series)
    {
        auto it = state.series.find(s.key);
        if (it == state.series.end())
            continue;
        SeriesStats st = it->second;
        if (!sameBuckets || st.bucketCounts.size() != _buckets.size())
        {
            st.bucketCounts.assign(_buckets.size(), 0);
            st.rttSum = 0;
            st.rttCount = 0;
        }
        s.stats = std::move(st);
        s.upNow = s.stats.lastUp == 1;
        s.rttNow = s.upNow;
        ++restored;
    }
    if (sameBuckets)
        for (const auto& [key, stats] : state.series)
        {
            if (!isAggregateKey(key) || stats.bucketCounts.size() != _buckets.size())
                continue;
            std::vector<std::string> parts;
            try
            {
                parts = splitParts(key);
            }
            catch (const std::runtime_error&)
            {
                continue;
            }
            if (parts.size() != 2)
                continue;
            SeriesStats& to = _aggregates[aggregateOf(parts[1])].stats;
            to.bucketCounts = stats.bucketCounts;
            to.rttSum = stats.rttSum;
            to.rttCount = stats.rttCount;
        }
    // A state of a version without per-config histograms: each starts as the sum of its restored series.
    if (sameBuckets)
        for (const auto& s : _series)
        {
            Aggregate& a = _aggregates[s.aggregate];
            if (state.series.count(s.key) == 0 || state.series.count(aggregateKey(a.scraper)) != 0)
                continue;
            for (std::size_t b = 0; b < _buckets.size(); ++b)
                a.stats.bucketCounts[b] += s.stats.bucketCounts[b];
            a.stats.rttSum += s.stats.rttSum;
            a.stats.rttCount += s.stats.rttCount;
        }
    const SelfStats now = _self;
    _self = state.self;
    // What describes this process, not the history, stays as it is.
    _self.configReloadSuccess = now.configReloadSuccess;
    _self.importEnabled = now.importEnabled;
    _self.stateEnabled = now.stateEnabled;
    // The persisted receivers' counters, matched by URL when each sink prepares; none is active yet.
    for (ReceiverStats& r : _self.remoteWrite)
    {
        r.active = false;
        r.spoolBytes = 0;
        r.spoolOldestUnix = 0;
    }
    _self.spoolBytes = now.spoolBytes;
    _self.spoolOldestUnix = now.spoolOldestUnix;
    _self.cycleErrors = now.cycleErrors; // not in the state file
    _self.rttDiscarded = now.rttDiscarded;
    return restored;
}

void MetricsBuilder::record(std::size_t index, const ProbeResult& result, double nowUnix)
{
    Series& s = _series.at(index);
    SeriesStats& st = s.stats;
    ++st.probes;
    const int up = result.up ? 1 : 0;
    if (st.lastUp >= 0 && st.lastUp != up)
        ++st.stateChanges;
    st.lastUp = up;
    s.upNow = result.up;
    s.rttNow = result.up && result.rttMeasured;
    if (result.lastSeenUnix)
        st.lastSeenUnix = std::max(st.lastSeenUnix, *result.lastSeenUnix);
    else if (result.up)
        st.lastSeenUnix = nowUnix;
    if (s.rttNow)
    {
        st.lastRttSeconds = result.rttSeconds;
        SeriesStats& all = _aggregates[s.aggregate].stats;
        auto observe = [&](double rtt)
        {
            st.rttSum += rtt;
            ++st.rttCount;
            all.rttSum += rtt;
            ++all.rttCount;
            auto it = std::lower_bound(_buckets.begin(), _buckets.end(), rtt);
            if (it != _buckets.end())
            {
                const auto b = static_cast<std::size_t>(it - _buckets.begin());
                ++st.bucketCounts[b];
                ++all.bucketCounts[b];
            }
        };
        if (result.rttSamples.empty())
            observe(result.rttSeconds);
        for (double rtt : result.rttSamples)
            observe(rtt);
    }
    if (!result.up)
    {
        auto reason = result.reason == FailureReason::None ? FailureReason::Error : result.reason;
        ++st.failures[static_cast<std::size_t>(reason)];
    }
    // Gauges describe this cycle only; counters add up.
    s.gauges.clear();
    for (const auto& m : result.measurements)
    {
        const MeasurementKind* kind = _measurements.find(m.key);
        if (!kind)
            throw std::logic_error("scraper " + s.scraper + " reported an unknown measurement \"" + m.key +
                                   "\"");
        const std::string key = measurementKey(m.key, m.labels);
        if (kind->type == MetricType::Counter)
            st.counters[key] += m.value;
        else
            s.gauges[key] = m.value;
    }
}

Metric MetricsBuilder::sample(const Series& s, double value)
{
    Metric m;
    m.value = value;
    m.labelText = s.labelText;
    return m;
}

std::vector<MetricFamily> MetricsBuilder::collect() const
{
    std::vector<MetricFamily> out;
    collect([&out](const MetricFamily& f) { out.push_back(f); });
    return out;
}

void MetricsBuilder::collect(const std::function<void(const MetricFamily&)>& visit) const
{
    // One family is built at a time and handed over, so a large fleet never holds all families at once.
    MetricFamily family;
    for (std::size_t i = 0; i < familyCount(); ++i)
    {
        buildFamily(i, family);
        if (!family.metrics.empty()) // a family without samples is not written
            visit(family);
    }
}

namespace
{
constexpr std::size_t deviceFamilies =
    8; // up, last rtt, histogram, probes, failures, last seen, changes, info
constexpr std::size_t profileFamilies = 5; // probability, window start and end, weeks, skipped probes
constexpr std::size_t selfFamilies = 28;
} // namespace

std::size_t MetricsBuilder::familyCount() const
{
    return deviceFamilies + _measurements.kinds().size() + profileFamilies + selfFamilies;
}

void MetricsBuilder::buildFamily(std::size_t index, MetricFamily& f) const
{
    f.metrics.clear();
    auto start = [&f](const char* name, const char* help, MetricType type)
    {
        f.name = name;
        f.help = help;
        f.type = type;
    };
    if (index < deviceFamilies)
    {
        f.metrics.reserve(_series.size());
        switch (index)
        {
        case 0:
            start("fleetprobe_up", "1 when the device answered the probe in the last cycle, else 0.",
                  MetricType::Gauge);
            for (const auto& s : _series)
                if (s.stats.lastUp >= 0)
                    f.metrics.push_back(sample(s, s.upNow ? 1.0 : 0.0));
            break;
        case 1:
            start("fleetprobe_last_rtt_seconds",
                  "Round-trip time of the last successful probe in the last cycle; absent while down.",
                  MetricType::Gauge);
            for (const auto& s : _series)
                if (s.rttNow)
                    f.metrics.push_back(sample(s, s.stats.lastRttSeconds));
            break;
        case 2:
        {
            start("fleetprobe_rtt_seconds", "Round-trip times of successful probes.", MetricType::Histogram);
            if (_buckets.empty())
                break; // rtt_buckets [] turns the histogram off
            const auto histogram =
                [&](const std::shared_ptr<const std::string>& labelText, const SeriesStats& stats)
            {
                Metric m;
                m.labelText = labelText;
                m.sampleSum = stats.rttSum;
                m.sampleCount = stats.rttCount;
                std::uint64_t cumulative = 0;
                for (std::size_t b = 0; b < _buckets.size(); ++b)
                {
                    cumulative += stats.bucketCounts[b];
                    m.buckets.push_back(HistogramBucket{_buckets[b], cumulative});
                }
                f.metrics.push_back(std::move(m));
            };
            if (_histogram == RttHistogram::PerDevice)
                for (const auto& s : _series)
                    histogram(s.labelText, s.stats);
            else
                for (const auto& a : _aggregates)
                    if (a.configured)
                        histogram(a.labelText, a.stats);
            break;
        }
        case 3:
            start("fleetprobe_probes_total", "Probes made.", MetricType::Counter);
            for (const auto& s : _series)
                f.metrics.push_back(sample(s, static_cast<double>(s.stats.probes)));
            break;
        case 4:
            start("fleetprobe_probe_failures_total", "Probes that failed, by reason.", MetricType::Counter);
            for (const auto& s : _series)
                for (auto reason : allFailureReasons())
                    if (auto n = s.stats.failures[static_cast<std::size_t>(reason)]; n > 0)
                    {
                        Metric m = sample(s, static_cast<double>(n));
                        m.extraLabels = {{"reason", failureReasonName(reason)}};
                        f.metrics.push_back(std::move(m));
                    }
            break;
        case 5:
            start("fleetprobe_last_seen_timestamp_seconds",
                  "Unix time of the last successful probe; absent until the first success.",
                  MetricType::Gauge);
            for (const auto& s : _series)
                if (s.stats.lastSeenUnix > 0)
                    f.metrics.push_back(sample(s, s.stats.lastSeenUnix));
            break;
        case 6:
            start("fleetprobe_state_changes_total", "Transitions between up and down.", MetricType::Counter);
            for (const auto& s : _series)
                f.metrics.push_back(sample(s, static_cast<double>(s.stats.stateChanges)));
            break;
        default:
            start("fleetprobe_device_info",
                  "Always 1, one per configured device: its address (jobs[].ip as written) as a label.",
                  MetricType::Gauge);
            for (const auto& labelText : _jobInfoText)
            {
                Metric m;
                m.value = 1;
                m.labelText = labelText;
                f.metrics.push_back(std::move(m));
            }
            break;
        }
        return;
    }
    index -= deviceFamilies;
    const auto& kinds = _measurements.kinds();
    if (index < kinds.size())
    {
        const MeasurementKind& kind = kinds[index];
        start(kind.name.c_str(), kind.help.c_str(), kind.type);
        if (kind.probeOnly && !_includeProbeOnly)
            return;
        for (const auto& s : _series)
        {
            const auto& values = kind.type == MetricType::Counter ? s.stats.counters : s.gauges;
            for (const auto& [encoded, value] : values)
            {
                auto [key, labels] = splitMeasurementKey(encoded);
                if (key != kind.key)
                    continue;
                Metric m = sample(s, value);
                m.extraLabels = std::move(labels);
                f.metrics.push_back(std::move(m));
            }
        }
        return;
    }
    index -= kinds.size();
    if (index < profileFamilies)
    {
        const auto each = [&](const auto& value)
        {
            if (!_profiles)
                return;
            const auto& summaries = _profiles->summaries();
            for (std::size_t j = 0; j < summaries.size() && j < _jobLabelText.size(); ++j)
                if (const std::optional<double> v = value(summaries[j]))
                {
                    Metric m;
                    m.value = *v;
                    m.labelText = _jobLabelText[j];
                    f.metrics.push_back(std::move(m));
                }
        };
        using Value = std::optional<double>;
        switch (index)
        {
        case 0:
            start("fleetprobe_online_probability",
                  "Share of cycles that found the device online (any probe up) in this hour of the week, "
                  "recent weeks weighing more; absent before a cycle in this hour.",
                  MetricType::Gauge);
            each([](const ProfileSummary& p) { return p.probability; });
            break;
        case 1:
            start("fleetprobe_online_window_start_timestamp_seconds",
                  "Unix time the next (or current) online window starts: a run of hours of the week whose "
                  "probability reaches conf.window_threshold; absent when none is known.",
                  MetricType::Gauge);
            each([](const ProfileSummary& p) { return p.window ? Value(p.window->startUnix) : Value(); });
            break;
        case 2:
            start("fleetprobe_online_window_end_timestamp_seconds",
                  "Unix time the next (or current) online window ends; absent when none is known.",
                  MetricType::Gauge);
            each([](const ProfileSummary& p) { return p.window ? Value(p.window->endUnix) : Value(); });
            break;
        case 3:
            start("fleetprobe_online_profile_history_seconds",
                  "History behind the device's online profile: the time since its first cycle.",
                  MetricType::Gauge);
            each([](const ProfileSummary& p) { return Value(p.weeks * 7 * 86400); });
            break;
        default:
            start("fleetprobe_probes_skipped_total",
                  "Cycles in which adaptive probing left the device out (asleep in an hour it is rarely "
                  "online).",
                  MetricType::Counter);
            if (_profiles && _profiles->settings().adaptive)
                each([](const ProfileSummary& p) { return Value(static_cast<double>(p.skipped)); });
            break;
        }
        return;
    }
    index -= profileFamilies;
    auto selfFamily = [&start](std::string_view name)
    {
        const SelfMetric& m = SelfMetrics::get(name);
        start(m.name, m.help, m.type);
    };
    switch (index)
    {
    case 0:
        selfFamily("exporter_duration_seconds");
        f.metrics.push_back(Metric::of(_self.lastDurationSeconds));
        break;
    case 1:
        selfFamily("exporter_jobs");
        f.metrics.push_back(Metric::of(static_cast<double>(_jobsInFile)));
        break;
    case 2:
        selfFamily("exporter_cycles_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.cycles)));
        break;
    case 3:
        selfFamily("exporter_overruns_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.overruns)));
        break;
    case 4:
        selfFamily("exporter_cycle_errors_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.cycleErrors)));
        break;
    case 5:
        selfFamily("exporter_push_failures_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.pushFailures)));
        break;
    case 6:
    {
        selfFamily("exporter_pushes_total");
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        for (std::size_t i = 0; i < _self.pushOutcomes.size(); ++i)
            f.metrics.push_back(
                Metric::of(static_cast<double>(_self.pushOutcomes[i]), {{"result", results[i]}}));
        break;
    }
    case 7:
        selfFamily("exporter_last_push_success_timestamp_seconds");
        if (_self.lastPushSuccessUnix > 0)
            f.metrics.push_back(Metric::of(_self.lastPushSuccessUnix));
        break;
    case 8:
        selfFamily("exporter_config_reload_success");
        if (_self.configReloadSuccess >= 0)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.configReloadSuccess)));
        break;
    case 9:
        selfFamily("exporter_state_save_failures_total");
        if (_self.stateEnabled)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.stateSaveFailures)));
        break;
    case 10:
    {
        selfFamily("exporter_imports_total");
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        if (_self.importEnabled)
            for (std::size_t i = 0; i < _self.importOutcomes.size(); ++i)
                f.metrics.push_back(
                    Metric::of(static_cast<double>(_self.importOutcomes[i]), {{"result", results[i]}}));
        break;
    }
    case 11:
        selfFamily("exporter_last_import_success_timestamp_seconds");
        if (_self.importEnabled && _self.lastImportSuccessUnix > 0)
            f.metrics.push_back(Metric::of(_self.lastImportSuccessUnix));
        break;
    case 12:
        selfFamily("exporter_spool_bytes");
        if (_self.importEnabled)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.spoolBytes)));
        break;
    case 13:
        selfFamily("exporter_spool_oldest_timestamp_seconds");
        if (_self.importEnabled)
            f.metrics.push_back(Metric::of(_self.spoolOldestUnix));
        break;
    case 14:
        selfFamily("exporter_spool_dropped_samples_total");
        if (_self.importEnabled)
            for (const char* reason : droppedReasons())
            {
                const auto it = _self.spoolDropped.find(reason);
                f.metrics.push_back(
                    Metric::of(static_cast<double>(it == _self.spoolDropped.end() ? 0 : it->second),
                               {{"reason", reason}}));
            }
        break;
    case 15:
        selfFamily("exporter_spool_replayed_samples_total");
        if (_self.importEnabled)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.spoolReplayedSamples)));
        break;
    case 16:
    {
        selfFamily("exporter_remote_write_requests_total");
        static const char* results[] = {"ok", "http_4xx", "http_5xx", "transport"};
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active)
                for (std::size_t i = 0; i < r.outcomes.size(); ++i)
                    f.metrics.push_back(Metric::of(static_cast<double>(r.outcomes[i]),
                                                   {{"url", r.url}, {"result", results[i]}}));
        break;
    }
    case 17:
        selfFamily("exporter_remote_write_last_success_timestamp_seconds");
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active && r.lastSuccessUnix > 0)
                f.metrics.push_back(Metric::of(r.lastSuccessUnix, {{"url", r.url}}));
        break;
    case 18:
        selfFamily("exporter_remote_write_spool_bytes");
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active)
                f.metrics.push_back(Metric::of(static_cast<double>(r.spoolBytes), {{"url", r.url}}));
        break;
    case 19:
        selfFamily("exporter_remote_write_spool_oldest_timestamp_seconds");
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active)
                f.metrics.push_back(Metric::of(r.spoolOldestUnix, {{"url", r.url}}));
        break;
    case 20:
    {
        selfFamily("exporter_remote_write_dropped_samples_total");
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active)
                for (const char* reason : droppedReasons())
                {
                    const auto it = r.droppedSamples.find(reason);
                    f.metrics.push_back(
                        Metric::of(static_cast<double>(it == r.droppedSamples.end() ? 0 : it->second),
                                   {{"url", r.url}, {"reason", reason}}));
                }
        break;
    }
    case 21:
        selfFamily("exporter_remote_write_replayed_samples_total");
        for (const ReceiverStats& r : _self.remoteWrite)
            if (r.active)
                f.metrics.push_back(Metric::of(static_cast<double>(r.replayedSamples), {{"url", r.url}}));
        break;
    case 22:
        selfFamily("exporter_rtt_discarded_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.rttDiscarded)));
        break;
    case 23:
        selfFamily("exporter_clock_skew_seconds");
        if (_self.clockKnown)
            f.metrics.push_back(Metric::of(_self.clockSkewSeconds));
        break;
    case 24:
        selfFamily("exporter_clock_synchronized");
        if (_self.clockSynchronized >= 0)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.clockSynchronized)));
        break;
    case 25:
        selfFamily("exporter_clock_maxerror_seconds");
        if (_self.clockSynchronized >= 0)
            f.metrics.push_back(Metric::of(_self.clockMaxErrorSeconds));
        break;
    case 26:
        selfFamily("exporter_clock_steps_total");
        if (_self.clockSynchronized >= 0)
            f.metrics.push_back(Metric::of(static_cast<double>(_self.clockSteps)));
        break;
    default:
        selfFamily("exporter_push_bytes_total");
        f.metrics.push_back(Metric::of(static_cast<double>(_self.pushBytes)));
        break;
    }
}

std::vector<std::pair<std::string, double>> MetricsBuilder::devPing() const
{
    std::vector<std::pair<std::string, double>> out;
    for (std::size_t j = 0; j < _jobNames.size(); ++j)
    {
        double sum = 0;
        int n = 0;
        bool any = false;
        for (const auto& s : _series)
            if (s.jobIndex == j && s.scraper == "ping" && s.stats.lastUp >= 0)
            {
                any = true;
                if (s.upNow)
                    sum += s.stats.lastRttSeconds * 1000.0, ++n;
            }
        if (any)
            out.emplace_back(_jobNames[j], n > 0 ? sum / n : _valueDevDown);
    }
    return out;
}

void MetricsBuilder::forEachProfileSeries(const std::function<void(const ProfileSeries&)>& visit) const
{
    for (const auto& s : _series)
        visit(ProfileSeries{_jobNames[s.jobIndex], _jobAddresses[s.jobIndex], _jobHosts[s.jobIndex],
                            s.scraper, s.targetLabels, s.stats, s.stats.lastUp >= 0, s.upNow, s.gauges,
                            _buckets, _jobProfileLabels[s.jobIndex]});
}

} // namespace fleetprobe
