#pragma once

#include <cstddef>
#include <string>

namespace fleetprobe
{

/// The length (1 to 4) of the valid UTF-8 sequence that starts at `text[i]` (`i` < size), or 0 when none
/// does: a stray continuation byte, a truncated sequence, an overlong form, a surrogate or a code point above
/// U+10FFFF. Thread-safe (pure).
std::size_t utf8SequenceLength(const std::string& text, std::size_t i);

/// True when `text` is valid UTF-8 throughout (see utf8SequenceLength). Thread-safe (pure).
bool isValidUtf8(const std::string& text);

/// `url` with the password of its user info replaced by `xxxxx` (`http://user:xxxxx@host/`, as Go's
/// URL.Redacted()), for logs and error messages; unchanged when it has none. Thread-safe (pure).
std::string redactUrl(const std::string& url);

} // namespace fleetprobe
