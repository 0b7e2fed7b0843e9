#include "sinks/RemoteWriteEncoder.h"

#include "metrics/TextSerializer.h"
#include "proto/remote_write.pb.h"
#include "sinks/PushClient.h"
#include "sinks/Sink.h"

#include <snappy.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

namespace fleetprobe
{

namespace
{

/// Adds one series of one sample to `request`.
void addSeries(prompb::WriteRequest& request, const std::string& name, Labels labels, const Labels& extra,
               double value, std::int64_t ms)
{
    for (const auto& added : extra)
    {
        const std::string& labelName = added.first;
        labels.erase(std::remove_if(labels.begin(), labels.end(),
                                    [&labelName](const auto& l) { return l.first == labelName; }),
                     labels.end());
        labels.push_back(added);
    }
    labels.emplace_back("__name__", name);
    std::stable_sort(labels.begin(), labels.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    prompb::TimeSeries* series = request.add_timeseries();
    for (auto& [n, v] : labels)
    {
        prompb::Label* label = series->add_labels();
        label->set_name(std::move(n));
        label->set_value(std::move(v));
    }
    prompb::Sample* sample = series->add_samples();
    sample->set_value(value);
    sample->set_timestamp(ms);
}

/// The labels of a metric: the rendered text when there is one, then its extra labels.
Labels labelsOf(const Metric& metric)
{
    Labels out =
        metric.labelText ? RemoteWriteEncoder::parseRenderedLabels(*metric.labelText) : metric.labels;
    out.insert(out.end(), metric.extraLabels.begin(), metric.extraLabels.end());
    return out;
}

/// A series' identity within a request: its labels, length-prefixed.
std::string seriesKey(const prompb::TimeSeries& series)
{
    std::string key;
    for (const auto& l : series.labels())
    {
        key += std::to_string(l.name().size()) + ':' + l.name();
        key += std::to_string(l.value().size()) + ':' + l.value();
    }
    return key;
}

} // namespace

Labels RemoteWriteEncoder::parseRenderedLabels(const std::string& text)
{
    Labels out;
    std::size_t i = 0;
    while (i < text.size())
    {
        const std::size_t eq = text.find("=\"", i);
        if (eq == std::string::npos)
            throw std::runtime_error("malformed label text: " + text);
        std::string name = text.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < text.size() && text[j] != '"'; ++j)
        {
            if (text[j] == '\\' && j + 1 < text.size())
            {
                ++j;
                value += text[j] == 'n' ? '\n' : text[j];
            }
            else
                value += text[j];
        }
        if (j >= text.size())
            throw std::runtime_error("malformed label text: " + text);
        out.emplace_back(std::move(name), std::move(value));
        i = j + 1;
        if (i < text.size() && text[i] == ',')
            ++i;
    }
    return out;
}

std::string RemoteWriteEncoder::encode(const FamilySource& families, double timeUnix,
                                       const Labels& extraLabels, std::uint64_t& samples)
{
    const auto ms = static_cast<std::int64_t>(std::llround(timeUnix * 1000.0));
    prompb::WriteRequest request;
    MetricFamily family;
    samples = 0;
    for (std::size_t i = 0; i < families.familyCount(); ++i)
    {
        families.buildFamily(i, family);
        for (const Metric& metric : family.metrics)
        {
            const Labels labels = labelsOf(metric);
            if (family.type != MetricType::Histogram)
            {
                addSeries(request, family.name, labels, extraLabels, metric.value, ms);
                ++samples;
                continue;
            }
            for (const HistogramBucket& b : metric.buckets)
            {
                Labels withLe = labels;
                withLe.emplace_back("le", TextSerializer::formatValue(b.upperBound));
                addSeries(request, family.name + "_bucket", std::move(withLe), extraLabels,
                          static_cast<double>(b.cumulativeCount), ms);
            }
            Labels inf = labels;
            inf.emplace_back("le", "+Inf");
            addSeries(request, family.name + "_bucket", std::move(inf), extraLabels,
                      static_cast<double>(metric.sampleCount), ms);
            addSeries(request, family.name + "_sum", labels, extraLabels, metric.sampleSum, ms);
            addSeries(request, family.name + "_count", labels, extraLabels,
                      static_cast<double>(metric.sampleCount), ms);
            samples += metric.buckets.size() + 3;
        }
    }
    return compress(request.SerializeAsString());
}

std::string RemoteWriteEncoder::merge(const std::vector<std::string>& compressedRequests)
{
    if (compressedRequests.size() == 1)
        return compressedRequests.front();
    prompb::WriteRequest merged;
    std::map<std::string, int> index;
    for (const std::string& compressed : compressedRequests)
    {
        prompb::WriteRequest one;
        if (!one.ParseFromString(uncompress(compressed)))
            throw std::runtime_error("a spooled remote-write request is not a valid WriteRequest");
        for (prompb::TimeSeries& series : *one.mutable_timeseries())
        {
            const auto [it, fresh] = index.emplace(seriesKey(series), merged.timeseries_size());
            if (fresh)
            {
                *merged.add_timeseries() = std::move(series);
                continue;
            }
            prompb::TimeSeries& into = *merged.mutable_timeseries(it->second);
            for (const prompb::Sample& s : series.samples())
            {
                const auto& have = into.samples();
                if (!have.empty() && s.timestamp() <= have[have.size() - 1].timestamp())
                {
                    // Out of order or twice: keep the series sorted (a spool is oldest first, so this is
                    // rare).
                    auto pos = std::lower_bound(have.begin(), have.end(), s.timestamp(),
                                                [](const prompb::Sample& a, std::int64_t t)
                                                { return a.timestamp() < t; });
                    if (pos != have.end() && pos->timestamp() == s.timestamp())
                        continue;
                    const int at = static_cast<int>(pos - have.begin());
                    *into.add_samples() = s;
                    for (int k = into.samples_size() - 1; k > at; --k)
                        into.mutable_samples()->SwapElements(k, k - 1);
                    continue;
                }
                *into.add_samples() = s;
            }
        }
    }
    return compress(merged.SerializeAsString());
}

std::string RemoteWriteEncoder::restamp(const std::string& compressedRequest, double timeUnix)
{
    prompb::WriteRequest request;
    if (!request.ParseFromString(uncompress(compressedRequest)))
        throw std::runtime_error("a spooled remote-write request is not a valid WriteRequest");
    const auto ms = static_cast<std::int64_t>(std::llround(timeUnix * 1000.0));
    for (prompb::TimeSeries& series : *request.mutable_timeseries())
        for (prompb::Sample& sample : *series.mutable_samples())
            sample.set_timestamp(ms);
    std::string raw;
    request.SerializeToString(&raw);
    return compress(raw);
}

std::string RemoteWriteEncoder::describe(const std::string& compressedRequest)
{
    prompb::WriteRequest request;
    if (!request.ParseFromString(uncompress(compressedRequest)))
        throw std::runtime_error("not a valid WriteRequest");
    std::string out;
    for (const prompb::TimeSeries& series : request.timeseries())
    {
        const char* sep = "";
        for (const prompb::Label& l : series.labels())
        {
            out += sep + l.name() + "=" + l.value();
            sep = ",";
        }
        for (const prompb::Sample& s : series.samples())
            out += " " + TextSerializer::formatValue(s.value()) + "@" + std::to_string(s.timestamp());
        out += '\n';
    }
    return out;
}

std::string RemoteWriteEncoder::compress(const std::string& raw)
{
    std::string out;
    snappy::Compress(raw.data(), raw.size(), &out);
    return out;
}

std::string RemoteWriteEncoder::uncompress(const std::string& compressed)
{
    std::string out;
    if (!snappy::Uncompress(compressed.data(), compressed.size(), &out))
        throw std::runtime_error("not valid snappy data");
    return out;
}

// Here and not in PushClient.cpp: only this library sees protobuf and snappy.
std::string RemoteWriteClient::joinBatch(const std::vector<std::string>& payloads) const
{
    return RemoteWriteEncoder::merge(payloads);
}

} // namespace fleetprobe
