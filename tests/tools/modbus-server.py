#!/usr/bin/python3
"""Modbus servers for the integration tests, made with pymodbus (Debian python3-pymodbus), not with fleetprobe's
own framing: each entry of the JSON spec file is one server on its own loopback address.

    modbus-server.py SPEC.json READY_FILE

SPEC.json: [{"address": "127.0.0.51", "port": 1502, "unit": 3, "framing": "tcp" | "rtu",
             "holding": [1234, 5678], "input": [11, 22], "backlog": 20}, ...]
Register N of `holding` is holding register N (zero-based, `zero_mode`); reading past the list is answered with
exception 2 (illegal data address). "rtu" serves RTU frames (CRC-16) over TCP (ModbusRtuFramer), as a GPRS
modem in transparent mode carries them. Device identification: vendor "fleetprobe-test", product "PM-<unit>",
revision "1.0". `backlog` (default 20, pymodbus's) is the listen queue: scripts/bench's one server for thousands of
meters (address 0.0.0.0) needs more. READY_FILE is written once every server listens; SIGTERM stops them all.
Run it with Debian's /usr/bin/python3: another python3 on PATH has no pymodbus.
"""
import asyncio
import json
import signal
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.server.async_io import ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer


async def main(spec_file, ready_file):
    with open(spec_file) as f:
        spec = json.load(f)
    servers = []
    for s in spec:
        slave = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, s.get("holding", [0])),
                                   ir=ModbusSequentialDataBlock(0, s.get("input", [0])), zero_mode=True)
        context = ModbusServerContext(slaves={s["unit"]: slave}, single=False)
        identity = ModbusDeviceIdentification(info_name={"VendorName": "fleetprobe-test",
                                                         "ProductCode": "PM-%d" % s["unit"],
                                                         "MajorMinorRevision": "1.0"})
        framer = ModbusRtuFramer if s.get("framing") == "rtu" else ModbusSocketFramer
        server = ModbusTcpServer(context, framer=framer, identity=identity, address=(s["address"], s["port"]),
                                 allow_reuse_address=True, backlog=s.get("backlog", 20))
        asyncio.ensure_future(server.serve_forever())
        await server.serving
        servers.append(server)
    with open(ready_file, "w") as f:
        f.write("".join("%s:%d\n" % (s["address"], s["port"]) for s in spec))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
