/* The smallest program that publishes one message with libiot443 (its size is in
 * BENCHMARKS.md): connects as the configuration says, publishes at QoS 1, waits for PUBACK.
 *
 *   make static && ./publish_one_static iot443.toml sdkTest/sub "hello"
 */
#include "iot443.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFIG TOPIC MESSAGE\n", argv[0]);
        return 2;
    }
    iot443_client *client = NULL;
    int rc = iot443_client_new(argv[1], &client);
    if (rc == IOT443_OK) rc = iot443_connect(client, 20000);
    if (rc == IOT443_OK) rc = iot443_publish(client, argv[2], argv[3], strlen(argv[3]), 1, 20000);
    if (rc == IOT443_OK) rc = iot443_disconnect(client, 20000);
    if (rc != IOT443_OK) fprintf(stderr, "%s: %s\n", iot443_strerror(rc), iot443_last_error());
    iot443_client_free(client);
    return rc == IOT443_OK ? 0 : 1;
}
