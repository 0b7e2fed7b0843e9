// The Modbus wire format of the `modbus` scraper (Modbus Application Protocol v1.1b3, Modbus over serial line
// v1.02 for RTU): requests of functions 3, 4, 17 and 43/14, and the judging of an answer as it arrives.
//
// Modbus/TCP: [transaction id][protocol 0][length = 1 + PDU][unit] PDU — a frame's end is known from its
// header. RTU: [unit] PDU [CRC-16 low, high] — there is no length, so the end is known from the PDU itself
// (an exception is 5 bytes; a register, server id or identification answer carries its byte count or object
// lengths), and only then is the CRC checked.
#include "scrapers/modbus/ModbusFrame.h"

#include <cstdio>

namespace fleetprobe
{
namespace
{

/// The largest RTU frame (serial line spec 2.5.1) and Modbus/TCP PDU + unit (MBAP length).
constexpr std::size_t maxRtuFrame = 256;
constexpr std::size_t maxMbapLength = 254;

std::uint8_t byteAt(const std::string& s, std::size_t i)
{
    return static_cast<std::uint8_t>(s[i]);
}

std::string hex(unsigned value, int digits = 2)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%0*X", digits, value);
    return buf;
}

ModbusAnswer malformed(std::string why)
{
    ModbusAnswer a;
    a.status = ModbusAnswer::Status::Malformed;
    a.detail = std::move(why);
    return a;
}

std::uint8_t functionCode(const ModbusRequest& r)
{
    return static_cast<std::uint8_t>(r.function);
}

/// The answer's device identification objects (`pdu` from the MEI type on), or a Malformed answer.
ModbusAnswer identification(const std::string& pdu)
{
    // 0x2B, 0x0E, read device id code, conformity level, more follows, next object id, number of objects.
    if (pdu.size() < 7)
        return malformed("identification answer of " + std::to_string(pdu.size()) +
                         " bytes, shorter than its 7-byte header");
    if (byteAt(pdu, 1) != 0x0E)
        return malformed("MEI type " + hex(byteAt(pdu, 1)) + ", expected 0x0E (read device identification)");
    if (byteAt(pdu, 2) != 0x01)
        return malformed("read device id code " + hex(byteAt(pdu, 2)) + ", expected 0x01 (basic)");
    const unsigned objects = byteAt(pdu, 6);
    std::size_t at = 7;
    std::string names[3];
    for (unsigned k = 0; k < objects; ++k)
    {
        if (at + 2 > pdu.size() || at + 2 + byteAt(pdu, at + 1) > pdu.size())
            return malformed("identification object " + std::to_string(k) + " runs past the answer's end");
        const unsigned id = byteAt(pdu, at);
        const std::size_t length = byteAt(pdu, at + 1);
        if (id < 3)
            names[id] = pdu.substr(at + 2, length);
        at += 2 + length;
    }
    if (at != pdu.size())
        return malformed(std::to_string(pdu.size() - at) + " bytes after the identification objects");
    ModbusAnswer a;
    a.status = ModbusAnswer::Status::Answer;
    a.detail = "vendor \"" + names[0] + "\", product \"" + names[1] + "\", revision \"" + names[2] + "\"";
    return a;
}

/// Judges a whole PDU (function code first) against the request.
ModbusAnswer decodePdu(const std::string& pdu, const ModbusRequest& request)
{
    const std::uint8_t expected = functionCode(request);
    if (pdu.empty())
        return malformed("an empty PDU");
    const std::uint8_t function = byteAt(pdu, 0);
    if (function == (expected | 0x80))
    {
        if (pdu.size() != 2)
            return malformed("exception answer of " + std::to_string(pdu.size()) + " bytes, expected 2");
        ModbusAnswer a;
        a.status = ModbusAnswer::Status::Exception;
        a.exceptionCode = byteAt(pdu, 1);
        a.detail = ModbusFrame::exceptionName(a.exceptionCode);
        return a;
    }
    if (function != expected)
        return malformed("function " + hex(function) + ", expected " + hex(expected));
    if (request.function == ModbusRequest::Function::Identification)
        return identification(pdu);
    if (pdu.size() < 2)
        return malformed("answer without its byte count");
    const std::size_t byteCount = byteAt(pdu, 1);
    if (pdu.size() != 2 + byteCount)
        return malformed("byte count " + std::to_string(byteCount) + " but " +
                         std::to_string(pdu.size() - 2) + " data bytes");
    ModbusAnswer a;
    a.status = ModbusAnswer::Status::Answer;
    if (request.function == ModbusRequest::Function::ServerId)
    {
        if (byteCount == 0)
            return malformed("server id answer without data");
        for (std::size_t i = 2; i < pdu.size(); ++i)
            a.detail += (i == 2 ? "server id " : " ") + hex(byteAt(pdu, i));
        return a;
    }
    if (byteCount != std::size_t{2} * request.count)
        return malformed("byte count " + std::to_string(byteCount) + " for " + std::to_string(request.count) +
                         " registers, expected " + std::to_string(2u * request.count));
    for (std::size_t i = 0; i < request.count; ++i)
        a.registers.push_back(
            static_cast<std::uint16_t>(byteAt(pdu, 2 + 2 * i) << 8 | byteAt(pdu, 3 + 2 * i)));
    return a;
}

/// The length of the RTU frame that starts `bytes` (unit and function already checked), 0 while not known.
std::size_t rtuLength(const std::string& bytes, const ModbusRequest& request)
{
    const std::uint8_t function = byteAt(bytes, 1);
    if (function & 0x80)
        return 5; // unit, function | 0x80, code, CRC
    if (request.function != ModbusRequest::Function::Identification)
        return bytes.size() < 3 ? 0 : 3 + static_cast<std::size_t>(byteAt(bytes, 2)) + 2;
    // unit, 0x2B, 0x0E, code, conformity, more follows, next object id, number of objects, objects, CRC.
    if (bytes.size() < 8)
        return 0;
    const unsigned objects = byteAt(bytes, 7);
    std::size_t at = 8;
    for (unsigned k = 0; k < objects; ++k)
    {
        if (at + 2 > bytes.size())
            return at + 2 > maxRtuFrame ? at + 2 : 0;
        at += 2 + byteAt(bytes, at + 1);
    }
    return at + 2;
}

} // namespace

std::uint16_t ModbusFrame::crc16(const std::uint8_t* data, std::size_t length)
{
    std::uint16_t crc = 0xFFFF;
    for (std::size_t i = 0; i < length; ++i)
    {
        crc ^= data[i];
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 1) ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001)
                            : static_cast<std::uint16_t>(crc >> 1);
    }
    return crc;
}

std::uint16_t ModbusFrame::crc16(const std::string& bytes)
{
    return crc16(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::string ModbusFrame::requestPdu(const ModbusRequest& request)
{
    std::string pdu(1, static_cast<char>(functionCode(request)));
    switch (request.function)
    {
    case ModbusRequest::Function::Holding:
    case ModbusRequest::Function::Input:
        pdu += static_cast<char>(request.address >> 8);
        pdu += static_cast<char>(request.address & 0xFF);
        pdu += static_cast<char>(request.count >> 8);
        pdu += static_cast<char>(request.count & 0xFF);
        break;
    case ModbusRequest::Function::ServerId:
        break;
    case ModbusRequest::Function::Identification:
        pdu += '\x0E'; // MEI type: read device identification
        pdu += '\x01'; // basic: vendor name, product code, revision
        pdu += '\x00'; // from object 0
        break;
    }
    return pdu;
}

std::string ModbusFrame::encode(const ModbusRequest& request, std::uint16_t transactionId)
{
    const std::string pdu = requestPdu(request);
    std::string frame;
    if (request.framing == ModbusRequest::Framing::Tcp)
    {
        const std::size_t length = pdu.size() + 1;
        frame += static_cast<char>(transactionId >> 8);
        frame += static_cast<char>(transactionId & 0xFF);
        frame += '\0';
        frame += '\0';
        frame += static_cast<char>(length >> 8);
        frame += static_cast<char>(length & 0xFF);
        frame += static_cast<char>(request.unit);
        frame += pdu;
        return frame;
    }
    frame += static_cast<char>(request.unit);
    frame += pdu;
    const std::uint16_t crc = crc16(frame);
    frame += static_cast<char>(crc & 0xFF);
    frame += static_cast<char>(crc >> 8);
    return frame;
}

ModbusAnswer ModbusFrame::decode(const std::string& bytes, const ModbusRequest& request,
                                 std::uint16_t transactionId)
{
    ModbusAnswer incomplete;
    if (request.framing == ModbusRequest::Framing::Tcp)
    {
        if (bytes.size() < 7)
            return incomplete;
        const unsigned tid = byteAt(bytes, 0) << 8 | byteAt(bytes, 1);
        const unsigned protocol = byteAt(bytes, 2) << 8 | byteAt(bytes, 3);
        const std::size_t length = byteAt(bytes, 4) << 8 | byteAt(bytes, 5);
        if (protocol != 0)
            return malformed("MBAP protocol id " + std::to_string(protocol) +
                             ", expected 0 (not Modbus/TCP)");
        if (length < 3 || length > maxMbapLength)
            return malformed("MBAP length " + std::to_string(length) + ", expected 3 to 254");
        if (tid != transactionId)
            return malformed("transaction id " + std::to_string(tid) + ", expected " +
                             std::to_string(transactionId));
        if (byteAt(bytes, 6) != request.unit)
            return malformed("unit " + std::to_string(byteAt(bytes, 6)) + ", expected " +
                             std::to_string(request.unit));
        if (bytes.size() < 6 + length)
            return incomplete;
        ModbusAnswer a = decodePdu(bytes.substr(7, length - 1), request);
        a.frameLength = 6 + length;
        return a;
    }

    if (bytes.size() < 2)
        return incomplete;
    if (byteAt(bytes, 0) != request.unit)
        return malformed("unit " + std::to_string(byteAt(bytes, 0)) + ", expected " +
                         std::to_string(request.unit));
    const std::uint8_t function = byteAt(bytes, 1);
    if (function != functionCode(request) && function != (functionCode(request) | 0x80))
        return malformed("function " + hex(function) + ", expected " + hex(functionCode(request)));
    const std::size_t length = rtuLength(bytes, request);
    if (length > maxRtuFrame)
        return malformed("an RTU frame of " + std::to_string(length) + " bytes, longer than 256");
    if (length == 0 || bytes.size() < length)
        return incomplete;
    const std::uint16_t crc = crc16(reinterpret_cast<const std::uint8_t*>(bytes.data()), length - 2);
    const std::uint16_t got =
        static_cast<std::uint16_t>(byteAt(bytes, length - 2) | byteAt(bytes, length - 1) << 8);
    if (crc != got)
        return malformed("CRC " + hex(got, 4) + ", expected " + hex(crc, 4));
    ModbusAnswer a = decodePdu(bytes.substr(1, length - 3), request);
    a.frameLength = length;
    return a;
}

std::string ModbusFrame::exceptionName(std::uint8_t code)
{
    switch (code)
    {
    case 1:
        return "exception 1: illegal function";
    case 2:
        return "exception 2: illegal data address";
    case 3:
        return "exception 3: illegal data value";
    case 4:
        return "exception 4: server device failure";
    case 5:
        return "exception 5: acknowledge";
    case 6:
        return "exception 6: server device busy";
    case 8:
        return "exception 8: memory parity error";
    case 10:
        return "exception 10: gateway path unavailable";
    case 11:
        return "exception 11: gateway target device failed to respond";
    default:
        return "exception " + std::to_string(code);
    }
}

} // namespace fleetprobe
