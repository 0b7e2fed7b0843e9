#pragma once

#include <string>

namespace fleetprobe::test
{

/// A self-signed certificate and its private key, made by the openssl CLI (`openssl req -x509 -newkey
/// rsa:2048 -nodes`) for the TLS servers of the tests. Both files live in a directory of the test.
class TlsCertificate
{
public:
    /// Writes `<name>.crt` and `<name>.key` into `directory`: subject `/CN=<commonName>`, subjectAltName
    /// `altNames` (openssl syntax, e.g. "IP:127.0.0.1"), valid for `days`. Throws std::runtime_error with
    /// openssl's message when it fails.
    TlsCertificate(const std::string& directory, const std::string& name,
                   const std::string& commonName = "127.0.0.1", const std::string& altNames = "IP:127.0.0.1",
                   int days = 30);

    /// The certificate (PEM); usable as a CA file, since it signs itself.
    const std::string& certificateFile() const { return _certificateFile; }

    /// The unencrypted private key (PEM).
    const std::string& keyFile() const { return _keyFile; }

    /// The certificate's notAfter as Unix time, as `openssl x509 -enddate` prints it.
    double notAfter() const { return _notAfter; }

private:
    std::string _certificateFile;
    std::string _keyFile;
    double _notAfter = 0;
};

} // namespace fleetprobe::test
