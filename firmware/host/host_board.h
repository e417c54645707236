/* The host build of the firmware's protocol (firmware/app/protocol.c): what
 * tests and the fuzzer drive it through. */
#ifndef TF_HOST_BOARD_H
#define TF_HOST_BOARD_H
#include <stddef.h>
#include <stdint.h>

void host_boot(void);                          /* a reset: protocol_boot() */
/* Feed bytes as the UART would; -1, or the code EXIT ended with. */
int host_feed(const char *data, size_t n);
int host_feed_lost(void);                      /* the UART overran here (protocol_lost) */
size_t host_take_output(char *buf, size_t max); /* what the device sent since the last call */
unsigned host_max_invocations(void);           /* most model calls one line caused */
/* flash_damaged: the flash check fails; cycles_per_invoke: the clock. */
void host_configure(int flash_damaged, uint32_t cycles_per_invoke);
#endif
