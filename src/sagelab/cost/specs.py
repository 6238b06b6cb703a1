"""What an `ml.*` instance type is made of, from its name: vCPUs, memory, GPUs, accelerators, network.

SageMaker's types are EC2's with an `ml.` prefix, and EC2 names are regular: the family fixes the
memory per vCPU (c: 2 GiB, m: 4, r: 8), the size fixes the vCPUs (xlarge: 4, 2xlarge: 8, ...), a
`g` in the attributes means Graviton (arm64). Accelerated families are irregular (g5.12xlarge has
4 GPUs, g5.16xlarge one), so they are listed size by size. A refresh from AWS's price list replaces
vCPUs, memory and network with the values AWS publishes for each type (`sagelab.cost.pricing`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USES = ("training", "processing", "hosting", "transform", "notebook", "studio")
"""What an instance is billed for, as AWS's price list separates them (its `component` attribute)."""

_SIZES = {"medium": 2, "large": 2, "xlarge": 4}  # t-family medium has 2 vCPUs too; "Nxlarge" is 4·N

_MEMORY_PER_VCPU = {"c4": 1.875, "c5n": 2.625, "c": 2.0, "m": 4.0, "r": 8.0, "i3en": 8.0, "x": 16.0}

_T_MEMORY = {"medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}

# Family generations AWS calls previous, or that newer families replace at a lower price per unit of work.
PREVIOUS_GENERATION = frozenset({"t2", "m4", "c4", "p2", "p3", "p3dn", "inf1", "m5", "m5d", "c5", "c5d", "c5n", "r5", "r5d", "g4dn"})


@dataclass(frozen=True)
class Accelerated:
    """One size of an accelerated family: vCPUs, memory (GiB), and its accelerator count."""

    vcpus: int
    memory: float
    count: int


@dataclass(frozen=True)
class AcceleratedFamily:
    device: str  # "NVIDIA A10G", "AWS Inferentia2"
    device_memory: float  # GiB per device
    gpu: bool  # False: an AWS accelerator (Inferentia, Trainium) or Gaudi, not CUDA
    sizes: dict[str, Accelerated]


def _sizes(**sizes: tuple[int, float, int]) -> dict[str, Accelerated]:
    return {name.replace("_", "").removeprefix("s"): Accelerated(*spec) for name, spec in sizes.items()}


# name → (vCPUs, memory GiB, devices), per size; device memory per device. "s2xlarge" spells "2xlarge".
_G5_SHAPE = _sizes(xlarge=(4, 16, 1), s2xlarge=(8, 32, 1), s4xlarge=(16, 64, 1), s8xlarge=(32, 128, 1), s12xlarge=(48, 192, 4),
                   s16xlarge=(64, 256, 1), s24xlarge=(96, 384, 4), s48xlarge=(192, 768, 8))  # fmt: skip
ACCELERATED: dict[str, AcceleratedFamily] = {
    "p2": AcceleratedFamily("NVIDIA K80", 12, True, _sizes(xlarge=(4, 61, 1), s8xlarge=(32, 488, 8), s16xlarge=(64, 732, 16))),
    "p3": AcceleratedFamily("NVIDIA V100", 16, True, _sizes(s2xlarge=(8, 61, 1), s8xlarge=(32, 244, 4), s16xlarge=(64, 488, 8))),
    "p3dn": AcceleratedFamily("NVIDIA V100", 32, True, _sizes(s24xlarge=(96, 768, 8))),
    "p4d": AcceleratedFamily("NVIDIA A100", 40, True, _sizes(s24xlarge=(96, 1152, 8))),
    "p4de": AcceleratedFamily("NVIDIA A100", 80, True, _sizes(s24xlarge=(96, 1152, 8))),
    "p5": AcceleratedFamily("NVIDIA H100", 80, True, _sizes(s4xlarge=(16, 256, 1), s48xlarge=(192, 2048, 8))),
    "p5e": AcceleratedFamily("NVIDIA H200", 141, True, _sizes(s48xlarge=(192, 2048, 8))),
    "p5en": AcceleratedFamily("NVIDIA H200", 141, True, _sizes(s48xlarge=(192, 2048, 8))),
    "p6-b200": AcceleratedFamily("NVIDIA B200", 179, True, _sizes(s48xlarge=(192, 2048, 8))),
    "g4dn": AcceleratedFamily("NVIDIA T4", 16, True, _sizes(xlarge=(4, 16, 1), s2xlarge=(8, 32, 1), s4xlarge=(16, 64, 1), s8xlarge=(32, 128, 1),
                                                         s12xlarge=(48, 192, 4), s16xlarge=(64, 256, 1))),  # fmt: skip
    "g5": AcceleratedFamily("NVIDIA A10G", 24, True, _G5_SHAPE),
    "g6": AcceleratedFamily("NVIDIA L4", 24, True, _G5_SHAPE),
    "gr6": AcceleratedFamily("NVIDIA L4", 24, True, _sizes(s4xlarge=(16, 128, 1), s8xlarge=(32, 256, 1))),
    "g6e": AcceleratedFamily("NVIDIA L40S", 48, True, _sizes(xlarge=(4, 32, 1), s2xlarge=(8, 64, 1), s4xlarge=(16, 128, 1), s8xlarge=(32, 256, 1),
                                                           s12xlarge=(48, 384, 4), s16xlarge=(64, 512, 1), s24xlarge=(96, 768, 4),
                                                           s48xlarge=(192, 1536, 8))),  # fmt: skip
    "inf1": AcceleratedFamily("AWS Inferentia", 8, False, _sizes(xlarge=(4, 8, 1), s2xlarge=(8, 16, 1), s6xlarge=(24, 48, 4), s24xlarge=(96, 192, 16))),
    "inf2": AcceleratedFamily("AWS Inferentia2", 32, False, _sizes(xlarge=(4, 16, 1), s8xlarge=(32, 128, 1), s24xlarge=(96, 384, 6), s48xlarge=(192, 768, 12))),
    "trn1": AcceleratedFamily("AWS Trainium", 32, False, _sizes(s2xlarge=(8, 32, 1), s32xlarge=(128, 512, 16))),
    "trn1n": AcceleratedFamily("AWS Trainium", 32, False, _sizes(s32xlarge=(128, 512, 16))),
    "trn2": AcceleratedFamily("AWS Trainium2", 96, False, _sizes(s48xlarge=(192, 2048, 16))),
    "dl1": AcceleratedFamily("Habana Gaudi", 32, False, _sizes(s24xlarge=(96, 768, 8))),
}


@dataclass(frozen=True)
class Specs:
    """An instance type's hardware, as far as its name (or AWS's price list) tells."""

    vcpus: int | None = None
    memory_gib: float | None = None
    gpus: int = 0
    gpu_memory_gib: float | None = None  # all GPUs together
    accelerator: str | None = None  # "4 × NVIDIA A10G (24 GiB)", "1 × AWS Inferentia2"
    network: str | None = None
    arm: bool = False


_NAME = re.compile(r"^ml\.(?P<family>[a-z0-9]+(?:-[a-z0-9]+)?)\.(?P<size>[a-z0-9]+)$")


def family_of(name: str) -> str:
    """`ml.g5.xlarge` → `g5`, `ml.p6-b200.48xlarge` → `p6-b200`, `ml.c7i-flex.large` → `c7i-flex`."""
    match = _NAME.match(name)
    return match["family"] if match else ""


def specs_of(name: str) -> Specs:
    """The hardware of `name`, from its family and size; unknown parts are None."""
    match = _NAME.match(name)
    if not match:
        return Specs()
    family, size = match["family"], match["size"]
    accelerated = ACCELERATED.get(family)
    if accelerated is not None:
        shape = accelerated.sizes.get(size)
        if shape is None:
            return Specs(accelerator=accelerated.device)
        label = f"{shape.count} × {accelerated.device} ({accelerated.device_memory:g} GiB)"
        gpus = shape.count if accelerated.gpu else 0
        return Specs(shape.vcpus, shape.memory, gpus, shape.count * accelerated.device_memory if accelerated.gpu else None, label, _network(family, size))
    vcpus = _vcpus(size)
    base = family.split("-")[0]  # c7i-flex → c7i
    return Specs(vcpus, _memory(base, size, vcpus), network=_network(family, size), arm=_graviton(base))


def _vcpus(size: str) -> int | None:
    if size in _SIZES:
        return _SIZES[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    return int(match[1]) * 4 if match else None


def _memory(family: str, size: str, vcpus: int | None) -> float | None:
    if family in ("t2", "t3"):
        return _T_MEMORY.get(size)
    if vcpus is None:
        return None
    per_vcpu = _MEMORY_PER_VCPU.get(family) or _MEMORY_PER_VCPU.get(family[0])
    return vcpus * per_vcpu if per_vcpu else None


def _graviton(family: str) -> bool:
    """m6g, c7gd, r8g: a `g` right after the generation digit."""
    return bool(re.fullmatch(r"[a-z]+\d+g[a-z]*", family))


def _network(family: str, size: str) -> str | None:
    """Network bandwidth where EC2 is regular about it (t3, the 5th and the Intel/AMD 6th+ generations, the big GPU
    nodes); None elsewhere, rather than a guess. A refresh replaces it with AWS's own figure."""
    vcpus = _vcpus(size) or 0
    if family == "t3":
        return "Up to 5 Gigabit"
    if family in ("p4d", "p4de", "trn1", "trn1n"):
        return "400 Gigabit" if vcpus >= 96 else None
    if family in ("p5", "p5e", "p5en", "p6-b200", "trn2"):
        return "3200 Gigabit" if vcpus >= 192 else None
    if re.fullmatch(r"[cmr]5d?", family):
        return {32: "10 Gigabit", 36: "10 Gigabit", 48: "12 Gigabit", 64: "20 Gigabit", 72: "25 Gigabit", 96: "25 Gigabit"}.get(
            vcpus, "Up to 10 Gigabit" if vcpus <= 16 else None)  # fmt: skip
    if re.fullmatch(r"[cmr][678][ia]d?(-flex)?", family):
        return {48: "18.75 Gigabit", 64: "25 Gigabit", 96: "37.5 Gigabit", 128: "50 Gigabit", 192: "50 Gigabit"}.get(
            vcpus, "Up to 12.5 Gigabit" if vcpus <= 32 else None)  # fmt: skip
    return None
