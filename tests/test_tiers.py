"""The one tier table: the plans the product promises, and limits that grow with the price."""

import dataclasses

import pytest
from notefall.common.tiers import TIERS, Tier, limits_for


def test_the_plans_are_the_ones_we_sell():
    free, pro, enterprise = (limits_for(t) for t in ("free", "pro", "enterprise"))
    assert (free.monthly_price_cents, free.renders_per_month, free.max_video_height) == (0, 5, 720)
    assert free.watermark and not pro.watermark and not enterprise.watermark
    assert (pro.monthly_price_cents, pro.renders_per_month, pro.max_video_height) == (999, 50, 1080)
    assert (enterprise.monthly_price_cents, enterprise.max_video_height) == (2999, 2160)
    assert enterprise.renders_per_month is None  # unlimited
    assert enterprise.priority > pro.priority > free.priority
    assert [free.max_resolution_label, enterprise.max_resolution_label] == ["720p", "2160p (4K)"]


def test_every_limit_grows_or_holds_with_the_price():
    order = [TIERS[Tier.FREE], TIERS[Tier.PRO], TIERS[Tier.ENTERPRISE]]
    for field in dataclasses.fields(order[0]):
        values = [getattr(limits, field.name) for limits in order]
        if field.name in {"tier", "title", "watermark", "formats"}:
            continue
        # None is unlimited: the largest value of all.
        ranked = [float("inf") if v is None else v for v in values]
        assert ranked == sorted(ranked), field.name


def test_an_unknown_plan_is_refused():
    assert set(TIERS) == set(Tier)
    with pytest.raises(ValueError):
        limits_for("platinum")


def test_a_higher_plan_offers_every_format_a_lower_one_does():
    free, pro, enterprise = (limits_for(t) for t in Tier)
    assert set(free.formats) <= set(pro.formats) <= set(enterprise.formats)
    assert "mp4" in free.formats
