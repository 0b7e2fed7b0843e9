#include "metrics/MetricsBuilder.h"
#include "engine/CycleScheduler.h"
#include "metrics/TextSerializer.h"
#include "scrapers/BuiltinScrapers.h"
#include "store/StateStore.h"

#include <boost/test/unit_test.hpp>

#include <sstream>

using namespace fleetprobe;

namespace
{

DeviceClassConfig oneJob(std::vector<double> buckets)
{
    DeviceClassConfig c;
    c.promId = "p";
    c.intervalSeconds = 10;
    c.timeoutSeconds = 1;
    c.rttBuckets = std::move(buckets);
    c.labels = {{"site", "north"}, {"model", "generic"}};
    JobConfig j;
    j.name = "m1";
    j.address = "192.0.2.1";
    j.host = "192.0.2.1";
    j.metrics = {"ping"};
    j.labels = {{"model", "X1"}};
    c.jobs.push_back(j);
    return c;
}

/// Two jobs (m1 with a job label, m2 without), conf labels site and model.
DeviceClassConfig twoJobs(std::vector<double> buckets, RttHistogram histogram = RttHistogram::PerConfig)
{
    DeviceClassConfig c = oneJob(std::move(buckets));
    c.rttHistogram = histogram;
    JobConfig j = c.jobs.front();
    j.name = "m2";
    j.address = "192.0.2.2";
    j.host = "192.0.2.2";
    j.labels = {};
    c.jobs.push_back(j);
    return c;
}

/// The fleetprobe_rtt_seconds sample of `fs` whose labels are `labelText`, or null; valid while `fs` is.
const Metric* histogramOf(const std::vector<MetricFamily>& fs, const std::string& labelText)
{
    for (const auto& f : fs)
        if (f.name == "fleetprobe_rtt_seconds")
            for (const auto& m : f.metrics)
                if (m.labelText && *m.labelText == labelText)
                    return &m;
    return nullptr;
}

const std::string pingAggregate = R"(scraper="ping",site="north",model="generic")";
const std::string portAggregate = R"(scraper="port",site="north",model="generic")";

ProbeResult up(double rtt)
{
    return ProbeResult::success(rtt);
}
ProbeResult down(FailureReason r)
{
    return ProbeResult::failure(r);
}

const MetricFamily* find(const std::vector<MetricFamily>& fs, const std::string& name)
{
    for (const auto& f : fs)
        if (f.name == name)
            return &f;
    return nullptr;
}

} // namespace

BOOST_AUTO_TEST_SUITE(MetricsBuilderTests)

BOOST_AUTO_TEST_CASE(histogram_is_cumulative)
{
    // prometheus_ss_exporter's known bug, done right: bounds [1, 5, 10], samples 11, 15, 0.1, 0.5, 4, 6.
    MetricsBuilder b(oneJob({1, 5, 10}));
    auto s = b.addSeries(0, "ping", {});
    for (double v : {11.0, 15.0, 0.1, 0.5, 4.0, 6.0})
        b.record(s, up(v), 1000);
    auto fs = b.collect();
    const MetricFamily* h = find(fs, "fleetprobe_rtt_seconds");
    BOOST_TEST_REQUIRE(h);
    const Metric& m = h->metrics.at(0);
    BOOST_TEST(m.buckets.size() == 3u);
    BOOST_TEST(m.buckets[0].cumulativeCount == 2u);
    BOOST_TEST(m.buckets[1].cumulativeCount == 3u);
    BOOST_TEST(m.buckets[2].cumulativeCount == 4u);
    BOOST_TEST(m.sampleCount == 6u);
    BOOST_TEST(m.sampleSum == 36.6, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(counters_state_changes_last_seen)
{
    MetricsBuilder b(oneJob({}));
    auto s = b.addSeries(0, "ping", {});
    b.record(s, down(FailureReason::Timeout), 100); // first observation: not a change
    b.record(s, up(0.2), 110);
    b.record(s, up(0.3), 120);
    b.record(s, down(FailureReason::Timeout), 130);
    b.record(s, down(FailureReason::Unreachable), 140);
    const SeriesStats& st = b.stats(s);
    BOOST_TEST(st.probes == 5u);
    BOOST_TEST(st.stateChanges == 2u);
    BOOST_TEST(st.lastSeenUnix == 120);
    BOOST_TEST(st.failures[static_cast<int>(FailureReason::Timeout)] == 2u);
    BOOST_TEST(st.failures[static_cast<int>(FailureReason::Unreachable)] == 1u);

    auto fs = b.collect();
    BOOST_TEST(!find(fs, "fleetprobe_rtt_seconds"));      // rtt_buckets [] disables the histogram
    BOOST_TEST(!find(fs, "fleetprobe_last_rtt_seconds")); // down now: no last RTT
    BOOST_TEST(find(fs, "fleetprobe_up")->metrics.at(0).value == 0);
    BOOST_TEST(find(fs, "fleetprobe_last_seen_timestamp_seconds")->metrics.at(0).value == 120);
    BOOST_TEST(find(fs, "fleetprobe_probe_failures_total")->metrics.size() == 2u);
}

BOOST_AUTO_TEST_CASE(labels_job_labels_override_conf_labels)
{
    MetricsBuilder b(oneJob({}));
    auto s = b.addSeries(0, "port", {{"port", "502"}, {"protocol", "tcp"}});
    b.record(s, up(0.01), 1);
    auto fs = b.collect();
    Labels expected = {{"device", "m1"},    {"scraper", "port"}, {"port", "502"},
                       {"protocol", "tcp"}, {"site", "north"},   {"model", "X1"}};
    BOOST_TEST(*find(fs, "fleetprobe_up")->metrics.at(0).labelText == TextSerializer::renderLabels(expected));
}

BOOST_AUTO_TEST_CASE(address_on_device_info_by_default)
{
    MetricsBuilder b(twoJobs({0.1}));
    b.record(b.addSeries(0, "ping", {}), up(0.01), 1); // m2 is not probed: it still has its info line
    const auto text = TextSerializer::serialize(b.collect());
    std::size_t addresses = 0;
    for (auto at = text.find("address="); at != std::string::npos; at = text.find("address=", at + 1))
        ++addresses;
    BOOST_TEST(addresses == 2u, text); // the two info lines only
    BOOST_TEST(text.find("fleetprobe_up{device=\"m1\",scraper=\"ping\",site=\"north\",model=\"X1\"} 1\n") !=
                   std::string::npos,
               text);
    BOOST_TEST(text.find("# TYPE fleetprobe_device_info gauge\n"
                         "fleetprobe_device_info{device=\"m1\",address=\"192.0.2.1\"} 1\n"
                         "fleetprobe_device_info{device=\"m2\",address=\"192.0.2.2\"} 1\n") !=
                   std::string::npos,
               text);
}

BOOST_AUTO_TEST_CASE(address_on_every_series_when_asked_or_when_a_name_repeats)
{
    DeviceClassConfig series = twoJobs({0.1});
    series.addressLabel = AddressLabel::Series;
    DeviceClassConfig repeated = twoJobs({0.1});
    repeated.jobs[1].name = "m1"; // the same name, another ip: only the address tells the two apart
    for (const DeviceClassConfig* c : {&series, &repeated})
    {
        MetricsBuilder b(*c);
        b.record(b.addSeries(0, "ping", {}), up(0.01), 1);
        b.record(b.addSeries(1, "ping", {}), down(FailureReason::Timeout), 1);
        const auto text = TextSerializer::serialize(b.collect());
        BOOST_TEST(text.find("fleetprobe_device_info") == std::string::npos, text);
        BOOST_TEST(
            text.find("fleetprobe_up{device=\"m1\",address=\"192.0.2.1\",scraper=\"ping\",site=\"north\","
                      "model=\"X1\"} 1\n") != std::string::npos,
            text);
        BOOST_TEST(
            text.find(",address=\"192.0.2.2\",scraper=\"ping\",site=\"north\",model=\"generic\"} 0\n") !=
                std::string::npos,
            text);
    }
}

BOOST_AUTO_TEST_CASE(dev_ping_uses_value_dev_down)
{
    auto config = oneJob({});
    config.valueDevDown = 1234;
    MetricsBuilder b(config);
    auto s = b.addSeries(0, "ping", {});
    b.record(s, up(0.002), 1);
    BOOST_TEST(b.devPing().at(0).second == 2.0, boost::test_tools::tolerance(1e-9));
    b.record(s, down(FailureReason::Timeout), 2);
    BOOST_TEST(b.devPing().at(0).second == 1234);
}

BOOST_AUTO_TEST_CASE(self_metrics_are_written)
{
    MetricsBuilder b(oneJob({}));
    b.self().cycles = 3;
    b.self().overruns = 1;
    b.self().pushFailures = 2;
    auto text = TextSerializer::serialize(b.collect());
    BOOST_TEST(text.find("exporter_cycles_total 3\n") != std::string::npos);
    BOOST_TEST(text.find("exporter_overruns_total 1\n") != std::string::npos);
    BOOST_TEST(text.find("exporter_push_failures_total 2\n") != std::string::npos);
    BOOST_TEST(text.find("exporter_jobs 1\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(self_metric_help_and_type_golden)
{
    // The HELP and TYPE lines of every self-metric family of the push body, every family present.
    MetricsBuilder b(oneJob({}));
    b.self().lastPushSuccessUnix = 1000;
    b.self().configReloadSuccess = 1;
    b.self().importEnabled = true;
    b.self().lastImportSuccessUnix = 1000;
    const std::string golden =
        "# HELP exporter_duration_seconds Duration of the probe phase of the last cycle.\n"
        "# TYPE exporter_duration_seconds gauge\n"
        "# HELP exporter_jobs Number of jobs to export\n"
        "# TYPE exporter_jobs gauge\n"
        "# HELP exporter_cycles_total Cycles run.\n"
        "# TYPE exporter_cycles_total counter\n"
        "# HELP exporter_overruns_total Cycles that took longer than the interval.\n"
        "# TYPE exporter_overruns_total counter\n"
        "# HELP exporter_cycle_errors_total Cycles in which fleetprobe itself failed (a scraper threw, "
        "results "
        "could not be recorded, a sink threw); device failures never count here.\n"
        "# TYPE exporter_cycle_errors_total counter\n"
        "# HELP exporter_push_failures_total Pushes that failed after their retries.\n"
        "# TYPE exporter_push_failures_total counter\n"
        "# HELP exporter_pushes_total Pushes by final outcome (ok, http_4xx, http_5xx, transport).\n"
        "# TYPE exporter_pushes_total counter\n"
        "# HELP exporter_last_push_success_timestamp_seconds Unix time of the last push the sink accepted "
        "before this one.\n"
        "# TYPE exporter_last_push_success_timestamp_seconds gauge\n"
        "# HELP exporter_config_reload_success 1 when the last reload (SIGHUP) of this config succeeded, "
        "else 0.\n"
        "# TYPE exporter_config_reload_success gauge\n"
        "# HELP exporter_imports_total VictoriaMetrics import requests by outcome (ok, http_4xx, http_5xx, "
        "transport), replays included; a 2xx whose Date shows the cycle outside what it keeps is not ok but "
        "dropped.\n"
        "# TYPE exporter_imports_total counter\n"
        "# HELP exporter_last_import_success_timestamp_seconds Unix time of the last import VictoriaMetrics "
        "accepted before this one.\n"
        "# TYPE exporter_last_import_success_timestamp_seconds gauge\n"
        "# HELP exporter_spool_bytes Bytes of undelivered cycles in the spool.\n"
        "# TYPE exporter_spool_bytes gauge\n"
        "# HELP exporter_spool_oldest_timestamp_seconds Unix time of the oldest undelivered cycle in the "
        "spool; 0 when the spool is empty.\n"
        "# TYPE exporter_spool_oldest_timestamp_seconds gauge\n"
        "# HELP exporter_spool_dropped_samples_total Samples VictoriaMetrics will never get, by reason "
        "(spool_full: the spool's cap, oldest first; too_old, future: outside its retention or more than 2 "
        "days ahead by its clock; rejected; unsynced: of an earlier boot whose true time is unknown; "
        "no_spool, "
        "spool_error: a cycle that could not be spooled).\n"
        "# TYPE exporter_spool_dropped_samples_total counter\n"
        "# HELP exporter_spool_replayed_samples_total Samples of spooled cycles that VictoriaMetrics "
        "accepted on a later cycle.\n"
        "# TYPE exporter_spool_replayed_samples_total counter\n"
        "# HELP exporter_rtt_discarded_total Probe results whose RTT was outside [0, the timeout]: the RTT "
        "was "
        "discarded, the answer kept.\n"
        "# TYPE exporter_rtt_discarded_total counter\n"
        "# HELP exporter_push_bytes_total Bytes of push requests put on the wire (headers and bodies, "
        "compressed with --push-gzip), every attempt and group included.\n"
        "# TYPE exporter_push_bytes_total counter\n";
    std::string meta;
    std::istringstream text(TextSerializer::serialize(b.collect()));
    for (std::string line; std::getline(text, line);)
        if (line.rfind("# HELP exporter_", 0) == 0 || line.rfind("# TYPE exporter_", 0) == 0)
            meta += line + "\n";
    BOOST_TEST(meta == golden);
}

BOOST_AUTO_TEST_CASE(state_survives_export_and_import)
{
    MetricsBuilder before(oneJob({0.1, 1}));
    auto s = before.addSeries(0, "ping", {});
    before.record(s, up(0.05), 10);
    before.record(s, down(FailureReason::Timeout), 20);
    before.self().cycles = 2;
    PersistedState state = StateStore::decode(StateStore::encode(before.exportState()));
    state.series["3:old4:ping"] = SeriesStats{}; // a device since removed from the config

    MetricsBuilder after(oneJob({0.1, 1}));
    auto t = after.addSeries(0, "ping", {});
    BOOST_TEST(after.importState(state) == 1u);
    after.record(t, up(0.5), 30);
    BOOST_TEST(after.stats(t).probes == 3u);
    BOOST_TEST(after.stats(t).stateChanges == 2u); // down -> up continues across the restart
    BOOST_TEST(after.stats(t).rttCount == 2u);
    BOOST_TEST(after.self().cycles == 2u);

    MetricsBuilder rebucketed(oneJob({0.2, 2}));
    auto u = rebucketed.addSeries(0, "ping", {});
    rebucketed.importState(state);
    BOOST_TEST(rebucketed.stats(u).probes == 2u);   // counters kept
    BOOST_TEST(rebucketed.stats(u).rttCount == 0u); // histogram restarts with new bounds
}

BOOST_AUTO_TEST_CASE(measurements_gauges_reset_counters_add_and_persist)
{
    ScraperRegistry registry;
    registerBuiltinScrapers(registry);
    MetricsBuilder b(oneJob({0.1, 1}), registry.measurements());
    auto s = b.addSeries(0, "ping", {});
    ProbeResult r = ProbeResult::success(0.02);
    r.rttSamples = {0.01, 0.02, 0.03};
    r.measurements = {{"ping_packets_sent_total", {}, 3},
                      {"ping_packets_received_total", {}, 3},
                      {"http_duration_seconds", {{"phase", "connect"}}, 0.5}};
    b.record(s, r, 1);
    ProbeResult d = ProbeResult::failure(FailureReason::Timeout);
    d.measurements = {{"ping_packets_sent_total", {}, 3}};
    b.record(s, d, 2);
    auto text = TextSerializer::serialize(b.collect());
    BOOST_TEST(text.find("fleetprobe_ping_packets_sent_total{device=\"m1\",scraper=\"ping\","
                         "site=\"north\",model=\"X1\"} 6\n") != std::string::npos,
               text);
    BOOST_TEST(text.find("fleetprobe_ping_packets_received_total{") != std::string::npos);
    BOOST_TEST(text.find("fleetprobe_http_duration_seconds") ==
               std::string::npos);         // gauges of the last cycle only
    BOOST_TEST(b.stats(s).rttCount == 3u); // every sample of the burst
    BOOST_TEST(text.find("# TYPE fleetprobe_ping_packets_sent_total counter\n") != std::string::npos);

    const auto state = StateStore::decode(StateStore::encode(b.exportState()));
    MetricsBuilder after(oneJob({0.1, 1}), registry.measurements());
    auto t = after.addSeries(0, "ping", {});
    after.importState(state);
    ProbeResult again = ProbeResult::success(0.01);
    again.measurements = {{"ping_packets_sent_total", {}, 1},
                          {"http_duration_seconds", {{"phase", "total"}}, 0.25}};
    after.record(t, again, 3);
    text = TextSerializer::serialize(after.collect());
    BOOST_TEST(text.find("scraper=\"ping\",site=\"north\",model=\"X1\"} 7\n") != std::string::npos, text);
    BOOST_TEST(text.find("model=\"X1\",phase=\"total\"} 0.25\n") != std::string::npos, text);

    ProbeResult bad = ProbeResult::success(0.01);
    bad.measurements = {{"no_such_measurement", {}, 1}};
    BOOST_CHECK_THROW(after.record(t, bad, 4), std::logic_error);
}

BOOST_AUTO_TEST_CASE(up_without_round_trip)
{
    MetricsBuilder b(oneJob({0.1, 1}));
    auto s = b.addSeries(0, "port", {{"port", "5683"}, {"protocol", "udp"}});
    ProbeResult silentOk = ProbeResult::success(0);
    silentOk.rttMeasured = false;
    b.record(s, silentOk, 50);
    auto fs = b.collect();
    BOOST_TEST(find(fs, "fleetprobe_up")->metrics.at(0).value == 1);
    BOOST_TEST(!find(fs, "fleetprobe_last_rtt_seconds"));
    BOOST_TEST(!find(fs, "fleetprobe_probe_failures_total"));
    BOOST_TEST(b.stats(s).rttCount == 0u);
    BOOST_TEST(b.stats(s).lastSeenUnix == 50);
}

BOOST_AUTO_TEST_CASE(measurement_keys_round_trip)
{
    const Labels labels = {{"phase", "a:b"}, {"x", ""}};
    auto [key, back] = MetricsBuilder::splitMeasurementKey(MetricsBuilder::measurementKey("k:1", labels));
    BOOST_TEST(key == "k:1");
    BOOST_TEST((back == labels));
    BOOST_CHECK_THROW(MetricsBuilder::splitMeasurementKey("5:ab"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(per_config_histogram_sums_devices_by_scraper)
{
    MetricsBuilder b(twoJobs({0.1, 1}));
    const auto ping1 = b.addSeries(0, "ping", {});
    const auto port1 = b.addSeries(0, "port", {{"port", "502"}, {"protocol", "tcp"}});
    const auto ping2 = b.addSeries(1, "ping", {});
    b.record(ping1, up(0.05), 1);
    b.record(ping2, up(0.5), 1);
    b.record(port1, up(2), 1);
    b.record(ping2, down(FailureReason::Timeout), 2);
    ProbeResult burst = up(0.06);
    burst.rttSamples = {0.05, 0.07};
    b.record(ping1, burst, 2);

    const auto fs = b.collect();
    const MetricFamily* h = find(fs, "fleetprobe_rtt_seconds");
    BOOST_TEST_REQUIRE(h);
    BOOST_TEST(h->metrics.size() == 2u, "one per scraper, none per device");
    // Conf labels only: not the job label model="X1", not device or address.
    const Metric* ping = histogramOf(fs, pingAggregate);
    BOOST_TEST_REQUIRE(ping);
    BOOST_TEST(ping->sampleCount == 4u);
    BOOST_TEST(ping->sampleSum == 0.05 + 0.5 + 0.05 + 0.07, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(ping->buckets.at(0).cumulativeCount == 3u);
    BOOST_TEST(ping->buckets.at(1).cumulativeCount == 4u);
    const Metric* port = histogramOf(fs, portAggregate);
    BOOST_TEST_REQUIRE(port);
    BOOST_TEST(port->sampleCount == 1u);
    BOOST_TEST(port->buckets.at(1).cumulativeCount == 0u); // 2 s: above every finite bound
    BOOST_TEST(h->metrics.at(0).labelText == ping->labelText, "in the order the scrapers were declared");

    // The per-series counts stay (tcp-ping's profile and the state use them).
    BOOST_TEST(b.stats(ping1).rttCount == 3u);
    BOOST_TEST(b.stats(ping2).rttCount == 1u);
    BOOST_TEST(b.aggregateStats("ping")->rttCount == 4u);
    BOOST_TEST(!b.aggregateStats("http"));
}

BOOST_AUTO_TEST_CASE(per_config_histogram_survives_state_and_dropped_jobs)
{
    MetricsBuilder before(twoJobs({0.1, 1}));
    const auto a = before.addSeries(0, "ping", {});
    const auto b = before.addSeries(1, "ping", {});
    const auto p = before.addSeries(1, "port", {{"port", "502"}, {"protocol", "tcp"}});
    before.record(a, up(0.05), 1);
    before.record(b, up(0.5), 1);
    before.record(b, up(0.5), 2);
    before.record(p, up(0.02), 2);
    const PersistedState state = StateStore::decode(StateStore::encode(before.exportState()));
    BOOST_TEST(state.series.count(MetricsBuilder::aggregateKey("ping")) == 1u);
    BOOST_TEST(MetricsBuilder::isAggregateKey(MetricsBuilder::aggregateKey("port")));
    BOOST_TEST(!MetricsBuilder::isAggregateKey(MetricsBuilder::seriesKey("m1", "ping", {})));

    // A reload (or restart) without m2: its series go, the config's histogram keeps its observations.
    MetricsBuilder after(oneJob({0.1, 1}));
    const auto t = after.addSeries(0, "ping", {});
    BOOST_TEST(after.importState(state) == 1u, "the per-config histograms are not counted as series");
    const auto restored = after.collect();
    const Metric* ping = histogramOf(restored, pingAggregate);
    BOOST_TEST_REQUIRE(ping);
    BOOST_TEST(ping->sampleCount == 3u);
    BOOST_TEST(ping->buckets.at(0).cumulativeCount == 1u);
    BOOST_TEST(ping->buckets.at(1).cumulativeCount == 3u);
    BOOST_TEST(ping->sampleSum == 1.05, boost::test_tools::tolerance(1e-12));
    after.record(t, up(0.07), 3);
    const auto fs = after.collect();
    BOOST_TEST(histogramOf(fs, pingAggregate)->sampleCount == 4u);
    BOOST_TEST(!histogramOf(fs, portAggregate), "no port series now: not written");

    // ...but kept in the state, so that the port histogram goes on from 1 when a port comes back.
    MetricsBuilder again(twoJobs({0.1, 1}));
    again.addSeries(1, "port", {{"port", "502"}, {"protocol", "tcp"}});
    again.importState(StateStore::decode(StateStore::encode(after.exportState())));
    const auto back = again.collect();
    const Metric* port = histogramOf(back, portAggregate);
    BOOST_TEST_REQUIRE(port);
    BOOST_TEST(port->sampleCount == 1u);
}

BOOST_AUTO_TEST_CASE(per_config_histogram_starts_from_an_older_state)
{
    // A state of a version without per-config histograms: the series' counts are summed once.
    MetricsBuilder before(twoJobs({0.1, 1}));
    before.record(before.addSeries(0, "ping", {}), up(0.05), 1);
    before.record(before.addSeries(1, "ping", {}), up(0.5), 1);
    PersistedState state = before.exportState();
    state.series.erase(MetricsBuilder::aggregateKey("ping"));

    MetricsBuilder after(twoJobs({0.1, 1}));
    after.addSeries(0, "ping", {});
    after.addSeries(1, "ping", {});
    BOOST_TEST(after.importState(StateStore::decode(StateStore::encode(state))) == 2u);
    BOOST_TEST(after.aggregateStats("ping")->rttCount == 2u);
    BOOST_TEST(after.aggregateStats("ping")->bucketCounts.at(0) == 1u);
    BOOST_TEST(after.aggregateStats("ping")->rttSum == 0.55, boost::test_tools::tolerance(1e-12));

    // Once it is in the state, it is restored as it is, not summed again.
    MetricsBuilder again(twoJobs({0.1, 1}));
    again.addSeries(0, "ping", {});
    again.addSeries(1, "ping", {});
    again.importState(StateStore::decode(StateStore::encode(after.exportState())));
    BOOST_TEST(again.aggregateStats("ping")->rttCount == 2u);
}

BOOST_AUTO_TEST_CASE(per_config_histogram_restarts_with_new_bounds)
{
    MetricsBuilder before(oneJob({0.1, 1}));
    before.record(before.addSeries(0, "ping", {}), up(0.05), 1);
    const PersistedState state = StateStore::decode(StateStore::encode(before.exportState()));

    MetricsBuilder rebucketed(oneJob({0.2, 2, 5}));
    const auto s = rebucketed.addSeries(0, "ping", {});
    rebucketed.importState(state);
    const auto restarted = rebucketed.collect();
    const Metric* ping = histogramOf(restarted, pingAggregate);
    BOOST_TEST_REQUIRE(ping);
    BOOST_TEST(ping->sampleCount == 0u);
    BOOST_TEST(ping->sampleSum == 0.0);
    BOOST_TEST(ping->buckets.size() == 3u);
    rebucketed.record(s, up(3), 2);
    const auto after = rebucketed.collect();
    const Metric* again = histogramOf(after, pingAggregate);
    BOOST_TEST_REQUIRE(again);
    BOOST_TEST(again->buckets.at(2).cumulativeCount == 1u);
}

BOOST_AUTO_TEST_CASE(device_mode_keeps_the_histogram_per_series)
{
    MetricsBuilder b(twoJobs({0.1, 1}, RttHistogram::PerDevice));
    const auto ping1 = b.addSeries(0, "ping", {});
    const auto ping2 = b.addSeries(1, "ping", {});
    b.record(ping1, up(0.05), 1);
    b.record(ping2, up(0.5), 1);
    const auto fs = b.collect();
    const MetricFamily* h = find(fs, "fleetprobe_rtt_seconds");
    BOOST_TEST_REQUIRE(h);
    BOOST_TEST(h->metrics.size() == 2u);
    BOOST_TEST(!histogramOf(fs, pingAggregate), "never both layouts under one name");
    const Metric* m1 = histogramOf(fs, R"(device="m1",scraper="ping",site="north",model="X1")");
    BOOST_TEST_REQUIRE(m1);
    BOOST_TEST(m1->sampleCount == 1u);
    BOOST_TEST(m1->buckets.at(0).cumulativeCount == 1u);
    const Metric* m2 = histogramOf(fs, R"(device="m2",scraper="ping",site="north",model="generic")");
    BOOST_TEST_REQUIRE(m2);
    BOOST_TEST(m2->buckets.at(0).cumulativeCount == 0u);

    // rtt_buckets [] turns it off in both modes.
    for (RttHistogram mode : {RttHistogram::PerDevice, RttHistogram::PerConfig})
    {
        MetricsBuilder off(twoJobs({}, mode));
        off.record(off.addSeries(0, "ping", {}), up(0.05), 1);
        BOOST_TEST(!find(off.collect(), "fleetprobe_rtt_seconds"));
    }
}

BOOST_AUTO_TEST_CASE(probe_only_measurements_stay_out_of_the_bodies)
{
    ScraperRegistry registry;
    registerBuiltinScrapers(registry);
    ProbeResult r = ProbeResult::success(0.02);
    r.measurements = {{"ping_reply_hop_limit", {}, 63}, {"ping_packets_sent_total", {}, 1}};
    MetricsBuilder push(oneJob({0.1, 1}), registry.measurements());
    push.record(push.addSeries(0, "ping", {}), r, 1);
    const auto pushed = push.collect();
    BOOST_TEST(!find(pushed, "fleetprobe_ping_reply_hop_limit"));
    BOOST_TEST(find(pushed, "fleetprobe_ping_packets_sent_total"));

    MetricsBuilder probe(oneJob({0.1, 1}), registry.measurements());
    probe.setIncludeProbeOnly(true);
    probe.record(probe.addSeries(0, "ping", {}), r, 1);
    const MetricFamily* hop = find(probe.collect(), "fleetprobe_ping_reply_hop_limit");
    BOOST_TEST_REQUIRE(hop);
    BOOST_TEST(hop->metrics.at(0).value == 63);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(CycleSchedulerTests)

BOOST_AUTO_TEST_CASE(ticks_do_not_drift_and_overruns_skip_missed_ticks)
{
    using namespace std::chrono;
    const CycleScheduler::Clock::time_point t0{};
    CycleScheduler s(t0, seconds(10));
    auto n = s.advance(t0 + milliseconds(1200)); // a short cycle
    BOOST_TEST(!n.overrun);
    BOOST_TEST((n.start == t0 + seconds(10)));
    n = s.advance(t0 + milliseconds(10900)); // started late by nothing, ended at 10.9 s
    BOOST_TEST(!n.overrun);
    BOOST_TEST((n.start == t0 + seconds(20))); // not 20.9: no drift
    n = s.advance(t0 + milliseconds(45000));   // cycle 2 (from 20 s) ran until 45 s: ticks 30 and 40 missed
    BOOST_TEST(n.overrun);
    BOOST_TEST(n.skipped == 2u);
    BOOST_TEST((n.start == t0 + seconds(50)));
    BOOST_TEST(s.tick() == 5u);
}

BOOST_AUTO_TEST_SUITE_END()
