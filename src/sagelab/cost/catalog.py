"""The instance catalog: every `ml.*` type with its hardware, the uses SageMaker accepts it for, and its prices.

Two sources, kept apart so each says where it comes from:
- shipped with the package: the types per use (`instance_types.json`, from botocore's SageMaker
  model: `tools/gen_instance_types.py`) and their hardware (`specs.py`);
- fetched by `sagelab instances refresh`: on-demand prices per region and use, with AWS's hardware
  figures, saved per user in `$XDG_CACHE_HOME/sagelab/instance-prices.json` with the source and date
  of each region's prices. No prices are shipped: the package holds only what it can keep true.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sagelab.cost.specs import PREVIOUS_GENERATION, USES, Specs, family_of, specs_of
from sagelab.errors import ConfigError

DISCLAIMER = ("Prices are AWS's on-demand list prices in USD per instance-hour, as AWS's price list gave them when fetched; "
              "your bill may differ (savings plans, spot, free tier, taxes, storage and data transfer are not counted).")  # fmt: skip


@dataclass(frozen=True)
class InstanceType:
    """One `ml.*` type: its hardware and the uses SageMaker accepts it for."""

    name: str
    specs: Specs
    uses: frozenset[str]

    @property
    def family(self) -> str:
        return family_of(self.name)

    @property
    def current(self) -> bool:
        """Not a generation that AWS calls previous or that a newer family replaces for less."""
        return self.family not in PREVIOUS_GENERATION


@dataclass(frozen=True)
class RegionPrices:
    """One region's prices: use → type → USD per hour, and where and when they came from."""

    source: str
    fetched: str  # ISO date and time of the refresh
    published: str  # the price list's own publication date, when it gave one
    prices: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fetched": self.fetched, "published": self.published, "prices": self.prices}


@dataclass
class Catalog:
    types: dict[str, InstanceType]
    regions: dict[str, RegionPrices] = field(default_factory=dict)
    types_source: str = ""

    def get(self, name: str) -> InstanceType | None:
        return self.types.get(name)

    def price(self, name: str, use: str, region: str) -> float | None:
        """USD per hour of one `name` instance used for `use` in `region`; None when unknown."""
        known = self.regions.get(region)
        return known.prices.get(use, {}).get(name) if known else None

    def offered(self, name: str, use: str, region: str) -> bool | None:
        """Whether SageMaker offers `name` for `use` in `region`: False when its price list for that
        region and use lacks it, None when there are no prices for the region (not refreshed)."""
        known = self.regions.get(region)
        if known is None or not known.prices.get(use):
            return None
        return name in known.prices[use]

    def select(self, *, use: str | None = None, region: str | None = None, gpu: bool = False, min_memory: float = 0,
               current_only: bool = False) -> list[InstanceType]:  # fmt: skip
        """The types matching every filter, smallest first (memory, then vCPUs, then name)."""
        found = []
        for kind in self.types.values():
            if use and use not in kind.uses:
                continue
            if region and use and self.offered(kind.name, use, region) is False:
                continue
            if gpu and not kind.specs.gpus:
                continue
            if min_memory and (kind.specs.memory_gib or 0) < min_memory:
                continue
            if current_only and not kind.current:
                continue
            found.append(kind)
        return sorted(found, key=lambda k: (k.specs.memory_gib or 0, k.specs.vcpus or 0, k.name))


def prices_path() -> Path:
    """Where refreshed prices are kept: $SAGELAB_PRICES (a file a team shares, say), else per user in
    $XDG_CACHE_HOME/sagelab/instance-prices.json."""
    if os.environ.get("SAGELAB_PRICES"):
        return Path(os.environ["SAGELAB_PRICES"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sagelab" / "instance-prices.json"


@lru_cache(maxsize=1)
def _shipped() -> tuple[str, dict[str, frozenset[str]]]:
    document = json.loads((Path(__file__).parent / "instance_types.json").read_text())
    by_type: dict[str, set[str]] = {}
    for use, names in document["uses"].items():
        for name in names:
            by_type.setdefault(name, set()).add(use)
    return document["source"], {name: frozenset(uses) for name, uses in by_type.items()}


def load_catalog() -> Catalog:
    """The shipped types, with the prices and hardware figures of the last refresh when there was one."""
    source, uses = _shipped()
    saved = _read_saved()
    specs: dict[str, dict[str, Any]] = saved.get("specs", {})
    types = {name: InstanceType(name, _refined(specs_of(name), specs.get(name, {})), kinds) for name, kinds in uses.items()}
    regions = {region: RegionPrices(**entry) for region, entry in saved.get("regions", {}).items()}
    return Catalog(types, regions, source)


def _refined(specs: Specs, published: dict[str, Any]) -> Specs:
    """The name's specs with AWS's published vCPUs, memory and network over them."""
    known = {key: value for key, value in published.items() if key in ("vcpus", "memory_gib", "network") and value is not None}
    return replace(specs, **known) if known else specs


def _read_saved() -> dict[str, Any]:
    path = prices_path()
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the saved instance prices ({exc}); delete it and run `sagelab instances refresh`") from None
    if not isinstance(document, dict) or not isinstance(document.get("regions", {}), dict):
        raise ConfigError(f"{path}: not a sagelab price file; delete it and run `sagelab instances refresh`")
    return document


def save_prices(regions: dict[str, RegionPrices], specs: dict[str, dict[str, Any]]) -> Path:
    """Merge freshly fetched regions (and AWS's hardware figures) into the saved prices, atomically."""
    path = prices_path()
    document = _read_saved()
    document.setdefault("regions", {}).update({region: prices.to_dict() for region, prices in regions.items()})
    document.setdefault("specs", {}).update(specs)
    document["disclaimer"] = DISCLAIMER
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".instance-prices.", suffix=".partial", delete=False) as partial:
        json.dump(document, partial, separators=(",", ":"), sort_keys=True)
    os.replace(partial.name, path)
    return path


def check_use(use: str) -> str:
    if use not in USES:
        raise ConfigError(f"--use must be one of {', '.join(USES)}; got {use!r}")
    return use
