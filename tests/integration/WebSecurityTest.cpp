// --listen exposed on a management network: --web.config.file (TLS with and without client certificates,
// bcrypt basic auth, response headers, SIGHUP reload, hostile files) checked with curl and openssl s_client;
// and the server under attack: a bounded slowloris during which /-/healthy keeps answering, and a bounded
// burst of 1,000 concurrent /probe requests that each get 200 or 503, never a reset.

#include "ChildProcess.h"
#include "FleetprobeFixture.h"
#include "LoopbackPort.h"
#include "NetNamespace.h"
#include "Nftables.h"
#include "TlsCertificate.h"
#include "WaitCondition.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <crypt.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using namespace fleetprobe::test;
namespace utf = boost::unit_test;
using std::chrono::milliseconds;

namespace
{

/// A bcrypt hash of `password` (cost 5: fast in tests), made with libcrypt like htpasswd -B would.
std::string bcryptHash(const std::string& password)
{
    crypt_data data{};
    const char* out = crypt_r(password.c_str(), "$2y$05$abcdefghijklmnopqrstuu", &data);
    BOOST_TEST_REQUIRE((out != nullptr && out[0] == '$'), "crypt_r failed");
    return out;
}

void writeFile(const std::string& path, const std::string& text)
{
    std::ofstream(path) << text;
}

/// fleetprobe --listen with --web.config.file and no device config (/probe only); waits until the port
/// accepts connections.
class SecureServer
{
public:
    SecureServer(const FleetprobeFixture& fixture, const std::string& webConfig,
                 const std::vector<std::string>& extra = {})
        : port(LoopbackPort::findFree())
    {
        std::vector<std::string> argv = {FleetprobeFixture::binary(),
                                         "--listen",
                                         "127.0.0.1:" + std::to_string(port),
                                         "--web.config.file",
                                         webConfig,
                                         "--log-level",
                                         "debug"};
        const auto state = fixture.stateArguments();
        argv.insert(argv.end(), state.begin(), state.end());
        argv.insert(argv.end(), extra.begin(), extra.end());
        BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " &");
        process = std::make_unique<ChildProcess>(argv);
        const bool up = WaitCondition::until(
            [&]
            { return !process->running() || process->stderrText().find("serving /") != std::string::npos; },
            milliseconds(20000), milliseconds(50));
        BOOST_TEST_REQUIRE((up && process->running()),
                           "fleetprobe never listened: " << process->stderrText());
    }

    ~SecureServer()
    {
        if (process && process->running())
        {
            const ProcessResult end = process->stop(milliseconds(15000));
            BOOST_TEST(end.exitCode == 0, "fleetprobe after SIGTERM: " << end.describe());
        }
    }

    std::string url(const std::string& scheme, const std::string& path) const
    {
        return scheme + "://127.0.0.1:" + std::to_string(port) + path;
    }

    int port;
    std::unique_ptr<ChildProcess> process;
};

/// curl's answer: the HTTP status (0 when there was none), the response headers and the body.
struct CurlAnswer
{
    int status = 0;
    int exitCode = -1;
    std::string headers;
    std::string body;
    std::string err;
};

CurlAnswer curl(const std::vector<std::string>& arguments)
{
    std::vector<std::string> argv = {"curl",        "-sS", "--max-time", "10", "-D",
                                     "/dev/stderr", "-o",  "-",          "-w", "\n%{http_code}"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    ProcessOptions options;
    options.timeout = milliseconds(20000);
    const ProcessResult r = ProcessRunner::run(argv, options);
    CurlAnswer a;
    a.exitCode = r.exitCode;
    a.err = r.err;
    a.headers = r.err;
    const auto nl = r.out.rfind('\n');
    a.body = nl == std::string::npos ? r.out : r.out.substr(0, nl);
    a.status = nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " -> " << a.status << " (exit "
                            << a.exitCode << ")");
    return a;
}

/// `openssl s_client` to the server, sending one request line; returns what it printed.
ProcessResult sClient(int port, const std::vector<std::string>& arguments)
{
    std::vector<std::string> argv = {
        "openssl",     "s_client",  "-connect", "127.0.0.1:" + std::to_string(port),
        "-servername", "localhost", "-ign_eof"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    ProcessOptions options;
    options.timeout = milliseconds(20000);
    options.input = "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const ProcessResult r = ProcessRunner::run(argv, options);
    BOOST_TEST_MESSAGE("$ " << ProcessRunner::commandLine(argv) << " -> exit " << r.exitCode);
    return r;
}

/// Certificates of one test: the server's (self-signed, also the curl --cacert), a client's that the
/// server trusts (its own CA), and a rogue client's that it does not.
struct Pki
{
    explicit Pki(const std::string& dir)
        : server(dir, "server"), client(dir, "client", "scraper", "DNS:scraper"),
          rogue(dir, "rogue", "scraper", "DNS:scraper")
    {
    }
    TlsCertificate server;
    TlsCertificate client;
    TlsCertificate rogue;
};

/// A TCP connection from `source` (a 127.x address) to 127.0.0.1:port; -1 when it fails.
int connectFrom(const std::string& source, int port, bool nonBlocking)
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    if (nonBlocking)
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        (::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 && errno != EINPROGRESS))
    {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// GET /-/healthy over plain HTTP with a 1 s timeout for the whole exchange; the status or 0.
int healthyWithin1s(int port)
{
    try
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(1, 0), Poco::Timespan(1, 0), Poco::Timespan(1, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/-/healthy",
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        std::string body;
        Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
        return static_cast<int>(response.getStatus());
    }
    catch (const std::exception&)
    {
        return 0;
    }
}

void raiseFdLimit()
{
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
}

} // namespace

BOOST_AUTO_TEST_SUITE(webSecurity)

BOOST_FIXTURE_TEST_CASE(tlsWithVerifiedClientCertificatesAndBasicAuth, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Pki pki(dir.path());
    const std::string web = dir.path() + "/web.yml";
    writeFile(web,
              "tls_server_config:\n  cert_file: " + pki.server.certificateFile() +
                  "\n  key_file: " + pki.server.keyFile() +
                  "\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                  pki.client.certificateFile() + "\nbasic_auth_users:\n  alice: " + bcryptHash("s3cret!") +
                  "\nhttp_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n");
    SecureServer server(*this, web);
    const std::vector<std::string> tls = {"--cacert", pki.server.certificateFile(),
                                          "--cert",   pki.client.certificateFile(),
                                          "--key",    pki.client.keyFile()};
    auto with = [&](std::vector<std::string> extra, const std::string& path)
    {
        std::vector<std::string> args = tls;
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(server.url("https", path));
        return curl(args);
    };

    const CurlAnswer ok = with({"-u", "alice:s3cret!"}, "/-/healthy");
    BOOST_TEST(ok.status == 200, ok.err);
    BOOST_TEST(ok.body == "OK\n");
    BOOST_TEST(ok.headers.find("Strict-Transport-Security: max-age=31536000") != std::string::npos,
               ok.headers);
    BOOST_TEST(with({"-u", "alice:s3cret!"}, "/metrics").status == 200);

    const CurlAnswer wrong = with({"-u", "alice:wrong"}, "/metrics");
    BOOST_TEST(wrong.status == 401);
    const CurlAnswer unknown = with({"-u", "mallory:s3cret!"}, "/metrics");
    BOOST_TEST(unknown.status == 401);
    const CurlAnswer none = with({}, "/status.json");
    BOOST_TEST(none.status == 401);
    BOOST_TEST(none.headers.find("WWW-Authenticate: Basic realm=\"fleetprobe\"") != std::string::npos,
               none.headers);

    // Without a client certificate, or with one the CA did not sign, there is no HTTP at all.
    const CurlAnswer noCert = curl(
        {"--cacert", pki.server.certificateFile(), "-u", "alice:s3cret!", server.url("https", "/-/healthy")});
    BOOST_TEST(noCert.status == 0, noCert.err);
    BOOST_TEST(noCert.exitCode != 0);
    const CurlAnswer rogue =
        curl({"--cacert", pki.server.certificateFile(), "--cert", pki.rogue.certificateFile(), "--key",
              pki.rogue.keyFile(), "-u", "alice:s3cret!", server.url("https", "/-/healthy")});
    BOOST_TEST(rogue.status == 0, rogue.err);
    // Plain HTTP on the TLS port is no way around it.
    BOOST_TEST(curl({server.url("http", "/-/healthy")}).status != 200);

    const ProcessResult sOk =
        sClient(server.port, {"-CAfile", pki.server.certificateFile(), "-cert", pki.client.certificateFile(),
                              "-key", pki.client.keyFile()});
    BOOST_TEST(sOk.out.find("Verify return code: 0 (ok)") != std::string::npos, sOk.out);
    BOOST_TEST(sOk.out.find("HTTP/1.1 401 Unauthorized") != std::string::npos, sOk.out);
    const ProcessResult sNoCert = sClient(server.port, {"-CAfile", pki.server.certificateFile()});
    BOOST_TEST(sNoCert.out.find("HTTP/1.1") == std::string::npos, sNoCert.out);
    BOOST_TEST((sNoCert.err.find("alert") != std::string::npos || sNoCert.exitCode != 0), sNoCert.err);

    // The password is in no log line.
    BOOST_TEST(server.process->stderrText().find("s3cret") == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(tlsWithoutClientCertificatesAndVersionLimits, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    Pki pki(dir.path());
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "tls_server_config:\n  cert_file: " + pki.server.certificateFile() +
                       "\n  key_file: " + pki.server.keyFile() + "\n  min_version: TLS13\n");
    SecureServer server(*this, web);
    const CurlAnswer ok = curl({"--cacert", pki.server.certificateFile(), server.url("https", "/-/healthy")});
    BOOST_TEST(ok.status == 200, ok.err);
    const ProcessResult s13 = sClient(server.port, {"-CAfile", pki.server.certificateFile()});
    BOOST_TEST(s13.out.find("HTTP/1.1 200 OK") != std::string::npos, s13.out);
    BOOST_TEST(s13.out.find("TLSv1.3") != std::string::npos, s13.out);
    const ProcessResult s12 = sClient(server.port, {"-CAfile", pki.server.certificateFile(), "-tls1_2"});
    BOOST_TEST(s12.out.find("HTTP/1.1") == std::string::npos, s12.out);
}

BOOST_FIXTURE_TEST_CASE(sighupReloadsTheWebConfigAndKeepsItWhenBad, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "basic_auth_users:\n  alice: " + bcryptHash("one") + "\n");
    SecureServer server(*this, web);
    const std::string metrics = server.url("http", "/metrics");
    BOOST_TEST(curl({"-u", "alice:one", metrics}).status == 200);

    writeFile(web, "basic_auth_users:\n  bob: " + bcryptHash("two") + "\n");
    server.process->signal(SIGHUP);
    BOOST_TEST(WaitCondition::until(
        [&] {
            return curl({"-u", "bob:two", metrics}).status == 200;
        },
        milliseconds(10000), milliseconds(100)));
    BOOST_TEST(curl({"-u", "alice:one", metrics}).status == 401);

    writeFile(web, "basic_auth_users:\n  bob: not-a-hash\n");
    server.process->signal(SIGHUP);
    BOOST_TEST(WaitCondition::until(
        [&]
        {
            return server.process->stderrText().find("the web config keeps its previous version") !=
                   std::string::npos;
        },
        milliseconds(10000)));
    const std::string log = server.process->stderrText();
    BOOST_TEST(log.find("basic_auth_users.bob: must be a bcrypt hash") != std::string::npos, log);
    BOOST_TEST(log.find("not-a-hash") == std::string::npos, log);
    const CurlAnswer after = curl({"-u", "bob:two", metrics});
    BOOST_TEST(after.status == 200);
    BOOST_TEST(after.body.find("fleetprobe_web_config_reloads_total{result=\"failure\"} 1") !=
                   std::string::npos,
               after.body);
    BOOST_TEST(after.body.find("fleetprobe_web_config_reloads_total{result=\"success\"} 1") !=
               std::string::npos);
    BOOST_TEST(after.body.find("fleetprobe_web_config_last_reload_successful 0") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(hostileWebConfigFilesAreStartupErrors, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    TlsCertificate cert(dir.path(), "server");
    const std::string tls = "tls_server_config:\n  cert_file: " + cert.certificateFile() +
                            "\n  key_file: " + cert.keyFile() + "\n";
    std::string deep;
    for (int i = 0; i < 5000; ++i)
        deep += "[";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
         "tls_server_config.cert_file: cannot read \"/nonexistent.crt\""},
        {"tls_server_config:\n  cert_file: " + cert.certificateFile() + "\n",
         "tls_server_config.key_file: missing"},
        {"tls_server_config:\n  cert_file: " + cert.keyFile() + "\n  key_file: " + cert.keyFile() + "\n",
         "tls_server_config.cert_file: cannot load"},
        {tls + "  client_auth_type: RequireAndVerify\n", "tls_server_config.client_auth_type: must be"},
        {tls + "  client_auth_type: RequireAndVerifyClientCert\n",
         "tls_server_config.client_ca_file: missing"},
        {tls + "  min_version: TLS13\n  max_version: TLS12\n", "tls_server_config.min_version: is above"},
        {tls + "  min_version: SSL3\n", "tls_server_config.min_version: must be TLS10"},
        {tls + "  client_allowed_sans: [a]\n", "tls_server_config.client_allowed_sans: not supported"},
        {"basic_auth_users:\n  alice: $1$plainmd5$xxxxxxxxxxxxxxxxxxxxxx\n",
         "basic_auth_users.alice: must be a bcrypt"},
        {"basic_auth_users:\n  alice: $2y$05$short\n", "basic_auth_users.alice: is not a valid bcrypt hash"},
        {"basic_auth_users: [alice]\n", "basic_auth_users: must be an object"},
        {"http_server_config:\n  headers:\n    Set-Cookie: a=b\n",
         "http_server_config.headers.Set-Cookie: header"},
        {"http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
         "http_server_config.headers.X-Frame-Options: must be deny or sameorigin"},
        {"http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"\n",
         "must not contain a line break"},
        {"tls_server_confg: {}\n", "tls_server_confg: unknown key"},
        {"basic_auth_users:\n  alice: x\n  alice: y\n", "duplicate key \"alice\""},
        {"a: [1, 2\n", "not valid YAML: line "},
        {deep, "not valid YAML: line 1"},
        {"- just\n- a list\n", "must be a YAML mapping"},
        {std::string("\x00\xff\xfe garbage", 12), "web.yml"},
    };
    const std::string config =
        writeConfig("c.json", R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1},
        "jobs": [{"job": "d", "ip": "127.0.0.1", "metrics": ["ping"]}]})");
    for (const auto& [text, expected] : cases)
    {
        const std::string web = dir.path() + "/web.yml";
        writeFile(web, text);
        const ProcessResult r =
            runFleetprobe({"--listen", "127.0.0.1:" + std::to_string(LoopbackPort::findFree()),
                           "--web.config.file", web, "--config", config},
                          milliseconds(20000));
        BOOST_TEST(r.exitCode == 2, text << ": " << r.describe());
        BOOST_TEST(r.err.find(web) != std::string::npos, r.err);
        BOOST_TEST(r.err.find(expected) != std::string::npos,
                   "expected \"" << expected << "\" in: " << r.err);
        BOOST_TEST(r.err.find("$2y$05$short") == std::string::npos, r.err);
    }
    const ProcessResult noListen =
        runFleetprobe({"--web.config.file", dir.path() + "/web.yml", "--config", config});
    BOOST_TEST(noListen.exitCode == 2);
    BOOST_TEST(noListen.err.find("--web.config.file configures --listen") != std::string::npos, noListen.err);
    // --check validates the file without --listen.
    writeFile(dir.path() + "/web.yml", "basic_auth_users:\n  alice: " + bcryptHash("x") + "\n");
    BOOST_TEST(runFleetprobe({"--check", "--config", config, "--web.config.file", dir.path() + "/web.yml"})
                   .exitCode == 0);
    writeFile(dir.path() + "/web.yml", "basic_auth_users:\n  alice: x\n");
    const ProcessResult badCheck =
        runFleetprobe({"--check", "--config", config, "--web.config.file", dir.path() + "/web.yml"});
    BOOST_TEST(badCheck.exitCode == 2);
    BOOST_TEST(badCheck.err.find("basic_auth_users.alice: must be a bcrypt hash") != std::string::npos,
               badCheck.err);
}

BOOST_FIXTURE_TEST_CASE(slowlorisLeavesHealthChecksFast, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "");
    SecureServer server(*this, web);
    // 64 attackers (another address than the health checker's) that send one byte every 8 s; a connection
    // the server closes is opened again at once, as a real slowloris does.
    const std::string attacker = "127.0.0.2";
    std::vector<int> slow(64, -1);
    std::vector<std::chrono::steady_clock::time_point> lastByte(64);
    int closedByServer = 0;
    auto refill = [&]
    {
        for (std::size_t i = 0; i < slow.size(); ++i)
            if (slow[i] < 0)
            {
                slow[i] = connectFrom(attacker, server.port, false);
                lastByte[i] = std::chrono::steady_clock::now();
                if (slow[i] >= 0)
                    (void)!::send(slow[i], "G", 1, MSG_NOSIGNAL);
            }
    };
    refill();
    const auto start = std::chrono::steady_clock::now();
    int checks = 0;
    int answered = 0;
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(30))
    {
        const auto second = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < slow.size(); ++i)
        {
            char c;
            if (slow[i] >= 0 && ::recv(slow[i], &c, 1, MSG_DONTWAIT) == 0)
            {
                ::close(slow[i]);
                slow[i] = -1;
                ++closedByServer;
            }
            else if (slow[i] >= 0 && second - lastByte[i] >= std::chrono::seconds(8))
            {
                (void)!::send(slow[i], "E", 1, MSG_NOSIGNAL);
                lastByte[i] = second;
            }
        }
        refill();
        ++checks;
        const int status = healthyWithin1s(server.port);
        answered += status == 200;
        BOOST_TEST(status == 200, "check " << checks << " at "
                                           << std::chrono::duration_cast<milliseconds>(second - start).count()
                                           << " ms");
        // One check a second: wait for the rest of this second (the pacing of the test, not a timing target).
        WaitCondition::until([&]
                             { return std::chrono::steady_clock::now() - second >= std::chrono::seconds(1); },
                             milliseconds(1000), milliseconds(20));
    }
    for (int fd : slow)
        if (fd >= 0)
            ::close(fd);
    BOOST_TEST_MESSAGE("slowloris: " << answered << " of " << checks << " health checks answered, "
                                     << closedByServer << " slow connections closed by the server");
    BOOST_TEST(answered == checks);
    // The whole-request deadline (10 s) cut the first 64 off within the 30 s.
    BOOST_TEST(closedByServer >= 64);
}

BOOST_FIXTURE_TEST_CASE(burstOf1000ProbesGets200Or503NeverAReset, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    raiseFdLimit();
    Nftables nft;
    nft.makeSilent({"127.0.0.99"});
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "");
    SecureServer server(*this, web);
    // Each probe waits 2 s on a silent target, so the pools fill and the rest must be told 503.
    const std::string request =
        "GET /probe?module=port&target=127.0.0.99&port=9&timeout=2 HTTP/1.1\r\nHost: x\r\n\r\n";
    struct Client
    {
        int fd = -1;
        bool sent = false;
        std::string response;
        bool failed = false;
    };
    std::vector<Client> clients(1000);
    for (std::size_t i = 0; i < clients.size(); ++i)
    {
        // 16 source addresses, fewer connections each than the per-client limit: the pools saturate.
        clients[i].fd = connectFrom("127.0.1." + std::to_string(1 + i % 16), server.port, true);
        clients[i].failed = clients[i].fd < 0;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    for (;;)
    {
        std::vector<pollfd> fds;
        std::vector<Client*> who;
        for (auto& c : clients)
            if (c.fd >= 0)
            {
                fds.push_back(pollfd{c.fd, static_cast<short>(c.sent ? POLLIN : POLLOUT), 0});
                who.push_back(&c);
            }
        if (fds.empty() || std::chrono::steady_clock::now() > deadline)
            break;
        ::poll(fds.data(), fds.size(), 200);
        for (std::size_t i = 0; i < fds.size(); ++i)
        {
            Client& c = *who[i];
            if (fds[i].revents == 0)
                continue;
            if (!c.sent)
            {
                c.sent = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(request.size());
                if (c.sent)
                    continue;
                c.failed = true;
            }
            else
            {
                char buf[4096];
                const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
                if (n > 0)
                {
                    c.response.append(buf, static_cast<std::size_t>(n));
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    continue;
                c.failed = n < 0; // ECONNRESET and the like; 0 is the end of the answer
            }
            ::close(c.fd);
            c.fd = -1;
        }
    }
    int ok = 0, busy = 0, bad = 0;
    for (auto& c : clients)
    {
        if (c.fd >= 0)
            ::close(c.fd), c.failed = true;
        if (!c.failed && c.response.rfind("HTTP/1.1 200", 0) == 0)
            ++ok;
        else if (!c.failed && c.response.rfind("HTTP/1.1 503", 0) == 0 &&
                 c.response.find("Retry-After: 1") != std::string::npos)
            ++busy;
        else
            ++bad;
    }
    BOOST_TEST_MESSAGE("burst: " << ok << " x 200, " << busy << " x 503, " << bad << " failed");
    BOOST_TEST(bad == 0);
    BOOST_TEST(ok > 0);
    BOOST_TEST(busy > 0);
    BOOST_TEST(ok + busy == 1000);
    BOOST_TEST(healthyWithin1s(server.port) == 200);
}

BOOST_FIXTURE_TEST_CASE(oneClientAddressGetsAtMost64Connections, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "");
    SecureServer server(*this, web);
    // 64 idle connections from one address hold its whole share; its 65th is answered 503 at once, while
    // another address is served.
    std::vector<int> idle;
    for (int i = 0; i < 64; ++i)
        idle.push_back(connectFrom("127.0.0.3", server.port, false));
    for (int fd : idle)
        BOOST_TEST_REQUIRE(fd >= 0);
    const int extra = connectFrom("127.0.0.3", server.port, false);
    BOOST_TEST_REQUIRE(extra >= 0);
    const std::string request = "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
    BOOST_TEST(::send(extra, request.data(), request.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(request.size()));
    timeval timeout{5, 0};
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::string answer;
    char buf[1024];
    for (ssize_t n; (n = ::recv(extra, buf, sizeof buf, 0)) > 0;)
        answer.append(buf, static_cast<std::size_t>(n));
    BOOST_TEST(answer.rfind("HTTP/1.1 503", 0) == 0, answer);
    BOOST_TEST(answer.find("Retry-After: 1") != std::string::npos, answer);
    BOOST_TEST(answer.find("too many connections from 127.0.0.3") != std::string::npos, answer);
    BOOST_TEST(healthyWithin1s(server.port) == 200);
    ::close(extra);
    for (int fd : idle)
        ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(webSecrets)

BOOST_FIXTURE_TEST_CASE(secretsStayOutOfLogsHelpStatusAndErrors, FleetprobeFixture,
                        *utf::precondition(NetNamespace::required))
{
    const std::string webPassword = "WebSecret-7f3a";
    const std::string pushPassword = "PushSecret-91c2";
    const std::string hash = bcryptHash(webPassword);
    const std::string web = dir.path() + "/web.yml";
    writeFile(web, "basic_auth_users:\n  technician: " + hash + "\n");
    const std::string config =
        writeConfig("c.json", R"({"conf": {"prom_id": "p", "interval": 10, "timeout": 1},
        "jobs": [{"job": "d", "ip": "127.0.0.1", "metrics": ["ping"]}]})");
    std::string pushUrl = pushgateway->url();
    pushUrl.insert(pushUrl.find("://") + 3, "pusher:" + pushPassword + "@");
    std::string all;
    {
        SecureServer server(*this, web,
                            {"--config", config, "--pushgateway", pushUrl, "--instance", instance});
        const std::string user = "technician:" + webPassword;
        BOOST_TEST(WaitCondition::until(
            [&] {
                return curl({"-u", user, server.url("http", "/-/ready")}).status == 200;
            },
            milliseconds(20000), milliseconds(100)));
        const CurlAnswer status = curl({"-u", user, server.url("http", "/status.json")});
        const CurlAnswer metrics = curl({"-u", user, server.url("http", "/metrics")});
        const CurlAnswer wrong =
            curl({"-u", "technician:" + webPassword + "x", server.url("http", "/metrics")});
        BOOST_TEST(wrong.status == 401);
        writeFile(web, "basic_auth_users:\n  technician: " + hash.substr(0, 20) + "\n");
        server.process->signal(SIGHUP);
        BOOST_TEST(WaitCondition::until(
            [&] { return server.process->stderrText().find("web config keeps") != std::string::npos; },
            milliseconds(10000)));
        all = status.body + metrics.body + wrong.body + wrong.headers + server.process->stderrText();
        BOOST_TEST(server.process->stderrText().find("pusher:xxxxx@") != std::string::npos,
                   server.process->stderrText());
    }
    const ProcessResult help = runFleetprobe({"--help"});
    const ProcessResult badPush = runFleetprobe(
        {"--once", "--config", config, "--pushgateway", "ftp://pusher:" + pushPassword + "@127.0.0.1:1"});
    BOOST_TEST(badPush.exitCode == 2);
    all += help.out + help.err + badPush.err;
    for (const std::string& secret : {webPassword, pushPassword, hash, hash.substr(7, 22)})
        BOOST_TEST(all.find(secret) == std::string::npos, "\"" << secret << "\" appears in: " << all);
}

BOOST_AUTO_TEST_SUITE_END()
