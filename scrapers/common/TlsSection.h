#pragma once

#include "engine/ScraperDescriptor.h"

namespace fleetprobe
{

/// Reads the TLS keys that `http` and `websocket` sections share (`tls_verify`, `ca_file`) into `out`.
template <class Settings> void readTlsKeys(const ConfigSection& section, Settings& out)
{
    if (auto b = section.boolean("tls_verify"))
        out.tlsVerify = *b;
    if (auto s = section.string("ca_file"))
        out.caFile = *s;
}

/// `/probe` for a URL module (http, websocket): `url`, or a target that is such a URL (its host is then the
/// job's address). Sets the job's `ip` and its `section` object's `url`. Throws ProbeParameterError when
/// there is neither.
void urlProbeJob(const ProbeRequest& request, ConfigValue& job, const std::string& section,
                 const std::string& example);

} // namespace fleetprobe
