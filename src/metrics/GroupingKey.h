#pragma once

#include "metrics/MetricFamily.h"

#include <string>

namespace fleetprobe
{

/// Builds Pushgateway grouping-key URL paths. Pure functions, thread-safe.
class GroupingKey
{
public:
    /// Returns `/metrics/job/<job>{/<name>/<value>}`. A value made only of `[A-Za-z0-9-._~]` is written raw;
    /// any other value, and the empty value, is written as `<name>@base64/<base64url with padding>`.
    static std::string path(const std::string& job, const Labels& labels = {});

    /// Returns one `<name>/<value>` (or `<name>@base64/<...>`) path segment pair, without a leading slash.
    static std::string segment(const std::string& name, const std::string& value);

    /// RFC 4648 section 5 base64url with `=` padding.
    static std::string base64Url(const std::string& data);

    /// The inverse of base64Url (padding optional). Throws std::invalid_argument on a character outside the
    /// base64url alphabet.
    static std::string base64UrlDecode(const std::string& text);
};

} // namespace fleetprobe
