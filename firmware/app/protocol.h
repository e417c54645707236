/* tinyfake serial protocol, device side (version 2).
 *
 * Every line, both ways:  <text>*<crc32 of text, 8 hex digits>\n
 * Host -> device:         <seq> <sid> <COMMAND> [args]
 * Device -> host:         <seq> <sid> OK [key=value ...]   or   <seq> <sid> ERR <reason>
 * <seq>: the host's decimal command number, echoed; <sid>: the session id
 * (8 hex digits, not 0) the host chose in HELLO, checked on every command.
 * Text is printable ASCII, fields separated by exactly one space: a NUL,
 * another control byte, a stray field or a leading/trailing space is a
 * syntax error. RUN, BENCH, PREP and SELFTEST first answer "<seq> <sid> ACK".
 * A line the device cannot trust (bad CRC, too long, bytes lost to a UART
 * overrun) is answered "<seq> - ERR badcrc|toolong|overrun" (a NACK), with
 * the line's first field as <seq> when it looks like one, else "-".
 * At boot the device sends one "BOOT tinyfake ..." line with the reset reason
 * and the result of its flash check.
 *
 * Binary LOAD (the host's fast path for input bytes; HELLO says loadb=<max>):
 *   0x02, COBS(seq u32, sid u32, offset u32, bytes, CRC-32 of all before), 0x00
 * (integers little-endian). COBS leaves no 0x00 inside, so the 0x00 ends the
 * frame; the device answers as for a text LOAD, NACKs a damaged frame with
 * its seq. A 0x00 outside a frame drops any partial line: the host sends
 * one before each command, ending whatever a damaged frame left behind.
 *
 * Commands (docs/FIRMWARE.md describes them):
 *   HELLO [takeover]       open the session <sid>; refused ("ERR busy") while
 *                          another session is open, unless "takeover". The
 *                          reply has board, firmware, model identity, budgets
 *   BYE                    close the session
 *   LOAD <offset> <hex>    write bytes into the input tensor (an RGB + FFT + LBP
 *                          model: into the RGB face the board makes it from)
 *   RUN <crc>              check the input's CRC-32, run one inference:
 *                          out=<hex> cycles=<n> in_crc=<crc> hash=<model hash>
 *   BENCH <n> <crc>        n (1..TF_BENCH_MAX) timed inferences, stopping early
 *                          after TF_BENCH_MAX_SECONDS: cycles min/max/total
 *   PREP <crc>             RGB + FFT + LBP models: only the channel computation
 *                          (timed): in_crc=<crc of the int8 model input> cycles=
 *   SELFTEST               run the compiled-in input, compare to expected
 *   STAT                   stack high-water mark
 *   EXIT <code>            end the simulation (reset on hardware)
 * Every command but HELLO needs the session: after a reset the device answers
 * "ERR nosession", which is how the host notices the reset; another host's
 * sid gets "ERR notyours". */
#ifndef TF_PROTOCOL_H
#define TF_PROTOCOL_H

#define TF_PROTOCOL_VERSION 2
#define TF_FIRMWARE_VERSION "0.2.0"
#define TF_LINE_MAX 1200          /* LOAD lines carry up to 512 bytes (1024 hex) */
#define TF_LOADB_MAX 1024         /* bytes of one binary LOAD frame (decoded into the line buffer) */
#define TF_FRAME_START 0x02       /* STX: a binary frame follows, up to the next 0x00 */
#define TF_BENCH_MAX 100          /* inferences one BENCH may ask for */
#define TF_BENCH_MAX_SECONDS 5    /* ... and the time they may take (where cycles count) */

void protocol_boot(void);          /* reset the session and line state, send BOOT */
void protocol_feed(char c);        /* one received byte */
void protocol_lost(void);          /* the UART lost bytes (overrun) in this line */

#endif
