/* libFuzzer target: the firmware's command parser (the real protocol.c on
 * host_board.c) under AddressSanitizer and UBSan.
 *
 * Input: flags byte, then lines. Flags bit0: the flash check fails; bit1: no
 * session is opened first; bit2: a slow model (a time cap's worth of cycles
 * per call). A line starting with '!' goes out raw (its own CRC, or none);
 * any other line gets its correct CRC appended, so the fuzzer reaches the
 * commands instead of dying at the CRC check.
 *
 * Oracles, besides the sanitizers: every line the device sends is framed
 * with a correct CRC and printable, and no line makes the model run more
 * than TF_BENCH_MAX times (the hang oracle: the work cap holds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "host_board.h"
#include "protocol.h"

static char reply[1 << 20];

static void check_output(void)
{
    size_t n = host_take_output(reply, sizeof reply);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (reply[i] != '\n')
            continue;
        size_t len = i - start;
        const char *ln = reply + start;
        start = i + 1;
        if (len == 0)
            continue;
        if (len < 10 || ln[len - 9] != '*')
            abort();                          /* an unframed line */
        char want[9];
        snprintf(want, sizeof want, "%08x", (unsigned)crc32_update(0, ln, len - 9));
        if (memcmp(want, ln + len - 8, 8))
            abort();                          /* a wrong CRC */
        for (size_t k = 0; k < len; k++)
            if (ln[k] < ' ' || ln[k] > '~')
                abort();                      /* a byte the host would reject */
    }
    if (start != n)
        abort();                              /* an unterminated line */
}

static void send_line(const char *text, size_t n, int raw)
{
    static char buf[2 * TF_LINE_MAX + 32];
    if (n > 2 * TF_LINE_MAX) n = 2 * TF_LINE_MAX;
    memcpy(buf, text, n);
    if (!raw) {
        snprintf(buf + n, 11, "*%08x", (unsigned)crc32_update(0, text, n));
        n += 9;
    }
    buf[n++] = '\n';
    if (host_feed(buf, n) >= 0) {             /* EXIT: the board is gone; boot it again */
        check_output();
        host_boot();
    }
    check_output();
    if (host_max_invocations() > TF_BENCH_MAX)
        abort();                              /* one command did more work than the cap */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    host_configure(flags & 1, flags & 4 ? 480000000u : 1000u);
    host_boot();
    check_output();
    if (!(flags & 2)) {
        static const char hello[] = "1 0000000a HELLO";
        send_line(hello, sizeof hello - 1, 0);
    }
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        if (p < stop && *p == '~')
            host_feed_lost();                 /* an overrun before this line */
        int raw = p < stop && *p == '!';
        send_line(p + raw, (size_t)(stop - p - raw), raw);
        p = stop + 1;
    }
    return 0;
}
