#include "TlsCertificate.h"

#include "ProcessRunner.h"

#include <ctime>
#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace fleetprobe::test
{

namespace
{

ProcessResult runOpenssl(const std::vector<std::string>& argv)
{
    ProcessOptions options;
    options.timeout = std::chrono::milliseconds(60000);
    ProcessResult result = ProcessRunner::run(argv, options);
    if (result.exitCode != 0)
        throw std::runtime_error(ProcessRunner::commandLine(argv) + " failed: " + result.describe());
    return result;
}

} // namespace

TlsCertificate::TlsCertificate(const std::string& directory, const std::string& name,
                               const std::string& commonName, const std::string& altNames, int days)
    : _certificateFile(directory + "/" + name + ".crt"), _keyFile(directory + "/" + name + ".key")
{
    runOpenssl({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", std::to_string(days),
                "-subj", "/CN=" + commonName, "-addext", "subjectAltName=" + altNames, "-keyout", _keyFile,
                "-out", _certificateFile});
    // "notAfter=Dec 22 23:15:25 2026 GMT"
    const ProcessResult end = runOpenssl({"openssl", "x509", "-in", _certificateFile, "-noout", "-enddate"});
    const std::string prefix = "notAfter=";
    const auto at = end.out.find(prefix);
    std::tm tm{};
    if (at != std::string::npos)
    {
        std::istringstream text(end.out.substr(at + prefix.size()));
        text.imbue(std::locale::classic());
        text >> std::get_time(&tm, "%b %d %H:%M:%S %Y");
        if (!text.fail())
            _notAfter = static_cast<double>(timegm(&tm));
    }
    if (_notAfter <= 0)
        throw std::runtime_error("cannot read the notAfter of " + _certificateFile + " from: " + end.out);
}

} // namespace fleetprobe::test
