#pragma once

#include "sinks/PushClient.h"
#include "sinks/Sink.h"

namespace fleetprobe
{

/// The exposition text of every family of `families` that has samples, produced while it is sent: a family at
/// a time, a few hundred series per step, pieces of about Body::pieceBytes. Each pass builds the families
/// again (a retry sends the counters as they are then). `families` must outlive the body.
Body expositionBody(const FamilySource& families);

} // namespace fleetprobe
