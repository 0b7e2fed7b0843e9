// libFuzzer target: the device-class config parser must turn any bytes into either a valid config or errors
// that name the file, and a valid config must give an exposition body that holds the format's invariants.
#include "config/ConfigLoader.h"
#include "metrics/MetricsBuilder.h"
#include "metrics/TextSerializer.h"
#include "scrapers/BuiltinScrapers.h"
#include "store/StateStore.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace fleetprobe;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static ScraperRegistry registry = []
    {
        ScraperRegistry r;
        registerBuiltinScrapers(r);
        return r;
    }();
    static ConfigLoader loader(registry);
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> errors;
    auto config = loader.parse(text, "fuzz.json", errors);
    if (!config)
    {
        if (errors.empty())
            std::abort(); // a rejected config must say why
        for (const auto& e : errors)
            if (e.compare(0, 10, "fuzz.json:") != 0)
                std::abort();
        return 0;
    }
    if (!errors.empty())
        std::abort();
    MetricsBuilder metrics(*config);
    for (std::size_t j = 0; j < config->jobs.size() && j < 64; ++j)
    {
        auto s = metrics.addSeries(j, "ping", {});
        metrics.record(s,
                       j % 2 == 0 ? ProbeResult::success(0.01 * static_cast<double>(j))
                                  : ProbeResult::failure(FailureReason::Timeout),
                       1.0);
    }
    const std::string body = TextSerializer::serialize(metrics.collect());
    if (body.empty() || body.back() != '\n' || body.find('\r') != std::string::npos)
        std::abort();
    // The state of any config must read back.
    StateStore::decode(StateStore::encode(metrics.exportState()));
    return 0;
}
