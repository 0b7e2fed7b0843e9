#include "sinks/ExpositionBody.h"

#include "metrics/TextSerializer.h"

#include <algorithm>
#include <memory>

namespace fleetprobe
{

Body expositionBody(const FamilySource& families)
{
    const FamilySource* source = &families;
    return Body(
        [source]
        {
            struct Pass
            {
                std::size_t nextFamily = 0;
                MetricFamily family;
                std::size_t nextMetric = 0;
                bool inFamily = false;
            };
            auto pass = std::make_shared<Pass>();
            return Body::Producer(
                [source, pass](std::string& piece)
                {
                    while (piece.size() < Body::pieceBytes)
                    {
                        if (!pass->inFamily)
                        {
                            if (pass->nextFamily >= source->familyCount())
                                return !piece.empty();
                            source->buildFamily(pass->nextFamily++, pass->family);
                            if (pass->family.metrics.empty())
                                continue; // a family without samples is not written
                            TextSerializer::serializeHeader(piece, pass->family);
                            pass->nextMetric = 0;
                            pass->inFamily = true;
                        }
                        const std::size_t to = std::min(pass->nextMetric + 256, pass->family.metrics.size());
                        TextSerializer::serializeMetrics(piece, pass->family, pass->nextMetric, to);
                        pass->nextMetric = to;
                        pass->inFamily = to < pass->family.metrics.size();
                    }
                    return true;
                });
        });
}

} // namespace fleetprobe
