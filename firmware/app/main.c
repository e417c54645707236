/* tinyfake firmware: answers the serial protocol around the generated model. */
#include "hal.h"
#include "protocol.h"

int main(void)
{
    hal_init();
    protocol_boot();
    for (;;) {
        int c = hal_getc();
        if (c >= 0)
            protocol_feed((char)c);
    }
}
