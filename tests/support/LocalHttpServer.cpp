#include "LocalHttpServer.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <cstdlib>
#include <ostream>

namespace fleetprobe::test
{

namespace
{

using Poco::Net::HTTPRequestHandler;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

/// Answers a fixed status with a short text body (none for HEAD).
class StatusHandler : public HTTPRequestHandler
{
public:
    explicit StatusHandler(int status) : _status(status) {}

    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override
    {
        const std::string body = "status " + std::to_string(_status) + "\n";
        response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(_status));
        response.setContentType("text/plain");
        response.setContentLength(static_cast<std::streamsize>(body.size()));
        response.setKeepAlive(false);
        std::ostream& out = response.send();
        if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_HEAD)
            out << body;
    }

private:
    int _status;
};

/// Answers 302 to /status/200.
class RedirectHandler : public HTTPRequestHandler
{
public:
    void handleRequest(HTTPServerRequest&, HTTPServerResponse& response) override
    {
        response.redirect("/status/200", Poco::Net::HTTPResponse::HTTP_FOUND);
    }
};

/// Upgrades to a WebSocket, echoes frames, answers the client's close frame.
class WebSocketHandler : public HTTPRequestHandler
{
public:
    explicit WebSocketHandler(std::shared_ptr<LocalHttpServer::Counters> counters)
        : _counters(std::move(counters))
    {
    }

    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override
    {
        try
        {
            Poco::Net::WebSocket ws(request, response);
            ++_counters->upgrades;
            ws.setReceiveTimeout(Poco::Timespan(10, 0));
            char buffer[4096];
            for (;;)
            {
                int flags = 0;
                const int n = ws.receiveFrame(buffer, sizeof buffer, flags);
                if ((flags & Poco::Net::WebSocket::FRAME_OP_BITMASK) == Poco::Net::WebSocket::FRAME_OP_CLOSE)
                {
                    ws.sendFrame(buffer, n,
                                 static_cast<int>(Poco::Net::WebSocket::FRAME_FLAG_FIN) |
                                     static_cast<int>(Poco::Net::WebSocket::FRAME_OP_CLOSE));
                    ++_counters->cleanCloses;
                    break;
                }
                if (n == 0 && flags == 0)
                    break; // the client went away without a close frame
                ws.sendFrame(buffer, n, flags);
            }
        }
        catch (const Poco::Net::WebSocketException&)
        {
            if (!response.sent())
            {
                response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
                response.setContentLength(0);
                response.send();
            }
        }
        catch (const Poco::Exception&)
        {
            // the client is gone: nothing to answer
        }
    }

private:
    std::shared_ptr<LocalHttpServer::Counters> _counters;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory
{
public:
    HandlerFactory(bool webSocket, std::shared_ptr<LocalHttpServer::Counters> counters)
        : _webSocket(webSocket), _counters(std::move(counters))
    {
    }

    HTTPRequestHandler* createRequestHandler(const HTTPServerRequest& request) override
    {
        ++_counters->requests;
        const std::string path = Poco::URI(request.getURI()).getPath();
        if (path == "/ws" && _webSocket && Poco::icompare(request.get("Upgrade", ""), "websocket") == 0)
            return new WebSocketHandler(_counters);
        if (path == "/redirect")
            return new RedirectHandler;
        const std::string prefix = "/status/";
        if (path.compare(0, prefix.size(), prefix) == 0)
        {
            const int status = std::atoi(path.c_str() + prefix.size());
            if (status >= 200 && status <= 599)
                return new StatusHandler(status);
        }
        return new StatusHandler(200);
    }

private:
    bool _webSocket;
    std::shared_ptr<LocalHttpServer::Counters> _counters;
};

} // namespace

LocalHttpServer::LocalHttpServer(const Options& options)
    : _options(options), _counters(std::make_shared<Counters>())
{
    const Poco::Net::SocketAddress address(options.address, 0);
    Poco::Net::ServerSocket socket;
    if (!options.certificateFile.empty())
    {
        static const bool sslReady = []
        {
            Poco::Net::initializeSSL();
            return true;
        }();
        (void)sslReady;
        Poco::Net::Context::Ptr context = new Poco::Net::Context(
            Poco::Net::Context::TLS_SERVER_USE, options.keyFile, options.certificateFile, "",
            Poco::Net::Context::VERIFY_NONE, 9, false, "DEFAULT");
        socket = Poco::Net::SecureServerSocket(address, 64, context);
    }
    else
    {
        socket = Poco::Net::ServerSocket(address, 64);
    }
    _port = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(32);
    params->setMaxQueued(256);
    params->setKeepAlive(false);
    params->setTimeout(Poco::Timespan(10, 0));
    _server = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(options.webSocket, _counters),
                                                      socket, params);
    _server->start();
}

LocalHttpServer::~LocalHttpServer()
{
    try
    {
        _server->stopAll(true);
    }
    catch (const Poco::Exception&)
    {
    }
}

std::string LocalHttpServer::url(const std::string& scheme, const std::string& path) const
{
    const std::string host =
        _options.address.find(':') != std::string::npos ? "[" + _options.address + "]" : _options.address;
    return scheme + "://" + host + ":" + std::to_string(_port) + path;
}

} // namespace fleetprobe::test
