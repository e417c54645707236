/* The board interface the app is written against. One implementation per
 * MCU family under firmware/hal/<family>/, plus the Cortex-M startup code in
 * firmware/hal/cortex_m/ that every family shares. */
#ifndef TF_HAL_H
#define TF_HAL_H

#include <stdint.h>

/* Clocks, console UART and cycle counter; called once from main(). */
void hal_init(void);
/* Blocking write of one byte to the console UART. */
void hal_putc(char c);
/* One received byte, -1 when none is waiting, or HAL_RX_LOST when the UART
 * dropped received bytes (overrun) since the last call. Never blocks. */
#define HAL_RX_LOST (-2)
int hal_getc(void);
/* Core cycle counter (DWT CYCCNT). Reads 0 where it is not modelled (QEMU). */
uint32_t hal_cycles(void);
/* Leave the firmware: exit code to the simulator, or a reset on hardware. */
void hal_exit(int code) __attribute__((noreturn));

/* Watchdog: a reset unless kicked in time (STM32H7: IWDG1, 4 s; MPS2: the
 * CMSDK APB watchdog, 0.5 s of QEMU's virtual time). Once started it cannot
 * be stopped; the app kicks it in its main loop and after each inference. */
void hal_watchdog_start(void);
void hal_watchdog_kick(void);
/* Why the last reset happened: "power", "watchdog", "software", "pin",
 * "brownout" or "other" (read once in hal_init). */
const char *hal_reset_reason(void);

/* Provided by cortex_m/startup.c. */
uint32_t hal_stack_used(void);   /* measured stack high-water mark, bytes */
uint32_t hal_stack_size(void);
void hal_cycle_counter_init(void); /* enables DWT CYCCNT */
void hal_caches_on(void);          /* Cortex-M7 L1 I/D caches: invalidate, enable */
/* Two words in .noinit, kept across a reset (never zeroed): where a family
 * without reset flags notes why it reset itself (MPS2). In every image, so
 * the board and simulator links use the same RAM. */
extern volatile uint32_t hal_reset_note[2];

/* Family hook run by the reset handler before .data/.bss exist: power,
 * clocks, memory clocks. Must not touch globals. */
void hal_early_init(void);

/* Which board/platform this image was linked for (generated per link). */
extern const char tf_board_name[];
extern const char tf_platform_name[];
extern const uint32_t tf_board_clock_hz;

#endif
