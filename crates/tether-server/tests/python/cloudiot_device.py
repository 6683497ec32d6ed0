#!/usr/bin/env python3
"""A device written the way Google's published IoT Core sample did it
(python-docs-samples iot/api-client/mqtt_example/cloudiot_mqtt_example.py):
paho-mqtt 1.x, PyJWT, username 'unused', the JWT as password, TLS 1.2 with a CA file,
config subscribed at QoS 1 and commands at QoS 0, telemetry published at QoS 1.

Only the host name, port and CA file differ from what it sent to mqtt.googleapis.com.
Driven by crates/tether-server/tests/mqtt_paho.rs; prints one JSON object per line.

Run with: python3 cloudiot_device.py --help
"""

import argparse
import datetime
import json
import ssl
import sys
import threading
import time

import jwt
import paho.mqtt.client as mqtt


def report(**fields):
    print(json.dumps(fields), flush=True)


def create_jwt(project_id, private_key_file, algorithm, audience=None):
    """As the sample: iat now, exp in 20 minutes, aud the project id."""
    token = {
        "iat": datetime.datetime.now(tz=datetime.timezone.utc),
        "exp": datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(minutes=20),
        "aud": audience or project_id,
    }
    with open(private_key_file, "r") as f:
        private_key = f.read()
    return jwt.encode(token, private_key, algorithm=algorithm)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project_id", required=True)
    parser.add_argument("--cloud_region", required=True)
    parser.add_argument("--registry_id", required=True)
    parser.add_argument("--device_id", required=True)
    parser.add_argument("--private_key_file", required=True)
    parser.add_argument("--algorithm", choices=("RS256", "ES256"), default="ES256")
    parser.add_argument("--ca_certs", required=True)
    parser.add_argument("--mqtt_bridge_hostname", default="localhost")
    parser.add_argument("--mqtt_bridge_port", type=int, default=8883)
    parser.add_argument("--num_messages", type=int, default=3)
    parser.add_argument("--audience", help="override aud (to provoke a refusal)")
    parser.add_argument("--wait_command", action="store_true")
    args = parser.parse_args()

    client_id = "projects/{}/locations/{}/registries/{}/devices/{}".format(
        args.project_id, args.cloud_region, args.registry_id, args.device_id
    )
    client = mqtt.Client(client_id=client_id)
    client.username_pw_set(
        username="unused",
        password=create_jwt(args.project_id, args.private_key_file, args.algorithm, args.audience),
    )
    client.tls_set(ca_certs=args.ca_certs, tls_version=ssl.PROTOCOL_TLSv1_2)

    connected = threading.Event()
    config_seen = threading.Event()
    command_seen = threading.Event()
    published = []

    def on_connect(unused_client, unused_userdata, unused_flags, rc):
        report(event="connect", rc=rc, text=mqtt.connack_string(rc))
        connected.set()

    def on_disconnect(unused_client, unused_userdata, rc):
        report(event="disconnect", rc=rc)

    def on_publish(unused_client, unused_userdata, mid):
        published.append(mid)

    def on_message(unused_client, unused_userdata, message):
        report(
            event="message",
            topic=message.topic,
            payload=message.payload.decode("utf-8", "replace"),
            qos=message.qos,
        )
        if message.topic.endswith("/config"):
            config_seen.set()
        elif "/commands" in message.topic:
            command_seen.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    client.on_message = on_message

    client.connect(args.mqtt_bridge_hostname, args.mqtt_bridge_port)
    client.loop_start()
    if not connected.wait(10):
        report(event="error", what="no CONNACK")
        return 2
    # A refused connection ends here, like the sample's error_str(rc) message.
    time.sleep(0.2)
    if not client.is_connected():
        client.loop_stop()
        return 1

    client.subscribe("/devices/{}/config".format(args.device_id), qos=1)
    client.subscribe("/devices/{}/commands/#".format(args.device_id), qos=0)
    if not config_seen.wait(10):
        report(event="error", what="no config")
        return 3

    for i in range(1, args.num_messages + 1):
        payload = "{}/{}-payload-{}".format(args.registry_id, args.device_id, i)
        info = client.publish("/devices/{}/events".format(args.device_id), payload, qos=1)
        info.wait_for_publish()
    state = client.publish("/devices/{}/state".format(args.device_id), "state-ok", qos=1)
    state.wait_for_publish()
    report(event="published", count=len(published))

    if args.wait_command:
        report(event="waiting_for_command")
        if not command_seen.wait(10):
            report(event="error", what="no command")
            return 4

    client.disconnect()
    client.loop_stop()
    report(event="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
