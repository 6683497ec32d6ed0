#!/usr/bin/env python3
"""Google's Pub/Sub client against `tether serve --pubsub-tls-addr`: TLS with the
gateway's CA (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH), the admin token as an OAuth bearer
token, as a backend on another host would connect. Driven by
crates/tether-cli/tests/it/pubsub_e2e.rs; exits 0 when every check holds."""

import os

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1
from google.oauth2.credentials import Credentials

ENDPOINT = os.environ["PUBSUB_TLS_ENDPOINT"]
TOPIC = "projects/acme/topics/telemetry"


def client(credentials):
    return pubsub_v1.SubscriberClient(
        credentials=credentials, client_options={"api_endpoint": ENDPOINT})


good = client(Credentials(token=os.environ["ADMIN_TOKEN"]))
created = good.create_subscription(name="projects/acme/subscriptions/remote", topic=TOPIC)
assert created.topic == TOPIC, created
names = [s.name for s in good.list_subscriptions(project="projects/acme")]
assert names == ["projects/acme/subscriptions/remote"], names

try:
    client(Credentials(token="not-the-admin-token")).get_subscription(
        subscription="projects/acme/subscriptions/remote")
    raise AssertionError("a wrong token was accepted")
except exceptions.Unauthenticated as e:
    # gRPC answers credentials it does not accept with UNAUTHENTICATED, as Google does.
    assert "admin token is not valid" in e.message, e.message

try:
    client(AnonymousCredentials()).get_subscription(
        subscription="projects/acme/subscriptions/remote")
    raise AssertionError("no token was accepted")
except exceptions.Unauthenticated as e:
    assert "needs the admin token" in e.message, e.message
print("ok")
