/* MPS2 AN500 HAL (QEMU `-M mps2-an500`): CMSDK APB UART0 console, CMSDK APB
 * watchdog, semihosting exit. Nothing to clock: the FPGA image runs at 25 MHz. */
#include <stdint.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0_BASE     0x40004000u
#define UART0_DATA     REG(UART0_BASE + 0x00)
#define UART0_STATE    REG(UART0_BASE + 0x04)  /* bit0 TX full, bit1 RX full, bit3 RX overrun */
#define UART0_CTRL     REG(UART0_BASE + 0x08)  /* bit0 TX enable, bit1 RX enable */
#define UART0_BAUDDIV  REG(UART0_BASE + 0x10)

/* CMSDK APB watchdog, WDOGCLK = 25 MHz. QEMU wires its interrupt (the first
 * expiry) to the NMI. */
#define WDOG_BASE      0x40008000u
#define WDOG_LOAD      REG(WDOG_BASE + 0x00)
#define WDOG_CTRL      REG(WDOG_BASE + 0x08)   /* bit0 INTEN, bit1 RESEN */
#define WDOG_INTCLR    REG(WDOG_BASE + 0x0C)   /* any write: clear and reload */
/* 0.5 s of virtual time: with -icount shift=0 QEMU runs one instruction per
 * ns, so this allows 500 M instructions between kicks (20x the largest
 * inference the budgets allow) and a hang resets in about a second. */
#define WDOG_TICKS     (25000000u / 2u)
#define SCB_AIRCR      REG(0xE000ED0Cu)

/* hal_reset_note (kept across a reset): [0] why the firmware reset itself,
 * [1] whether this RAM held a running image (else: power-on). */
#define NOTE_WATCHDOG  0x57444f47u             /* "WDOG" */
#define NOTE_BOOTED    0x424f4f54u             /* "BOOT" */
#define reset_note     hal_reset_note[0]
#define booted         hal_reset_note[1]
static const char *reset_reason = "power";

void hal_early_init(void) {}

/* The watchdog's first expiry: note why, then reset at once. */
void NMI_Handler(void)
{
    reset_note = NOTE_WATCHDOG;
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2);   /* SYSRESETREQ */
    for (;;) {}
}

void hal_watchdog_start(void)
{
    WDOG_LOAD = WDOG_TICKS;
    WDOG_CTRL = 3u;
}

void hal_watchdog_kick(void)
{
    WDOG_INTCLR = 1u;
}

const char *hal_reset_reason(void)
{
    return reset_reason;
}

void hal_init(void)
{
    if (reset_note == NOTE_WATCHDOG) reset_reason = "watchdog";
    else if (booted == NOTE_BOOTED) reset_reason = "other";   /* e.g. the monitor's system_reset */
    reset_note = 0;
    booted = NOTE_BOOTED;
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
    if (UART0_STATE & 8u) {                   /* RX overrun: bytes were lost */
        UART0_STATE = 8u;
        return HAL_RX_LOST;
    }
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
