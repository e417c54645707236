/* Cortex-M7 startup shared by every family: vector table, reset handler
 * (.data copy, .bss zeroing, stack painting), fault handlers, DWT.
 * Symbols come from the generated linker script (tinyfake/firmware/linker.py). */
#include <stdint.h>

#include "hal.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __arena_start[], __arena_end[];
extern uint32_t __stack_bottom[], __stack_top[];

#define STACK_PAINT 0xA5A5A5A5u

volatile uint32_t hal_reset_note[2] __attribute__((section(".noinit")));

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
/* A family HAL may take the NMI (MPS2: the watchdog's first expiry). */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* Only the 16 core exceptions: the firmware enables no interrupts. */
__attribute__((section(".isr_vector"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top,
    Reset_Handler,
    NMI_Handler,
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};

#define SCB_VTOR  (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void Reset_Handler(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)vectors;
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: the FPU (-mfloat-abi=hard) */
    __asm volatile("dsb\n isb" ::: "memory");
    hal_early_init();

    uint32_t *src = __data_load, *dst = __data_start;
    while (dst < __data_end) *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end; dst++) *dst = 0;
    for (dst = __arena_start; dst < __arena_end; dst++) *dst = 0;

    /* Paint the unused stack so hal_stack_used() can find the high-water
     * mark; stop short of the live frame. */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (dst = __stack_bottom; dst < sp - 16; dst++) *dst = STACK_PAINT;

    hal_exit(main());
}

uint32_t hal_stack_size(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom);
}

uint32_t hal_stack_used(void)
{
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) p++;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

/* Any fault or unexpected exception: say so on the console, then stop. The
 * host sees "PANIC" instead of a reply and reports it. */
void Default_Handler(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    const char *msg = "\nPANIC exception ";
    while (*msg) hal_putc(*msg++);
    hal_putc((char)('0' + (ipsr / 10) % 10));
    hal_putc((char)('0' + ipsr % 10));
    hal_putc('\n');
    hal_exit(100 + (int)ipsr);
}

/* DWT cycle counter (ARMv7-M debug unit); both families have one. */
#define DEMCR     (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL  (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYC   (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR   (*(volatile uint32_t *)0xE0001FB0u)

void hal_cycle_counter_init(void)
{
    DEMCR |= 1u << 24;       /* TRCENA */
    DWT_LAR = 0xC5ACCE55u;   /* the M7's DWT is write-locked after reset */
    DWT_CYC = 0;
    DWT_CTRL |= 1u;          /* CYCCNTENA */
}

uint32_t hal_cycles(void)
{
    return DWT_CYC;
}

/* L1 caches on (ARMv7-M SCB): invalidate, then enable. Called by the family
 * HALs of parts that have them, once the clocks are up. */
#define SCB_CCR     (*(volatile uint32_t *)0xE000ED14u)
#define SCB_CCSIDR  (*(volatile uint32_t *)0xE000ED80u)
#define SCB_CSSELR  (*(volatile uint32_t *)0xE000ED84u)
#define SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)
#define SCB_DCISW   (*(volatile uint32_t *)0xE000EF60u)

static void dsb_isb(void) { __asm volatile("dsb\n isb" ::: "memory"); }

void hal_caches_on(void)
{
    dsb_isb();
    SCB_ICIALLU = 0;
    dsb_isb();
    SCB_CCR |= 1u << 17;                     /* IC */
    dsb_isb();

    /* Invalidate the whole L1 D-cache by set/way before enabling it. */
    SCB_CSSELR = 0;
    __asm volatile("dsb" ::: "memory");
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu, ways = (ccsidr >> 3) & 0x3FFu;
    for (uint32_t s = 0; s <= sets; s++)
        for (uint32_t w = 0; w <= ways; w++)
            SCB_DCISW = (s << 5) | (w << 30);  /* 32-byte lines, 4 ways (M7) */
    __asm volatile("dsb" ::: "memory");
    SCB_CCR |= 1u << 16;                     /* DC */
    dsb_isb();
}
