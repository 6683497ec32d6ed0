#!/usr/bin/env python3
"""An MQTT 5 device on paho-mqtt 2.x (MQTTv5, callback API version 2), against
`tether serve`: the JWT as Authentication Data under Authentication Method 'jwt',
config and commands at QoS 1, telemetry at QoS 1. With --expect-refusal it reports
the CONNACK's reason code and Reason String instead.

Driven by crates/tether-server/tests/mqtt5_clients.rs; prints one JSON object per
line. paho-mqtt 2.x is installed apart from the 1.x that Google's sample uses
(.ci/run puts it in target/python-paho2 and the test sets PYTHONPATH).
"""

import argparse
import json
import ssl
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def report(**fields):
    print(json.dumps(fields), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--device-id", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--expect-refusal", action="store_true")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()

    done = threading.Event()
    got = {"config": False, "command": False, "puback": False}
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        protocol=mqtt.MQTTv5,
    )
    client.tls_set(ca_certs=args.ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    props = Properties(PacketTypes.CONNECT)
    props.AuthenticationMethod = "jwt"
    props.AuthenticationData = args.token.encode()

    def on_connect(c, userdata, flags, reason_code, properties):
        reason_string = getattr(properties, "ReasonString", None) if properties else None
        method = getattr(properties, "AuthenticationMethod", None) if properties else None
        report(event="connack", code=reason_code.value, name=str(reason_code),
               reason_string=reason_string, auth_method=method)
        if reason_code.is_failure:
            done.set()
            return
        c.subscribe([(f"/devices/{args.device_id}/config", 1),
                     (f"/devices/{args.device_id}/commands/#", 1)])

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        report(event="suback", codes=[r.value for r in reason_codes])
        info = c.publish(f"/devices/{args.device_id}/events", b"hello from paho v5", qos=1)
        report(event="publishing", mid=info.mid)

    def on_publish(c, userdata, mid, reason_code, properties):
        got["puback"] = True
        report(event="puback", mid=mid, code=reason_code.value)
        check()

    def on_message(c, userdata, msg):
        kind = "command" if "/commands" in msg.topic else "config"
        got[kind] = True
        report(event=kind, topic=msg.topic, payload=msg.payload.decode(errors="replace"),
               qos=msg.qos)
        check()

    def on_disconnect(c, userdata, flags, reason_code, properties):
        reason_string = getattr(properties, "ReasonString", None) if properties else None
        report(event="disconnect", code=reason_code.value, reason_string=reason_string)
        done.set()

    def check():
        if all(got.values()):
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    try:
        client.connect(args.host, args.port, keepalive=60, properties=props)
    except Exception as e:  # noqa: BLE001 - reported to the test
        report(event="error", error=repr(e))
        return 2
    client.loop_start()
    finished = done.wait(args.timeout)
    client.disconnect()
    client.loop_stop()
    if not finished:
        report(event="timeout", got=got)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
