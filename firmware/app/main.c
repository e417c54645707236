/* tinyfake firmware: answers the serial protocol around the generated model. */
#include "hal.h"
#include "protocol.h"

int main(void)
{
    hal_init();
    protocol_boot();              /* the flash check runs before the watchdog starts */
    hal_watchdog_start();
    for (;;) {
        hal_watchdog_kick();
        int c = hal_getc();
        if (c >= 0)
            protocol_feed((char)c);
        else if (c == HAL_RX_LOST)
            protocol_lost();
    }
}
