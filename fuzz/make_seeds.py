#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-*: the inputs the crates'
tests use (MQTT 3.1.1 vectors, tokens for the JWT tests' keys, OpenSSL-made keys
as in tether-keys' interop tests, the format-1 log fixtures) plus format-2
segments. Needs python3 with PyJWT and cryptography (.ci/requirements.txt) and
openssl, and google-cloud-iot for the admin API's protobuf seeds. Deterministic except
for signatures and OpenSSL-generated keys.

    python3 fuzz/make_seeds.py
"""

import base64
import json
import pathlib
import struct
import subprocess
import tempfile
import zlib

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
NOW = 1_790_000_000  # tests/common: 2026-09-21T14:13:20Z


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


# --- MQTT (tether-mqtt tests/vectors.rs) -----------------------------------------

def remaining(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + remaining(len(body)) + body


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(b)) + b


def mqtt():
    iot = packet(0x10, s("MQTT") + bytes([4, 0b1100_0010, 0, 60]) + s("dev") + s("unused") + s("jwt"))
    will = packet(0x10, s("MQTT") + bytes([4, 0b0010_1110, 0, 10]) + s("c") + s("/will") + s("bye"))
    quirk = packet(0x10, s("MQTT") + bytes([4, 0b0100_0010, 0, 0]) + s("") + s("password"))
    seeds = {
        "connect-iot-core": iot,
        "connect-will": will,
        "connect-password-only": quirk,
        "connack": packet(0x20, bytes([1, 0])),
        "connack-refused": packet(0x20, bytes([0, 5])),
        "publish-qos0": packet(0x30, s("/devices/dev/events") + b"payload"),
        "publish-qos1-retain": packet(0x33, s("/devices/dev/state") + b"\x00\x07" + b"state"),
        "publish-qos2-dup": packet(0x3C, s("a/b") + b"\x12\x34" + bytes(range(40))),
        "puback": packet(0x40, b"\x00\x07"),
        "pubrec": packet(0x50, b"\x00\x07"),
        "pubrel": packet(0x62, b"\x00\x07"),
        "pubcomp": packet(0x70, b"\x00\x07"),
        "subscribe": packet(0x82, b"\x00\x07" + s("/devices/dev/config") + b"\x01"
                            + s("/devices/dev/commands/#") + b"\x00" + s("+/x") + b"\x02"),
        "suback": packet(0x90, b"\x00\x07" + bytes([0, 1, 2, 0x80])),
        "unsubscribe": packet(0xA2, b"\x00\x07" + s("/devices/dev/config") + s("#")),
        "unsuback": packet(0xB0, b"\x00\x07"),
        "pingreq": packet(0xC0, b""),
        "pingresp": packet(0xD0, b""),
        "disconnect": packet(0xE0, b""),
        "publish-large-length": packet(0x30, s("t") + bytes(200)),
    }
    seeds["stream"] = iot + seeds["subscribe"] + seeds["publish-qos1-retain"] + seeds["pingreq"]
    for name, data in seeds.items():
        # The first byte is the target's options: 0 = tolerant, no size limit.
        put("mqtt_decode", name, b"\x00" + data)
    put("mqtt_decode", "connect-strict-small-max", bytes([0x03 | (16 << 2)]) + quirk)


def props(*pairs):
    body = b"".join(pairs)
    return remaining(len(body)) + body


def mqtt5():
    connect = packet(0x10, s("MQTT") + bytes([5, 0b0000_0010, 0, 60])
                     + props(b"\x15" + s("jwt"), b"\x16" + s("token"), b"\x21\x00\x10")
                     + s("dev"))
    seeds = {
        "connect-jwt": connect,
        "connack": packet(0x20, bytes([0, 0]) + props(b"\x24\x01", b"\x25\x00", b"\x22\x00\x10")),
        "connack-refused": packet(0x20, bytes([0, 0x87]) + props(b"\x1f" + s("the JWT expired"))),
        "publish-alias": packet(0x32, s("/devices/dev/events") + b"\x00\x07" + props(b"\x23\x00\x01") + b"x"),
        "publish-by-alias": packet(0x30, s("") + props(b"\x23\x00\x01") + b"y"),
        "publish-user": packet(0x30, s("/a") + props(b"\x26" + s("k") + s("v"), b"\x01\x01") + b"z"),
        "puback-short": packet(0x40, b"\x00\x07"),
        "puback-reason": packet(0x40, b"\x00\x07\x10" + props(b"\x1f" + s("none"))),
        "subscribe": packet(0x82, b"\x00\x07" + props() + s("/devices/dev/config") + b"\x01"),
        "suback": packet(0x90, b"\x00\x07" + props() + bytes([1, 0x87])),
        "unsubscribe": packet(0xA2, b"\x00\x07" + props() + s("/a")),
        "unsuback": packet(0xB0, b"\x00\x07" + props() + bytes([0])),
        "disconnect": packet(0xE0, b""),
        "disconnect-reason": packet(0xE0, b"\x8e" + props(b"\x1f" + s("taken over"))),
        "auth-reauth": packet(0xF0, b"\x19" + props(b"\x15" + s("jwt"), b"\x16" + s("token2"))),
        "pingreq": packet(0xC0, b""),
    }
    for name, data in seeds.items():
        # The first byte is the target's options: 0 = a 1 MiB maximum.
        put("mqtt5_decode", name, b"\x00" + data)


# --- JWT (tether-jwt tests/common) ---------------------------------------------

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwts():
    es = ec.derive_private_key(int.from_bytes(b"\x07" * 32, "big"), ec.SECP256R1())
    rsa_der = (ROOT / "crates/tether-jwt/tests/data/rsa2048-pkcs8.der").read_bytes()
    rsa = serialization.load_der_private_key(rsa_der, None)
    claims = {"aud": "acme", "iat": NOW - 60, "exp": NOW + 3540}
    es_token = jwt.encode(claims, es, algorithm="ES256")
    rs_token = jwt.encode(claims, rsa, algorithm="RS256")
    h, c, sig = es_token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    r, s_ = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    der_sig = encode_dss_signature(r, s_)
    seeds = {
        "es256": es_token,
        "rs256": rs_token,
        "es256-padded": f"{h}=.{c}.{sig}",
        "es256-der-signature": f"{h}.{c}.{b64(der_sig)}",
        "es256-standard-alphabet": es_token.replace("-", "+").replace("_", "/"),
        "expired": jwt.encode({"aud": "acme", "iat": NOW - 90_000, "exp": NOW - 86_400}, es, algorithm="ES256"),
        "wrong-aud-list": jwt.encode({"aud": ["acme", "x"], "iat": NOW, "exp": NOW + 60}, es, algorithm="ES256"),
        "hs256": jwt.encode(claims, "secret", algorithm="HS256"),
        "alg-none": f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(json.dumps(claims).encode())}.",
        "bearer-quoted": f'Bearer "{es_token}"',
        "two-segments": f"{h}.{c}",
        "bad-json": b64(b'{"alg":') + f".{c}.{sig}",
    }
    for name, token in seeds.items():
        put("jwt_decode", name, token)
        put("jwt_diagnose", name, token)


# --- Keys (tether-keys tests/openssl_interop.rs, tether-jwt tests/data) -------

def keys():
    with tempfile.TemporaryDirectory() as d:
        def ossl(*args):
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

        def read(name):
            return (pathlib.Path(d) / name).read_bytes()

        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem")
        ossl("pkey", "-in", "ec.pem", "-outform", "DER", "-out", "ec.der")
        ossl("ec", "-in", "ec.pem", "-out", "sec1.pem")
        ossl("ecparam", "-name", "prime256v1", "-genkey", "-out", "ecparam.pem")
        ossl("pkey", "-in", "ec.pem", "-pubout", "-out", "pub.pem")
        ossl("pkey", "-in", "ec.pem", "-pubout", "-outform", "DER", "-out", "pub.der")
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-out", "p384.pem")
        ossl("pkey", "-in", "pub.pem", "-pubin", "-outform", "DER", "-out", "pub.der")
        ossl("req", "-new", "-x509", "-key", "ec.pem", "-subj", "/CN=dev-1", "-days", "365", "-out", "cert.pem")
        ossl("x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der")
        ossl("req", "-new", "-key", "ec.pem", "-subj", "/CN=dev-1", "-out", "csr.pem")
        ossl("pkcs8", "-topk8", "-in", "ec.pem", "-passout", "pass:x", "-out", "enc.pem")
        ossl("genpkey", "-algorithm", "ED25519", "-out", "ed.pem")
        rsa_der = (ROOT / "crates/tether-jwt/tests/data/rsa2048-pkcs8.der").read_bytes()
        (pathlib.Path(d) / "rsa.der").write_bytes(rsa_der)
        ossl("pkey", "-in", "rsa.der", "-inform", "DER", "-out", "rsa.pem")
        ossl("rsa", "-in", "rsa.der", "-inform", "DER", "-traditional", "-out", "rsa1.pem")
        ossl("rsa", "-in", "rsa.der", "-inform", "DER", "-RSAPublicKey_out", "-out", "rsapub1.pem")
        ossl("pkey", "-in", "rsa.der", "-inform", "DER", "-pubout", "-outform", "DER", "-out", "rsapub.der")
        files = {
            "ec-pkcs8.pem": read("ec.pem"), "ec-pkcs8.der": read("ec.der"), "ec-sec1.pem": read("sec1.pem"),
            "ec-with-params.pem": read("ecparam.pem"), "ec-spki.pem": read("pub.pem"),
            "ec-spki.der": read("pub.der"), "p384.pem": read("p384.pem"), "cert.pem": read("cert.pem"),
            "cert.der": read("cert.der"), "csr.pem": read("csr.pem"), "encrypted.pem": read("enc.pem"),
            "ed25519.pem": read("ed.pem"), "rsa-pkcs8.der": rsa_der, "rsa-pkcs8.pem": read("rsa.pem"),
            "rsa-pkcs1.pem": read("rsa1.pem"), "rsa-pkcs1-public.pem": read("rsapub1.pem"),
            "rsa-spki.der": read("rsapub.der"),
            "rsa-pkcs1.der": (ROOT / "crates/tether-jwt/tests/data/rfc7515-a2-rsa-private-pkcs1.der").read_bytes(),
        }
    ec_key = serialization.load_der_private_key(files["ec-pkcs8.der"], None)
    scalar = ec_key.private_numbers().private_value.to_bytes(32, "big")
    point = ec_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    files["raw-scalar"] = scalar
    files["raw-point-65"] = point
    files["raw-point-64"] = point[1:]
    files["hex-scalar"] = (", ".join(f"0x{b:02x}" for b in scalar) + "\n").encode()
    files["compressed-point"] = bytes([2]) + point[1:33]
    for name, data in files.items():
        put("keys_parse", name, data)
        put("pem_der", name, data)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    put("pem_der", "ecdsa-der-sig", encode_dss_signature(2**255 + 1, 7))


# --- Telemetry log (tether-log tests/fixtures, record/v2.rs) ------------------

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n):
    return ((n << 1) ^ (n >> 63)) & (2**64 - 1)


def v2_frame(body):
    return varint(len(body)) + struct.pack("<I", zlib.crc32(body)) + body


def text(code, value):
    return bytes([code]) + varint(len(value)) + value


def v2_segment():
    t0 = 1_764_000_000_000_000
    full = (varint(6) + text(1, b"dev-1") + bytes([0x40 | 2]) + varint(2_800_000_000_001)
            + text(3, b"fleet") + text(4, b"europe-west1") + text(5, b"acme") + text(6, b""))
    recs = [
        # block start, kind 1 (new set), offset 0
        bytes([0b011]) + varint(0) + varint(zigzag(t0)) + full + b"payload",
        # kind 0: set 0 again, time delta +500
        bytes([0b000]) + varint(1) + varint(zigzag(500)) + varint(0) + b"second",
        # kind 2: from set 0, change subFolder, remove projectId, a custom name
        bytes([0b100]) + varint(2) + varint(zigzag(-100)) + varint(0) + varint(3)
        + text(6, b"a/b") + bytes([0x80 | 5]) + bytes([0]) + varint(6) + b"custom" + varint(1) + b"x" + b"",
        # a new block: kind 1 with no attributes
        bytes([0b011]) + varint(3) + varint(zigzag(-1)) + varint(0) + bytes([0, 255]),
    ]
    header = b"\xfftlg\x02\x00\x00\x00"
    return header + b"".join(v2_frame(r) for r in recs)


def logs():
    seg = v2_segment()
    # The first byte is the target's mode: 0 = CRCs fixed up, base offset 0;
    # 1 = CRCs as they are.
    put("log_record", "v2", b"\x00" + seg)
    put("log_record", "v2-crc-as-is", b"\x01" + seg)
    put("log_record", "v2-torn", b"\x00" + seg[:-3])
    put("log_record", "v2-header-only", b"\x00" + seg[:8])
    fixtures = ROOT / "crates/tether-log/tests/fixtures/v1/telemetry"
    for i, f in enumerate(sorted(fixtures.glob("*/00000000000000000000.log"))):
        put("log_record", f"v1-{i}", b"\x01" + f.read_bytes())
    # Mode 39: CRCs as they are, base offset 39 >> 3 = 4 (the file's name).
    put("log_record", "v1-base-4", bytes([39]) + sorted(fixtures.glob("*/*.log"))[1].read_bytes())


# --- Admin API readers (tether-server api/json, and gRPC through api/grpc) --------

def api():
    # The first byte selects: 0 = a JSON body, 1 = a protobuf Device, 2 = a protobuf
    # DeviceRegistry, 3 = a field mask and a query string.
    from google.cloud.iot_v1 import types
    key = ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENxuJLM8nEPdT/SC96SPSF74qVxnA\n"
           "1oY9t0KduDT1ohy3Ig/5G1Nj3dCnmklowwSfFMJxUA02ZE4rYHkbZSxYag==\n-----END PUBLIC KEY-----\n")
    bodies = {
        "device": {"id": "dev-1", "credentials": [{"publicKey": {"format": "ES256_PEM", "key": key},
                   "expirationTime": "2030-01-01T00:00:00Z"}], "metadata": {"site": "north"},
                   "logLevel": "DEBUG", "blocked": True,
                   "gatewayConfig": {"gatewayType": "GATEWAY", "gatewayAuthMethod": 1}},
        "device-snake": {"id": "dev-2", "config": {"version": "0", "binary_data": "-_8"},
                         "log_level": 30, "numId": "123"},
        "registry": {"id": "fleet", "eventNotificationConfigs": [
                         {"subfolderMatches": "alerts", "pubsubTopicName": "projects/p/topics/a"},
                         {"pubsubTopicName": "projects/p/topics/all"}],
                     "stateNotificationConfig": {"pubsubTopicName": "projects/p/topics/s"},
                     "mqttConfig": {"mqttEnabledState": "MQTT_ENABLED"},
                     "httpConfig": {"httpEnabledState": 2}, "logLevel": "INFO"},
    }
    for name, body in bodies.items():
        put("api_json", f"json-{name}", b"\x00" + json.dumps(body).encode())
    device = types.Device(
        id="dev-1", num_id=42, blocked=True, log_level=types.LogLevel.INFO,
        metadata={"site": "north"},
        credentials=[types.DeviceCredential(public_key=types.PublicKeyCredential(
            format=types.PublicKeyFormat.ES256_PEM, key=key))],
        config=types.DeviceConfig(version=3, binary_data=b"cfg"),
        gateway_config=types.GatewayConfig(gateway_type=types.GatewayType.GATEWAY))
    put("api_json", "proto-device", b"\x01" + types.Device.serialize(device))
    registry = types.DeviceRegistry(
        id="fleet", log_level=types.LogLevel.ERROR,
        event_notification_configs=[types.EventNotificationConfig(
            subfolder_matches="alerts", pubsub_topic_name="projects/p/topics/a")],
        mqtt_config=types.MqttConfig(mqtt_enabled_state=types.MqttState.MQTT_DISABLED))
    put("api_json", "proto-registry", b"\x02" + types.DeviceRegistry.serialize(registry))
    put("api_json", "mask-query", b"\x03blocked,gatewayConfig.gatewayType&pageSize=3&deviceIds=a")


mqtt()
mqtt5()
jwts()
keys()
logs()
api()
total = sum(p.stat().st_size for p in CORPUS.rglob("seed-*"))
print(f"{sum(1 for _ in CORPUS.rglob('seed-*'))} seeds, {total} bytes")
