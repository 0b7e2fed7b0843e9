#include "scrapers/ping/IcmpFilter.h"

#include <algorithm>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>

namespace fleetprobe
{
namespace
{

constexpr std::uint32_t acceptAll = 0xffffffffu;
/// Identifiers compared one after the other at the bottom of the search (their jumps stay short).
constexpr std::size_t leafSize = 8;

sock_filter statement(std::uint16_t code, std::uint32_t k)
{
    return sock_filter{code, 0, 0, k};
}

sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf)
{
    return sock_filter{code, jt, jf, k};
}

/// Emits the search over idents[lo, hi) for the identifier in A: accept on a match, drop otherwise.
void emitSearch(const std::vector<std::uint16_t>& idents, std::size_t lo, std::size_t hi,
                std::vector<sock_filter>& out)
{
    if (hi - lo <= leafSize)
    {
        for (std::size_t k = lo; k < hi; ++k)
        {
            // Past the identifiers left and the drop, to the accept.
            const auto toAccept = static_cast<std::uint8_t>(hi - 1 - k + 1);
            out.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, idents[k], toAccept, 0));
        }
        out.push_back(statement(BPF_RET | BPF_K, 0));
        out.push_back(statement(BPF_RET | BPF_K, acceptAll));
        return;
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    // A >= pivot: take the long jump to the upper half; otherwise skip it into the lower half.
    out.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, idents[mid], 0, 1));
    const std::size_t longJump = out.size();
    out.push_back(statement(BPF_JMP | BPF_JA, 0));
    emitSearch(idents, lo, mid, out);
    out[longJump].k = static_cast<std::uint32_t>(out.size() - (longJump + 1));
    emitSearch(idents, mid, hi, out);
}

} // namespace

std::vector<sock_filter> IcmpFilter::echoReplies(int family, std::vector<std::uint16_t> idents)
{
    std::sort(idents.begin(), idents.end());
    idents.erase(std::unique(idents.begin(), idents.end()), idents.end());
    std::vector<sock_filter> program;
    const bool v4 = family == AF_INET;
    if (v4)
    {
        program.push_back(statement(BPF_LDX | BPF_B | BPF_MSH, 0)); // X = IP header length
        program.push_back(statement(BPF_LD | BPF_B | BPF_IND, 0));  // ICMP type
    }
    else
        program.push_back(statement(BPF_LD | BPF_B | BPF_ABS, 0));
    program.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, v4 ? ICMP_ECHOREPLY : ICMP6_ECHO_REPLY, 1, 0));
    program.push_back(statement(BPF_RET | BPF_K, 0));
    program.push_back(v4 ? statement(BPF_LD | BPF_H | BPF_IND, 4) : statement(BPF_LD | BPF_H | BPF_ABS, 4));
    if (idents.empty())
        program.push_back(statement(BPF_RET | BPF_K, 0));
    else
        emitSearch(idents, 0, idents.size(), program);
    if (program.size() > maxInstructions)
        return {};
    return program;
}

bool IcmpFilter::attach(int fd, const std::vector<sock_filter>& program)
{
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(program.size());
    prog.filter = const_cast<sock_filter*>(program.data());
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}

} // namespace fleetprobe
