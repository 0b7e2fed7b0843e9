#include "sinks/ExpositionBody.h"

#include "metrics/ProtobufSerializer.h"
#include "metrics/TextSerializer.h"

#include <algorithm>
#include <memory>

namespace fleetprobe
{

const char* pushFormatName(PushFormat format)
{
    return format == PushFormat::Protobuf ? "protobuf" : "text";
}

std::optional<PushFormat> parsePushFormat(const std::string& name)
{
    if (name == "protobuf")
        return PushFormat::Protobuf;
    if (name == "text")
        return PushFormat::Text;
    return std::nullopt;
}

Body expositionBody(const FamilySource& families, PushFormat format)
{
    const FamilySource* source = &families;
    const bool protobuf = format == PushFormat::Protobuf;
    Body body(
        [source, protobuf]
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
                [source, pass, protobuf](std::string& piece)
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
                            if (protobuf)
                                ProtobufSerializer::serializeHeader(piece, pass->family);
                            else
                                TextSerializer::serializeHeader(piece, pass->family);
                            pass->nextMetric = 0;
                            pass->inFamily = true;
                        }
                        const std::size_t to = std::min(pass->nextMetric + 256, pass->family.metrics.size());
                        if (protobuf)
                            ProtobufSerializer::serializeMetrics(piece, pass->family, pass->nextMetric, to);
                        else
                            TextSerializer::serializeMetrics(piece, pass->family, pass->nextMetric, to);
                        pass->nextMetric = to;
                        pass->inFamily = to < pass->family.metrics.size();
                    }
                    return true;
                });
        });
    if (protobuf)
        body.setContentType(ProtobufSerializer::contentType());
    return body;
}

Body expositionSnapshot(const FamilySource& families, PushFormat format)
{
    const Body produced = expositionBody(families, format);
    Body snapshot(produced.joined());
    snapshot.setContentType(produced.contentType());
    return snapshot;
}

} // namespace fleetprobe
