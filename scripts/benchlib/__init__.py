"""The benchmark driver's parts: the emulator process, mounts, measurements and the report."""
