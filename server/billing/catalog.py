"""``notefall billing sync-catalog``: the paid tiers of notefall.common.tiers as Stripe
products and monthly prices, created or updated idempotently.

- Each paid tier is one product with a fixed id (``notefall_pro``), its name and the
  metadata ``notefall_tier``; a product that exists is updated only when they differ.
- Each product has one monthly USD price found by its lookup key (``notefall_pro_monthly``).
  Stripe never lets a price's amount change, and neither do we: when the amount in the tier
  table differs from the price holding the lookup key, a new price is created and the key
  moves to it (``transfer_lookup_key``). The old price is left as it is, so subscriptions on
  it keep their amount until moved; its ``notefall_tier`` metadata still names its tier.
- A second run with nothing changed creates nothing.

It prints one ``NOTEFALL_STRIPE_PRICE_<TIER>=<price id>`` line per tier for the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from notefall.common.tiers import TIERS, Tier
from notefall.server.kit.settings import Settings

from .stripe_gateway import TIER_METADATA, StripeGateway, lookup_key, product_id

CURRENCY = "usd"
INTERVAL = "month"


@dataclass(frozen=True)
class CatalogLine:
    tier: Tier
    product_id: str
    price_id: str
    # What the run did: "created", "updated" or "unchanged" (product, price).
    product: str
    price: str

    @property
    def setting(self) -> str:
        return f"NOTEFALL_STRIPE_PRICE_{self.tier.value.upper()}={self.price_id}"


def _price_matches(price: dict, product: str, cents: int) -> bool:
    recurring = price.get("recurring") or {}
    price_product = price.get("product")
    if isinstance(price_product, dict):
        price_product = price_product.get("id")
    return (
        bool(price.get("active", True))
        and price_product == product
        and price.get("unit_amount") == cents
        and price.get("currency") == CURRENCY
        and recurring.get("interval") == INTERVAL
        and int(recurring.get("interval_count") or 1) == 1
    )


def sync_catalog(settings: Settings, gateway: StripeGateway | None = None) -> list[CatalogLine]:
    gateway = gateway or StripeGateway(settings)
    lines = []
    for tier, limits in TIERS.items():
        if tier is Tier.FREE:
            continue
        pid = product_id(tier)
        name = f"Notefall {limits.title}"
        metadata = {TIER_METADATA: tier.value}
        product = gateway.product(pid)
        if product is None:
            gateway.create_product({"id": pid, "name": name, "metadata": metadata})
            product_action = "created"
        elif (
            product.get("name") != name
            or (product.get("metadata") or {}).get(TIER_METADATA) != tier.value
            or not product.get("active", True)
        ):
            gateway.update_product(pid, {"name": name, "metadata": metadata, "active": True})
            product_action = "updated"
        else:
            product_action = "unchanged"
        key = lookup_key(tier)
        current = [p for p in gateway.prices_with_lookup_key(key) if p.get("lookup_key") == key]
        matching = [p for p in current if _price_matches(p, pid, limits.monthly_price_cents)]
        if matching:
            price_id, price_action = str(matching[0]["id"]), "unchanged"
        else:
            created = gateway.create_price(
                {
                    "product": pid,
                    "currency": CURRENCY,
                    "unit_amount": limits.monthly_price_cents,
                    "recurring": {"interval": INTERVAL},
                    "lookup_key": key,
                    "transfer_lookup_key": True,
                    "nickname": f"{limits.title} monthly",
                    "metadata": metadata,
                },
            )
            price_id, price_action = str(created["id"]), "created"
        lines.append(CatalogLine(tier, pid, price_id, product_action, price_action))
    return lines


def run(settings: Settings) -> str:
    """What the command prints: one line per tier, then the settings to set."""
    lines = sync_catalog(settings)
    report = [
        f"{line.tier.value}: product {line.product_id} {line.product}, price {line.price_id} "
        f"{line.price}"
        for line in lines
    ]
    report.append("# the settings:")
    report.extend(line.setting for line in lines)
    return "\n".join(report)
