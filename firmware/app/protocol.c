/* Device side of the serial protocol: line framing, CRC checks, commands.
 * Replies are written as they are built; the CRC runs alongside. */
#include <stdint.h>
#include <string.h>

#include "crc32.h"
#include "hal.h"
#include "markers.h"
#include "model.h"
#include "protocol.h"
#include "selftest.h"
#include "tf_input.h"

#if TFK_INPUT_CHANNELS_FFT_LBP
#include "channels.h"
/* RGB + FFT + LBP model: the host loads the uint8 RGB face (n x n x 3); the
 * board computes R, G, B, FFT, LBP into the model's int8 input before each
 * inference (tf_input.h). The channel scratch overlays the model's arena,
 * which is free until model_invoke (the linker script sizes it). */
static int8_t loaded[TFK_LOAD_BYTES] __attribute__((aligned(16)));
static int8_t input[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
extern char __tf_scratch_start[];

static int make_input(const int8_t *rgb)
{
    const int n = TFK_RGB_SIZE;
    int64_t *fft = (int64_t *)(void *)__tf_scratch_start;
    uint8_t *grey = (uint8_t *)(fft + 2 * n * n);
    if (tfkc_channels((const uint8_t *)rgb, n, fft, grey, (uint8_t *)input))
        return -100;
    uint8_t *b = (uint8_t *)input;
    for (int i = 0; i < MODEL_INPUT_BYTES; i++)
#if TFK_INPUT_OFFSET_128
        b[i] ^= 0x80u;                      /* int8 = byte - 128 */
#else
        b[i] = (uint8_t)tfk_input_lut[b[i]];
#endif
    return 0;
}
#else
/* The input tensor the host loads; the model only reads it. */
static int8_t input[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
#define loaded input
#endif
static int8_t output[MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint32_t session;           /* 0 after every reset: no session */

static char line[TF_LINE_MAX + 1];
static unsigned line_len;
static int line_overflow;

/* ---- reply writer ------------------------------------------------------ */

static uint32_t reply_crc;

static void put(const char *s)
{
    size_t n = strlen(s);
    reply_crc = crc32_update(reply_crc, s, n);
    while (n--) hal_putc(*s++);
}

static void put_char(char c)
{
    reply_crc = crc32_update(reply_crc, &c, 1);
    hal_putc(c);
}

static void put_u64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put(&buf[i]);
}

static void put_i32(int32_t v)
{
    if (v < 0) { put_char('-'); put_u64((uint64_t)(-(int64_t)v)); }
    else put_u64((uint64_t)v);
}

static const char hexdigits[] = "0123456789abcdef";

static void put_hex32(uint32_t v)
{
    for (int s = 28; s >= 0; s -= 4) put_char(hexdigits[(v >> s) & 15]);
}

static void put_hex_bytes(const int8_t *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        put_char(hexdigits[((uint8_t)p[i]) >> 4]);
        put_char(hexdigits[((uint8_t)p[i]) & 15]);
    }
}

/* " key=" */
static void key(const char *k)
{
    put_char(' ');
    put(k);
    put_char('=');
}

/* Free text (the model name) as one token: no spaces or framing chars. */
static void put_token(const char *s)
{
    for (; *s; s++) put_char((*s <= ' ' || *s == '*' || *s == '=' || *s > '~') ? '_' : *s);
}

static void reply_begin(const char *seq, const char *status)
{
    reply_crc = 0;
    put(seq);
    put_char(' ');
    put(status);
}

static void reply_end(void)
{
    hal_putc('*');
    uint32_t crc = reply_crc;
    for (int s = 28; s >= 0; s -= 4) hal_putc(hexdigits[(crc >> s) & 15]);
    hal_putc('\n');
}

static void reply_err(const char *seq, const char *reason)
{
    reply_begin(seq, "ERR ");
    put(reason);
    reply_end();
}

/* ---- parsing ----------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_u32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    if (!*s) return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 429496728u) return 0;
        v = v * 10 + (uint32_t)(*s - '0');
    }
    *out = v;
    return 1;
}

static int parse_hex32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;
    for (; *s; s++, n++) {
        int d = hexval(*s);
        if (d < 0 || n == 8) return 0;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return n > 0;
}

/* Splits `s` in place at spaces; returns the number of tokens. */
static int split(char *s, char **tok, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ') *s++ = 0;
        if (!*s) break;
        tok[n++] = s;
        while (*s && *s != ' ') s++;
    }
    return n;
}

/* ---- commands ---------------------------------------------------------- */

extern char __tf_flash_used[], __tf_ram_used[];  /* from the linker script */

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void cmd_hello(const char *seq, char **arg, int nargs)
{
    uint32_t sid;
    if (nargs != 1 || !parse_hex32(arg[0], &sid) || sid == 0) {
        reply_err(seq, "usage: HELLO <sid, 8 hex digits, not 0>");
        return;
    }
    session = sid;
    reply_begin(seq, "OK");
    key("proto"); put_u64(TF_PROTOCOL_VERSION);
    key("fw"); put(TF_FIRMWARE_VERSION);
    key("board"); put_token(tf_board_name);
    key("platform"); put_token(tf_platform_name);
    key("clock"); put_u64(tf_board_clock_hz);
    key("model"); put_token(MODEL_NAME);
    key("hash"); put_token(MODEL_HASH);
    key("in"); put_u64(MODEL_INPUT_H); put_char('x'); put_u64(MODEL_INPUT_W);
    put_char('x'); put_u64(MODEL_INPUT_C);
    key("in_bytes"); put_u64(MODEL_INPUT_BYTES);
    key("out_bytes"); put_u64(MODEL_OUTPUT_BYTES);
    key("in_scale"); put_hex32(float_bits((float)(MODEL_INPUT_SCALE)));
    key("in_zp"); put_i32(MODEL_INPUT_ZERO_POINT);
    key("out_scale"); put_hex32(float_bits((float)(MODEL_OUTPUT_SCALE)));
    key("out_zp"); put_i32(MODEL_OUTPUT_ZERO_POINT);
    key("arena"); put_u64(MODEL_ARENA_BYTES);
    key("weights"); put_u64(MODEL_WEIGHT_BYTES);
    key("macs"); put_u64((uint64_t)(MODEL_MACS));
    key("ops"); put_u64(MODEL_NUM_OPS);
    key("flash"); put_u64((uintptr_t)__tf_flash_used);
    key("ram"); put_u64((uintptr_t)__tf_ram_used);
    key("stack"); put_u64(hal_stack_size());
    key("line_max"); put_u64(TF_LINE_MAX);
    key("load_bytes"); put_u64(TFK_LOAD_BYTES);
#if TFK_INPUT_CHANNELS_FFT_LBP
    key("pre"); put("rgb+fft+lbp");       /* the board makes the input from an RGB face */
    key("scratch"); put_u64(TFK_CHANNEL_SCRATCH_BYTES);
#endif
    key("sid"); put_hex32(session);
    reply_end();
}

static void cmd_load(const char *seq, char **arg, int nargs)
{
    uint32_t off;
    if (nargs != 2 || !parse_u32(arg[0], &off)) {
        reply_err(seq, "usage: LOAD <offset> <hex bytes>");
        return;
    }
    const char *hex = arg[1];
    size_t n = strlen(hex);
    if (n % 2 || off > TFK_LOAD_BYTES || n / 2 > TFK_LOAD_BYTES - off) {
        reply_err(seq, "LOAD outside the input tensor");
        return;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            reply_err(seq, "LOAD bad hex");
            return;
        }
        loaded[off + i] = (int8_t)((hi << 4) | lo);
    }
    reply_begin(seq, "OK");
    reply_end();
}

/* The host sends the CRC of the input it meant to load: an inference only
 * runs on exactly those bytes, whatever happened on the wire. */
static int input_matches(const char *seq, const char *crc_text)
{
    uint32_t want;
    if (!parse_hex32(crc_text, &want)) {
        reply_err(seq, "bad input CRC argument");
        return 0;
    }
    uint32_t have = crc32_update(0, loaded, TFK_LOAD_BYTES);
    if (have != want) {
        reply_begin(seq, "ERR inputcrc have=");
        put_hex32(have);
        reply_end();
        return 0;
    }
    return 1;
}

/* Long commands first say "<seq> ACK": the host then knows the command
 * arrived and waits for the inference instead of resending. */
static void ack(const char *seq)
{
    reply_begin(seq, "ACK");
    reply_end();
}

/* One inference on what the host loaded (`in`: TFK_LOAD_BYTES). The
 * markers (and cycles) cover everything from those bytes to the output: for
 * an RGB + FFT + LBP model the channel computation too (PREP counts it alone). */
static int infer(const int8_t *in, uint32_t *cycles)
{
    uint32_t t0 = hal_cycles();
    tf_mark_begin();
#if TFK_INPUT_CHANNELS_FFT_LBP
    int rc = make_input(in);
    if (rc == 0)
        rc = model_invoke(input, output);
#else
    int rc = model_invoke(in, output);
#endif
    tf_mark_end();
    *cycles = hal_cycles() - t0;
    return rc;
}

static int infer_or_err(const char *seq, const int8_t *in, uint32_t *cycles)
{
    int rc = infer(in, cycles);
    if (rc != 0) {
        reply_begin(seq, "ERR invoke status=");
        put_i32(rc);
        reply_end();
    }
    return rc == 0;
}

static void cmd_run(const char *seq, char **arg, int nargs)
{
    uint32_t cycles;
    if (nargs != 1) {
        reply_err(seq, "usage: RUN <input crc32>");
        return;
    }
    if (!input_matches(seq, arg[0]))
        return;
    ack(seq);
    if (!infer_or_err(seq, loaded, &cycles))
        return;
    reply_begin(seq, "OK");
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    key("cycles"); put_u64(cycles);
    reply_end();
}

/* PREP <crc>: only the input stage (RGB -> R, G, B, FFT, LBP, int8) between
 * the markers, so the host can tell its share of an inference. */
static void cmd_prep(const char *seq, char **arg, int nargs)
{
#if TFK_INPUT_CHANNELS_FFT_LBP
    if (nargs != 1) {
        reply_err(seq, "usage: PREP <input crc32>");
        return;
    }
    if (!input_matches(seq, arg[0]))
        return;
    ack(seq);
    uint32_t t0 = hal_cycles();
    tf_mark_begin();
    int rc = make_input(loaded);
    tf_mark_end();
    uint32_t cycles = hal_cycles() - t0;
    if (rc != 0) {
        reply_begin(seq, "ERR prep status=");
        put_i32(rc);
        reply_end();
        return;
    }
    reply_begin(seq, "OK");
    key("in_crc"); put_hex32(crc32_update(0, input, MODEL_INPUT_BYTES));
    key("cycles"); put_u64(cycles);
    reply_end();
#else
    (void)arg;
    (void)nargs;
    reply_err(seq, "PREP: this model takes its input as loaded");
#endif
}

static void cmd_bench(const char *seq, char **arg, int nargs)
{
    uint32_t n, cycles, lo = UINT32_MAX, hi = 0;
    uint64_t total = 0;
    if (nargs != 2 || !parse_u32(arg[0], &n) || n == 0) {
        reply_err(seq, "usage: BENCH <n> <input crc32>");
        return;
    }
    if (!input_matches(seq, arg[1]))
        return;
    ack(seq);
    for (uint32_t i = 0; i < n; i++) {
        if (!infer_or_err(seq, loaded, &cycles))
            return;
        lo = cycles < lo ? cycles : lo;
        hi = cycles > hi ? cycles : hi;
        total += cycles;
    }
    reply_begin(seq, "OK");
    key("n"); put_u64(n);
    key("cycles_min"); put_u64(lo);
    key("cycles_max"); put_u64(hi);
    key("cycles_total"); put_u64(total);
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    reply_end();
}

static void cmd_selftest(const char *seq)
{
    uint32_t cycles;
    ack(seq);
    if (!infer_or_err(seq, tf_selftest_input, &cycles))
        return;
    int same = memcmp(output, tf_selftest_expected, MODEL_OUTPUT_BYTES) == 0;
    reply_begin(seq, same ? "OK" : "ERR selftest mismatch");
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    key("want"); put_hex_bytes(tf_selftest_expected, MODEL_OUTPUT_BYTES);
    key("cycles"); put_u64(cycles);
    reply_end();
}

static void cmd_stat(const char *seq)
{
    reply_begin(seq, "OK");
    key("stack_used"); put_u64(hal_stack_used());
    key("stack_size"); put_u64(hal_stack_size());
    reply_end();
}

static void handle(char *text)
{
    char *tok[4];
    int n = split(text, tok, 4);
    uint32_t seqno;
    if (n < 2 || !parse_u32(tok[0], &seqno)) {
        reply_err("-", "syntax");
        return;
    }
    const char *seq = tok[0], *cmd = tok[1];
    char **arg = tok + 2;
    int nargs = n - 2;

    if (!strcmp(cmd, "HELLO")) { cmd_hello(seq, arg, nargs); return; }
    if (!session) { reply_err(seq, "nosession"); return; }
    if (!strcmp(cmd, "LOAD")) cmd_load(seq, arg, nargs);
    else if (!strcmp(cmd, "RUN")) cmd_run(seq, arg, nargs);
    else if (!strcmp(cmd, "BENCH")) cmd_bench(seq, arg, nargs);
    else if (!strcmp(cmd, "PREP")) cmd_prep(seq, arg, nargs);
    else if (!strcmp(cmd, "SELFTEST")) cmd_selftest(seq);
    else if (!strcmp(cmd, "STAT")) cmd_stat(seq);
    else if (!strcmp(cmd, "EXIT")) {
        uint32_t code = 0;
        if (nargs == 1) parse_u32(arg[0], &code);
        reply_begin(seq, "OK");
        reply_end();
        hal_exit((int)code);
    } else reply_err(seq, "unknown command");
}

/* A complete line: check "<text>*<crc>" and dispatch. */
static void line_done(void)
{
    line[line_len] = 0;
    if (line_overflow) {
        reply_err("-", "toolong");
        return;
    }
    if (line_len == 0)
        return;                                   /* the host's resync newline */
    char *star = strrchr(line, '*');
    uint32_t want;
    if (!star || strlen(star + 1) != 8 || !parse_hex32(star + 1, &want) ||
        crc32_update(0, line, (size_t)(star - line)) != want) {
        reply_err("-", "badcrc");
        return;
    }
    *star = 0;
    handle(line);
}

void protocol_feed(char c)
{
    if (c == '\r')
        return;
    if (c == '\n') {
        line_done();
        line_len = 0;
        line_overflow = 0;
        return;
    }
    if (line_len < TF_LINE_MAX) line[line_len++] = c;
    else line_overflow = 1;
}

void protocol_boot(void)
{
    hal_putc('\n');               /* end whatever partial line the host has */
    reply_begin("BOOT", "tinyfake");
    key("proto"); put_u64(TF_PROTOCOL_VERSION);
    key("fw"); put(TF_FIRMWARE_VERSION);
    key("board"); put_token(tf_board_name);
    key("hash"); put_token(MODEL_HASH);
    reply_end();
}
