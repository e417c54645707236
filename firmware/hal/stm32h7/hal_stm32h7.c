/* STM32H7 HAL: supply, voltage scale, PLL1 clock tree, caches, console UART,
 * IWDG1, and on boards with [qspi] the QSPI NOR flash memory-mapped at
 * 0x90000000 (where such a board keeps its weights). One source for the
 * family; what differs between boards comes from the board file as
 * TF_CLOCK_* / TF_CONSOLE_* / TF_QSPI_* defines (tinyfake/firmware/build.py),
 * what differs between dies from TF_PART_* (the reference manual: RM0433
 * H742/743/750/753, RM0399 H745/747/755/757, RM0468 H723/725/730/733/735,
 * RM0455 H7A3/B3/B0). Register addresses and bits from those manuals; no
 * vendor HAL is needed for this little. */
#include <stdint.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#if !defined(TF_PART_RM0433) && !defined(TF_PART_RM0399) && !defined(TF_PART_RM0468) \
    && !defined(TF_PART_RM0455)
#error "board file: part must be one of rm0433, rm0399, rm0468, rm0455"
#endif

/* RCC (same offsets on all four dies; RM0455 calls D1/D2/D3CFGR CDCFGR1/2, SRDCFGR) */
#define RCC_BASE      0x58024400u
#define RCC_CR        REG(RCC_BASE + 0x00)
#define RCC_CFGR      REG(RCC_BASE + 0x10)
#define RCC_D1CFGR    REG(RCC_BASE + 0x18)
#define RCC_D2CFGR    REG(RCC_BASE + 0x1C)
#define RCC_D3CFGR    REG(RCC_BASE + 0x20)
#define RCC_PLLCKSELR REG(RCC_BASE + 0x28)
#define RCC_PLLCFGR   REG(RCC_BASE + 0x2C)
#define RCC_PLL1DIVR  REG(RCC_BASE + 0x30)
#define RCC_RSR       REG(RCC_BASE + 0xD0)
#define RCC_AHB3ENR   REG(RCC_BASE + 0xD4)
#define RCC_AHB2ENR   REG(RCC_BASE + 0xDC)
#define RCC_AHB4ENR   REG(RCC_BASE + 0xE0)
#define RCC_APB1LENR  REG(RCC_BASE + 0xE8)
#define RCC_APB2ENR   REG(RCC_BASE + 0xF0)
#define RCC_APB4ENR   REG(RCC_BASE + 0xF4)
/* IWDG1: LSI 32 kHz / 64 = 500 Hz; reload 2000 = 4 s */
#define IWDG1_KR      REG(0x58004800u)
#define IWDG1_PR      REG(0x58004804u)
#define IWDG1_RLR     REG(0x58004808u)
#define IWDG1_SR      REG(0x5800480Cu)
/* PWR (PWR_D3CR is PWR_SRDCR on RM0455: same offset and VOSRDY bit), SYSCFG, FLASH */
#define PWR_CSR1      REG(0x58024804u)
#define PWR_CR3       REG(0x5802480Cu)
#define PWR_D3CR      REG(0x58024818u)
#define SYSCFG_PWRCR  REG(0x5800042Cu)
#define FLASH_ACR     REG(0x52002000u)
#define GPIO(port)    (0x58020000u + 0x400u * (port))
#define SCB_AIRCR     REG(0xE000ED0Cu)

/* ---- The clock tree, checked at compile time against the board file ---- */
#ifndef TF_CLOCK_HSE_BYPASS
#define TF_CLOCK_HSE_BYPASS 0
#endif
#define PLL1_REF_HZ (TF_CLOCK_HSE_HZ / TF_CLOCK_PLL1_M)
#define PLL1_VCO_HZ (PLL1_REF_HZ * TF_CLOCK_PLL1_N)
#define SYSCLK_HZ   (PLL1_VCO_HZ / TF_CLOCK_PLL1_P)
#define AHB_HZ      (SYSCLK_HZ / TF_CLOCK_AHB_DIV)
#define APB_HZ      (AHB_HZ / 2u)             /* every APB at AHB / 2 */
/* PLL1RGE: the reference's range; wide VCO (VCOSEL 0) for all of them. */
#define PLL1_RGE    (PLL1_REF_HZ >= 8000000u ? 3u : PLL1_REF_HZ >= 4000000u ? 2u : 1u)
_Static_assert(TF_CLOCK_HSE_HZ % TF_CLOCK_PLL1_M == 0 && PLL1_VCO_HZ % TF_CLOCK_PLL1_P == 0,
               "PLL1 settings do not divide evenly");
_Static_assert(PLL1_REF_HZ >= 2000000u && PLL1_REF_HZ <= 16000000u,
               "PLL1 reference (HSE / pll1_m) must be 2-16 MHz for the wide-range VCO");
_Static_assert(PLL1_VCO_HZ >= 192000000u && PLL1_VCO_HZ <= 960000000u,
               "PLL1 VCO (reference * pll1_n) must be 192-960 MHz");
_Static_assert(TF_CLOCK_PLL1_P == 1 || TF_CLOCK_PLL1_P % 2 == 0, "pll1_p must be 1 or even");
_Static_assert(TF_CLOCK_AHB_DIV == 1 || TF_CLOCK_AHB_DIV == 2, "ahb_div must be 1 or 2");
_Static_assert(SYSCLK_HZ == TF_BOARD_CLOCK_HZ,
               "the board's clock_hz differs from what its PLL1 settings give");

/* Highest SYSCLK per voltage scale (datasheets) and how each die selects it. */
#if defined(TF_PART_RM0455)
#define SYSCLK_MAX_HZ (TF_CLOCK_VOS == 0 ? 280000000u : 225000000u)
#define VOS_BITS      (TF_CLOCK_VOS == 0 ? 3u : 2u)   /* SRDCR: VOS0 = 0b11, VOS1 = 0b10 */
#elif defined(TF_PART_RM0468)
/* 550 MHz needs the CPUFREQ_BOOST option byte; without it VOS0 tops at 520. */
#define SYSCLK_MAX_HZ (TF_CLOCK_VOS == 0 ? 520000000u : 400000000u)
#define VOS_BITS      (TF_CLOCK_VOS == 0 ? 0u : 3u)   /* D3CR: VOS0 = 0b00, VOS1 = 0b11 */
#else
/* RM0433/RM0399: VOS0 is VOS1 (0b11) plus the SYSCFG over-drive (ODEN). */
#define SYSCLK_MAX_HZ (TF_CLOCK_VOS == 0 ? 480000000u : 400000000u)
#define VOS_BITS      3u
#define VOS0_BY_OVERDRIVE (TF_CLOCK_VOS == 0)
#endif
_Static_assert(TF_CLOCK_VOS == 0 || TF_CLOCK_VOS == 1, "vos must be 0 or 1");
_Static_assert(SYSCLK_HZ <= SYSCLK_MAX_HZ, "clock_hz is above what this part runs at its voltage scale");
_Static_assert(AHB_HZ <= 280000000u && APB_HZ <= 140000000u, "AHB/APB clocks above the family's limits");
#if defined(TF_PART_RM0399) && defined(TF_CLOCK_SUPPLY_SMPS)
_Static_assert(TF_CLOCK_VOS != 0, "RM0399 parts reach VOS0 only from the LDO, not the direct SMPS");
#endif
#if !defined(TF_CLOCK_SUPPLY_LDO) && !defined(TF_CLOCK_SUPPLY_SMPS)
#error "board file: supply must be ldo or smps"
#endif
#if defined(TF_CLOCK_SUPPLY_SMPS) && (defined(TF_PART_RM0433) || defined(TF_PART_RM0468))
#error "supply = smps: this part has no SMPS"
#endif

/* ---- The console: USART1 (APB2) or USART3 (APB1), pins from the board ---- */
#if TF_CONSOLE_USART == 1
#define UART_BASE     0x40011000u
#define UART_CLOCK_ON() (RCC_APB2ENR |= 1u << 4, (void)RCC_APB2ENR)
#elif TF_CONSOLE_USART == 3
#define UART_BASE     0x40004800u
#define UART_CLOCK_ON() (RCC_APB1LENR |= 1u << 18, (void)RCC_APB1LENR)
#else
#error "board file: console uart must be USART1 or USART3"
#endif
#define UART_CR1      REG(UART_BASE + 0x00)
#define UART_BRR      REG(UART_BASE + 0x0C)
#define UART_ISR      REG(UART_BASE + 0x1C)
#define UART_ICR      REG(UART_BASE + 0x20)
#define UART_RDR      REG(UART_BASE + 0x24)
#define UART_TDR      REG(UART_BASE + 0x28)
#ifndef TF_CONSOLE_BAUD
#define TF_CONSOLE_BAUD 115200u
#endif

static void supply_and_voltage(void)
{
#ifdef TF_CLOCK_SUPPLY_SMPS
    /* Direct SMPS supply (SDEN/SMPSEN; LDO and bypass off). CR3 can be
     * written once after reset: this write locks it (SCUEN). */
    PWR_CR3 = (PWR_CR3 & ~0x3Fu) | (1u << 2);
#else
    PWR_CR3 = (PWR_CR3 & ~0x7u) | (1u << 1); /* LDOEN, BYPASS=0 */
#endif
    while (!(PWR_CSR1 & (1u << 13))) {}      /* ACTVOSRDY */
    PWR_D3CR = (PWR_D3CR & ~(3u << 14)) | (VOS_BITS << 14);
    while (!(PWR_D3CR & (1u << 13))) {}      /* VOSRDY */
#ifdef VOS0_BY_OVERDRIVE
    if (VOS0_BY_OVERDRIVE) {
        RCC_APB4ENR |= 1u << 1;              /* SYSCFGEN */
        (void)RCC_APB4ENR;
        SYSCFG_PWRCR |= 1u;                  /* ODEN */
        while (!(PWR_D3CR & (1u << 13))) {}
    }
#endif
}

static void clock_tree(void)
{
#if TF_CLOCK_HSE_BYPASS
    RCC_CR |= 1u << 18;                      /* HSEBYP: an external clock (ST-LINK MCO) */
#endif
    RCC_CR |= 1u << 16;                      /* HSEON */
    while (!(RCC_CR & (1u << 17))) {}        /* HSERDY */

    /* PLL1 from HSE: / M, x N (wide-range VCO), / P = SYSCLK; Q and R at
     * VCO / 4 and / 2, enabled but unused. */
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 3u)) | (TF_CLOCK_PLL1_M << 4) | 2u;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu) | (PLL1_RGE << 2)           /* PLL1RGE, VCOSEL 0 */
                  | (1u << 16) | (1u << 17) | (1u << 18);           /* DIVP1/Q1/R1 EN */
    RCC_PLL1DIVR = (TF_CLOCK_PLL1_N - 1u) | ((TF_CLOCK_PLL1_P - 1u) << 9) | (3u << 16) | (1u << 24);
    RCC_CR |= 1u << 24;                      /* PLL1ON */
    while (!(RCC_CR & (1u << 25))) {}        /* PLL1RDY */

    /* Flash wait states (and the programming delay where the board gives
     * one) before the clock goes up, read back. */
#ifdef TF_CLOCK_FLASH_WRHIGHFREQ
    FLASH_ACR = (FLASH_ACR & ~0x3Fu) | TF_CLOCK_FLASH_WAIT_STATES | (TF_CLOCK_FLASH_WRHIGHFREQ << 4);
#else
    FLASH_ACR = (FLASH_ACR & ~0xFu) | TF_CLOCK_FLASH_WAIT_STATES;
#endif
    while ((FLASH_ACR & 0xFu) != TF_CLOCK_FLASH_WAIT_STATES) {}

    /* Bus prescalers: AXI/AHB = SYSCLK / ahb_div (HPRE 0b1000 = /2), every APB /2. */
    RCC_D1CFGR = (TF_CLOCK_AHB_DIV == 2 ? 8u : 0u) | (4u << 4);  /* HPRE, D1PPRE /2, D1CPRE /1 */
    RCC_D2CFGR = (4u << 4) | (4u << 8);      /* D2PPRE1 /2, D2PPRE2 /2 */
    RCC_D3CFGR = (4u << 4);                  /* D3PPRE /2 */

    RCC_CFGR = (RCC_CFGR & ~7u) | 3u;        /* SW = PLL1 */
    while (((RCC_CFGR >> 3) & 7u) != 3u) {}  /* SWS */
}

/* One pin to alternate function `af` at `speed` (OSPEEDR: 1 medium, 3 very high). */
static void pin_af(uint32_t port, uint32_t pin, uint32_t af, uint32_t speed)
{
    RCC_AHB4ENR |= 1u << port;               /* GPIOxEN */
    (void)RCC_AHB4ENR;
    uint32_t base = GPIO(port);
    REG(base + 0x00) = (REG(base + 0x00) & ~(3u << 2 * pin)) | (2u << 2 * pin);  /* MODER: AF */
    REG(base + 0x08) = (REG(base + 0x08) & ~(3u << 2 * pin)) | (speed << 2 * pin);
    uint32_t afr = base + (pin < 8 ? 0x20u : 0x24u), shift = 4u * (pin % 8);
    REG(afr) = (REG(afr) & ~(0xFu << shift)) | (af << shift);
}

#ifdef TF_QSPI_FSIZE
/* ---- QSPI NOR flash, memory-mapped (RM0433 QUADSPI; Micron MT25Q commands) ----
 * Runs in hal_early_init, before the reset handler copies .data: it may use
 * only code and registers. .rodata lives in this flash, so a constant table
 * here would be read before it exists: the pins come as code (TF_QSPI_PINS). */
#define QSPI_BASE  0x52005000u
#define QSPI_CR    REG(QSPI_BASE + 0x00)
#define QSPI_DCR   REG(QSPI_BASE + 0x04)
#define QSPI_SR    REG(QSPI_BASE + 0x08)
#define QSPI_FCR   REG(QSPI_BASE + 0x0C)
#define QSPI_DLR   REG(QSPI_BASE + 0x10)
#define QSPI_CCR   REG(QSPI_BASE + 0x14)
#define QSPI_PSMKR REG(QSPI_BASE + 0x24)
#define QSPI_PSMAR REG(QSPI_BASE + 0x28)
#define QSPI_PIR   REG(QSPI_BASE + 0x2C)
/* CCR fields: lines per phase (0 none, 1 single, 3 quad), functional mode */
#define CCR_IMODE(n)  ((uint32_t)(n) << 8)
#define CCR_ADMODE(n) ((uint32_t)(n) << 10)
#define CCR_ADSIZE32  (3u << 12)
#define CCR_DCYC(n)   ((uint32_t)(n) << 18)
#define CCR_DMODE(n)  ((uint32_t)(n) << 24)
#define CCR_FMODE(n)  ((uint32_t)(n) << 26)  /* 0 write, 1 read, 2 auto-poll, 3 mapped */
#ifndef TF_QSPI_DUAL_FLASH
#define TF_QSPI_DUAL_FLASH 0
#endif
#ifndef TF_QSPI_PRESCALER
#define TF_QSPI_PRESCALER 3u
#endif
_Static_assert(TF_QSPI_FSIZE >= 1 && TF_QSPI_FSIZE <= 31, "[qspi] size must be 4 B to 4 GB");
_Static_assert(TF_QSPI_PRESCALER <= 255, "[qspi] prescaler must be 0-255");

/* An instruction-only command on `lines` (1 or 3 = quad), waited for. */
static void qspi_command(uint32_t instruction, uint32_t lines)
{
    while (QSPI_SR & (1u << 5)) {}           /* BUSY */
    QSPI_CCR = instruction | CCR_IMODE(lines);
    while (!(QSPI_SR & (1u << 1))) {}        /* TCF */
    QSPI_FCR = 1u << 1;
}

static void qspi_memory_mapped(void)
{
#define TF_QSPI_PIN(port, pin, af) pin_af(port, pin, af, 3u);
    TF_QSPI_PINS
#undef TF_QSPI_PIN
    RCC_AHB3ENR |= 1u << 14;                 /* QSPIEN; kernel clock: AHB (reset default) */
    (void)RCC_AHB3ENR;
    QSPI_CR = (TF_QSPI_PRESCALER << 24) | (TF_QSPI_DUAL_FLASH ? 1u << 6 : 0u)  /* DFM */
              | (1u << 4);                   /* SSHIFT: sample half a cycle late */
    QSPI_DCR = (TF_QSPI_FSIZE << 16) | (3u << 8);  /* FSIZE, CS high 4 cycles between commands */
    QSPI_CR |= 1u;                           /* EN */

    /* Reset the chips to their power-on state from whichever mode they are
     * in: a debugger (OpenOCD's stmqspi) leaves them in quad (QPI) mode. */
    qspi_command(0x66, 3);                   /* RESET ENABLE, quad */
    qspi_command(0x99, 3);                   /* RESET MEMORY, quad */
    qspi_command(0x66, 1);                   /* the same on one line */
    qspi_command(0x99, 1);

    /* Wait until no chip is busy: poll READ STATUS (0x05) for WIP = 0. */
    QSPI_DLR = TF_QSPI_DUAL_FLASH ? 1u : 0u; /* one status byte per chip */
    QSPI_PSMKR = TF_QSPI_DUAL_FLASH ? 0x0101u : 0x01u;
    QSPI_PSMAR = 0;
    QSPI_PIR = 0x10;
    QSPI_CR |= 1u << 22;                     /* APMS: stop at the match */
    QSPI_CCR = 0x05u | CCR_IMODE(1) | CCR_DMODE(1) | CCR_FMODE(2);
    while (!(QSPI_SR & (1u << 3))) {}        /* SMF */
    QSPI_FCR = 1u << 3;
    while (QSPI_SR & (1u << 5)) {}

    /* Memory-mapped 4-BYTE QUAD OUTPUT FAST READ (0x6C): instruction and
     * 32-bit address on one line, 8 dummy cycles (the chips' default), data
     * on four lines per chip. */
    QSPI_CCR = 0x6Cu | CCR_IMODE(1) | CCR_ADMODE(1) | CCR_ADSIZE32 | CCR_DCYC(8)
               | CCR_DMODE(3) | CCR_FMODE(3);
    __asm volatile("dsb\n isb" ::: "memory");
}
#endif

void hal_early_init(void)
{
    /* The D2/AHB SRAMs may hold linker sections: clock them first. */
#if defined(TF_PART_RM0433) || defined(TF_PART_RM0399)
    RCC_AHB2ENR |= (1u << 29) | (1u << 30) | (1u << 31);   /* SRAM1/2/3EN */
#else
    RCC_AHB2ENR |= (1u << 29) | (1u << 30);                /* (AHB)SRAM1/2EN */
#endif
    (void)RCC_AHB2ENR;
    supply_and_voltage();
    clock_tree();
#ifdef TF_QSPI_FSIZE
    qspi_memory_mapped();                    /* before the caches: nothing of it is cached yet */
#endif
    hal_caches_on();
}

static const char *reset_reason = "other";

/* RCC_RSR's flags say why the last reset happened; then clear them (RMVF). */
static void read_reset_reason(void)
{
    uint32_t rsr = RCC_RSR;
    if (rsr & ((1u << 26) | (1u << 28))) reset_reason = "watchdog";  /* IWDG1RSTF, WWDG1RSTF */
    else if (rsr & (1u << 24)) reset_reason = "software";           /* SFTRSTF */
    else if (rsr & (1u << 23)) reset_reason = "power";              /* PORRSTF */
    else if (rsr & (1u << 21)) reset_reason = "brownout";           /* BORRSTF */
    else if (rsr & (1u << 22)) reset_reason = "pin";                /* PINRSTF */
    RCC_RSR |= 1u << 16;
}

const char *hal_reset_reason(void)
{
    return reset_reason;
}

void hal_watchdog_start(void)
{
    IWDG1_KR = 0xCCCCu;                      /* start (and the LSI with it) */
    IWDG1_KR = 0x5555u;                      /* unlock PR and RLR */
    IWDG1_PR = 4u;                           /* /64 */
    IWDG1_RLR = 2000u;
    while (IWDG1_SR & 7u) {}                 /* PVU, RVU, WVU: updates done */
    IWDG1_KR = 0xAAAAu;
}

void hal_watchdog_kick(void)
{
    IWDG1_KR = 0xAAAAu;
}

void hal_init(void)
{
    read_reset_reason();
    /* The console: the ST-LINK virtual COM port on every board of the family. */
    pin_af(TF_CONSOLE_TX_PORT, TF_CONSOLE_TX_PIN, TF_CONSOLE_AF, 1u);
    pin_af(TF_CONSOLE_RX_PORT, TF_CONSOLE_RX_PIN, TF_CONSOLE_AF, 1u);
    UART_CLOCK_ON();
    UART_CR1 = 0;
    UART_BRR = (APB_HZ + TF_CONSOLE_BAUD / 2) / TF_CONSOLE_BAUD;
    /* FIFOEN: a 16-byte receive FIFO; what still overflows it shows as ORE. */
    UART_CR1 = (1u << 29) | (1u << 3) | (1u << 2) | 1u; /* FIFOEN, TE, RE, UE */
    hal_cycle_counter_init();
}

void hal_putc(char c)
{
    while (!(UART_ISR & (1u << 7))) {}     /* TXE */
    UART_TDR = (uint8_t)c;
}

int hal_getc(void)
{
    uint32_t isr = UART_ISR;
    if (isr & 0x6u)                          /* NE/FE: clear; the line's CRC catches the damage */
        UART_ICR = isr & 0x6u;
    if (isr & 0x8u) {                        /* ORE: bytes were lost; the app NACKs the line */
        UART_ICR = 0x8u;
        return HAL_RX_LOST;
    }
    if (!(isr & (1u << 5)))                  /* RXNE (RXFNE with the FIFO on) */
        return -1;
    return (int)(UART_RDR & 0xFFu);
}

void hal_exit(int code)
{
    (void)code;
    /* No one to return to on a board: flush, then a system reset. */
    while (!(UART_ISR & (1u << 6))) {}     /* TC */
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2);  /* SYSRESETREQ */
    for (;;) {}
}
