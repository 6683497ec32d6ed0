/* A minimal IoT Core device in C: mints its token with libtether_device's built-in
 * signer, prints the public key to register, checks its own token, connects to
 * `tether serve` with libmosquitto, publishes telemetry and receives its config.
 *
 * Run with (make; see docs/firmware.md):
 *   ./minimal_device 127.0.0.1 8883 tether-data/ca.pem acme us-central1 fleet dev-1 dev-1.key.pem
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "device_token.h"
#include "mqtt_device.h"
#include "tether_device.h"

int main(int argc, char **argv) {
    struct device_args args;
    uint8_t key[4096];
    size_t key_len = device_setup(argc, argv, &args, key, sizeof key);
    if (key_len == 0) {
        return 2;
    }

    /* What the cloud must hold for this device, printed from the device itself. */
    char pem[TETHER_P256_PUBLIC_PEM_LEN];
    char fingerprint[TETHER_FINGERPRINT_LEN];
    const char *format = NULL;
    tether_status st = device_token_public_key(key, key_len, pem, &format, fingerprint);
    if (st != TETHER_OK) {
        fprintf(stderr, "key: %s\n", tether_status_name(st));
        return 1;
    }
    printf("register as %s (%s):\n%s", format, fingerprint, pem);

    char token[TETHER_JWT_ES256_MAX_LEN];
    uint64_t now = (uint64_t)time(NULL);
    st = device_token_mint(key, key_len, args.project, now, token);
    memset(key, 0, sizeof key);
    if (st != TETHER_OK) {
        fprintf(stderr, "mint: %s\n", tether_status_name(st));
        return 1;
    }

    /* Would the server accept it? The same checks as `tether jwt diagnose`. */
    char findings[TETHER_CHECK_TEXT_LEN];
    tether_check_options opts = {.project_id = args.project, .now = (int64_t)now, .now_known = true};
    tether_check_result result;
    st = tether_jwt_check(token, strlen(token), (const uint8_t *)pem, strlen(pem), &opts, findings,
                          sizeof findings, &result);
    printf("self-check: %s, %u error(s)\n%s", tether_status_name(st), (unsigned)result.errors, findings);
    if (st != TETHER_OK) {
        return 1;
    }
    return device_run(&args, token);
}
