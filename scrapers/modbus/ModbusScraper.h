#pragma once

#include "engine/ScraperDescriptor.h"
#include "scrapers/modbus/ModbusFrame.h"

#include <optional>

namespace fleetprobe
{

/// `jobs[].modbus`: where and what a `modbus` job asks (its read request), its timeout, and whether the
/// registers read are exported. Immutable once parsed; shared by the job's target.
struct ModbusConfig : ScraperSettings
{
    int port = 502;                       ///< the device's Modbus port (or the `host:port` of `ip`)
    ModbusRequest request;                ///< unit, function, address, count, framing
    std::optional<double> timeoutSeconds; ///< overrides conf.timeout
    bool values = false;                  ///< export the registers read as fleetprobe_modbus_register
};

/// At most this many registers per job are exported with `values` (each is a series).
constexpr int maxModbusValues = 16;

/// The `modbus` scraper's registration: `jobs[].modbus` (every key optional), one target per job, its
/// measurements (`modbus_exception_code`, `modbus_register` with label `register`) and its `/probe` module.
ScraperDescriptor modbusScraperDescriptor();

/// `modbus`: asks the device itself, not only its modem — one Modbus read request per job and cycle (read
/// holding/input registers, report server id, read device identification) over Modbus/TCP or RTU-over-TCP
/// framing, all targets of a cycle in one non-blocking poll loop (see ModbusScraper.cpp). Up when a
/// well-formed answer to the request arrives; an exception answer is down with reason `exception`; an open
/// connection without an answer is `timeout`; a malformed answer is `mismatch`. One instance per config;
/// probe() is called by one thread at a time. Its sockets come from the process's SocketBudget.
class ModbusScraper : public Scraper
{
public:
    /// Probes every target at once (see the class comment); one result per target, in order.
    std::vector<ProbeResult> probe(const std::vector<ProbeTarget>& targets, const StopSignal& stop) override;

private:
    std::uint16_t _nextTransaction = 1; ///< MBAP transaction ids, one per request, wrapping
};

} // namespace fleetprobe
