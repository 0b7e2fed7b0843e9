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

} // namespace fleetprobe
