"""Drives Tether's HTTP device bridge the way Google's
iot/api-client/http_example/cloudiot_http_example.py did: a PyJWT ES256 token,
`requests` with `authorization: Bearer`, `content-type: application/json` and
`cache-control: no-cache`, urlsafe-base64 `binary_data` (snake_case), and
`GET .../config?local_version=N`. Written for these tests, not copied.

Run by tests/http_bridge_clients.rs with:
  TETHER_BASE_URL  e.g. http://127.0.0.1:1234/v1 or https://localhost:8443/v1
  TETHER_DEVICE    projects/P/locations/L/registries/R/devices/D
  TETHER_PROJECT   the project id (the JWT audience)
  TETHER_KEY       path of the device's private key (PKCS#8 PEM)
  TETHER_BAD_KEY   path of another private key (a token that must be refused)
  TETHER_CA        optional: the CA file for https
Prints one line per check and "N passed, 0 failed" at the end.
"""

import base64
import datetime
import json
import os
import sys

import jwt
import requests

BASE = os.environ["TETHER_BASE_URL"]
DEVICE = os.environ["TETHER_DEVICE"]
PROJECT = os.environ["TETHER_PROJECT"]
VERIFY = os.environ.get("TETHER_CA") or True


def create_jwt(key_path):
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    claims = {"iat": now, "exp": now + datetime.timedelta(minutes=60), "aud": PROJECT}
    with open(key_path, "r") as f:
        private_key = f.read()
    return jwt.encode(claims, private_key, algorithm="ES256")


def headers(token):
    return {
        "authorization": "Bearer {}".format(token),
        "content-type": "application/json",
        "cache-control": "no-cache",
    }


def publish_message(token, message, message_type):
    url = "{}/{}:{}".format(BASE, DEVICE, "setState" if message_type == "state" else "publishEvent")
    msg_bytes = base64.urlsafe_b64encode(message.encode("utf-8"))
    if message_type == "event":
        body = {"binary_data": msg_bytes.decode("ascii")}
    else:
        body = {"state": {"binary_data": msg_bytes.decode("ascii")}}
    return requests.post(url, data=json.dumps(body), headers=headers(token), verify=VERIFY)


def get_config(token, version):
    url = "{}/{}/config?local_version={}".format(BASE, DEVICE, version)
    return requests.get(url, headers=headers(token), verify=VERIFY)


passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   {}".format(name))
    else:
        failed += 1
        print("FAIL {} {}".format(name, detail))


good = create_jwt(os.environ["TETHER_KEY"])
bad = create_jwt(os.environ["TETHER_BAD_KEY"])

resp = publish_message(good, "{}/1-payload".format(DEVICE), "event")
check("publishEvent 200", resp.status_code == 200, resp.text)
check("publishEvent body {}", resp.status_code == 200 and resp.json() == {}, resp.text)

resp = publish_message(good, "state-from-python", "state")
check("setState 200", resp.status_code == 200, resp.text)

resp = get_config(good, 0)
check("getConfig 200", resp.status_code == 200, resp.text)
version = int(resp.json().get("version", "0")) if resp.status_code == 200 else 0
check("getConfig version", version >= 1, resp.text)
check(
    "getConfig data",
    base64.b64decode(resp.json().get("binaryData", "")) == b"py-config",
    resp.text,
)

resp = get_config(good, version + 5)
check("getConfig ahead is OUT_OF_RANGE", resp.status_code == 400 and resp.json()["error"]["status"] == "OUT_OF_RANGE", resp.text)

resp = publish_message(bad, "refused", "event")
check("bad token 401", resp.status_code == 401, resp.text)
check("bad token envelope", resp.json().get("error", {}).get("status") == "UNAUTHENTICATED", resp.text)

print("{} passed, {} failed".format(passed, failed))
sys.exit(1 if failed else 0)
