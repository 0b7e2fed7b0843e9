#include "HttpGet.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

namespace fleetprobe::test
{

std::pair<int, std::string> httpGet(int port, const std::string& pathAndQuery)
{
    try
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(30, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, pathAndQuery,
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        std::string body;
        Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
        return {static_cast<int>(response.getStatus()), body};
    }
    catch (const std::exception& e)
    {
        return {0, e.what()};
    }
}

std::string probePath(const std::vector<std::pair<std::string, std::string>>& parameters)
{
    std::string query;
    for (const auto& [name, value] : parameters)
    {
        std::string encoded;
        Poco::URI::encode(value, "&=+?#/:[]", encoded);
        query += (query.empty() ? "?" : "&") + name + "=" + encoded;
    }
    return "/probe" + query;
}

} // namespace fleetprobe::test
