#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fleetprobe
{

/// What a `modbus` probe asks a device: one read request. Plain data.
struct ModbusRequest
{
    /// The read functions the scraper knows (the Modbus function codes).
    enum class Function : std::uint8_t
    {
        Holding = 3,   ///< read holding registers
        Input = 4,     ///< read input registers
        ServerId = 17, ///< report server id (serial line only in the spec, answered by many TCP devices)
        Identification = 43, ///< encapsulated interface transport, MEI 14: read device identification, basic
    };
    /// How the request travels on the TCP connection.
    enum class Framing
    {
        Tcp, ///< Modbus/TCP: the MBAP header (transaction id, protocol 0, length, unit), no CRC
        Rtu, ///< RTU frames (unit, PDU, CRC-16) carried unchanged on TCP: a modem in transparent mode
    };

    Framing framing = Framing::Tcp;
    std::uint8_t unit = 1;
    Function function = Function::Holding;
    std::uint16_t address = 0; ///< first register (holding, input)
    std::uint16_t count = 1;   ///< registers to read (holding, input), 1-125
};

/// What came back for a request, as far as it was read.
struct ModbusAnswer
{
    enum class Status
    {
        Incomplete, ///< not a whole frame yet: read more
        Answer,     ///< a well-formed answer to the request
        Exception,  ///< a well-formed exception answer (function | 0x80); `exceptionCode` tells which
        Malformed,  ///< not an answer to the request; `detail` tells why
    };
    Status status = Status::Incomplete;
    std::uint8_t exceptionCode = 0;
    std::vector<std::uint16_t> registers; ///< holding/input: the values read, in address order
    std::string detail;                   ///< Malformed: what was wrong; Answer: e.g. the device's identity
    std::size_t frameLength = 0;          ///< bytes of the frame (Answer, Exception)
};

/// The Modbus wire format of the scraper's requests and answers: MBAP (Modbus/TCP) and RTU framing with its
/// CRC-16, the PDUs of the read functions, exception answers. Written here rather than taken from libmodbus,
/// whose framing is private to its blocking per-device contexts (see ModbusScraper.cpp). Pure functions;
/// thread-safe.
class ModbusFrame
{
public:
    /// CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF) of `length` bytes; sent low byte first.
    static std::uint16_t crc16(const std::uint8_t* data, std::size_t length);
    /// The same over a string of bytes.
    static std::uint16_t crc16(const std::string& bytes);

    /// The request PDU: function code and its data.
    static std::string requestPdu(const ModbusRequest& request);

    /// The whole request frame: MBAP header with `transactionId` and the PDU (tcp), or unit, PDU and CRC
    /// (rtu; `transactionId` unused).
    static std::string encode(const ModbusRequest& request, std::uint16_t transactionId);

    /// Judges the bytes received so far (from the start of the answer) against `request`: Incomplete until a
    /// whole frame is there, then Answer, Exception or Malformed. Checks the MBAP transaction id, protocol id
    /// and length (tcp) or the CRC (rtu), the unit, the function and the function's own structure (byte count
    /// = 2 x count for registers, the MEI type and object list of an identification).
    static ModbusAnswer decode(const std::string& bytes, const ModbusRequest& request,
                               std::uint16_t transactionId);

    /// An exception code for logs and details: `exception 2: illegal data address`, or `exception N`.
    static std::string exceptionName(std::uint8_t code);
};

} // namespace fleetprobe
