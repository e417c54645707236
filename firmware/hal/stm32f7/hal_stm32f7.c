/* STM32F74x/F75x HAL: 216 MHz clock tree (over-drive), caches, console on
 * USART1 (the STM32F746G-DISCO's ST-LINK virtual COM port: PA9 TX, PB7 RX).
 * Register addresses and bits from RM0385 (STM32F75xxx/74xxx). */
#include <stdint.h>

#include "hal.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* RCC */
#define RCC_BASE      0x40023800u
#define RCC_CR        REG(RCC_BASE + 0x00)
#define RCC_PLLCFGR   REG(RCC_BASE + 0x04)
#define RCC_CFGR      REG(RCC_BASE + 0x08)
#define RCC_AHB1ENR   REG(RCC_BASE + 0x30)
#define RCC_APB1ENR   REG(RCC_BASE + 0x40)
#define RCC_APB2ENR   REG(RCC_BASE + 0x44)
#define RCC_CSR       REG(RCC_BASE + 0x74)
/* PWR, FLASH, IWDG */
#define PWR_CR1       REG(0x40007000u)
#define PWR_CSR1      REG(0x40007004u)
#define FLASH_ACR     REG(0x40023C00u)
#define IWDG_KR       REG(0x40003000u)
#define IWDG_PR       REG(0x40003004u)
#define IWDG_RLR      REG(0x40003008u)
#define IWDG_SR       REG(0x4000300Cu)
/* Console pins and USART1 */
#define GPIOA_MODER   REG(0x40020000u)
#define GPIOA_AFRH    REG(0x40020024u)
#define GPIOB_MODER   REG(0x40020400u)
#define GPIOB_AFRL    REG(0x40020420u)
#define USART1_BASE   0x40011000u
#define USART1_CR1    REG(USART1_BASE + 0x00)
#define USART1_BRR    REG(USART1_BASE + 0x0C)
#define USART1_ISR    REG(USART1_BASE + 0x1C)
#define USART1_ICR    REG(USART1_BASE + 0x20)
#define USART1_RDR    REG(USART1_BASE + 0x24)
#define USART1_TDR    REG(USART1_BASE + 0x28)
#define SCB_AIRCR     REG(0xE000ED0Cu)

#ifndef TF_CLOCK_HSE_HZ
#define TF_CLOCK_HSE_HZ 25000000u         /* the DISCO board's 25 MHz crystal */
#endif
#define APB2_HZ   108000000u        /* 216 MHz / PPRE2 2 */
/* This HAL has one clock tree and one console; the board file must agree. */
#if defined(TF_BOARD_CLOCK_HZ) && TF_BOARD_CLOCK_HZ != 216000000u
#error "the STM32F7 HAL runs at 216 MHz: set clock_hz = 216_000_000"
#endif
#if defined(TF_CONSOLE_USART) && (TF_CONSOLE_USART != 1 || TF_CONSOLE_TX_PORT != 0 \
    || TF_CONSOLE_TX_PIN != 9 || TF_CONSOLE_RX_PORT != 1 || TF_CONSOLE_RX_PIN != 7)
#error "the STM32F7 HAL drives USART1 on PA9 (TX) / PB7 (RX) only"
#endif
#ifndef TF_CLOCK_FLASH_WAIT_STATES
#define TF_CLOCK_FLASH_WAIT_STATES 7u       /* 216 MHz at 2.7-3.6 V */
#endif
#ifndef TF_CONSOLE_BAUD
#define TF_CONSOLE_BAUD 115200u
#endif

static void clock_216mhz(void)
{
    RCC_APB1ENR |= 1u << 28;                 /* PWREN */
    (void)RCC_APB1ENR;
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14);  /* VOS scale 1 */

    RCC_CR |= 1u << 16;                      /* HSEON (crystal, no bypass) */
    while (!(RCC_CR & (1u << 17))) {}        /* HSERDY */

    /* PLL: HSE / M(HSE MHz) = 1 MHz, x N(432) = 432 MHz VCO, / P(2) = 216 MHz,
     * / Q(9) = 48 MHz. */
    RCC_PLLCFGR = (TF_CLOCK_HSE_HZ / 1000000u) | (432u << 6) | (0u << 16) | (1u << 22) | (9u << 24);
    RCC_CR |= 1u << 24;                      /* PLLON */

    /* Over-drive for 216 MHz (RM0385 3.3.2: after PLLON, before switching). */
    PWR_CR1 |= 1u << 16;                     /* ODEN */
    while (!(PWR_CSR1 & (1u << 16))) {}      /* ODRDY */
    PWR_CR1 |= 1u << 17;                     /* ODSWEN */
    while (!(PWR_CSR1 & (1u << 17))) {}      /* ODSWRDY */
    while (!(RCC_CR & (1u << 25))) {}        /* PLLRDY */

    /* Flash wait states from the board (7 at 216 MHz, 2.7-3.6 V); ART and
     * prefetch on; set before the clock goes up and read back. */
    FLASH_ACR = (FLASH_ACR & ~0xFu) | TF_CLOCK_FLASH_WAIT_STATES | (1u << 8) | (1u << 9);
    while ((FLASH_ACR & 0xFu) != TF_CLOCK_FLASH_WAIT_STATES) {}

    /* AHB 216 MHz, APB1 /4 = 54 MHz, APB2 /2 = 108 MHz; then SW = PLL. */
    RCC_CFGR = (RCC_CFGR & ~((0xFu << 4) | (7u << 10) | (7u << 13) | 3u))
               | (5u << 10) | (4u << 13) | 2u;
    while (((RCC_CFGR >> 2) & 3u) != 2u) {}  /* SWS */
}

void hal_early_init(void)
{
    clock_216mhz();
    hal_caches_on();
}

static const char *reset_reason = "other";

/* RCC_CSR's flags say why the last reset happened; then clear them (RMVF). */
static void read_reset_reason(void)
{
    uint32_t csr = RCC_CSR;
    if (csr & ((1u << 29) | (1u << 30))) reset_reason = "watchdog";  /* IWDGRSTF, WWDGRSTF */
    else if (csr & (1u << 28)) reset_reason = "software";           /* SFTRSTF */
    else if (csr & (1u << 27)) reset_reason = "power";              /* PORRSTF */
    else if (csr & (1u << 25)) reset_reason = "brownout";           /* BORRSTF */
    else if (csr & (1u << 26)) reset_reason = "pin";                /* PINRSTF */
    RCC_CSR |= 1u << 24;
}

const char *hal_reset_reason(void)
{
    return reset_reason;
}

void hal_watchdog_start(void)
{
    IWDG_KR = 0xCCCCu;                       /* start (and the LSI with it) */
    IWDG_KR = 0x5555u;                       /* unlock PR and RLR */
    IWDG_PR = 4u;                            /* LSI 32 kHz / 64 = 500 Hz */
    IWDG_RLR = 2000u;                        /* 4 s */
    while (IWDG_SR & 7u) {}                  /* PVU, RVU, WVU: updates done */
    IWDG_KR = 0xAAAAu;
}

void hal_watchdog_kick(void)
{
    IWDG_KR = 0xAAAAu;
}

void hal_init(void)
{
    read_reset_reason();
    /* USART1: PA9 TX, PB7 RX, both AF7. */
    RCC_AHB1ENR |= (1u << 0) | (1u << 1);    /* GPIOAEN, GPIOBEN */
    RCC_APB2ENR |= 1u << 4;                  /* USART1EN */
    (void)RCC_APB2ENR;
    GPIOA_MODER = (GPIOA_MODER & ~(3u << 18)) | (2u << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);
    GPIOB_MODER = (GPIOB_MODER & ~(3u << 14)) | (2u << 14);
    GPIOB_AFRL = (GPIOB_AFRL & ~(0xFu << 28)) | (7u << 28);
    USART1_CR1 = 0;
    USART1_BRR = (APB2_HZ + TF_CONSOLE_BAUD / 2) / TF_CONSOLE_BAUD;
    USART1_CR1 = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE (no FIFO on F7) */
    hal_cycle_counter_init();
}

void hal_putc(char c)
{
    while (!(USART1_ISR & (1u << 7))) {}     /* TXE */
    USART1_TDR = (uint8_t)c;
}

int hal_getc(void)
{
    uint32_t isr = USART1_ISR;
    if (isr & 0x6u)                          /* NE/FE: clear; the line's CRC catches the damage */
        USART1_ICR = isr & 0x6u;
    if (isr & 0x8u) {                        /* ORE: bytes were lost; the app NACKs the line */
        USART1_ICR = 0x8u;
        return HAL_RX_LOST;
    }
    if (!(isr & (1u << 5)))                  /* RXNE */
        return -1;
    return (int)(USART1_RDR & 0xFFu);
}

void hal_exit(int code)
{
    (void)code;
    while (!(USART1_ISR & (1u << 6))) {}     /* TC */
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2);  /* SYSRESETREQ */
    for (;;) {}
}
