/* The same device with its key in a (simulated) hardware engine that signs digests
 * and returns DER signatures: the library hashes for it and converts DER to r||s.
 *
 * Run with (make; see docs/firmware.md):
 *   ./der_signer_device 127.0.0.1 8883 tether-data/ca.pem acme us-central1 fleet dev-1 dev-1.key.pem
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "der_engine.h"
#include "mqtt_device.h"
#include "tether_device.h"

int main(int argc, char **argv) {
    struct device_args args;
    uint8_t key[4096];
    size_t key_len = device_setup(argc, argv, &args, key, sizeof key);
    if (key_len == 0) {
        return 2;
    }
    static struct der_engine engine;
    tether_status st = der_engine_load(&engine, key, key_len);
    memset(key, 0, sizeof key);
    if (st != TETHER_OK) {
        fprintf(stderr, "engine key: %s\n", tether_status_name(st));
        return 1;
    }
    char token[TETHER_JWT_ES256_MAX_LEN];
    st = der_engine_mint(&engine, args.project, (uint64_t)time(NULL), token);
    if (st != TETHER_OK) {
        fprintf(stderr, "mint: %s\n", tether_status_name(st));
        return 1;
    }
    printf("minted with the DER engine (%u signature)\n", engine.signatures);
    return device_run(&args, token);
}
