// The `modbus` scraper's registration: `jobs[].modbus` (every key optional; the port defaults to the port of
// a `host:port` ip, else 502), one target per job, its measurements and its `/probe` module.
#include "scrapers/modbus/ModbusScraper.h"

#include "config/Config.h"

namespace fleetprobe
{
namespace
{

const char* const functionNames = "holding, input, server_id, identification";

bool readsRegisters(ModbusRequest::Function f)
{
    return f == ModbusRequest::Function::Holding || f == ModbusRequest::Function::Input;
}

std::shared_ptr<const ScraperSettings> parseModbus(const JobParseContext& context)
{
    auto cfg = std::make_shared<ModbusConfig>();
    if (context.basics.hostPort)
        cfg->port = *context.basics.hostPort;
    const ConfigSection& jo = context.job;
    if (!jo.has("modbus"))
        return cfg; // every key has a default
    auto o = jo.section("modbus");
    if (!o)
        return nullptr;
    o->unknownKeys({"port", "unit", "function", "address", "count", "framing", "timeout", "values"});
    ModbusRequest& request = cfg->request;
    if (auto n = o->integer("port", 1, 65535))
        cfg->port = static_cast<int>(*n);
    if (auto s = o->string("framing"))
    {
        if (*s == "tcp")
            request.framing = ModbusRequest::Framing::Tcp;
        else if (*s == "rtu")
            request.framing = ModbusRequest::Framing::Rtu;
        else
            o->error("framing",
                     "unknown framing " + o->get("framing")->show() +
                         " (known: tcp for Modbus/TCP with its MBAP header, rtu for RTU frames over TCP)");
    }
    const bool rtu = request.framing == ModbusRequest::Framing::Rtu;
    // RTU addresses 1-247 (0 is broadcast: never answered); Modbus/TCP any unit byte (0 and 255 for a device
    // that is not behind a gateway).
    if (auto n = o->integer("unit", rtu ? 1 : 0, rtu ? 247 : 255))
        request.unit = static_cast<std::uint8_t>(*n);
    if (auto s = o->string("function"))
    {
        if (*s == "holding")
            request.function = ModbusRequest::Function::Holding;
        else if (*s == "input")
            request.function = ModbusRequest::Function::Input;
        else if (*s == "server_id")
            request.function = ModbusRequest::Function::ServerId;
        else if (*s == "identification")
            request.function = ModbusRequest::Function::Identification;
        else
            o->error("function",
                     "unknown function " + o->get("function")->show() + " (known: " + functionNames + ")");
    }
    const bool registers = readsRegisters(request.function);
    const std::string function = o->has("function") ? o->get("function")->show() : "";
    for (const char* key : {"address", "count", "values"})
        if (o->has(key) && !registers)
            o->error(key, std::string("only for the register reads (function \"holding\" or \"input\"), not "
                                      "for function ") +
                              function);
    if (registers)
    {
        if (auto n = o->integer("address", 0, 65535))
            request.address = static_cast<std::uint16_t>(*n);
        if (auto n = o->integer("count", 1, 125))
            request.count = static_cast<std::uint16_t>(*n);
        if (request.address + request.count > 65536)
            o->error("count", "registers " + std::to_string(request.address) + " to " +
                                  std::to_string(request.address + request.count - 1) +
                                  " run past register 65535");
        if (auto b = o->boolean("values"))
        {
            cfg->values = *b;
            if (*b && request.count > maxModbusValues)
                o->error("values", "exports at most " + std::to_string(maxModbusValues) +
                                       " registers per job (each is a series), but count is " +
                                       std::to_string(request.count));
        }
    }
    if (o->has("timeout"))
        cfg->timeoutSeconds = o->timeout("timeout", context.config.intervalSeconds);
    return cfg;
}

/// `/probe?module=modbus`: the section from the parameters; the port from `port`, else the target's
/// host:port (read by the parser from `ip`), else 502.
void modbusProbeJob(const ProbeRequest& request, ConfigValue& job)
{
    ConfigValue section = ConfigValue::object();
    for (const char* name : {"port", "unit", "address", "count"})
        if (auto given = request.get(name))
            section.set(name, ProbeRequest::integerOrString(*given));
    for (const char* name : {"function", "framing"})
        if (auto given = request.get(name))
            section.set(name, ConfigValue::string(*given));
    if (auto given = request.get("values"))
    {
        if (*given == "true" || *given == "1")
            section.set("values", ConfigValue::boolean(true));
        else if (*given == "false" || *given == "0")
            section.set("values", ConfigValue::boolean(false));
        else
            throw ProbeParameterError("values: must be true or false, got \"" + *given + "\"");
    }
    job.set("modbus", std::move(section));
}

} // namespace

ScraperDescriptor modbusScraperDescriptor()
{
    ScraperDescriptor d;
    d.name = "modbus";
    d.create = [] { return std::make_unique<ModbusScraper>(); };
    d.jobKeys = {"modbus"};
    d.parseJob = parseModbus;
    d.targets = [](std::size_t jobIndex, const JobConfig& job,
                   const std::shared_ptr<const ScraperSettings>& settings,
                   std::chrono::milliseconds defaultTimeout)
    {
        const auto* cfg = dynamic_cast<const ModbusConfig*>(settings.get());
        if (!cfg)
            return std::vector<ProbeTarget>{};
        return std::vector<ProbeTarget>{
            ProbeTarget::forJob(jobIndex, job.host, defaultTimeout, cfg->timeoutSeconds, settings)};
    };
    d.measurements = {
        {"modbus_exception_code", "fleetprobe_modbus_exception_code",
         "Modbus exception code of the device's last answer (2: illegal data address, 11: gateway target "
         "failed to respond); absent when it answered normally.",
         MetricType::Gauge},
        {"modbus_register", "fleetprobe_modbus_register",
         "Value of a holding or input register read by the last probe (jobs[].modbus.values), unsigned 16 "
         "bits.",
         MetricType::Gauge},
    };
    d.labels = {"register"};
    d.probeParameters = {{"port", "modbus.port"},         {"unit", "modbus.unit"},
                         {"function", "modbus.function"}, {"address", "modbus.address"},
                         {"count", "modbus.count"},       {"framing", "modbus.framing"},
                         {"values", "modbus.values"}};
    d.probeJob = modbusProbeJob;
    return d;
}

} // namespace fleetprobe
