/* The flash check at boot: is what is in flash the image the build made?
 *
 * CRC-32 (the link's own, crc32.c) over the image's .rodata: the weights and
 * every other constant the model reads. The build computes the same CRC from
 * the linked ELF and writes it into the section .tf_check (after .rodata, so
 * not covered by it). CRC-32 rather than SHA-256: the threat is corruption
 * (a worn or half-written flash, a bad programming run), which CRC-32 catches
 * (every burst up to 32 bits, and any other error with probability
 * 1 - 2^-32); an attacker who can write flash can rewrite the check too, so a
 * cryptographic hash would buy nothing here and cost code and boot time. */
#ifndef TF_FLASHCHECK_H
#define TF_FLASHCHECK_H
#include <stdint.h>

uint32_t flash_crc_computed(void);  /* of the .rodata in flash now */
uint32_t flash_crc_expected(void);  /* what the build wrote into .tf_check */

#endif
