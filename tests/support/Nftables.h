#pragma once

#include <string>
#include <vector>

namespace fleetprobe::test
{

/// Firewall rules for the tests, applied with `nft -f -` inside the private network namespace only
/// (it refuses to run outside it, so the host's ruleset is never touched). Everything lives in the table
/// `inet fleetprobe_test`, which the destructor deletes.
class Nftables
{
public:
    /// The table every rule goes into.
    static constexpr const char* table = "fleetprobe_test";

    /// Checks that the process runs inside the private network namespace; throws otherwise.
    Nftables();

    /// Deletes the table (flush()); errors are ignored.
    ~Nftables();

    Nftables(const Nftables&) = delete;
    Nftables& operator=(const Nftables&) = delete;

    /// Makes the given loopback hosts silent: their incoming packets are dropped on the INPUT hook (never on
    /// output, so senders see no error, only silence). Replaces the rules of an earlier call.
    /// Accepts 127.x.y.z and ::1 only.
    void makeSilent(const std::vector<std::string>& addresses);

    /// Feeds `ruleset` to `nft -f -`; throws with nft's message when it fails.
    void apply(const std::string& ruleset);

    /// Deletes the test table and all its rules.
    void flush();

    /// The current ruleset of the namespace (`nft list ruleset`), for messages.
    static std::string listRuleset();
};

} // namespace fleetprobe::test
