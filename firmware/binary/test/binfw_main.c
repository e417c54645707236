/* Runner of the compiled-model / FFT-LBP device check (see binfw.h).
 *
 * UART lines, one per kernel run, in order:
 *   RUN <pair> <case> <kernel> ok crc=<crc32 of the output>
 *   RUN <pair> <case> <kernel> MISMATCH at=<index> got=<v> want=<v> crc=<...>
 * <pair> numbers the tf_mark_begin/tf_mark_end pairs around each kernel call
 * (pair 0 is empty: the marker overhead), so the instruction-count plugin's
 * lines map to kernels. Last line: `DONE runs=<n> failed=<n>`; the exit code
 * is 0 only when nothing failed. */
#include <stddef.h>
#include <stdint.h>

#include "../channels.h"
#include "binfw.h"
#include "crc32.h"
#include "hal.h"
#include "markers.h"

static int pair;
static int runs, failed;

static void puts_(const char *s)
{
    while (*s) hal_putc(*s++);
}

static void putu(uint32_t v)
{
    char buf[11];
    int i = 0;
    do { buf[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) hal_putc(buf[--i]);
}

static void puti(int32_t v)
{
    if (v < 0) { hal_putc('-'); putu((uint32_t)(-(int64_t)v)); }
    else putu((uint32_t)v);
}

static void puthex(uint32_t v)
{
    for (int i = 7; i >= 0; i--) hal_putc("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

static void fill(void *p, uint8_t v, uint32_t n)
{
    uint8_t *b = p;
    for (uint32_t i = 0; i < n; i++) b[i] = v;
}

/* Compare n bytes; report the first differing element (size `elem` bytes). */
static void check(const binfw_case *c, const char *kernel, const void *got, const void *want,
                  uint32_t n, int elem, int is_signed)
{
    const uint8_t *g = got, *w = want;
    uint32_t at = n;
    for (uint32_t i = 0; i < n; i++)
        if (g[i] != w[i]) { at = i; break; }
    runs++;
    puts_("RUN ");
    putu((uint32_t)pair);
    hal_putc(' ');
    puts_(c->name);
    hal_putc(' ');
    puts_(kernel);
    if (at == n) {
        puts_(" ok");
    } else {
        failed++;
        uint32_t e = at / (uint32_t)elem;
        int32_t gv, wv;
        if (elem == 4) {
            gv = (int32_t)((const uint32_t *)got)[e];
            wv = (int32_t)((const uint32_t *)want)[e];
        } else if (is_signed) {
            gv = ((const int8_t *)got)[e];
            wv = ((const int8_t *)want)[e];
        } else {
            gv = g[e];
            wv = w[e];
        }
        puts_(" MISMATCH at=");
        putu(e);
        puts_(" got=");
        if (elem == 4) puthex((uint32_t)gv); else puti(gv);
        puts_(" want=");
        if (elem == 4) puthex((uint32_t)wv); else puti(wv);
    }
    puts_(" crc=");
    puthex(crc32_update(0, got, n));
    hal_putc('\n');
}

static void run_channels(const binfw_case *c)
{
    const uint32_t n2 = (uint32_t)(c->n * c->n);
    fill(binfw_out, 0x5A, 5 * n2);
    pair++;
    tf_mark_begin();
    int rc = tfkc_channels(c->rgb, c->n, binfw_scratch64, binfw_grey, (uint8_t *)binfw_out);
    tf_mark_end();
    if (rc != 0) {
        runs++;
        failed++;
        puts_("RUN ");
        putu((uint32_t)pair);
        hal_putc(' ');
        puts_(c->name);
        puts_(" channels ERROR rc=");
        puti(rc);
        hal_putc('\n');
        return;
    }
    check(c, "channels", binfw_out, c->want5, 5 * n2, 1, 0);
}

static void run_int8(const binfw_case *c)
{
    fill(binfw_out, 0x5A, (uint32_t)c->out_bytes);
    pair++;
    tf_mark_begin();
    c->invoke(c->x, binfw_out);
    tf_mark_end();
    check(c, "int8", binfw_out, c->want, (uint32_t)c->out_bytes, 1, 1);
}

int main(void)
{
    hal_init();
    puts_("BINFW cases=");
    putu((uint32_t)binfw_n_cases);
    hal_putc('\n');
    tf_mark_begin();   /* pair 0: the markers alone */
    tf_mark_end();
    for (int i = 0; i < binfw_n_cases; i++) {
        const binfw_case *c = &binfw_cases[i];
        switch (c->kind) {
        case BINFW_CHANNELS: run_channels(c); break;
        case BINFW_INT8: run_int8(c); break;
        default:
            runs++;
            failed++;
            puts_("RUN - ");
            puts_(c->name);
            puts_(" unknown-kind\n");
        }
    }
    puts_("DONE runs=");
    putu((uint32_t)runs);
    puts_(" failed=");
    putu((uint32_t)failed);
    hal_putc('\n');
    return failed ? 1 : 0;
}
