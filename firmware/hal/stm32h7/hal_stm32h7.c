/* STM32H743 HAL: power, 480 MHz clock tree, caches, USART3 console.
 * Register addresses and bits from RM0433 (STM32H742/743/750/753); no vendor
 * HAL is needed for this little. */
#include <stdint.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* RCC */
#define RCC_BASE      0x58024400u
#define RCC_CR        REG(RCC_BASE + 0x00)
#define RCC_CFGR      REG(RCC_BASE + 0x10)
#define RCC_D1CFGR    REG(RCC_BASE + 0x18)
#define RCC_D2CFGR    REG(RCC_BASE + 0x1C)
#define RCC_D3CFGR    REG(RCC_BASE + 0x20)
#define RCC_PLLCKSELR REG(RCC_BASE + 0x28)
#define RCC_PLLCFGR   REG(RCC_BASE + 0x2C)
#define RCC_PLL1DIVR  REG(RCC_BASE + 0x30)
#define RCC_AHB2ENR   REG(RCC_BASE + 0xDC)
#define RCC_AHB4ENR   REG(RCC_BASE + 0xE0)
#define RCC_APB1LENR  REG(RCC_BASE + 0xE8)
#define RCC_APB4ENR   REG(RCC_BASE + 0xF4)
#define RCC_RSR       REG(RCC_BASE + 0xD0)
/* IWDG1: LSI 32 kHz / 64 = 500 Hz; reload 2000 = 4 s */
#define IWDG1_KR      REG(0x58004800u)
#define IWDG1_PR      REG(0x58004804u)
#define IWDG1_RLR     REG(0x58004808u)
#define IWDG1_SR      REG(0x5800480Cu)
/* PWR, SYSCFG, FLASH */
#define PWR_CSR1      REG(0x58024804u)
#define PWR_CR3       REG(0x5802480Cu)
#define PWR_D3CR      REG(0x58024818u)
#define SYSCFG_PWRCR  REG(0x5800042Cu)
#define FLASH_ACR     REG(0x52002000u)
/* GPIOD (console pins) and USART3 */
#define GPIOD_MODER   REG(0x58020C00u)
#define GPIOD_OSPEEDR REG(0x58020C08u)
#define GPIOD_AFRH    REG(0x58020C24u)
#define USART3_BASE   0x40004800u
#define USART3_CR1    REG(USART3_BASE + 0x00)
#define USART3_BRR    REG(USART3_BASE + 0x0C)
#define USART3_ISR    REG(USART3_BASE + 0x1C)
#define USART3_ICR    REG(USART3_BASE + 0x20)
#define USART3_RDR    REG(USART3_BASE + 0x24)
#define USART3_TDR    REG(USART3_BASE + 0x28)
/* ARMv7-M SCB */
#define SCB_AIRCR     REG(0xE000ED0Cu)

#ifndef TF_HSE_HZ
#define TF_HSE_HZ 8000000u          /* ST-LINK MCO, HSE bypass */
#endif
#define APB1_HZ   120000000u        /* 480 MHz / HPRE 2 / D2PPRE1 2 */
#ifndef TF_CONSOLE_BAUD
#define TF_CONSOLE_BAUD 115200u
#endif


static void supply_and_voltage(void)
{
#ifdef TF_SUPPLY_SMPS
    /* Parts with an SMPS (H7x5/H7x7/H7A3): direct SMPS supply (SDEN). */
    PWR_CR3 = (PWR_CR3 & ~0x3Fu) | (1u << 2);
#else
    /* STM32H743: LDO supply. CR3 can be written once after reset (SCUEN). */
    PWR_CR3 = (PWR_CR3 & ~0x7u) | (1u << 1); /* LDOEN, BYPASS=0, SCUEN=0 locks it */
#endif
    while (!(PWR_CSR1 & (1u << 13))) {}      /* ACTVOSRDY */
    /* VOS1 first, then VOS0 = VOS1 + overdrive (ODEN): needed for 480 MHz. */
    PWR_D3CR = (PWR_D3CR & ~(3u << 14)) | (3u << 14);
    while (!(PWR_D3CR & (1u << 13))) {}      /* VOSRDY */
    RCC_APB4ENR |= 1u << 1;                  /* SYSCFGEN */
    (void)RCC_APB4ENR;
    SYSCFG_PWRCR |= 1u;                      /* ODEN */
    while (!(PWR_D3CR & (1u << 13))) {}
}

static void clock_480mhz(void)
{
    /* HSE in bypass mode: the ST-LINK drives an 8 MHz clock into PH0. */
    RCC_CR |= 1u << 18;                      /* HSEBYP */
    RCC_CR |= 1u << 16;                      /* HSEON */
    while (!(RCC_CR & (1u << 17))) {}        /* HSERDY */

    /* PLL1: HSE / M(1) = 8 MHz ref (range 8-16 MHz), x N(120) = 960 MHz
     * VCO (wide range), / P(2) = 480 MHz SYSCLK, / Q(4), / R(2). */
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~((0x3Fu << 4) | 3u)) | (1u << 4) | 2u;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu) | (3u << 2)               /* PLL1RGE 8-16 MHz */
                  | (1u << 16) | (1u << 17) | (1u << 18);         /* DIVP1/Q1/R1 EN */
    RCC_PLL1DIVR = (119u << 0) | (1u << 9) | (3u << 16) | (1u << 24);
    RCC_CR |= 1u << 24;                      /* PLL1ON */
    while (!(RCC_CR & (1u << 25))) {}        /* PLL1RDY */

    /* Flash: 4 wait states, WRHIGHFREQ=2 for a 240 MHz AXI clock at VOS0;
     * set before the clock goes up and read back. */
    FLASH_ACR = (FLASH_ACR & ~0x3Fu) | 4u | (2u << 4);
    while ((FLASH_ACR & 0xFu) != 4u) {}

    /* Bus prescalers: AHB/AXI 240 MHz, APB1..4 120 MHz. */
    RCC_D1CFGR = (8u << 0) | (4u << 4);      /* HPRE /2, D1PPRE /2, D1CPRE /1 */
    RCC_D2CFGR = (4u << 4) | (4u << 8);      /* D2PPRE1 /2, D2PPRE2 /2 */
    RCC_D3CFGR = (4u << 4);                  /* D3PPRE /2 */

    RCC_CFGR = (RCC_CFGR & ~7u) | 3u;        /* SW = PLL1 */
    while (((RCC_CFGR >> 3) & 7u) != 3u) {}  /* SWS */
}

void hal_early_init(void)
{
    /* The D2 SRAMs (SRAM1-3) may hold linker sections: clock them first. */
    RCC_AHB2ENR |= (1u << 29) | (1u << 30) | (1u << 31);
    (void)RCC_AHB2ENR;
    supply_and_voltage();
    clock_480mhz();
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
    /* USART3 on PD8 (TX) / PD9 (RX), AF7: the ST-LINK virtual COM port. */
    RCC_AHB4ENR |= 1u << 3;                  /* GPIODEN */
    RCC_APB1LENR |= 1u << 18;                /* USART3EN */
    (void)RCC_APB1LENR;
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16);   /* AF mode */
    GPIOD_OSPEEDR |= 0x5u << 16;                                  /* medium */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                   /* AF7 */
    USART3_CR1 = 0;
    USART3_BRR = (APB1_HZ + TF_CONSOLE_BAUD / 2) / TF_CONSOLE_BAUD;
    /* FIFOEN: a 16-byte receive FIFO; what still overflows it shows as ORE. */
    USART3_CR1 = (1u << 29) | (1u << 3) | (1u << 2) | 1u; /* FIFOEN, TE, RE, UE */
    hal_cycle_counter_init();
}

void hal_putc(char c)
{
    while (!(USART3_ISR & (1u << 7))) {}     /* TXE */
    USART3_TDR = (uint8_t)c;
}

int hal_getc(void)
{
    uint32_t isr = USART3_ISR;
    if (isr & 0x6u)                          /* NE/FE: clear; the line's CRC catches the damage */
        USART3_ICR = isr & 0x6u;
    if (isr & 0x8u) {                        /* ORE: bytes were lost; the app NACKs the line */
        USART3_ICR = 0x8u;
        return HAL_RX_LOST;
    }
    if (!(isr & (1u << 5)))                  /* RXNE (RXFNE with the FIFO on) */
        return -1;
    return (int)(USART3_RDR & 0xFFu);
}

void hal_exit(int code)
{
    (void)code;
    /* No one to return to on a board: flush, then a system reset. */
    while (!(USART3_ISR & (1u << 6))) {}     /* TC */
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2);  /* SYSRESETREQ */
    for (;;) {}
}
