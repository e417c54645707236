/* MPS2 AN500 HAL (QEMU `-M mps2-an500`): CMSDK APB UART0 console and
 * semihosting exit. Nothing to clock: the FPGA image runs at 25 MHz. */
#include <stdint.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0_BASE     0x40004000u
#define UART0_DATA     REG(UART0_BASE + 0x00)
#define UART0_STATE    REG(UART0_BASE + 0x04)  /* bit0 TX full, bit1 RX full */
#define UART0_CTRL     REG(UART0_BASE + 0x08)  /* bit0 TX enable, bit1 RX enable */
#define UART0_BAUDDIV  REG(UART0_BASE + 0x10)

void hal_early_init(void) {}

void hal_init(void)
{
    UART0_BAUDDIV = 25000000u / 115200u;      /* QEMU insists on >= 16 */
    UART0_CTRL = 3u;
    hal_cycle_counter_init();                 /* QEMU models no cycle counter: reads 0 */
}

void hal_putc(char c)
{
    while (UART0_STATE & 1u) {}
    UART0_DATA = (uint8_t)c;
}

int hal_getc(void)
{
    if (!(UART0_STATE & 2u))
        return -1;
    return (int)(UART0_DATA & 0xFFu);
}

/* ARM semihosting SYS_EXIT_EXTENDED: QEMU exits with `code`. */
void hal_exit(int code)
{
    uint32_t block[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, (uint32_t)code};
    register uint32_t r0 __asm("r0") = 0x20u;
    register uint32_t r1 __asm("r1") = (uint32_t)(uintptr_t)block;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {}
}
