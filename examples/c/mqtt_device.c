/* A device's MQTT session with libmosquitto, the way IoT Core devices connect:
 * TLS, client id = the device path, any username, password = the JWT; telemetry to
 * /devices/ID/events, config from /devices/ID/config (QoS 1). */
#define _POSIX_C_SOURCE 200809L
#include "mqtt_device.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct session {
    char config_topic[256];
    char events_topic[256];
    int published;  /* the telemetry PUBACK arrived */
    int configured; /* a config message arrived */
    int failed;     /* CONNACK refused */
};

size_t device_setup(int argc, char **argv, struct device_args *args, uint8_t *key, size_t cap) {
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s HOST PORT CA_FILE PROJECT REGION REGISTRY DEVICE KEY_FILE\n",
                argc > 0 ? argv[0] : "device");
        return 0;
    }
    args->host = argv[1];
    args->port = atoi(argv[2]);
    args->ca_file = argv[3];
    args->project = argv[4];
    args->region = argv[5];
    args->registry = argv[6];
    args->device = argv[7];
    args->key_file = argv[8];
    FILE *f = fopen(args->key_file, "rb");
    if (!f) {
        perror(args->key_file);
        return 0;
    }
    size_t n = fread(key, 1, cap, f);
    int too_big = !feof(f);
    fclose(f);
    if (too_big || n == 0) {
        fprintf(stderr, "%s: empty or over %zu bytes\n", args->key_file, cap);
        return 0;
    }
    return n;
}

static void on_connect(struct mosquitto *m, void *ctx, int rc) {
    struct session *s = ctx;
    if (rc != 0) {
        fprintf(stderr, "connection refused: %s\n", mosquitto_connack_string(rc));
        s->failed = 1;
        return;
    }
    printf("connected\n");
    mosquitto_subscribe(m, NULL, s->config_topic, 1);
    const char *telemetry = "temperature=21.5";
    mosquitto_publish(m, NULL, s->events_topic, (int)strlen(telemetry), telemetry, 1, false);
}

static void on_publish(struct mosquitto *m, void *ctx, int mid) {
    (void)m;
    (void)mid;
    struct session *s = ctx;
    s->published = 1;
    printf("telemetry published\n");
}

static void on_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg) {
    (void)m;
    struct session *s = ctx;
    if (strcmp(msg->topic, s->config_topic) == 0) {
        printf("config: %.*s\n", msg->payloadlen, (const char *)msg->payload);
        s->configured = 1;
    }
}

int device_run(const struct device_args *args, const char *token) {
    char client_id[512];
    struct session s = {0};
    snprintf(client_id, sizeof client_id, "projects/%s/locations/%s/registries/%s/devices/%s",
             args->project, args->region, args->registry, args->device);
    snprintf(s.config_topic, sizeof s.config_topic, "/devices/%s/config", args->device);
    snprintf(s.events_topic, sizeof s.events_topic, "/devices/%s/events/c", args->device);

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(client_id, true, &s);
    if (!m) {
        fprintf(stderr, "mosquitto_new failed\n");
        return 1;
    }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_username_pw_set(m, "unused", token);
    mosquitto_tls_set(m, args->ca_file, NULL, NULL, NULL, NULL);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_message_callback_set(m, on_message);
    int rc = mosquitto_connect(m, args->host, args->port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect: %s\n", mosquitto_strerror(rc));
        mosquitto_destroy(m);
        return 1;
    }
    time_t deadline = time(NULL) + 30;
    while (!(s.published && s.configured) && !s.failed && time(NULL) < deadline) {
        rc = mosquitto_loop(m, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "loop: %s\n", mosquitto_strerror(rc));
            break;
        }
    }
    int ok = s.published && s.configured;
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    if (!ok) {
        fprintf(stderr, "no %s within 30 s\n", s.published ? "config" : "PUBACK");
    }
    return ok ? 0 : 1;
}
