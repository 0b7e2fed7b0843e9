#pragma once

#include <string_view>

namespace fleetprobe
{

/// The files of the status page, src/http/assets/, embedded at build time (cmake/EmbedFiles.cmake writes
/// their definitions into the build directory). Each view holds a file's bytes unchanged; StatusPage puts
/// them together. Constants, initialized before main(): thread-safe.
class StatusAssets
{
public:
    /// status.html: the page, with `<link rel="stylesheet" href="status.css">` and
    /// `<script src="status.js"></script>` where the style and the script go inline.
    static const std::string_view html;

    /// status.css: the page's style sheet.
    static const std::string_view css;

    /// status.js: the page's script.
    static const std::string_view script;
};

} // namespace fleetprobe
