#include "engine/MeasurementCatalog.h"

namespace fleetprobe
{

const std::vector<MeasurementKind>& MeasurementCatalog::kinds()
{
    static const std::vector<MeasurementKind> all = {
        {"ping_packets_sent_total", "fleetprobe_ping_packets_sent_total", "ICMP echo requests sent.",
         MetricType::Counter},
        {"ping_packets_received_total", "fleetprobe_ping_packets_received_total",
         "ICMP echo replies received.", MetricType::Counter},
        {"tcp_echo_sent_total", "fleetprobe_tcp_echo_sent_total", "TCP echo frames sent.",
         MetricType::Counter},
        {"tcp_echo_received_total", "fleetprobe_tcp_echo_received_total",
         "TCP echo frames received back (each sequence number counted once).", MetricType::Counter},
        {"tcp_echo_timeouts_total", "fleetprobe_tcp_echo_timeouts_total",
         "TCP echo frames not echoed within the adaptive timeout.", MetricType::Counter},
        {"tcp_echo_reconnects_total", "fleetprobe_tcp_echo_reconnects_total",
         "Connections the TCP echo scraper opened again after losing one.", MetricType::Counter},
        {"tcp_echo_connected", "fleetprobe_tcp_echo_connected",
         "1 while the TCP echo connection is established, else 0.", MetricType::Gauge},
        {"tcp_echo_rto_seconds", "fleetprobe_tcp_echo_rto_seconds",
         "Current retransmission timeout of the TCP echo (RFC 6298, clamped to [0.1, 3] s).",
         MetricType::Gauge},
        {"http_duration_seconds", "fleetprobe_http_duration_seconds",
         "Duration of each phase of the last HTTP request (resolve, connect, tls, first_byte, total).",
         MetricType::Gauge},
        {"http_status_code", "fleetprobe_http_status_code", "HTTP status code of the last request.",
         MetricType::Gauge},
        {"websocket_handshake_seconds", "fleetprobe_websocket_handshake_seconds",
         "Duration of the last WebSocket opening handshake (TCP, TLS and upgrade).", MetricType::Gauge},
        {"websocket_status_code", "fleetprobe_websocket_status_code",
         "HTTP status code of the last WebSocket upgrade answer (101 on success).", MetricType::Gauge},
        {"tls_cert_expiry_timestamp_seconds", "fleetprobe_tls_cert_expiry_timestamp_seconds",
         "Unix time at which the peer's TLS certificate expires.", MetricType::Gauge},
        {"tcp_info_rtt_seconds", "fleetprobe_tcp_info_rtt_seconds",
         "Kernel's smoothed RTT of the probe connection (TCP_INFO tcpi_rtt).", MetricType::Gauge},
        {"tcp_info_rttvar_seconds", "fleetprobe_tcp_info_rttvar_seconds",
         "Kernel's RTT variance of the probe connection (TCP_INFO tcpi_rttvar).", MetricType::Gauge},
        {"tcp_info_retransmits", "fleetprobe_tcp_info_retransmits",
         "Retransmissions of the probe connection so far (TCP_INFO tcpi_total_retrans).", MetricType::Gauge},
        {"tcp_info_snd_cwnd", "fleetprobe_tcp_info_snd_cwnd",
         "Congestion window of the probe connection, in segments (TCP_INFO tcpi_snd_cwnd).",
         MetricType::Gauge},
    };
    return all;
}

const MeasurementKind* MeasurementCatalog::find(const std::string& key)
{
    for (const auto& k : kinds())
        if (key == k.key)
            return &k;
    return nullptr;
}

} // namespace fleetprobe
