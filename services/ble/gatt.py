"""GATT numbers and value encodings shared by the virtual peripherals and the device types.

Encoders turn engineering values into the bytes a real device sends; decoders
(in services/devicetypes/ble.py) turn them back. Keeping both here makes the
round trip testable.
"""

import struct

BASE_UUID = "0000{:04x}-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The 128-bit form of a Bluetooth SIG 16-bit UUID, lower-case as BlueZ reports it."""
    return BASE_UUID.format(short)


def ti_uuid(short: int) -> str:
    """TI SensorTag vendor UUIDs: f000XXXX-0451-4000-b000-000000000000."""
    return f"f000{short:04x}-0451-4000-b000-000000000000"


# Standard services and characteristics
ENVIRONMENTAL_SENSING = uuid16(0x181A)
TEMPERATURE = uuid16(0x2A6E)  # sint16, 0.01 °C
HUMIDITY = uuid16(0x2A6F)  # uint16, 0.01 %
PRESSURE = uuid16(0x2A6D)  # uint32, 0.1 Pa
HEART_RATE = uuid16(0x180D)
HEART_RATE_MEASUREMENT = uuid16(0x2A37)
BODY_SENSOR_LOCATION = uuid16(0x2A38)
BATTERY = uuid16(0x180F)
BATTERY_LEVEL = uuid16(0x2A19)  # uint8 %
DEVICE_INFORMATION = uuid16(0x180A)
MANUFACTURER_NAME = uuid16(0x2A29)
MODEL_NUMBER = uuid16(0x2A24)
CCCD = uuid16(0x2902)

# TI SensorTag (CC2650), AGILE's reference device
TI_TEMPERATURE = ti_uuid(0xAA00)
TI_TEMPERATURE_DATA = ti_uuid(0xAA01)
TI_TEMPERATURE_CONFIG = ti_uuid(0xAA02)
TI_HUMIDITY = ti_uuid(0xAA20)
TI_HUMIDITY_DATA = ti_uuid(0xAA21)
TI_HUMIDITY_CONFIG = ti_uuid(0xAA22)
TI_PRESSURE = ti_uuid(0xAA40)
TI_PRESSURE_DATA = ti_uuid(0xAA41)
TI_PRESSURE_CONFIG = ti_uuid(0xAA42)
TI_LIGHT = ti_uuid(0xAA70)
TI_LIGHT_DATA = ti_uuid(0xAA71)
TI_LIGHT_CONFIG = ti_uuid(0xAA72)
TI_IO = ti_uuid(0xAA64)
TI_IO_DATA = ti_uuid(0xAA65)  # bit 0 red LED, bit 1 green LED, bit 2 buzzer
TI_IO_CONFIG = ti_uuid(0xAA66)  # 0: local (sensor) mode, 1: remote control

TI_MANUFACTURER_ID = 0x000D  # Texas Instruments


def encode_temperature(celsius: float) -> bytes:
    return struct.pack("<h", round(celsius * 100))


def encode_humidity(percent: float) -> bytes:
    return struct.pack("<H", round(percent * 100))


def encode_pressure(hpa: float) -> bytes:
    return struct.pack("<I", round(hpa * 1000))  # 0.1 Pa units


def encode_heart_rate(bpm: int) -> bytes:
    return bytes([0x00, bpm]) if bpm < 256 else struct.pack("<BH", 0x01, bpm)


def encode_ti_temperature(object_c: float, ambient_c: float) -> bytes:
    """TMP007: object and ambient temperature, int16 in 1/128 °C units."""
    return struct.pack("<hh", round(object_c * 128), round(ambient_c * 128))


def encode_ti_humidity(celsius: float, percent: float) -> bytes:
    """HDC1000 raw words: temp = raw/65536*165-40, humidity = raw/65536*100."""
    t_raw = round((celsius + 40) / 165 * 65536) & 0xFFFF
    h_raw = round(percent / 100 * 65536) & 0xFFFC
    return struct.pack("<HH", t_raw, h_raw)


def encode_ti_pressure(celsius: float, hpa: float) -> bytes:
    """BMP280: 24-bit temperature and pressure in hundredths."""
    t = round(celsius * 100)
    p = round(hpa * 100)
    return t.to_bytes(3, "little", signed=True) + p.to_bytes(3, "little")


def encode_ti_light(lux: float) -> bytes:
    """OPT3001: 12-bit mantissa, 4-bit exponent, lux = m * 0.01 * 2^e."""
    raw = max(0, round(lux * 100))
    exponent = 0
    while raw > 0x0FFF:
        raw >>= 1
        exponent += 1
    return struct.pack("<H", (exponent << 12) | raw)
