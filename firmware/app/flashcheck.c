#include "flashcheck.h"

#include "crc32.h"

extern const char __tf_rodata_start[], __tf_rodata_end[];  /* from the linker script */

/* Patched after linking (tinyfake.firmware.build): volatile, so the compiler
 * reads the patched word instead of folding this placeholder. */
__attribute__((section(".tf_check"), used))
const volatile uint32_t tf_flash_crc_expected = 0xFFFFFFFFu;

uint32_t flash_crc_computed(void)
{
    return crc32_update(0, __tf_rodata_start, (size_t)(__tf_rodata_end - __tf_rodata_start));
}

uint32_t flash_crc_expected(void)
{
    return tf_flash_crc_expected;
}
