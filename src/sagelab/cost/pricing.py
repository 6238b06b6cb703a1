"""Reading SageMaker's on-demand prices from AWS's price list, in either of its two forms.

- The public price list files (no AWS account needed): a region index, then one JSON offer file per
  region (`products` by SKU, `terms.OnDemand` by SKU), at pricing.us-east-1.amazonaws.com.
- The Price List API (`pricing:GetProducts`, with the profile's credentials): the same product and
  terms, one SKU per JSON string.

Both are reduced the same way (`prices_from`): the `ML Instance` products of an AWS Region (not a
Local Zone or Outpost), by `component` (Training, Processing, Hosting, BatchTransform, Notebook,
studio-jupyterlab), with an hourly USD price above zero. Fees by quantity, free-tier and spot rows
are not instance-hours and are left out.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sagelab.cost.catalog import RegionPrices
from sagelab.errors import SagelabError

SERVICE = "AmazonSageMaker"
PUBLIC_PRICE_LIST = "https://pricing.us-east-1.amazonaws.com"  # SAGELAB_PRICE_LIST_URL names a mirror
PRICING_API_REGIONS = ("us-east-1", "eu-central-1", "ap-south-1")  # where the Price List API is served

# AWS's component (lowercased) → sagelab's use; for Studio the JupyterLab price wins over Code Editor's and Classic's.
_COMPONENTS = {"training": "training", "processing": "processing", "hosting": "hosting", "batchtransform": "transform",
               "notebook": "notebook", "studio-jupyterlab": "studio", "studio-codeeditor": "studio", "studio-notebook": "studio"}  # fmt: skip
_RANK = {"studio-jupyterlab": 0, "studio-codeeditor": 1, "studio-notebook": 2}


class PriceListError(SagelabError):
    """AWS's price list could not be read."""


@dataclass(frozen=True)
class Fetched:
    """What one refresh brought: prices per region, and AWS's hardware figures per type."""

    regions: dict[str, RegionPrices]
    specs: dict[str, dict[str, Any]]


def prices_from(items: Iterable[tuple[dict[str, Any], dict[str, Any]]], source: str, published: str = "") -> Fetched:
    """(product, OnDemand terms of that product) pairs → prices by region and use, and hardware by type."""
    prices: dict[str, dict[str, dict[str, float]]] = {}
    ranks: dict[tuple[str, str, str], int] = {}
    specs: dict[str, dict[str, Any]] = {}
    for product, terms in items:
        attributes = product.get("attributes", {})
        if product.get("productFamily") != "ML Instance" or attributes.get("locationType", "AWS Region") != "AWS Region":
            continue
        component = str(attributes.get("component") or "").lower()
        use = _COMPONENTS.get(component)
        name = _instance_name(attributes)
        region = attributes.get("regionCode")
        usd = _hourly_usd(terms)
        if not (use and name and region and usd):
            continue
        key, rank = (region, use, name), _RANK.get(component, 0)
        by_type = prices.setdefault(region, {}).setdefault(use, {})
        if key not in ranks or rank < ranks[key] or (rank == ranks[key] and usd > by_type[name]):  # two rows alike: the higher price
            by_type[name], ranks[key] = usd, rank
        specs.setdefault(name, {}).update({k: v for k, v in _hardware(attributes).items() if v is not None})
    fetched = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Fetched({region: RegionPrices(source, fetched, published, by_use) for region, by_use in prices.items()}, specs)


def _instance_name(attributes: dict[str, Any]) -> str | None:
    """`instanceName` (ml.m5.large), else `instanceType` without its use suffix (ml.m5.large-Hosting)."""
    name = attributes.get("instanceName") or re.sub(r"-[A-Za-z]+$", "", str(attributes.get("instanceType", "")))
    return name if isinstance(name, str) and name.startswith("ml.") else None


def _hourly_usd(terms: dict[str, Any]) -> float | None:
    for term in terms.values():
        for dimension in term.get("priceDimensions", {}).values():
            if str(dimension.get("unit", "")).lower() in ("hrs", "hours", "hour"):
                try:
                    usd = float(dimension.get("pricePerUnit", {}).get("USD", "0"))
                except ValueError:
                    continue
                if usd > 0:
                    return usd
    return None


def _hardware(attributes: dict[str, Any]) -> dict[str, Any]:
    vcpus = str(attributes.get("vCpu", ""))
    network = str(attributes.get("networkPerformance", ""))
    return {"vcpus": int(vcpus) if vcpus.isdigit() else None, "memory_gib": _gib(str(attributes.get("memory", ""))),
            "network": network if network and network.upper() not in ("N/A", "NA") else None}  # fmt: skip


def _gib(text: str) -> float | None:
    match = re.fullmatch(r"\s*([\d.,]+)\s*(GiB|TiB|GB|TB)\s*", text)
    if not match:
        return None
    number = float(match[1].replace(",", ""))
    return number * 1024 if match[2] in ("TiB", "TB") else number


def from_offer_file(document: dict[str, Any], source: str) -> Fetched:
    """A region's public offer file (`{"products": {sku: ...}, "terms": {"OnDemand": {sku: ...}}}`)."""
    on_demand = document.get("terms", {}).get("OnDemand", {})
    pairs = ((product, on_demand.get(sku, {})) for sku, product in document.get("products", {}).items())
    return prices_from(pairs, source, str(document.get("publicationDate", "")))


def from_price_list(items: Iterable[str | dict[str, Any]], source: str) -> Fetched:
    """GetProducts' PriceList entries (JSON strings, or already parsed)."""
    parsed = [json.loads(item) if isinstance(item, str) else item for item in items]
    published = max((str(item.get("publicationDate", "")) for item in parsed), default="")
    return prices_from(((item.get("product", {}), item.get("terms", {}).get("OnDemand", {})) for item in parsed), source, published)


def fetch_public(regions: list[str], base: str | None = None) -> Fetched:
    """Each region's offer file from AWS's public price list (no credentials)."""
    base = (base or os.environ.get("SAGELAB_PRICE_LIST_URL") or PUBLIC_PRICE_LIST).rstrip("/")
    index_url = f"{base}/offers/v1.0/aws/{SERVICE}/current/region_index.json"
    index = _get_json(index_url).get("regions", {})
    fetched = Fetched({}, {})
    for region in regions:
        if region not in index:
            raise PriceListError(f"AWS's price list for SageMaker has no region {region!r} ({index_url}); "
                                 f"it lists {', '.join(sorted(index)) or 'none'}")  # fmt: skip
        url = f"{base}{index[region]['currentVersionUrl']}"
        one = from_offer_file(_get_json(url), f"AWS price list file {url}")
        fetched.regions.update(one.regions)
        fetched.specs.update(one.specs)
        if region not in one.regions:
            raise PriceListError(f"{url} lists no SageMaker instance prices for {region}")
    return fetched


def fetch_api(client: Any, regions: list[str], profile: str) -> Fetched:
    """Each region's prices through the Price List API (`client` is a boto3 `pricing` client)."""
    fetched = Fetched({}, {})
    for region in regions:
        filters = [{"Type": "TERM_MATCH", "Field": field, "Value": value}
                   for field, value in (("productFamily", "ML Instance"), ("regionCode", region), ("locationType", "AWS Region"))]  # fmt: skip
        items: list[str] = []
        for page in client.get_paginator("get_products").paginate(ServiceCode=SERVICE, Filters=filters, FormatVersion="aws_v1", MaxResults=100):
            items.extend(page.get("PriceList", []))
        one = from_price_list(items, f"AWS Price List API (GetProducts, profile {profile})")
        if region not in one.regions:
            raise PriceListError(f"the Price List API gave no SageMaker instance prices for {region}; is it a region SageMaker serves?")
        fetched.regions.update(one.regions)
        fetched.specs.update(one.specs)
    return fetched


def api_region(region: str) -> str:
    """The Price List API endpoint closest to `region` (it serves every region's prices from three)."""
    if region.startswith("eu-") or region.startswith("me-") or region.startswith("af-"):
        return "eu-central-1"
    return "ap-south-1" if region.startswith("ap-") else "us-east-1"


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "sagelab"}), timeout=120) as response:
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        raise PriceListError(f"AWS's price list answered {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PriceListError(f"cannot reach AWS's price list at {url} ({reason}); check the network (HTTPS_PROXY for a proxy), "
                             "or refresh with a profile whose engine is sagemaker (--profile aws) to use the Price List API") from None  # fmt: skip
    except ValueError as exc:
        raise PriceListError(f"{url} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise PriceListError(f"{url} is not a price list document")
    return document
