#pragma once

#include "engine/RunningConfigs.h"

#include <string>
#include <vector>

namespace fleetprobe
{

/// The technician's status page of `--listen`: `/` (a self-contained HTML page with its CSS and JavaScript
/// inline, no external asset; its source files are src/http/assets/, see StatusAssets) and `/status.json`
/// (the last cycle of every running config, which the page polls). The format of the JSON is documented in
/// docs/status-page.md. Stateless; every function is thread-safe.
class StatusPage
{
public:
    /// The page served at `/`: HTML, UTF-8. It fetches `status.json` (relative to its own URL) every few
    /// seconds and builds its DOM with textContent only. Thread-safe (a constant).
    static const std::string& html();

    /// The Content-Security-Policy sent with html(): nothing but the page's own inline script and style and
    /// fetches to its own origin. Thread-safe (a constant).
    static const std::string& contentSecurityPolicy();

    /// The body of `/status.json` for `configs` (RunningConfigs::entries()) at `nowUnix` (seconds since the
    /// epoch): configs sorted by prom_id, each with its devices in config order and every probed series of a
    /// device under it. Strings are escaped for JSON (and `<`, `>`, `&`, U+2028, U+2029 as \u escapes;
    /// invalid UTF-8 becomes U+FFFD); absent or non-finite numbers are `null`. Thread-safe.
    static std::string json(const std::vector<RunningConfigs::Entry>& configs, double nowUnix);

    /// `text` as a JSON string literal, quotes included, escaped as in json(). Thread-safe.
    static std::string jsonString(const std::string& text);
};

} // namespace fleetprobe
