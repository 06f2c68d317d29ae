"""What a ZigBee radio and zigpy raise when the radio, a device or the air fails: the
one root the ZigBee service catches where such a failure is said and gone past."""

import zigpy.exceptions

# zigpy's two roots (a request's, and the radio's connection and network), a request
# that got no answer in time, and the serial port itself.
RADIO_ERRORS: tuple[type[BaseException], ...] = (
    zigpy.exceptions.ZigbeeException,
    zigpy.exceptions.RadioException,
    TimeoutError,
    OSError,
)
