/* The network side shared by both examples (hosted: libmosquitto, POSIX). */
#ifndef MQTT_DEVICE_H
#define MQTT_DEVICE_H

#include <stddef.h>
#include <stdint.h>

/* Where and who the device is: from the command line. */
struct device_args {
    const char *host;
    int port;
    const char *ca_file;
    const char *project;
    const char *region;
    const char *registry;
    const char *device;
    const char *key_file;
};

/* Reads the arguments (or prints the usage) and the key file into `key`; returns
 * the key's length, or 0 on error. */
size_t device_setup(int argc, char **argv, struct device_args *args, uint8_t *key, size_t cap);

/* Connects with `token` as the password, publishes one telemetry event, waits for
 * the device's config and prints it. Returns 0 once both happened within 30 s. */
int device_run(const struct device_args *args, const char *token);

#endif
