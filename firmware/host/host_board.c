/* The board under the real protocol.c, on the host: a UART that records what
 * the device sends, a clock, a counted model call, the flash check's result
 * and EXIT as a longjmp. Used by the parser tests (tests/test_device_parser.py,
 * through ctypes) and the fuzz target (fuzz_protocol.c). */
#include <setjmp.h>
#include <string.h>

#include "flashcheck.h"
#include "hal.h"
#include "host_board.h"
#include "markers.h"
#include "model.h"
#include "protocol.h"
#include "selftest.h"

const char tf_board_name[] = "host";
const char tf_platform_name[] = "host";
const uint32_t tf_board_clock_hz = 480000000u;
char __tf_flash_used[1], __tf_ram_used[1];
const int8_t tf_selftest_expected[MODEL_OUTPUT_BYTES] = {6, 0};

static char out[1 << 20];
static size_t out_len;
static uint32_t clock_now, cycles_per_invoke = 1000;
static int flash_damaged;
static unsigned invocations, max_invocations;
static jmp_buf exit_jump;

void hal_init(void) {}
void hal_early_init(void) {}
void hal_putc(char c) { if (out_len < sizeof out) out[out_len++] = c; }
int hal_getc(void) { return -1; }
uint32_t hal_cycles(void) { return clock_now; }
void hal_exit(int code) { longjmp(exit_jump, code + 1); }
uint32_t hal_stack_used(void) { return 256; }
uint32_t hal_stack_size(void) { return 16384; }
void hal_cycle_counter_init(void) {}
void hal_watchdog_start(void) {}
void hal_watchdog_kick(void) {}
const char *hal_reset_reason(void) { return "power"; }
void tf_mark_begin(void) {}
void tf_mark_end(void) {}
void tf_mark_op(void) {}

uint32_t flash_crc_computed(void) { return flash_damaged ? 0xdeadbeefu : 0x12345678u; }
uint32_t flash_crc_expected(void) { return 0x12345678u; }

/* Output: the byte sum of the input, and the number of calls so far. */
int model_invoke(const int8_t *input, int8_t *output)
{
    int sum = 0;
    for (int i = 0; i < MODEL_INPUT_BYTES; i++) sum += input[i];
    output[0] = (int8_t)sum;
    output[1] = (int8_t)invocations;
    invocations++;
    clock_now += cycles_per_invoke;
    return 0;
}

void host_configure(int damaged, uint32_t cycles)
{
    flash_damaged = damaged;
    cycles_per_invoke = cycles;
}

void host_boot(void)
{
    out_len = 0;
    max_invocations = invocations = 0;
    protocol_boot();
}

int host_feed(const char *data, size_t n)
{
    volatile size_t i = 0;
    int code = setjmp(exit_jump);
    if (code)
        return code - 1;
    for (; i < n; i++) {
        if (data[i] == '\n')
            invocations = 0;                  /* one line, one command */
        protocol_feed(data[i]);
        if (invocations > max_invocations)
            max_invocations = invocations;
    }
    return -1;
}

int host_feed_lost(void)
{
    protocol_lost();
    return -1;
}

size_t host_take_output(char *buf, size_t max)
{
    size_t n = out_len < max ? out_len : max;
    memcpy(buf, out, n);
    out_len = 0;
    return n;
}

unsigned host_max_invocations(void)
{
    return max_invocations;
}
