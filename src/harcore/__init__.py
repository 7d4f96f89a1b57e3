"""harcore: hardware-aware search, int8 quantization and firmware for HAR models on microcontrollers."""

__version__ = "0.1.0"
