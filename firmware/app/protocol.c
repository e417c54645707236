/* Device side of the serial protocol: line framing, CRC checks, commands.
 * Replies are written as they are built; the CRC runs alongside. */
#include <stdint.h>
#include <string.h>

#include "crc32.h"
#include "flashcheck.h"
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

/* State that a reset clears (protocol_boot sets it again). */
static uint32_t session;           /* 0: no session */
static uint32_t flash_crc;         /* CRC-32 of the constants in flash, at boot */
static int flash_ok;               /* ... equal to the build's */
static char line[TF_LINE_MAX + 1];
static unsigned line_len;
static int line_overflow, line_lost;
/* A binary LOAD frame being received (TF_FRAME_START ... 0x00, COBS-coded):
 * decoded into line[], line_len bytes so far. */
static int in_frame;
static unsigned cobs_left;         /* bytes left in the current COBS block */
static int cobs_blocks;            /* blocks begun in this frame */
static int cobs_no_zero;           /* the block began with 0xFF: no zero after it */

/* The command being answered: its seq and sid fields, echoed in replies. */
static const char *req_seq = "-", *req_sid = "-";

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

/* "<seq> <sid> <status>" of the command being answered. */
static void reply_begin(const char *status)
{
    reply_crc = 0;
    put(req_seq);
    put_char(' ');
    put(req_sid);
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

static void reply_err(const char *reason)
{
    reply_begin("ERR ");
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

/* Decimal, 1-10 digits, no sign, below 2^32. */
static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    int n = 0;
    for (; *s; s++, n++) {
        if (*s < '0' || *s > '9' || n == 10) return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (n == 0 || v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

/* Exactly 8 hex digits. */
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
    return n == 8;
}

#define MAX_FIELDS 6               /* seq sid COMMAND + at most 3 arguments */

/* Splits `s` in place at single spaces into at most MAX_FIELDS fields;
 * returns their number, or -1 for an empty field (two spaces, a leading or
 * trailing space) or too many fields. */
static int split(char *s, char **field)
{
    int n = 0;
    for (;;) {
        if (*s == ' ' || *s == 0 || n == MAX_FIELDS) return -1;
        field[n++] = s;
        while (*s && *s != ' ') s++;
        if (!*s) return n;
        *s++ = 0;
    }
}

/* ---- commands ---------------------------------------------------------- */

extern char __tf_flash_used[], __tf_ram_used[];  /* from the linker script */

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void cmd_hello(uint32_t sid, char **arg, int nargs)
{
    if (nargs > 1 || (nargs == 1 && strcmp(arg[0], "takeover"))) {
        reply_err("usage: HELLO [takeover]");
        return;
    }
    if (session && session != sid && nargs == 0) {
        reply_err("busy");                    /* another host's session is open */
        return;
    }
    session = sid;
    reply_begin("OK");
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
    key("loadb"); put_u64(TF_LOADB_MAX);   /* binary LOAD frames of up to this many bytes */
    key("bench_max"); put_u64(TF_BENCH_MAX);
#if TFK_INPUT_CHANNELS_FFT_LBP
    key("pre"); put("rgb+fft+lbp");       /* the board makes the input from an RGB face */
    key("scratch"); put_u64(TFK_CHANNEL_SCRATCH_BYTES);
#endif
    key("reset"); put(hal_reset_reason());
    key("flash_crc"); put_hex32(flash_crc);
    key("flash_ok"); put_u64((uint64_t)flash_ok);
    reply_end();
}

static void cmd_load(char **arg, int nargs)
{
    uint32_t off;
    if (nargs != 2 || !parse_u32(arg[0], &off)) {
        reply_err("usage: LOAD <offset> <hex bytes>");
        return;
    }
    const char *hex = arg[1];
    size_t n = strlen(hex);
    if (n % 2 || off > TFK_LOAD_BYTES || n / 2 > TFK_LOAD_BYTES - off) {
        reply_err("LOAD outside the input tensor");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (hexval(hex[i]) < 0) {
            reply_err("LOAD bad hex");        /* nothing written */
            return;
        }
    }
    for (size_t i = 0; i < n / 2; i++)
        loaded[off + i] = (int8_t)((hexval(hex[2 * i]) << 4) | hexval(hex[2 * i + 1]));
    reply_begin("OK");
    reply_end();
}

/* The host sends the CRC of the input it meant to load: an inference only
 * runs on exactly those bytes, whatever happened on the wire. */
static int input_matches(const char *crc_text, uint32_t *crc)
{
    uint32_t want;
    if (!parse_hex32(crc_text, &want)) {
        reply_err("usage: the input CRC is 8 hex digits");
        return 0;
    }
    uint32_t have = crc32_update(0, loaded, TFK_LOAD_BYTES);
    if (have != want) {
        reply_begin("ERR inputcrc have=");
        put_hex32(have);
        reply_end();
        return 0;
    }
    *crc = have;
    return 1;
}

/* Long commands first say "ACK": the host then knows the command arrived
 * and waits for the inference instead of resending. */
static void ack(void)
{
    reply_begin("ACK");
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
    hal_watchdog_kick();
    return rc;
}

static int infer_or_err(const int8_t *in, uint32_t *cycles)
{
    int rc = infer(in, cycles);
    if (rc != 0) {
        reply_begin("ERR invoke status=");
        put_i32(rc);
        reply_end();
    }
    return rc == 0;
}

/* What an inference's reply says it answers: the input and the model. */
static void put_identity(uint32_t in_crc)
{
    key("in_crc"); put_hex32(in_crc);
    key("hash"); put_token(MODEL_HASH);
}

static void cmd_run(char **arg, int nargs)
{
    uint32_t cycles, crc;
    if (nargs != 1) {
        reply_err("usage: RUN <input crc32>");
        return;
    }
    if (!input_matches(arg[0], &crc))
        return;
    ack();
    if (!infer_or_err(loaded, &cycles))
        return;
    reply_begin("OK");
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    key("cycles"); put_u64(cycles);
    put_identity(crc);
    reply_end();
}

/* PREP <crc>: only the input stage (RGB -> R, G, B, FFT, LBP, int8) between
 * the markers, so the host can tell its share of an inference. */
static void cmd_prep(char **arg, int nargs)
{
#if TFK_INPUT_CHANNELS_FFT_LBP
    uint32_t crc;
    if (nargs != 1) {
        reply_err("usage: PREP <input crc32>");
        return;
    }
    if (!input_matches(arg[0], &crc))
        return;
    ack();
    uint32_t t0 = hal_cycles();
    tf_mark_begin();
    int rc = make_input(loaded);
    tf_mark_end();
    uint32_t cycles = hal_cycles() - t0;
    if (rc != 0) {
        reply_begin("ERR prep status=");
        put_i32(rc);
        reply_end();
        return;
    }
    reply_begin("OK");
    key("in_crc"); put_hex32(crc32_update(0, input, MODEL_INPUT_BYTES));
    key("cycles"); put_u64(cycles);
    reply_end();
#else
    (void)arg;
    (void)nargs;
    reply_err("PREP: this model takes its input as loaded");
#endif
}

/* BENCH is bounded twice: at most TF_BENCH_MAX inferences, and it stops
 * early once TF_BENCH_MAX_SECONDS of cycles are spent (capped=1). */
static void cmd_bench(char **arg, int nargs)
{
    uint32_t n, done = 0, cycles, crc, lo = UINT32_MAX, hi = 0;
    uint64_t total = 0;
    const uint64_t budget = (uint64_t)TF_BENCH_MAX_SECONDS * tf_board_clock_hz;
    if (nargs != 2 || !parse_u32(arg[0], &n) || n == 0 || n > TF_BENCH_MAX) {
        reply_err("usage: BENCH <n, 1 to bench_max> <input crc32>");
        return;
    }
    if (!input_matches(arg[1], &crc))
        return;
    ack();
    while (done < n && total < budget) {
        if (!infer_or_err(loaded, &cycles))
            return;
        done++;
        lo = cycles < lo ? cycles : lo;
        hi = cycles > hi ? cycles : hi;
        total += cycles;
    }
    reply_begin("OK");
    key("n"); put_u64(done);
    key("capped"); put_u64(done < n);
    key("cycles_min"); put_u64(lo);
    key("cycles_max"); put_u64(hi);
    key("cycles_total"); put_u64(total);
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    put_identity(crc);
    reply_end();
}

/* The self-test input, made here rather than stored (it would cost flash
 * the size of an input): the LCG the host's oracle used, x = x*1664525 +
 * 1013904223, byte = x >> 24, from x = 1 (tinyfake.firmware.selftest). It
 * replaces what was loaded; the host loads its own input before every RUN,
 * and RUN's input CRC refuses a stale one. */
static void load_selftest_input(void)
{
    uint32_t x = 1;
    for (uint32_t i = 0; i < TFK_LOAD_BYTES; i++) {
        x = x * 1664525u + 1013904223u;
        loaded[i] = (int8_t)(x >> 24);
    }
}

static void cmd_selftest(void)
{
    uint32_t cycles;
    ack();
    load_selftest_input();
    if (!infer_or_err(loaded, &cycles))
        return;
    int same = memcmp(output, tf_selftest_expected, MODEL_OUTPUT_BYTES) == 0;
    reply_begin(same ? "OK" : "ERR selftest mismatch");
    key("out"); put_hex_bytes(output, MODEL_OUTPUT_BYTES);
    key("want"); put_hex_bytes(tf_selftest_expected, MODEL_OUTPUT_BYTES);
    key("cycles"); put_u64(cycles);
    key("hash"); put_token(MODEL_HASH);
    reply_end();
}

static void cmd_stat(void)
{
    reply_begin("OK");
    key("stack_used"); put_u64(hal_stack_used());
    key("stack_size"); put_u64(hal_stack_size());
    reply_end();
}

static void cmd_exit(char **arg, int nargs)
{
    uint32_t code;
    if (nargs != 1 || !parse_u32(arg[0], &code) || code > 255) {
        reply_err("usage: EXIT <code 0-255>");
        return;
    }
    reply_begin("OK");
    reply_end();
    hal_exit((int)code);
}

/* A CRC-valid line of text: "<seq> <sid> <COMMAND> [args]". */
static void handle(char *text, unsigned len)
{
    char *field[MAX_FIELDS];
    uint32_t seqno, sid;
    for (unsigned i = 0; i < len; i++) {
        if (text[i] < ' ' || text[i] > '~') {  /* NUL, control bytes, 8-bit */
            reply_err("syntax");
            return;
        }
    }
    int n = split(text, field);
    if (n < 0 || !parse_u32(field[0], &seqno)) {
        reply_err("syntax");
        return;
    }
    req_seq = field[0];
    if (n < 3 || !parse_hex32(field[1], &sid) || sid == 0) {
        reply_err("syntax");
        return;
    }
    req_sid = field[1];
    const char *cmd = field[2];
    char **arg = field + 3;
    int nargs = n - 3;

    if (!strcmp(cmd, "HELLO")) { cmd_hello(sid, arg, nargs); return; }
    if (!session) { reply_err("nosession"); return; }
    if (sid != session) { reply_err("notyours"); return; }
    if (!strcmp(cmd, "BYE")) {
        if (nargs) { reply_err("usage: BYE"); return; }
        session = 0;
        reply_begin("OK");
        reply_end();
    } else if (!strcmp(cmd, "LOAD")) cmd_load(arg, nargs);
    else if (!strcmp(cmd, "STAT") && nargs == 0) cmd_stat();
    else if (!strcmp(cmd, "EXIT")) cmd_exit(arg, nargs);
    else if (!flash_ok && (!strcmp(cmd, "RUN") || !strcmp(cmd, "BENCH") ||
                           !strcmp(cmd, "PREP") || !strcmp(cmd, "SELFTEST")))
        reply_err("flashcrc");                 /* the weights in flash are not the build's */
    else if (!strcmp(cmd, "RUN")) cmd_run(arg, nargs);
    else if (!strcmp(cmd, "BENCH")) cmd_bench(arg, nargs);
    else if (!strcmp(cmd, "PREP")) cmd_prep(arg, nargs);
    else if (!strcmp(cmd, "SELFTEST") && nargs == 0) cmd_selftest();
#ifdef TF_TEST_HOOKS
    else if (!strcmp(cmd, "HANG") && nargs == 0) {  /* tests: prove the watchdog */
        ack();
        for (;;) {}
    }
#endif
    else reply_err("unknown command");
}

/* The line's first field if it reads as a seq number, else "-": what a
 * NACK names, so the host resends only the command it answers. */
static const char *seq_hint(void)
{
    static char hint[11];
    unsigned n = 0;
    while (n < line_len && n < 10 && line[n] >= '0' && line[n] <= '9') n++;
    if (n == 0 || (n < line_len && line[n] != ' ')) return "-";
    memcpy(hint, line, n);
    hint[n] = 0;
    return hint;
}

static void nack(const char *reason)
{
    req_seq = seq_hint();
    req_sid = "-";
    reply_err(reason);
}

static uint32_t get_u32le(const char *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* A complete binary frame, decoded into line[0..line_len): seq, sid, offset
 * (u32 little-endian each), the bytes, CRC-32 of all that. Answered like a
 * text LOAD; a frame that fails its checks (a cut-short one fails its CRC)
 * is NACKed with its seq when the frame is long enough to carry one (the
 * host resends it). */
static void frame_done(void)
{
    static char seq_text[11], sid_text[9];
    req_seq = req_sid = "-";
    if (line_len >= 4) {              /* as seq_hint: the seq, if the frame carries one */
        char *p = seq_text + sizeof seq_text - 1;
        uint32_t v = get_u32le(line);
        *p = 0;
        do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
        req_seq = p;
    }
    if (line_overflow || line_lost || line_len < 16 ||
        crc32_update(0, line, line_len - 4) != get_u32le(line + line_len - 4)) {
        reply_err(line_overflow ? "toolong" : line_lost ? "overrun" : "badcrc");
        return;
    }
    uint32_t sid = get_u32le(line + 4), off = get_u32le(line + 8);
    unsigned n = line_len - 16;
    for (int s = 28, i = 0; s >= 0; s -= 4) sid_text[i++] = hexdigits[(sid >> s) & 15];
    req_sid = sid_text;               /* (sid_text[8] stays 0: static) */
    if (!session || sid != session) {
        reply_err(session ? "notyours" : "nosession");
        return;
    }
    if (off > TFK_LOAD_BYTES || n > TFK_LOAD_BYTES - off) {
        reply_err("LOAD outside the input tensor");
        return;
    }
    memcpy(loaded + off, line + 12, n);
    reply_begin("OK");
    reply_end();
}

/* One byte of a binary frame: COBS decoding (each block is a length byte,
 * then that many - 1 bytes, then an implied zero unless the length was 0xFF
 * or the frame ends). */
static void frame_feed(uint8_t b)
{
    if (cobs_left == 0) {
        if (cobs_blocks++ && !cobs_no_zero) {   /* the zero that ended the previous block */
            if (line_len < TF_LINE_MAX) line[line_len++] = 0;
            else line_overflow = 1;
        }
        cobs_no_zero = b == 0xFF;
        cobs_left = b - 1u;
        return;
    }
    if (line_len < TF_LINE_MAX) line[line_len++] = (char)b;
    else line_overflow = 1;
    cobs_left--;
}

/* A complete line: check "<text>*<crc>" and dispatch. */
static void line_done(void)
{
    req_seq = req_sid = "-";
    if (line_overflow) { nack("toolong"); return; }
    if (line_lost) { nack("overrun"); return; }
    if (line_len == 0)
        return;                                   /* the host's resync newline */
    unsigned star = line_len;
    while (star > 0 && line[star - 1] != '*') star--;
    uint32_t want;
    line[line_len] = 0;
    if (star == 0 || line_len - star != 8 || !parse_hex32(line + star, &want) ||
        crc32_update(0, line, star - 1) != want) {
        nack("badcrc");
        return;
    }
    line[star - 1] = 0;
    handle(line, star - 1);
}

static void line_reset(void)
{
    line_len = 0;
    line_overflow = line_lost = 0;
    in_frame = 0;
    cobs_left = 0;
    cobs_blocks = 0;
    cobs_no_zero = 0;
}

void protocol_feed(char c)
{
    if (c == 0) {                   /* ends a binary frame; else drops a partial line (resync) */
        if (in_frame)
            frame_done();
        line_reset();
        return;
    }
    if (in_frame) {
        frame_feed((uint8_t)c);
        return;
    }
    if (c == TF_FRAME_START && line_len == 0 && !line_overflow) {
        in_frame = 1;
        return;
    }
    if (c == '\r')
        return;
    if (c == '\n') {
        line_done();
        line_reset();
        return;
    }
    if (line_len < TF_LINE_MAX) line[line_len++] = c;
    else line_overflow = 1;
}

void protocol_lost(void)
{
    line_lost = 1;
}

void protocol_boot(void)
{
    session = 0;
    memset(loaded, 0, TFK_LOAD_BYTES);     /* as after a real reset (.bss) */
    line_reset();
    flash_crc = flash_crc_computed();
    flash_ok = flash_crc == flash_crc_expected();
    req_seq = req_sid = "-";
    hal_putc('\n');               /* end whatever partial line the host has */
    reply_crc = 0;
    put("BOOT tinyfake");
    key("proto"); put_u64(TF_PROTOCOL_VERSION);
    key("fw"); put(TF_FIRMWARE_VERSION);
    key("board"); put_token(tf_board_name);
    key("hash"); put_token(MODEL_HASH);
    key("reset"); put(hal_reset_reason());
    key("flash"); put(flash_ok ? "ok" : "bad");
    reply_end();
}
