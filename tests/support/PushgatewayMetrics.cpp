#include "PushgatewayMetrics.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

double parseNumber(const std::string& text)
{
    // strtod reads "+Inf", "-Inf" and "NaN" too; the test process keeps the "C" locale.
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (end == text.c_str())
        throw std::runtime_error("Pushgateway JSON: not a number: \"" + text + "\"");
    return value;
}

double numberOf(const Poco::Dynamic::Var& value)
{
    return value.isString() ? parseNumber(value.extract<std::string>()) : value.convert<double>();
}

LabelMap labelsOf(const Poco::JSON::Object::Ptr& object)
{
    LabelMap labels;
    if (!object)
        return labels;
    for (const auto& [name, value] : *object)
        labels[name] = value.convert<std::string>();
    return labels;
}

bool includes(const LabelMap& labels, const LabelMap& match)
{
    for (const auto& [name, value] : match)
    {
        const auto found = labels.find(name);
        if (found == labels.end() || found->second != value)
            return false;
    }
    return true;
}

std::string escape(const std::string& text)
{
    std::string result;
    for (char c : text)
    {
        if (c == '"' || c == '\\')
            result += '\\';
        if (c == '\n')
            result += "\\n";
        else
            result += c;
    }
    return result;
}

} // namespace

std::string formatLabels(const LabelMap& labels)
{
    std::string text = "{";
    for (const auto& [name, value] : labels)
        text += (text.size() > 1 ? ", " : "") + name + "=\"" + escape(value) + "\"";
    return text + "}";
}

bool MetricGroup::has(const std::string& name) const
{
    return families.count(name) != 0;
}

const MetricFamilyData* MetricGroup::family(const std::string& name) const
{
    const auto found = families.find(name);
    return found == families.end() ? nullptr : &found->second;
}

std::vector<MetricSample> MetricGroup::find(const std::string& name, const LabelMap& match) const
{
    std::vector<MetricSample> result;
    if (const MetricFamilyData* data = family(name))
        for (const auto& sample : data->samples)
            if (includes(sample.labels, match))
                result.push_back(sample);
    return result;
}

std::optional<double> MetricGroup::value(const std::string& name, const LabelMap& match) const
{
    const auto sample = histogram(name, match);
    return sample ? std::optional<double>(sample->value) : std::nullopt;
}

std::optional<MetricSample> MetricGroup::histogram(const std::string& name, const LabelMap& match) const
{
    const auto samples = find(name, match);
    if (samples.empty())
        return std::nullopt;
    if (samples.size() > 1)
        throw std::runtime_error("ambiguous lookup: " + std::to_string(samples.size()) + " series of " +
                                 name + " match " + formatLabels(match));
    return samples.front();
}

std::string MetricGroup::describe() const
{
    std::ostringstream out;
    out << "group " << formatLabels(labels) << (lastPushSuccessful ? "" : " (last push FAILED)") << "\n";
    for (const auto& [name, data] : families)
    {
        for (const auto& sample : data.samples)
        {
            out << "  " << name << formatLabels(sample.labels) << " ";
            if (sample.histogram)
                out << "count=" << sample.count << " sum=" << sample.sum;
            else
                out << sample.value;
            out << "\n";
        }
    }
    return out.str();
}

PushgatewayMetrics PushgatewayMetrics::parse(const std::string& json)
{
    Poco::JSON::Parser parser;
    const auto root = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
    if (!root || root->getValue<std::string>("status") != "success")
        throw std::runtime_error("Pushgateway JSON: status is not success: " + json.substr(0, 500));
    PushgatewayMetrics result;
    const auto data = root->getArray("data");
    if (!data)
        return result;
    for (std::size_t i = 0; i < data->size(); ++i)
    {
        const auto groupObject = data->getObject(static_cast<unsigned>(i));
        MetricGroup group;
        for (const auto& [key, value] : *groupObject)
        {
            if (key == "labels")
                group.labels = labelsOf(groupObject->getObject(key));
            else if (key == "last_push_successful")
                group.lastPushSuccessful = value.convert<bool>();
            else if (value.type() == typeid(Poco::JSON::Object::Ptr))
            {
                const auto familyObject = groupObject->getObject(key);
                MetricFamilyData family;
                family.type = familyObject->optValue<std::string>("type", "");
                family.help = familyObject->optValue<std::string>("help", "");
                const auto metrics = familyObject->getArray("metrics");
                for (std::size_t m = 0; metrics && m < metrics->size(); ++m)
                {
                    const auto metric = metrics->getObject(static_cast<unsigned>(m));
                    MetricSample sample;
                    sample.labels = labelsOf(metric->getObject("labels"));
                    if (metric->has("buckets"))
                    {
                        sample.histogram = true;
                        sample.count = numberOf(metric->get("count"));
                        sample.sum = numberOf(metric->get("sum"));
                        for (const auto& [bound, count] : *metric->getObject("buckets"))
                            sample.buckets[parseNumber(bound)] = numberOf(count);
                    }
                    else if (metric->has("value"))
                    {
                        sample.value = numberOf(metric->get("value"));
                    }
                    family.samples.push_back(std::move(sample));
                }
                group.families[key] = std::move(family);
            }
        }
        result._groups.push_back(std::move(group));
    }
    return result;
}

const MetricGroup* PushgatewayMetrics::group(const LabelMap& groupingKey) const
{
    for (const auto& candidate : _groups)
        if (candidate.labels == groupingKey)
            return &candidate;
    return nullptr;
}

std::string PushgatewayMetrics::describe() const
{
    std::string text;
    for (const auto& group : _groups)
        text += group.describe();
    return text.empty() ? "(no groups)\n" : text;
}

} // namespace fleetprobe::test
