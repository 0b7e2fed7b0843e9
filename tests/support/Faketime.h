#pragma once

#include <string>

namespace fleetprobe::test
{

/// Debian's libfaketime (package faketime), multi-threaded flavour, to preload into a fleetprobe child; empty
/// when it is not installed.
std::string faketimeLibrary();

/// faketimeLibrary() for a test that needs it: when it is not installed, fails the test under CI=true, else
/// logs that the test is skipped; the caller returns on an empty result.
std::string faketimeOrSkip();

/// The ASAN_OPTIONS of this test process plus `verify_asan_link_order=0`: without it, an ASan build of
/// fleetprobe with libfaketime preloaded (LD_PRELOAD, or the `faketime` wrapper) refuses to start, since the
/// ASan runtime is then not first in the library list. Harmless for other builds.
std::string asanOptionsForPreload();

} // namespace fleetprobe::test
