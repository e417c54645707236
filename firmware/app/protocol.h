/* tinyfake serial protocol, device side (version 1).
 *
 * Every line, both ways:  <text>*<crc32 of text, 8 hex digits>\n
 * Host -> device:         <seq> <COMMAND> [args]
 * Device -> host:         <seq> OK [key=value ...]   or   <seq> ERR <reason>
 * RUN, BENCH and SELFTEST first answer "<seq> ACK", then OK or ERR.
 * A line that fails its CRC, is too long or cannot be parsed is answered
 * with seq "-". At boot the device sends one "BOOT ..." line.
 *
 * Commands (docs/FIRMWARE.md describes them):
 *   HELLO <sid>            open a session (sid: 8 hex digits, not 0); reply
 *                          has board, firmware, model identity and budgets
 *   LOAD <offset> <hex>    write bytes into the input tensor (an RGB + FFT + LBP
 *                          model: into the RGB face the board makes it from)
 *   RUN <crc>              check the input's CRC-32, run one inference:
 *                          out=<hex> cycles=<n>
 *   BENCH <n> <crc>        n timed inferences: cycles min/max/total
 *   PREP <crc>             RGB + FFT + LBP models: only the channel computation
 *                          (timed): in_crc=<crc of the int8 model input> cycles=
 *   SELFTEST               run the compiled-in input, compare to expected
 *   STAT                   stack high-water mark
 *   EXIT <code>            end the simulation (reset on hardware)
 * Every command but HELLO needs a session: after a reset the device answers
 * "ERR nosession", which is how the host notices the reset. */
#ifndef TF_PROTOCOL_H
#define TF_PROTOCOL_H

#define TF_PROTOCOL_VERSION 1
#define TF_FIRMWARE_VERSION "0.1.0"
#define TF_LINE_MAX 1200   /* LOAD lines carry up to 512 bytes (1024 hex) */

void protocol_boot(void);          /* send the BOOT line */
void protocol_feed(char c);        /* one received byte */

#endif
