#include "Nftables.h"

#include "NetNamespace.h"
#include "ProcessRunner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

bool isIpv4Loopback(const std::string& address)
{
    in_addr parsed{};
    return ::inet_pton(AF_INET, address.c_str(), &parsed) == 1 && (ntohl(parsed.s_addr) >> 24) == 127;
}

bool isIpv6Loopback(const std::string& address)
{
    in6_addr parsed{};
    return ::inet_pton(AF_INET6, address.c_str(), &parsed) == 1 && IN6_IS_ADDR_LOOPBACK(&parsed);
}

std::string join(const std::vector<std::string>& items)
{
    std::string text;
    for (const auto& item : items)
        text += (text.empty() ? "" : ", ") + item;
    return text;
}

} // namespace

Nftables::Nftables()
{
    if (!NetNamespace::active())
        throw std::runtime_error(
            "Nftables: refusing to change firewall rules outside the private network namespace");
}

Nftables::~Nftables()
{
    try
    {
        flush();
    }
    catch (...)
    {
    }
}

void Nftables::makeSilent(const std::vector<std::string>& addresses)
{
    std::vector<std::string> v4, v6;
    for (const auto& address : addresses)
    {
        if (isIpv4Loopback(address))
            v4.push_back(address);
        else if (isIpv6Loopback(address))
            v6.push_back(address);
        else
            throw std::invalid_argument("Nftables: not a loopback address: \"" + address + "\"");
    }
    std::string rules = "add table inet " + std::string(table) + "\n" + "delete table inet " + table + "\n" +
                        "table inet " + table + " {\n" +
                        "  chain input {\n"
                        "    type filter hook input priority 0; policy accept;\n";
    if (!v4.empty())
        rules += "    ip daddr { " + join(v4) + " } drop\n";
    if (!v6.empty())
        rules += "    ip6 daddr { " + join(v6) + " } drop\n";
    rules += "  }\n}\n";
    apply(rules);
}

void Nftables::apply(const std::string& ruleset)
{
    if (!NetNamespace::active())
        throw std::runtime_error(
            "Nftables: refusing to change firewall rules outside the private network namespace");
    ProcessOptions options;
    options.input = ruleset;
    options.timeout = std::chrono::milliseconds(15000);
    const ProcessResult result = ProcessRunner::run({"nft", "-f", "-"}, options);
    if (result.exitCode != 0)
        throw std::runtime_error("nft -f - failed: " + result.describe() + "\nruleset:\n" + ruleset);
}

void Nftables::flush()
{
    // "add" first so that the delete works whether or not the table exists.
    apply("add table inet " + std::string(table) + "\ndelete table inet " + table + "\n");
}

std::string Nftables::listRuleset()
{
    return ProcessRunner::run({"nft", "list", "ruleset"}, {}).out;
}

} // namespace fleetprobe::test
