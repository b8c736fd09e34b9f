"""What the benchmarks say about the machine they ran on: the CPU model and
the vector extensions that decide fmnist's kernel table."""

import re
import subprocess

# /proc/cpuinfo flags (x86 "flags", ARM "Features") worth naming with a figure
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "asimd", "sve")


def cpu_model():
    """The CPU's model name, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    try:  # e.g. ARM, whose /proc/cpuinfo has no model name
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            return m.group(1).strip()
    except OSError:
        pass
    return "unknown"


def simd_flags():
    """The SIMD_FLAGS this CPU has, in that order (empty if unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    have = set(value.split())
                    return [x for x in SIMD_FLAGS if x in have]
    except OSError:
        pass
    return []
